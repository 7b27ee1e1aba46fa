//! The view: a pure function of (trace, state) into a buffer. No I/O, no state changes.
//!
//! Screen plan (80×24 and up):
//!
//! ```text
//! ┌ title: iotls — step 3/27 — Hello: ServerHello ───────────── pizza-button · ✔ ┐
//! │ sequence diagram          │ Detail │ Certificates │ Decisions                 │
//! │ (Device ↔ Broker)         │ fields, meaning of the selected one, hex          │
//! │                           │ (wide screens: a "decisions so far" strip below)  │
//! │ narration of the current step, in plain words                                  │
//! └ footer: the keys valid in the focused pane ───────────────────────────────────┘
//! ```

pub mod certs;
pub mod chrome;
pub mod decisions;
pub mod detail;
pub mod diagram;

use super::app::AppState;
use super::theme::Styles;
use crate::trace::Trace;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Frame;

/// Smallest terminal the UI lays out; below it a "terminal too small" message is shown.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Where everything goes on a screen of a given size. Shared by the view and the mouse mapping,
/// so a click lands on what was drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub diagram: Rect,
    /// The tabbed pane on the right (detail, certificates or decisions).
    pub right: Rect,
    /// On wide screens, a compact "decisions so far" strip under the right pane.
    pub strip: Option<Rect>,
    pub narration: Rect,
    pub footer: Rect,
}

/// The layout of a screen, or `None` when it is too small.
pub fn areas(area: Rect) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let narration_h = if area.height >= 24 {
        6
    } else if area.height >= 20 {
        5
    } else {
        4
    };
    let title = Rect { height: 1, ..area };
    let footer = Rect {
        y: area.bottom() - 1,
        height: 1,
        ..area
    };
    let narration = Rect {
        y: footer.y - narration_h,
        height: narration_h,
        ..area
    };
    let main = Rect {
        y: area.y + 1,
        height: narration.y - (area.y + 1),
        ..area
    };
    let diagram_w = (area.width * 37 / 100).clamp(30, 46);
    let diagram = Rect {
        width: diagram_w,
        ..main
    };
    let mut right = Rect {
        x: main.x + diagram_w,
        width: main.width - diagram_w,
        ..main
    };
    let strip = if area.width >= 110 && main.height >= 24 {
        let h = main.height * 3 / 10;
        let strip = Rect {
            y: right.bottom() - h,
            height: h,
            ..right
        };
        right.height -= h;
        Some(strip)
    } else {
        None
    };
    Some(Areas {
        title,
        diagram,
        right,
        strip,
        narration,
        footer,
    })
}

/// Where the screen's parts are for this state on a screen of this size (the mouse mapping's
/// input), or `None` when the screen is too small.
pub fn hits(screen: Rect, trace: &Trace, state: &AppState) -> Option<super::keys::Hits> {
    let a = areas(screen)?;
    let (list, offset, rows) = diagram::geometry(a.diagram, trace, state);
    let g = detail::geometry(a.right, trace, state);
    Some(super::keys::Hits {
        diagram: a.diagram,
        right: a.right,
        diagram_list: list,
        diagram_offset: offset,
        diagram_rows: rows
            .iter()
            .map(|r| match r {
                diagram::Row::Step(i) => Some(*i),
                _ => None,
            })
            .collect(),
        tabs: chrome::tabs(a.right),
        fields: g.list,
        fields_offset: g.list_offset,
        hex: g.hex,
        hex_offset: g.hex_offset,
        bytes_per_row: g.bytes_per_row,
    })
}

/// The action a mouse event asks for on a screen of this size, as the last frame was drawn.
pub fn action_for_mouse(
    ev: crossterm::event::MouseEvent,
    trace: &Trace,
    state: &AppState,
    screen: Rect,
) -> Option<super::app::Action> {
    super::keys::mouse_action(ev, trace, state, hits(screen, trace, state).as_ref())
}

/// How far the open overlay can scroll on a screen of this size (the state keeps its scroll
/// within it).
pub fn overlay_max_scroll(state: &AppState, screen: Rect) -> u16 {
    chrome::overlay_max_scroll(state, screen)
}

