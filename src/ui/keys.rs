//! Events become actions. One table of key bindings drives [`action_for_key`], the footer's hints
//! and the help overlay, so the footer shows the keys that work in the focused pane and the help
//! lists every key.

use super::app::{Action, AppState, Pane};
use super::model;
use crate::trace::Trace;
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// A key binding: the keys, how the footer names them, what the help overlay says, and what they
/// do. The footer and the help overlay are both drawn from the tables below, so neither can list
/// a key that does not work or leave one out.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Key label for the footer; empty when the binding is shown by another one's label.
    pub label: &'static str,
    /// The footer's word for it.
    pub desc: &'static str,
    /// The help overlay's line for it; empty when it continues the binding before it (↓ after ↑),
    /// whose line then lists its keys too.
    pub help: &'static str,
    pub action: Action,
}

const fn b(
    keys: &'static [KeyCode],
    label: &'static str,
    desc: &'static str,
    help: &'static str,
    action: Action,
) -> Binding {
    Binding {
        keys,
        label,
        desc,
        help,
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
        "next step",
        Action::Next,
    ),
    b(
        &[KeyCode::Left, KeyCode::Char('h'), KeyCode::Backspace],
        "←",
        "back",
        "previous step",
        Action::Prev,
    ),
];

const FIELDS: &[Binding] = &[
    b(
        &[KeyCode::Up, KeyCode::Char('k')],
        "↑↓",
        "field",
        "select a field; its bytes light up in the hex view",
        Action::FieldUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j')],
        "",
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
        "certificates pane: select a certificate",
        Action::CertUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j')],
        "",
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
        "decisions pane: scroll",
        Action::ScrollUp,
    ),
    b(
        &[KeyCode::Down, KeyCode::Char('j'), KeyCode::PageDown],
        "",
        "",
        "",
        Action::ScrollDown,
    ),
];

/// The key that shows an encrypted record as sent or decrypted. The footer names it only on a
/// step that has an encrypted record, first after the step keys.
const SENT: Binding = b(
    &[KeyCode::Char('e')],
    "e",
    "as sent",
    "encrypted record: show the bytes as sent / decrypted",
    Action::ToggleSent,
);

/// A live session's button: the footer names it only while the device waits for it.
const BUTTON: Binding = b(
    &[KeyCode::Char('a')],
    "a",
    "press the button",
    "live tour: the device's next action: press the button",
    Action::Button,
);

const GLOBAL: &[Binding] = &[
    b(
        &[KeyCode::Tab],
        "Tab",
        "pane",
        "next pane: diagram, detail, certificates, decisions",
        Action::CyclePane,
    ),
    b(&[KeyCode::BackTab], "", "", "", Action::CyclePaneBack),
    b(
        &[KeyCode::Char('c')],
        "c",
        "certs",
        "certificates and their chains (again: back)",
        Action::ShowCerts,
    ),
    b(
        &[KeyCode::Char('p')],
        "p",
        "policy",
        "decisions and policy explanations (again: back)",
        Action::ShowPolicy,
    ),
    b(
        &[KeyCode::Char('x')],
        "x",
        "hex",
        "enlarge / shrink the hex view",
        Action::ToggleHex,
    ),
    SENT,
    b(
        &[KeyCode::Char('w')],
        "w",
        "words",
        "glossary: the abbreviations on screen, one line each",
        Action::Glossary,
    ),
    b(
        &[KeyCode::Char('r')],
        "r",
        "re-run",
        "run the session again: new keys, a fresh handshake",
        Action::Rerun,
    ),
    b(
        &[KeyCode::Char('b')],
        "b",
        "break it",
        "break it: swap one thing, re-run for real, compare",
        Action::BreakIt,
    ),
    b(
        &[KeyCode::Home, KeyCode::Char('g')],
        "Home/End",
        "ends",
        "first / last step",
        Action::First,
    ),
    b(
        &[KeyCode::End, KeyCode::Char('G')],
        "",
        "",
        "",
        Action::Last,
    ),
    b(
        &[KeyCode::Char('?')],
        "?",
        "help",
        "this help",
        Action::Help,
    ),
    b(
        &[KeyCode::Char('q'), KeyCode::Esc],
        "q",
        "quit",
        "quit (Ctrl-C and Ctrl-D too)",
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

/// The digit keys: they answer a quiz question and pick a swap in the break-it menu (read by
/// [`action_for_key`] while a question or the menu is open; listed in the help).
const DIGITS: Binding = b(
    &[
        KeyCode::Char('1'),
        KeyCode::Char('2'),
        KeyCode::Char('3'),
        KeyCode::Char('4'),
        KeyCode::Char('5'),
        KeyCode::Char('6'),
        KeyCode::Char('7'),
        KeyCode::Char('8'),
        KeyCode::Char('9'),
    ],
    "1–9",
    "answer",
    "answer a quiz question; pick a break-it swap",
    Action::Answer(0),
);

/// Every binding of every pane, once, in the order the help overlay lists them.
pub fn every_binding() -> impl Iterator<Item = &'static Binding> {
    STEPS
        .iter()
        .chain(FIELDS)
        .chain(CERTS)
        .chain(SCROLL)
        .chain(GLOBAL)
        .chain(std::iter::once(&BUTTON))
        .chain(std::iter::once(&DIGITS))
}

/// How the help overlay names a key.
pub fn key_name(code: KeyCode) -> String {
    match code {
        KeyCode::Right => "→".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Char(' ') => "space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Esc => "Esc".into(),
        other => format!("{other:?}"),
    }
}

/// The help overlay's key lines: (keys, what they do), a continuation's keys on its leader's line.
pub fn help_entries() -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for b in every_binding() {
        let keys: Vec<String> = if b.action == DIGITS.action {
            vec![DIGITS.label.to_string()]
        } else {
            b.keys.iter().map(|k| key_name(*k)).collect()
        };
        match out.last_mut() {
            Some((k, _)) if b.help.is_empty() => {
                k.push(' ');
                k.push_str(&keys.join(" "));
            }
            _ => out.push((keys.join(" "), b.help)),
        }
    }
    out
}

