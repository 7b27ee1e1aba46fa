//! The sequence diagram: Device on the left, Broker on the right, one row per step, a header row
//! at each change of phase. Plain lines are cleartext, double lines are encrypted records. Steps
//! not reached yet show what was sent but not what was decided ([`steps::shape_ahead`]).

use super::{fit, scroll_offset};
use crate::trace::{Phase, Side, Trace};
use crate::ui::app::{AppState, Pane};
use crate::ui::steps::{self, Shape, Step};
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

/// A row of the diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    Phase(Phase),
    /// Step n (index into `state.steps`).
    Step(usize),
}

/// The diagram's rows: steps with a phase header before each change of phase.
pub fn rows(trace: &Trace, steps: &[Step]) -> Vec<Row> {
    let mut out = Vec::with_capacity(steps.len() + 12);
    let mut phase = None;
    for (i, s) in steps.iter().enumerate() {
        let p = s.phase(trace);
        if phase != Some(p) {
            out.push(Row::Phase(p));
            phase = Some(p);
        }
        out.push(Row::Step(i));
    }
    out
}

/// The block around the diagram.
pub fn block<'a>(state: &AppState, styles: &Styles) -> Block<'a> {
    let focus = state.focus == Pane::Diagram;
    Block::bordered()
        .border_style(if focus {
            styles.border_focus
        } else {
            styles.border
        })
        .title(Line::from(vec![
            Span::raw(" "),
            Span::styled("Device", styles.device),
            Span::raw(" "),
        ]))
        .title_top(
            Line::from(vec![
                Span::raw(" "),
                Span::styled("Broker", styles.broker),
                Span::raw(" "),
            ])
            .right_aligned(),
        )
}

/// Geometry shared with the mouse mapping: the inner area, the first visible row and the rows.
pub fn geometry(area: Rect, trace: &Trace, state: &AppState) -> (Rect, usize, Vec<Row>) {
    // One column of padding inside the border, so the lifelines stand apart from it.
    let inner = Block::bordered().inner(area);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    let rows = rows(trace, &state.steps);
    let list_h = inner.height as usize;
    let selected = rows
        .iter()
        .position(|r| *r == Row::Step(state.step))
        .unwrap_or(0);
    let offset = scroll_offset(selected, list_h, rows.len());
    (inner, offset, rows)
}

pub fn render(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    block(state, styles).render(area, buf);
    let (inner, offset, rows) = geometry(area, trace, state);
    if inner.width < 8 || inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    if trace.events.is_empty() {
        let msg = Line::styled(fit("(no events recorded)", w), styles.dim);
        buf.set_line(inner.x, inner.y, &msg, inner.width);
        return;
    }
    let list_h = inner.height as usize;
    for (k, row) in rows.iter().skip(offset).take(list_h).enumerate() {
        let y = inner.y + k as u16;
        let line = match *row {
            Row::Phase(p) => phase_line(
                p,
                w,
                rows_phase_reached(&rows, offset + k, state.step),
                styles,
            ),
            Row::Step(i) => step_line(trace, state, i, w, styles),
        };
        buf.set_line(inner.x, y, &line, inner.width);
    }
    // Scroll hints.
    if offset > 0 {
        buf.set_string(inner.right(), inner.y, "▲", styles.dim);
    }
    if offset + list_h < rows.len() {
        buf.set_string(inner.right(), inner.bottom() - 1, "▼", styles.dim);
    }
}

/// Whether the header at row `at` belongs to a phase the tour has reached.
fn rows_phase_reached(rows: &[Row], at: usize, current: usize) -> bool {
    match rows.get(at + 1) {
        Some(Row::Step(i)) => *i <= current,
        _ => false,
    }
}

fn phase_line(p: Phase, w: usize, reached: bool, styles: &Styles) -> Line<'static> {
    let title = format!("── {} ", p.title());
    let len = title.chars().count();
    let text = format!("{title}{}", "─".repeat(w.saturating_sub(len)));
    Line::styled(
        fit(&text, w),
        if reached { styles.phase } else { styles.future },
    )
}

