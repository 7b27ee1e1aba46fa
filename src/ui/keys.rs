//! Events become actions. One table of key bindings drives both [`action_for_key`] and the
//! footer's hints, so the footer always shows exactly the keys that work in the focused pane.

use super::app::{Action, AppState, Pane};
use super::view::{self, detail, diagram};
use crate::trace::Trace;
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// A key binding: the keys, how the footer names them, and what they do.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Key label for the footer and help; empty when the binding is shown by another one's label.
    pub label: &'static str,
    pub desc: &'static str,
    pub action: Action,
}

const fn b(
    keys: &'static [KeyCode],
    label: &'static str,
    desc: &'static str,
    action: Action,
) -> Binding {
    Binding {
        keys,
        label,
        desc,
        action,
    }
}

const STEPS: &[Binding] = &[
    b(
        &[
            KeyCode::Right,
            KeyCode::Char('l'),
            KeyCode::Char(' '),
            KeyCode::Enter,
        ],
        "→",
        "next",
        Action::Next,
    ),
    b(
        &[KeyCode::Left, KeyCode::Char('h'), KeyCode::Backspace],
        "←",
        "back",
        Action::Prev,
    ),
];

const FIELDS: &[Binding] = &[
    b(
        &[KeyCode::Up, KeyCode::Char('k')],
        "↑↓",
        "field",
        Action::FieldUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j')],
        "",
        "",
        Action::FieldDown,
    ),
];

const CERTS: &[Binding] = &[
    b(
        &[KeyCode::Up, KeyCode::Char('k')],
        "↑↓",
        "cert",
        Action::CertUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j')],
        "",
        "",
        Action::CertDown,
    ),
];

const SCROLL: &[Binding] = &[
    b(
        &[KeyCode::Up, KeyCode::Char('k'), KeyCode::PageUp],
        "↑↓",
        "scroll",
        Action::ScrollUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j'), KeyCode::PageDown],
        "",
        "",
        Action::ScrollDown,
    ),
];

const GLOBAL: &[Binding] = &[
    b(&[KeyCode::Tab], "Tab", "pane", Action::CyclePane),
    b(&[KeyCode::BackTab], "", "", Action::CyclePaneBack),
    b(&[KeyCode::Char('c')], "c", "certs", Action::ShowCerts),
    b(&[KeyCode::Char('p')], "p", "policy", Action::ShowPolicy),
    b(&[KeyCode::Char('x')], "x", "hex", Action::ToggleHex),
    b(&[KeyCode::Char('r')], "r", "re-run", Action::Rerun),
    b(
        &[KeyCode::Home, KeyCode::Char('g')],
        "Home/End",
        "ends",
        Action::First,
    ),
    b(&[KeyCode::End, KeyCode::Char('G')], "", "", Action::Last),
    b(&[KeyCode::Char('?')], "?", "help", Action::Help),
    b(
        &[KeyCode::Char('q'), KeyCode::Esc],
        "q",
        "quit",
        Action::Quit,
    ),
];

/// The bindings valid in a pane, most useful first.
pub fn bindings(pane: Pane) -> impl Iterator<Item = &'static Binding> {
    let vertical = match pane {
        Pane::Diagram | Pane::Detail => FIELDS,
        Pane::Certificates => CERTS,
        Pane::Decisions => SCROLL,
    };
    STEPS.iter().chain(vertical).chain(GLOBAL)
}

/// The action a key asks for in the current state, if any.
pub fn action_for_key(key: KeyEvent, state: &AppState) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') => Some(Action::Quit),
            _ => None,
        };
    }
    if state.help {
        // Any key closes the help overlay (q still quits).
        return Some(if key.code == KeyCode::Char('q') {
            Action::Quit
        } else {
            Action::Help
        });
    }
    bindings(state.focus)
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// The action a mouse event asks for, given the screen size the last frame was drawn at.
pub fn action_for_mouse(
    ev: MouseEvent,
    trace: &Trace,
    state: &AppState,
    screen: Rect,
) -> Option<Action> {
    let a = view::areas(screen)?;
    let pos = Position {
        x: ev.column,
        y: ev.row,
    };
    if state.help {
        return matches!(ev.kind, MouseEventKind::Down(_)).then_some(Action::Help);
    }
    let in_diagram = a.diagram.contains(pos);
    let in_right = a.right.contains(pos);
    match ev.kind {
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
            let down = ev.kind == MouseEventKind::ScrollDown;
            if in_diagram {
                Some(if down { Action::Next } else { Action::Prev })
            } else if in_right {
                Some(match (state.right, down) {
                    (Pane::Certificates, true) => Action::CertDown,
                    (Pane::Certificates, false) => Action::CertUp,
                    (Pane::Decisions, true) => Action::ScrollDown,
                    (Pane::Decisions, false) => Action::ScrollUp,
                    (_, true) => Action::FieldDown,
                    (_, false) => Action::FieldUp,
                })
            } else {
                None
            }
        }
        MouseEventKind::Down(MouseButton::Left) => {
            if in_diagram {
                let (inner, offset, rows) = diagram::geometry(a.diagram, trace, state);
                if pos.y >= inner.y && pos.y < inner.bottom() {
                    let row = offset + (pos.y - inner.y) as usize;
                    if let Some(diagram::Row::Step(i)) = rows.get(row) {
                        return Some(Action::GoTo(*i));
                    }
                }
                return Some(Action::Focus(Pane::Diagram));
            }
            if !in_right {
                return None;
            }
            if pos.y == a.right.y {
                return view::chrome::tab_at(a.right, pos.x).map(Action::Focus);
            }
            if state.right != Pane::Detail {
                return Some(Action::Focus(state.right));
            }
            let g = detail::geometry(a.right, trace, state);
            let step = state.current()?;
            if g.list.contains(pos) {
                let i = g.list_offset + (pos.y - g.list.y) as usize;
                if i < detail::rows(trace, step).len() {
                    return Some(Action::SelectField(i));
                }
            }
            if g.hex.contains(pos) {
                // "0000  " then 3 columns per byte.
                let col = (pos.x - g.hex.x) as usize;
                if col >= 6 && (col - 6) / 3 < g.bytes_per_row {
                    let offset = (g.hex_offset + (pos.y - g.hex.y) as usize) * g.bytes_per_row
                        + (col - 6) / 3;
                    return detail::field_at(&detail::rows(trace, step), offset)
                        .map(Action::SelectField);
                }
            }
            Some(Action::Focus(Pane::Detail))
        }
        _ => None,
    }
}