/// Whether the current step shows an encrypted record (the `e` key has something to show).
pub fn sent_applies(trace: &Trace, state: &AppState) -> bool {
    state
        .current()
        .is_some_and(|s| model::record_as_sent(trace, s).is_some())
}

/// The footer's hints: the keys of the focused pane, the `e` key first after the step keys when
/// it applies to this step, with the word for what it would show next.
pub fn footer_hints(trace: &Trace, state: &AppState) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    if state.live.as_ref().is_some_and(|l| l.button.is_some()) {
        out.push((BUTTON.label, BUTTON.desc));
    }
    let sent = sent_applies(trace, state);
    for b in bindings(state.focus).filter(|b| !b.label.is_empty()) {
        if b.action == Action::ToggleSent {
            continue;
        }
        out.push((b.label, b.desc));
        if b.action == Action::Prev && sent {
            let desc = if state.as_sent {
                "decrypted"
            } else {
                SENT.desc
            };
            out.push((SENT.label, desc));
        }
    }
    out
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
    if state.asking.is_some() {
        // A lesson's quiz question: a digit answers it, q quits.
        return match key.code {
            KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
            KeyCode::Char(c @ '1'..='9') => Some(Action::Answer(c as usize - '0' as usize)),
            _ => None,
        };
    }
    if state.overlay.is_some() {
        // ↑↓ scroll an overlay, q still quits, any other key closes it; in the break-it menu a
        // digit picks a swap.
        return Some(match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Char(c @ '1'..='9') if state.overlay == Some(super::app::Overlay::BreakIt) => {
                Action::Pick(c as usize - '0' as usize)
            }
            KeyCode::Up | KeyCode::Char('k') => Action::OverlayUp,
            KeyCode::Down | KeyCode::Char('j') => Action::OverlayDown,
            KeyCode::PageUp => Action::OverlayPageUp,
            KeyCode::PageDown => Action::OverlayPageDown,
            _ => Action::CloseOverlay,
        });
    }
    bindings(state.focus)
        .chain(std::iter::once(&BUTTON))
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// Where the screen's parts are, as the view drew them for this state: what the mouse mapping
/// needs (the view computes it, [`crate::ui::view::hits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hits {
    pub diagram: Rect,
    pub right: Rect,
    /// The diagram's rows: where they are drawn, the first visible one, and the step of each
    /// (`None` for a phase heading).
    pub diagram_list: Rect,
    pub diagram_offset: usize,
    pub diagram_rows: Vec<Option<usize>>,
    /// The right pane's tabs: (pane, first column, last column + 1) on its top border.
    pub tabs: Vec<(Pane, u16, u16)>,
    /// The detail pane's field list and hex rows, with their first visible rows.
    pub fields: Rect,
    pub fields_offset: usize,
    pub hex: Rect,
    pub hex_offset: usize,
    pub bytes_per_row: usize,
}

/// The action a mouse event asks for, given where the screen's parts are.
pub fn mouse_action(
    ev: MouseEvent,
    trace: &Trace,
    state: &AppState,
    hits: Option<&Hits>,
) -> Option<Action> {
    let a = hits?;
    let pos = Position {
        x: ev.column,
        y: ev.row,
    };
    if state.overlay.is_some() {
        return match ev.kind {
            MouseEventKind::ScrollUp => Some(Action::OverlayUp),
            MouseEventKind::ScrollDown => Some(Action::OverlayDown),
            MouseEventKind::Down(_) => Some(Action::CloseOverlay),
            _ => None,
        };
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
                let inner = a.diagram_list;
                if pos.y >= inner.y && pos.y < inner.bottom() {
                    let row = a.diagram_offset + (pos.y - inner.y) as usize;
                    if let Some(Some(i)) = a.diagram_rows.get(row) {
                        return Some(Action::GoTo(*i));
                    }
                }
                return Some(Action::Focus(Pane::Diagram));
            }
            if !in_right {
                return None;
            }
            if pos.y == a.right.y {
                return a
                    .tabs
                    .iter()
                    .find(|(_, l, r)| pos.x >= *l && pos.x < *r)
                    .map(|(p, _, _)| Action::Focus(*p));
            }
            if state.right != Pane::Detail {
                return Some(Action::Focus(state.right));
            }
            let step = state.current()?;
            let rows = model::shown_rows(trace, state.shown(), step);
            if a.fields.contains(pos) {
                let i = a.fields_offset + (pos.y - a.fields.y) as usize;
                if i < rows.len() {
                    return Some(Action::SelectField(i));
                }
            }
            if a.hex.contains(pos) {
                // "0000  " then 3 columns per byte.
                let col = (pos.x - a.hex.x) as usize;
                if col >= 6 && (col - 6) / 3 < a.bytes_per_row {
                    let offset = (a.hex_offset + (pos.y - a.hex.y) as usize) * a.bytes_per_row
                        + (col - 6) / 3;
                    return model::field_at(&rows, offset).map(Action::SelectField);
                }
            }
            Some(Action::Focus(Pane::Detail))
        }
        _ => None,
    }
}