/// Draw the whole screen for (trace, state) into the frame.
pub fn render(frame: &mut Frame, trace: &Trace, state: &AppState) {
    let area = frame.area();
    render_buffer(frame.buffer_mut(), area, trace, state);
}

/// Draw the whole screen into a buffer (what [`render`] does; usable without a terminal).
pub fn render_buffer(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState) {
    let styles = Styles::new(state.opts);
    buf.set_style(area, styles.base);
    let Some(a) = areas(area) else {
        chrome::too_small(buf, area, &styles);
        return;
    };
    chrome::title(buf, a.title, trace, state, &styles);
    diagram::render(buf, a.diagram, trace, state, &styles);
    match state.right {
        super::app::Pane::Certificates => certs::render(buf, a.right, trace, state, &styles),
        super::app::Pane::Decisions => decisions::render(buf, a.right, trace, state, &styles),
        _ => detail::render(buf, a.right, trace, state, &styles),
    }
    if let Some(strip) = a.strip {
        decisions::strip(buf, strip, trace, state, &styles);
    }
    chrome::narration(buf, a.narration, trace, state, &styles);
    chrome::footer(buf, a.footer, trace, state, &styles);
    chrome::overlay(buf, area, state, &styles);
    quiz(buf, area, state, &styles);
}

/// The open quiz question of a lesson, in a box over the screen.
fn quiz(buf: &mut Buffer, area: Rect, state: &AppState, styles: &Styles) {
    use ratatui::widgets::{Block, Clear, Widget};
    let Some((q, _)) = state.asking else {
        return;
    };
    let Some(quiz) = state.quizzes.get(q) else {
        return;
    };
    let width = area.width.saturating_sub(6).min(76) as usize;
    let mut lines = wrap(&quiz.question, width);
    lines.push(String::new());
    for (i, c) in quiz.choices.iter().enumerate() {
        for (k, l) in wrap(c, width.saturating_sub(4)).into_iter().enumerate() {
            let mark = if k == 0 {
                format!("{}) ", i + 1)
            } else {
                "   ".into()
            };
            lines.push(format!("{mark}{l}"));
        }
    }
    let r = chrome::overlay_area(area, lines.len());
    if r.width < 10 || r.height < 3 {
        return;
    }
    Clear.render(r, buf);
    let title = format!(
        " Quiz — press 1–{} to answer, then see the step ",
        quiz.choices.len()
    );
    let block =
        Block::bordered()
            .border_style(styles.border_focus)
            .title(ratatui::text::Span::styled(
                fit(&title, r.width.saturating_sub(2) as usize),
                styles.tab_active,
            ));
    let inner = block.inner(r);
    block.render(r, buf);
    buf.set_style(inner, styles.base);
    for (k, l) in lines.iter().take(inner.height as usize).enumerate() {
        buf.set_string(
            inner.x,
            inner.y + k as u16,
            fit(l, inner.width as usize),
            styles.base,
        );
    }
}

/// Greedy word wrap by characters (every character the UI prints is one column wide).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut len = 0usize;
        for word in para.split(' ') {
            let wlen = word.chars().count();
            if len > 0 && len + 1 + wlen > width {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            if wlen > width {
                // A word longer than a line (a hex string): cut it.
                for ch in word.chars() {
                    if len == width {
                        lines.push(std::mem::take(&mut line));
                        len = 0;
                    }
                    line.push(ch);
                    len += 1;
                }
            } else {
                line.push_str(word);
                len += wlen;
            }
        }
        lines.push(line);
    }
    lines
}

/// Cut a string to `width` characters, ending with `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// The first row to show so that `selected` is visible in a window of `height` rows out of
/// `total`, keeping some context above it.
pub fn scroll_offset(selected: usize, height: usize, total: usize) -> usize {
    if total <= height || height == 0 {
        return 0;
    }
    let context = height / 3;
    selected.saturating_sub(context).min(total - height)
}
