//! UI state and its update function: `update(state, action)` is the only way state changes.
//! Nothing here draws or reads the terminal.

use super::steps::{self, Step};
use super::theme::UiOptions;
use crate::trace::Trace;

/// The panes that take the focus (Tab cycles them in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The sequence diagram (left).
    Diagram,
    /// The decoded fields and hex of the current step (right).
    Detail,
    /// The certificates and their chains (right).
    Certificates,
    /// Every check and policy decision so far (right).
    Decisions,
}

impl Pane {
    pub const ALL: [Pane; 4] = [
        Pane::Diagram,
        Pane::Detail,
        Pane::Certificates,
        Pane::Decisions,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Diagram => "Device ↔ Broker",
            Pane::Detail => "Detail",
            Pane::Certificates => "Certificates",
            Pane::Decisions => "Decisions",
        }
    }
}

/// Everything a key press or a mouse event can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Next,
    Prev,
    First,
    Last,
    /// Jump to step n (from 0), e.g. a click in the diagram.
    GoTo(usize),
    FieldUp,
    FieldDown,
    /// Select field n of the current step (a click on a field or a byte).
    SelectField(usize),
    CertUp,
    CertDown,
    ScrollUp,
    ScrollDown,
    CyclePane,
    CyclePaneBack,
    /// Focus a pane (a click on it).
    Focus(Pane),
    ToggleHex,
    /// Show an encrypted record's bytes as sent, or decrypted (a view mode kept across steps).
    ToggleSent,
    ShowCerts,
    ShowPolicy,
    Rerun,
    /// A live session: press the device's button (the device carries out its next action).
    Button,
    Help,
    Glossary,
    /// Scroll the open overlay by a line or a page.
    OverlayUp,
    OverlayDown,
    OverlayPageUp,
    OverlayPageDown,
    CloseOverlay,
    /// Answer the open quiz question with choice n (from 1; a digit key).
    Answer(usize),
    /// Break it: the menu of swaps for this lesson.
    BreakIt,
    /// Pick swap n of the break-it menu (from 1; a digit key).
    Pick(usize),
    Quit,
}

/// A lesson's quiz question, asked before the step of its event is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quiz {
    /// Index into `trace.events` of the step it is asked before.
    pub event: usize,
    pub question: String,
    pub choices: Vec<String>,
    /// The right choice, from 1.
    pub answer: usize,
    pub explain: Option<String>,
}

/// A window drawn over the tour; while one is open, keys scroll or close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// Every key, from the key table, and how to read the diagram.
    Help,
    /// The abbreviations the screens use, one line each.
    Glossary,
    /// Break it: the swaps this lesson offers, each with its `--set`s; a digit picks one.
    BreakIt,
    /// Break it: what changed between the previous run and the one with the swap.
    Compare,
}

/// One way to break the lesson on screen: its label in plain words, its `--set` overrides, and
/// how they are written on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    pub label: String,
    pub sets: Vec<String>,
    pub command: String,
}

/// The state of the UI. The view is a pure function of (trace, state).
#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    /// The tour's steps over the current trace.
    pub steps: Vec<Step>,
    /// Current step, from 0.
    pub step: usize,
    /// Selected field of the current step, from 0.
    pub field: usize,
    /// Pane with the focus.
    pub focus: Pane,
    /// What the right-hand pane shows (never `Diagram`).
    pub right: Pane,
    /// Hex view enlarged to fill the detail pane.
    pub hex_expanded: bool,
    /// Selected certificate, an index into the certificate pane's order.
    pub cert: usize,
    /// Scroll of the decisions pane, in lines.
    pub decisions_scroll: u16,
    /// Show encrypted records as sent (ciphertext) instead of decrypted.
    pub as_sent: bool,
    /// The overlay on screen, if any, and its scroll in lines.
    pub overlay: Option<Overlay>,
    pub overlay_scroll: u16,
    /// Set by `Quit`; the event loop exits.
    pub quit: bool,
    /// Set by `Rerun`; the event loop runs a new session and calls [`AppState::reload`].
    pub rerun_requested: bool,
    /// How many sessions have run in this UI (1 for the first).
    pub run: u32,
    /// A one-line message for the footer (e.g. a failed re-run).
    pub status: Option<String>,
    /// A live session: where it is (set by the event loop from the engine's gate).
    pub live: Option<Live>,
    /// Set by → at the live edge: the event loop releases the next flight.
    pub advance_requested: bool,
    /// Set by the button key while the device waits for it.
    pub press_requested: bool,
    /// After a release or a press, move to the first new step when it arrives.
    pub follow: Option<usize>,
    /// Theme and colour choice.
    pub opts: UiOptions,
    /// A lesson's emphasis texts, at the index of the event they are about (walkthrough files).
    pub notes: Vec<(usize, String)>,
    /// A lesson's quiz questions, and which were answered.
    pub quizzes: Vec<Quiz>,
    pub answered: Vec<bool>,
    /// The question on screen (an index into `quizzes`) and the step shown once it is answered.
    pub asking: Option<(usize, usize)>,
    /// Break it: the swaps the lesson offers, or why there are none.
    pub swaps: Vec<Swap>,
    pub no_swaps: String,
    /// Set by picking a swap: the event loop runs the lesson with it (an index into `swaps`).
    pub break_requested: Option<usize>,
    /// The swap the run on screen was made with, if any.
    pub broken: Option<Swap>,
    /// The comparison of the last break-it run with the run before it.
    pub comparison: Option<super::compare::Comparison>,
}

