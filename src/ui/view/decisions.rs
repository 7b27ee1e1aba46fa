//! The decisions pane: every check and policy decision up to the current step, ✔/✘ with its
//! reason; failures with the alert sent, the cause and the fix; policy decisions with their
//! explanation (`p`). On wide screens a compact strip of the same list stays visible.

use super::{fit, wrap};
use crate::trace::{EventKind, Trace};
use crate::ui::app::{AppState, Pane};
use crate::ui::narrate;
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

/// One decision: its event index, whether it passed, a title and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub event: usize,
    pub ok: bool,
    pub title: String,
    pub who: &'static str,
    pub reason: String,
    /// Policy explanation lines.
    pub lines: Vec<String>,
    /// For a failure: what failed, with the values that explain it.
    pub failure: Option<crate::trace::Failure>,
}

/// Every decision up to and including event `upto`.
pub fn decisions(trace: &Trace, upto: usize) -> Vec<Decision> {
    trace
        .events
        .iter()
        .enumerate()
        .take(upto.saturating_add(1))
        .filter_map(|(i, e)| match &e.kind {
            EventKind::Check {
                check, ok, reason, ..
            } => Some(Decision {
                event: i,
                ok: *ok,
                title: check.as_str().to_string(),
                who: e.side.name(),
                reason: reason.clone(),
                lines: Vec::new(),
                failure: narrate::failure_at(trace, i),
            }),
            EventKind::Policy(p) => {
                let ok = p.decision.allowed();
                Some(Decision {
                    event: i,
                    ok,
                    title: format!("{} {}", p.action, p.decision),
                    who: e.side.name(),
                    reason: p.resource.clone(),
                    lines: p.lines.clone(),
                    failure: narrate::failure_at(trace, i),
                })
            }
            _ => None,
        })
        .collect()
}

fn current_event(state: &AppState) -> usize {
    state.current().map(|s| s.event).unwrap_or(0)
}

/// All lines of the full pane.
fn lines(trace: &Trace, state: &AppState, w: usize, styles: &Styles) -> Vec<Line<'static>> {
    let now = current_event(state);
    let list = decisions(trace, now);
    let mut out = Vec::new();
    if list.is_empty() {
        for l in wrap(
            "No verdicts yet. The first comes when the device checks the broker's certificate chain.",
            w,
        ) {
            out.push(Line::styled(l, styles.dim));
        }
        return out;
    }
    for d in &list {
        let (mark, st) = if d.ok {
            ("✔", styles.ok)
        } else {
            ("✘", styles.fail)
        };
        let here = if d.event == now { "▸" } else { " " };
        out.push(Line::from(vec![
            Span::styled(here.to_string(), styles.emphasis),
            Span::styled(format!("{mark} "), st),
            Span::styled(
                d.title.clone(),
                if d.ok { styles.emphasis } else { styles.fail },
            ),
            Span::styled(format!(" · by the {}", d.who), styles.dim),
        ]));
        for l in wrap(&d.reason, w.saturating_sub(4)) {
            out.push(Line::styled(
                format!("    {l}"),
                if d.ok { Style::new() } else { styles.fail },
            ));
        }
        for pl in &d.lines {
            for (k, l) in wrap(pl, w.saturating_sub(6)).into_iter().enumerate() {
                let lead = if k == 0 { "    · " } else { "      " };
                out.push(Line::styled(format!("{lead}{l}"), styles.dim));
            }
        }
        if let Some(f) = &d.failure {
            let help = narrate::failure_help(f);
            if let Some(a) = &help.alert {
                for l in wrap(&format!("Alert sent: {a}"), w.saturating_sub(4)) {
                    out.push(Line::styled(format!("    {l}"), styles.fail));
                }
            }
            for l in wrap(&format!("Cause: {}", help.cause), w.saturating_sub(4)) {
                out.push(Line::styled(format!("    {l}"), styles.warn));
            }
            for l in wrap(&format!("Fix: {}", help.fix), w.saturating_sub(4)) {
                out.push(Line::styled(format!("    {l}"), styles.warn));
            }
        }
    }
    out
}

pub fn render(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    super::chrome::tabbed_block(buf, area, state, state.focus == Pane::Decisions, styles);
    let inner = Block::bordered().inner(area);
    if inner.width < 10 || inner.height < 2 {
        return;
    }
    let all = lines(trace, state, inner.width as usize, styles);
    let max_scroll = all.len().saturating_sub(inner.height as usize);
    let scroll = (state.decisions_scroll as usize).min(max_scroll);
    for (k, line) in all
        .iter()
        .skip(scroll)
        .take(inner.height as usize)
        .enumerate()
    {
        buf.set_line(inner.x, inner.y + k as u16, line, inner.width);
    }
    if scroll < max_scroll {
        buf.set_string(inner.right() - 1, inner.bottom() - 1, "▼", styles.dim);
    }
    if scroll > 0 {
        buf.set_string(inner.right() - 1, inner.y, "▲", styles.dim);
    }
}

/// The compact strip: one line per decision, the latest at the bottom.
pub fn strip(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    let list = decisions(trace, current_event(state));
    let passed = list.iter().filter(|d| d.ok).count();
    let title = format!(" Decisions so far: {passed} ✔  {} ✘ ", list.len() - passed);
    Block::bordered()
        .border_style(styles.border)
        .title(Span::styled(title, styles.tab))
        .render(area, buf);
    let inner = Block::bordered().inner(area);
    if inner.width < 10 || inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let title_w = list
        .iter()
        .map(|d| d.title.chars().count())
        .max()
        .unwrap_or(0)
        .min(w / 2);
    let skip = list.len().saturating_sub(inner.height as usize);
    for (k, d) in list.iter().skip(skip).enumerate() {
        let (mark, st) = if d.ok {
            ("✔", styles.ok)
        } else {
            ("✘", styles.fail)
        };
        let title = fit(&d.title, title_w);
        let reason = fit(&d.reason, w.saturating_sub(title_w + 4));
        let line = Line::from(vec![
            Span::styled(format!("{mark} "), st),
            Span::styled(
                format!("{title:<title_w$}  "),
                if d.ok { styles.emphasis } else { styles.fail },
            ),
            Span::styled(reason, if d.ok { styles.dim } else { styles.fail }),
        ]);
        buf.set_line(inner.x, inner.y + k as u16, &line, inner.width);
    }
    if list.is_empty() {
        buf.set_string(inner.x, inner.y, fit("No verdicts yet.", w), styles.dim);
    }
}
