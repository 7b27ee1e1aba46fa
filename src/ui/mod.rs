//! The terminal UI: a guided tour of one recorded session. It renders a [`Trace`]; it never talks
//! to sockets (a re-run asks the caller for a new trace).
//!
//! The shape follows ratatui's templates and gitui: terminal events become [`Action`]s
//! ([`action_for_key`], [`action_for_mouse`]), actions update [`AppState`]
//! ([`AppState::update`]), and the view is a pure function of (trace, state) ([`render`],
//! [`render_buffer`]) — which is what the snapshot tests and the frame-time benchmark call.
//!
//! Modules, in layers that only call downwards (model → state → keys → view): `steps` (the
//! tour's steps over a trace), `model` (what state and view both compute from the trace: detail
//! rows, certificate order), `compare` (break-it: where two runs first differ), `narrate`
//! (plain-language narration, reusable by non-terminal renderers), `app` (state + update),
//! `keys` (event → action; the mouse over the view's `Hits`), `view` (drawing),
//! `terminal` (event loop, terminal set-up and restore), `theme` (colours, NO_COLOR), `room` (the
//! live list of sessions of `iotls serve --ui`, which opens one session in this same tour).
//!
//! [`Trace`]: crate::trace::Trace

mod app;
pub mod compare;
mod keys;
pub mod model;
pub use crate::narrate;
pub mod room;
pub mod steps;
mod terminal;
mod theme;
pub mod view;

#[cfg(test)]
pub(crate) mod sample;
#[cfg(test)]
mod tests;

pub use app::{field_count, Action, AppState, Live, Overlay, Pane, Quiz, Swap};
pub use keys::{
    action_for_key, bindings, every_binding, help_entries, mouse_action, Binding, Hits,
};
pub use terminal::{restore, run, run_lesson, run_live, signal_exit_code, BreakIt, LessonNotes};
pub use theme::{Styles, Theme, UiOptions};
pub use view::{
    action_for_mouse, areas, hits, overlay_max_scroll, render, render_buffer, Areas, MIN_HEIGHT,
    MIN_WIDTH,
};