impl AppState {
    pub fn new(trace: &Trace) -> AppState {
        AppState {
            steps: steps::steps(trace),
            step: 0,
            field: 0,
            focus: Pane::Diagram,
            right: Pane::Detail,
            hex_expanded: false,
            cert: 0,
            decisions_scroll: 0,
            as_sent: false,
            overlay: None,
            overlay_scroll: 0,
            quit: false,
            rerun_requested: false,
            run: 1,
            status: None,
            live: None,
            advance_requested: false,
            press_requested: false,
            follow: None,
            opts: UiOptions::default(),
            notes: Vec::new(),
            quizzes: Vec::new(),
            answered: Vec::new(),
            asking: None,
            swaps: Vec::new(),
            no_swaps: "nothing to swap here: break-it needs a lesson run by this tour".into(),
            break_requested: None,
            broken: None,
            comparison: None,
        }
    }

    /// Adopt the run of a break-it swap: its steps, shown from the step where it first differs
    /// from the previous run, with the comparison on screen.
    pub fn broke(&mut self, trace: &Trace, comparison: super::compare::Comparison) {
        self.steps = steps::steps(trace);
        let at = comparison.difference.as_ref().map(|d| d.step).unwrap_or(0);
        self.step = at.min(self.steps.len().saturating_sub(1));
        self.field = 0;
        self.decisions_scroll = 0;
        self.cert = super::model::cert_for_step(trace, self.current()).unwrap_or(0);
        self.live = None;
        self.follow = None;
        self.run += 1;
        self.rerun_requested = false;
        self.break_requested = None;
        self.status = Some(format!(
            "session #{}, broken: {} — a new real run",
            self.run, comparison.label
        ));
        self.comparison = Some(comparison);
        self.overlay = Some(Overlay::Compare);
        self.overlay_scroll = 0;
    }

    /// Adopt a fresh trace of the live session: the steps so far. The place in the tour stays;
    /// after a release or a press, the tour moves to the first step that arrived.
    pub fn reload_live(&mut self, trace: &Trace) {
        let old = self.steps.len();
        self.steps = steps::steps(trace);
        let last = self.steps.len().saturating_sub(1);
        match self.follow {
            Some(edge) if self.steps.len() > edge => {
                self.follow = None;
                self.go(trace, edge.min(last));
            }
            _ => self.step = self.step.min(last),
        }
        if self.steps.len() < old {
            self.field = 0;
        }
        self.field = self
            .field
            .min(self.shown_field_count(trace).saturating_sub(1));
    }

    /// A new live session started (`r`): its first steps, from the top.
    pub fn restart_live(&mut self, trace: &Trace) {
        self.steps = steps::steps(trace);
        self.step = 0;
        self.field = 0;
        self.follow = None;
        self.run += 1;
        self.rerun_requested = false;
        self.status = Some(format!(
            "live session #{}: a new TCP connection, new keys; → sends each flight",
            self.run
        ));
    }