fn step_line(
    trace: &Trace,
    state: &AppState,
    i: usize,
    w: usize,
    styles: &Styles,
) -> Line<'static> {
    let step = &state.steps[i];
    let ahead = i > state.step;
    let shape = if ahead {
        steps::shape_ahead(trace, step)
    } else {
        steps::shape(trace, step)
    };
    let failed = steps::is_failure(trace, step);
    let base = if i == state.step {
        styles.current
    } else if i > state.step {
        styles.future
    } else if failed {
        styles.fail
    } else {
        Style::new()
    };
    let inner_w = w.saturating_sub(2);
    let (left, mid, right) = match &shape {
        Shape::Arrow {
            from,
            label,
            encrypted,
        } => {
            let (line, tee_l, tee_r) = if *encrypted {
                ('═', '╞', '╡')
            } else {
                ('─', '├', '┤')
            };
            let label = fit(label, inner_w.saturating_sub(5));
            let fill = inner_w.saturating_sub(label.chars().count() + 4);
            let dashes: String = std::iter::repeat_n(line, fill).collect();
            let mid = match from {
                Side::Broker => format!("◀{dashes} {label} {line}"),
                _ => format!("{line} {label} {dashes}▶"),
            };
            (tee_l, mid, tee_r)
        }
        Shape::Note { side, label, ok } => {
            let mark = match ok {
                Some(true) => "✔ ",
                Some(false) => "✘ ",
                // A verdict the tour has not reached yet.
                None if ahead && steps::has_verdict(trace, step) => "? ",
                None => "◆ ",
            };
            let text = fit(&format!("{mark}{label}"), inner_w.saturating_sub(2));
            let pad = inner_w.saturating_sub(text.chars().count() + 2);
            let mid = match side {
                Side::Device => format!(" {text}{} ", " ".repeat(pad)),
                Side::Broker => format!(" {}{text} ", " ".repeat(pad)),
                // iotls's own recomputations sit in the middle: neither side made them.
                Side::Iotls => {
                    let l = pad / 2;
                    format!(" {}{text}{} ", " ".repeat(l), " ".repeat(pad - l))
                }
            };
            ('│', mid, '│')
        }
        Shape::Span { label, ok } => {
            let mark = match ok {
                Some(false) => "✘ ",
                _ => "",
            };
            let text = fit(&format!("{mark}{label}"), inner_w.saturating_sub(4));
            let total = inner_w.saturating_sub(text.chars().count() + 2);
            let l = total / 2;
            let mid = format!("{} {text} {}", "╌".repeat(l), "╌".repeat(total - l));
            ('├', mid, '┤')
        }
    };
    // Colour the verdict mark of past notes even when the row itself is plain.
    let mark_style = match &shape {
        Shape::Note { ok: Some(true), .. } if i < state.step => Some(styles.ok),
        Shape::Note {
            ok: Some(false), ..
        } if i < state.step => Some(styles.fail),
        _ => None,
    };
    let mut spans = vec![Span::styled(left.to_string(), base)];
    match mark_style {
        Some(ms) if mid.contains(['✔', '✘']) => {
            let pos = mid.find(['✔', '✘']).unwrap_or(0);
            let (a, rest) = mid.split_at(pos);
            let mark_len = rest.chars().next().map(char::len_utf8).unwrap_or(0);
            let (m, b) = rest.split_at(mark_len);
            spans.push(Span::styled(a.to_string(), base));
            spans.push(Span::styled(m.to_string(), base.patch(ms)));
            spans.push(Span::styled(b.to_string(), base));
        }
        _ => spans.push(Span::styled(mid, base)),
    }
    spans.push(Span::styled(right.to_string(), base));
    Line::from(spans)
}