    /// Whether the current step is the last one recorded while the session still runs.
    pub fn at_live_edge(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.running) && self.step + 1 >= self.steps.len()
    }

    /// Adopt a new trace (after a re-run), keeping the place in the tour where possible.
    pub fn reload(&mut self, trace: &Trace) {
        self.steps = steps::steps(trace);
        self.step = self.step.min(self.steps.len().saturating_sub(1));
        self.field = self
            .field
            .min(self.shown_field_count(trace).saturating_sub(1));
        self.run += 1;
        self.rerun_requested = false;
        self.status = Some(format!(
            "session #{} — fresh keys, fresh randoms, a new real handshake",
            self.run
        ));
    }

    /// The current step, if the trace has any.
    pub fn current(&self) -> Option<&Step> {
        self.steps.get(self.step)
    }

    /// Adopt a lesson's emphasis and quiz for the trace on screen (a question already answered
    /// is not asked again after a re-run).
    pub fn set_lesson(&mut self, notes: Vec<(usize, String)>, quizzes: Vec<Quiz>) {
        self.notes = notes;
        self.answered.resize(quizzes.len(), false);
        self.quizzes = quizzes;
        self.asking = None;
    }

    /// A live session's lesson texts and questions for what it holds now: the questions already
    /// answered stay answered and an open question stays open.
    pub fn refresh_lesson(&mut self, notes: Vec<(usize, String)>, quizzes: Vec<Quiz>) {
        self.notes = notes;
        self.answered.resize(quizzes.len(), false);
        self.quizzes = quizzes;
    }

    pub fn update(&mut self, trace: &Trace, action: Action) {
        if let Some((q, target)) = self.asking.filter(|(q, _)| *q < self.quizzes.len()) {
            // A question is open: a digit answers it and shows the step; q quits.
            match action {
                Action::Quit => self.quit = true,
                Action::Answer(n) if (1..=self.quizzes[q].choices.len()).contains(&n) => {
                    let quiz = &self.quizzes[q];
                    let verdict = if n == quiz.answer {
                        "Right".to_string()
                    } else {
                        format!(
                            "Not quite: the answer is {}, {}",
                            quiz.answer,
                            quiz.choices[quiz.answer - 1]
                        )
                    };
                    let text = match &quiz.explain {
                        Some(e) => format!("{verdict}. {e}"),
                        None => format!("{verdict}."),
                    };
                    self.notes.push((quiz.event, text));
                    self.answered.resize(self.quizzes.len(), false);
                    self.answered[q] = true;
                    self.asking = None;
                    self.go(trace, target);
                }
                _ => {}
            }
            return;
        }
        if self.overlay.is_some() {
            // While an overlay is open, keys scroll it, q quits, and anything else closes it
            // without doing anything more; in the break-it menu a digit picks a swap.
            match action {
                Action::Quit => self.quit = true,
                Action::Pick(n) if self.overlay == Some(Overlay::BreakIt) => {
                    if (1..=self.swaps.len()).contains(&n) {
                        self.break_requested = Some(n - 1);
                        self.overlay = None;
                        self.overlay_scroll = 0;
                    }
                }
                Action::OverlayUp => self.overlay_scroll = self.overlay_scroll.saturating_sub(1),
                Action::OverlayDown => self.overlay_scroll = self.overlay_scroll.saturating_add(1),
                Action::OverlayPageUp => {
                    self.overlay_scroll = self.overlay_scroll.saturating_sub(OVERLAY_PAGE)
                }
                Action::OverlayPageDown => {
                    self.overlay_scroll = self.overlay_scroll.saturating_add(OVERLAY_PAGE)
                }
                _ => {
                    self.overlay = None;
                    self.overlay_scroll = 0;
                }
            }
            return;
        }
        self.status = None;
        let last = self.steps.len().saturating_sub(1);
        match action {
            Action::Next if self.at_live_edge() => {
                // Past the live edge: the session advances (the next held flight leaves).
                self.advance_requested = true;
                self.follow = Some(self.steps.len());
            }
            Action::Next => self.go(trace, (self.step + 1).min(last)),
            Action::Prev => self.go(trace, self.step.saturating_sub(1)),
            Action::First => self.go(trace, 0),
            Action::Last => self.go(trace, last),
            Action::GoTo(n) => self.go(trace, n.min(last)),
            Action::FieldUp => {
                self.field = self.field.saturating_sub(1);
                self.right = Pane::Detail;
            }
            Action::FieldDown => {
                self.right = Pane::Detail;
                let n = self.shown_field_count(trace);
                self.field = (self.field + 1).min(n.saturating_sub(1));
            }
            Action::SelectField(i) => {
                let n = self.shown_field_count(trace);
                self.field = i.min(n.saturating_sub(1));
                self.focus = Pane::Detail;
                self.right = Pane::Detail;
            }
            Action::CertUp => self.cert = self.cert.saturating_sub(1),
            Action::CertDown => {
                let n = super::model::order(trace).len();
                self.cert = (self.cert + 1).min(n.saturating_sub(1));
            }
            Action::ScrollUp => self.decisions_scroll = self.decisions_scroll.saturating_sub(1),
            Action::ScrollDown => self.decisions_scroll = self.decisions_scroll.saturating_add(1),
            Action::CyclePane => {
                let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
                self.focus(Pane::ALL[(i + 1) % Pane::ALL.len()]);
            }
            Action::CyclePaneBack => {
                let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
                self.focus(Pane::ALL[(i + Pane::ALL.len() - 1) % Pane::ALL.len()]);
            }
            Action::Focus(p) => self.focus(p),
            Action::ToggleHex => {
                self.hex_expanded = !(self.hex_expanded && self.right == Pane::Detail);
                self.right = Pane::Detail;
            }
            Action::ToggleSent => {
                if self
                    .current()
                    .is_some_and(|s| super::model::record_as_sent(trace, s).is_some())
                {
                    self.as_sent = !self.as_sent;
                    self.field = 0;
                    self.right = Pane::Detail;
                } else {
                    self.status = Some(
                        "this step has no encrypted record: its bytes are shown as they were sent"
                            .into(),
                    );
                }
            }
            Action::ShowCerts => {
                if self.right == Pane::Certificates {
                    self.right = Pane::Detail;
                    self.focus = Pane::Diagram;
                } else {
                    self.focus(Pane::Certificates);
                }
            }
            Action::ShowPolicy => {
                if self.right == Pane::Decisions {
                    self.right = Pane::Detail;
                    self.focus = Pane::Diagram;
                } else {
                    self.focus(Pane::Decisions);
                    self.decisions_scroll = 0;
                }
            }
            Action::Rerun => self.rerun_requested = true,
            Action::Button => match &self.live {
                Some(Live {
                    button: Some(_), ..
                }) => {
                    self.press_requested = true;
                    self.follow = Some(self.steps.len());
                }
                Some(_) => {
                    self.status = Some("the device is not waiting for its button now".into());
                }
                None => {
                    self.status =
                        Some("a recorded session: the button was pressed when it ran".into());
                }
            },
            Action::Help => self.open(Overlay::Help),
            Action::BreakIt => self.open(Overlay::BreakIt),
            Action::Glossary => self.open(Overlay::Glossary),
            Action::OverlayUp
            | Action::OverlayDown
            | Action::OverlayPageUp
            | Action::OverlayPageDown
            | Action::CloseOverlay
            | Action::Answer(_)
            | Action::Pick(_) => {}
            Action::Quit => self.quit = true,
        }
    }

    fn open(&mut self, overlay: Overlay) {
        self.overlay = Some(overlay);
        self.overlay_scroll = 0;
    }

    /// Keep the overlay's scroll within `max`, what the screen can show of it (the view says),
    /// so that ↑ after scrolling past the end moves at once. The event loop calls it after each
    /// update.
    pub fn clamp_overlay(&mut self, max: u16) {
        self.overlay_scroll = self.overlay_scroll.min(max);
    }

    fn focus(&mut self, pane: Pane) {
        self.focus = pane;
        if pane != Pane::Diagram {
            self.right = pane;
        }
    }

    fn go(&mut self, trace: &Trace, n: usize) {
        // Stepping onto a step a question is asked before: ask first, show the step after.
        if let Some(s) = self.steps.get(n) {
            if n != self.step && s.packet.unwrap_or(0) == 0 {
                let open = self.quizzes.iter().enumerate().find(|(i, q)| {
                    q.event == s.event && !self.answered.get(*i).copied().unwrap_or(false)
                });
                if let Some((i, _)) = open {
                    self.asking = Some((i, n));
                    return;
                }
            }
        }
        if n != self.step {
            self.step = n;
            self.field = 0;
            self.decisions_scroll = 0;
            // Follow the certificate the step is about.
            if let Some(i) = super::model::cert_for_step(trace, self.current()) {
                self.cert = i;
            }
        }
    }
}

/// Where a live session is, as the screen tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// The session still runs (the last step is the live edge, not the end).
    pub running: bool,
    /// What the button does now, if the device waits for it (e.g. "PUBLISH to iotbutton/…").
    pub button: Option<String>,
    /// Who holds which bytes, and what → or the button does now.
    pub text: String,
}

/// Lines an overlay scrolls by on PgUp / PgDn.
const OVERLAY_PAGE: u16 = 10;

/// How many selectable rows the detail pane has for a step (decrypted view).
pub fn field_count(trace: &Trace, step: Option<&Step>) -> usize {
    step.map(|s| super::model::rows(trace, s).len())
        .unwrap_or(0)
}

impl AppState {
    /// How the detail pane shows steps in this state.
    pub fn shown(&self) -> super::model::Shown {
        super::model::Shown {
            as_sent: self.as_sent,
            replayed: self.opts.replayed,
        }
    }

    /// How many selectable rows the detail pane shows for the current step, in the current view
    /// (decrypted, or the record as sent).
    fn shown_field_count(&self, trace: &Trace) -> usize {
        self.current()
            .map(|s| super::model::shown_rows(trace, self.shown(), s).len())
            .unwrap_or(0)
    }
}
