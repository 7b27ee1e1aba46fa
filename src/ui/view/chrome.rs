//! Title bar, narration, footer, the right pane's tabs, the help overlay and the "terminal too
//! small" message.

use super::{fit, wrap, MIN_HEIGHT, MIN_WIDTH};
use crate::trace::Trace;
use crate::ui::app::{AppState, Overlay, Pane};
use crate::ui::keys;
use crate::ui::narrate;
use crate::ui::steps;
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

/// The title bar: where we are in the tour, and how the session ended.
pub fn title(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    let n = state.steps.len();
    let failing = state.current().is_some_and(|s| steps::is_failure(trace, s));
    let style = if failing {
        styles.title_fail
    } else {
        styles.title
    };
    buf.set_style(area, style);
    let (phase, what) = match state.current() {
        Some(s) => (s.phase(trace).title(), step_name(trace, s)),
        None => ("no events", String::new()),
    };
    let left = if n == 0 {
        " iotls — no steps — the session recorded nothing".to_string()
    } else {
        format!(" iotls — step {}/{n} — {phase}: {what}", state.step + 1)
    };
    // Predict before you see: the ending shows at the last step, or at once for a session
    // replayed from a file; before that, only that it will.
    let outcome = if !outcome_shown(state) {
        None
    } else if trace.outcome.ok {
        Some("✔ session ok".to_string())
    } else {
        Some(match &trace.outcome.failure {
            Some(f) => format!("✘ failed: {}", f.code.as_str()),
            None => "✘ session failed".to_string(),
        })
    };
    let run = if state.run > 1 {
        format!(" · run #{}", state.run)
    } else {
        String::new()
    };
    let w = area.width as usize;
    let fits = |right: &str| left.chars().count() + right.chars().count() + 2 <= w;
    let candidates = match outcome {
        Some(o) => vec![format!("{}{run} · {o} ", trace.scenario), format!("{o} ")],
        None if state.live.as_ref().is_some_and(|l| l.running) => vec![
            format!(
                "{}{run} · live: → at the last step sends the next flight ",
                trace.scenario
            ),
            format!("{}{run} · live ", trace.scenario),
            "live ".to_string(),
        ],
        None => vec![
            format!("{}{run} · outcome at the end ", trace.scenario),
            format!("{}{run} ", trace.scenario),
        ],
    };
    match candidates.into_iter().find(|r| fits(r)) {
        Some(right) => {
            buf.set_string(area.x, area.y, &left, style);
            let right_w = right.chars().count() as u16;
            buf.set_string(area.right() - right_w, area.y, &right, style);
        }
        None => {
            buf.set_string(area.x, area.y, fit(&left, w), style);
        }
    }
}

/// Whether the title shows how the session ended: at the last step, or from the start when the
/// session is replayed from a file.
pub fn outcome_shown(state: &AppState) -> bool {
    let running = state.live.as_ref().is_some_and(|l| l.running);
    !running && (state.opts.replayed || state.step + 1 >= state.steps.len())
}

/// A short name for a step: the message, packet or check.
pub fn step_name(trace: &Trace, step: &steps::Step) -> String {
    match steps::shape(trace, step) {
        steps::Shape::Arrow { label, from, .. } => {
            format!("{label} ({} → {})", from.name(), from.peer().name())
        }
        steps::Shape::Note { label, ok, side } => {
            let mark = match ok {
                Some(true) => " ✔",
                Some(false) => " ✘",
                None => "",
            };
            format!("{label}{mark} ({})", side.name())
        }
        steps::Shape::Span { label, .. } => label,
    }
}

/// The narration of the current step.
pub fn narration(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    let failing = state.current().is_some_and(|s| steps::is_failure(trace, s));
    let border = if failing { styles.fail } else { styles.border };
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(border)
        .title(Span::styled(
            " What is happening ",
            if failing { styles.fail } else { styles.phase },
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    let mut text = match state.current() {
        Some(s) => narrate::step_so_far(trace, s.event, s.packet),
        None => narrate::step(trace, 0, None),
    };
    // A live session's last step: what happens next, and who holds which bytes, first.
    if let Some(live) = &state.live {
        if state.step + 1 >= state.steps.len() {
            text = format!("{}\n{text}", live.text);
        }
    }
    let width = inner.width.saturating_sub(2) as usize;
    let lines = wrap(&text, width);
    let n = lines.len();
    for (k, l) in lines.into_iter().take(inner.height as usize).enumerate() {
        let l = if k + 1 == inner.height as usize && n > inner.height as usize {
            fit(&format!("{l} …"), width)
        } else {
            l
        };
        buf.set_string(inner.x + 1, inner.y + k as u16, l, styles.base);
    }
}

/// The footer: the keys valid in the focused pane (or a status message first).
pub fn footer(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    let w = area.width as usize;
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0usize;
    if let Some(status) = &state.status {
        let s = fit(&format!(" {status} "), w / 2);
        used += s.chars().count();
        spans.push(Span::styled(s, styles.warn));
    }
    let hints = keys::footer_hints(trace, state);
    let cost = |(l, d): &(&str, &str)| l.chars().count() + d.chars().count() + 1;
    let is_essential = |(l, _): &(&str, &str)| *l == "?" || *l == "q";
    // Two spaces between hints when everything fits, else one; "? help" and "q quit" always stay.
    let all: usize = hints.iter().map(cost).sum();
    let gap = if used + all + 2 * hints.len() <= w {
        2
    } else {
        1
    };
    let essential: usize = hints
        .iter()
        .filter(|h| is_essential(h))
        .map(|h| cost(h) + gap)
        .sum();
    let mut budget = w.saturating_sub(used + essential);
    for h in &hints {
        if !is_essential(h) {
            if cost(h) + gap > budget {
                continue;
            }
            budget -= cost(h) + gap;
        }
        spans.push(Span::raw(" ".repeat(gap)));
        spans.push(Span::styled(h.0.to_string(), styles.key));
        spans.push(Span::styled(format!(" {}", h.1), styles.key_desc));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

/// The tabs of the right pane: (pane, first column, last column + 1) on the block's top border.
pub fn tabs(area: Rect) -> Vec<(Pane, u16, u16)> {
    let mut x = area.x + 2;
    let mut out = Vec::new();
    for p in [Pane::Detail, Pane::Certificates, Pane::Decisions] {
        let w = p.title().chars().count() as u16 + 2;
        if x + w >= area.right() {
            break;
        }
        out.push((p, x, x + w));
        x += w + 1;
    }
    out
}

/// The tab under column `x` of the right pane's top border.
pub fn tab_at(area: Rect, x: u16) -> Option<Pane> {
    tabs(area)
        .into_iter()
        .find(|(_, a, b)| x >= *a && x < *b)
        .map(|(p, _, _)| p)
}

/// The right pane's border with its tabs; the shown tab is highlighted.
pub fn tabbed_block(buf: &mut Buffer, area: Rect, state: &AppState, focus: bool, styles: &Styles) {
    Block::bordered()
        .border_style(if focus {
            styles.border_focus
        } else {
            styles.border
        })
        .render(area, buf);
    for (p, x, end) in tabs(area) {
        let st = if p == state.right {
            styles.tab_active
        } else {
            styles.tab
        };
        buf.set_stringn(
            x,
            area.y,
            format!(" {} ", p.title()),
            (end - x) as usize,
            st,
        );
        if end < area.right() - 1 {
            buf.set_string(end, area.y, "│", styles.border);
        }
    }
    if state.right == Pane::Detail && state.hex_expanded {
        let label = " hex ";
        let x = area.right().saturating_sub(label.len() as u16 + 2);
        buf.set_string(x, area.y, label, styles.tab_active);
    }
}

/// The lines of an overlay. Each is one line at every width (cut with `…` below 80 columns), so
/// how far an overlay scrolls depends only on the screen's height.
pub fn overlay_lines(
    overlay: Overlay,
    state: &AppState,
    styles: &Styles,
    width: usize,
) -> Vec<Line<'static>> {
    match overlay {
        Overlay::Help => help_lines(styles),
        Overlay::Glossary => glossary_lines(styles),
        Overlay::BreakIt => break_lines(state, styles, width),
        Overlay::Compare => compare_lines(state, styles, width),
    }
}

/// Text wrapped to the overlay's width, each line indented by `indent` and one column of margin.
fn wrapped(text: &str, width: usize, indent: usize, style: Style) -> Vec<Line<'static>> {
    super::wrap(text, width.saturating_sub(indent + 1))
        .into_iter()
        .map(|l| Line::styled(format!(" {:indent$}{l}", ""), style))
        .collect()
}

/// The break-it menu: each swap the lesson offers, numbered, with its `--set`s.
fn break_lines(state: &AppState, styles: &Styles, width: usize) -> Vec<Line<'static>> {
    if state.swaps.is_empty() {
        return wrapped(&state.no_swaps, width, 0, styles.base);
    }
    let mut lines = wrapped(
        "Swap one thing and run the lesson again, for real; then see what changed:",
        width,
        0,
        styles.phase,
    );
    for (i, s) in state.swaps.iter().enumerate() {
        let mut first = wrapped(&s.label, width, 3, styles.base);
        if let Some(l) = first.first_mut() {
            *l = Line::from(vec![
                Span::styled(format!(" {}) ", i + 1), styles.key),
                Span::styled(
                    l.spans
                        .iter()
                        .map(|x| x.content.trim_start().to_string())
                        .collect::<String>(),
                    styles.base,
                ),
            ]);
        }
        lines.extend(first);
        lines.extend(wrapped(&s.command, width, 3, styles.dim));
    }
    lines
}

/// The comparison after a break-it run: the swap, the first step that differs, both outcomes.
fn compare_lines(state: &AppState, styles: &Styles, width: usize) -> Vec<Line<'static>> {
    let Some(c) = &state.comparison else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for l in c.lines() {
        let heading = !l.starts_with(' ') && !l.is_empty();
        let style = if heading { styles.phase } else { styles.base };
        if l.is_empty() {
            lines.push(Line::raw(""));
        } else {
            let indent = l.len() - l.trim_start().len();
            lines.extend(wrapped(l.trim_start(), width, indent, style));
        }
    }
    lines
}

fn help_lines(styles: &Styles) -> Vec<Line<'static>> {
    let entries = keys::help_entries();
    let key_w = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(13);
    let line = |k: &str, d: &str, ks, ds| {
        Line::from(vec![
            Span::styled(format!(" {k:<key_w$}  "), ks),
            Span::styled(d.to_string(), ds),
        ])
    };
    let mut lines = vec![Line::styled(" Keys", styles.phase)];
    lines.extend(
        entries
            .iter()
            .map(|(k, d)| line(k, d, styles.key, styles.key_desc)),
    );
    lines.push(line(
        "mouse",
        "click a step, a field or a byte; the wheel scrolls",
        styles.key,
        styles.key_desc,
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled(" Reading the diagram", styles.phase));
    let legend: &[(&str, &str)] = &[
        ("├─ name ──▶┤", "a message in the clear"),
        ("╞═ name ══▶╡", "an encrypted record"),
        ("│ ✔ check  │", "a verdict on that side (✘ failed)"),
        ("│ ? check  │", "a verdict still ahead: step on to see it"),
        ("│ ◆ note   │", "something that side did"),
    ];
    lines.extend(
        legend
            .iter()
            .map(|(k, d)| line(k, d, styles.dim, styles.base)),
    );
    lines
}

fn glossary_lines(styles: &Styles) -> Vec<Line<'static>> {
    let term_w = narrate::GLOSSARY
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    narrate::GLOSSARY
        .iter()
        .map(|(t, d)| {
            Line::from(vec![
                Span::styled(format!(" {t:<term_w$} "), styles.key),
                Span::styled(d.to_string(), styles.base),
            ])
        })
        .collect()
}

/// Where an overlay of `lines` lines goes on a screen: centred, 78 columns wide at 80, as tall as
/// its lines or the screen allows.
pub fn overlay_area(area: Rect, lines: usize) -> Rect {
    let w = area.width.saturating_sub(2).min(84);
    let h = (lines as u16)
        .saturating_add(2)
        .min(area.height.saturating_sub(2));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// How far the open overlay can scroll on a screen of this size (0 when it all fits).
pub fn overlay_max_scroll(state: &AppState, screen: Rect) -> u16 {
    let Some(overlay) = state.overlay else {
        return 0;
    };
    let width = overlay_area(screen, 0).width.saturating_sub(2) as usize;
    let n = overlay_lines(overlay, state, &Styles::new(state.opts), width).len();
    let r = overlay_area(screen, n);
    n.saturating_sub(r.height.saturating_sub(2) as usize) as u16
}

/// Draw the open overlay: the help (every key from the key table, and how to read the diagram)
/// or the glossary; ↑↓ scroll it when it is taller than the screen.
pub fn overlay(buf: &mut Buffer, area: Rect, state: &AppState, styles: &Styles) {
    let Some(overlay) = state.overlay else {
        return;
    };
    let width = overlay_area(area, 0).width.saturating_sub(2) as usize;
    let lines = overlay_lines(overlay, state, styles, width);
    let r = overlay_area(area, lines.len());
    if r.width < 10 || r.height < 3 {
        return;
    }
    let max = overlay_max_scroll(state, area) as usize;
    let scroll = (state.overlay_scroll as usize).min(max);
    let name = match overlay {
        Overlay::Help => "Help",
        Overlay::Glossary => "Glossary",
        Overlay::BreakIt => "Break it",
        Overlay::Compare => "What changed",
    };
    let scroll_hint = if max > 0 { ", ↑↓ scroll" } else { "" };
    let title = if overlay == Overlay::BreakIt && !state.swaps.is_empty() {
        format!(
            " {name} — 1–{} picks a swap{scroll_hint}, Esc closes ",
            state.swaps.len()
        )
    } else if overlay == Overlay::Compare {
        format!(" {name}{scroll_hint} — other keys: browse the new run, q quits ")
    } else if max > 0 {
        format!(" {name} — ↑↓ scroll, q quits, other keys close ")
    } else {
        format!(" {name} — q quits, other keys close ")
    };
    Clear.render(r, buf);
    let block = Block::bordered()
        .border_style(styles.border_focus)
        .title(Span::styled(
            fit(&title, r.width.saturating_sub(2) as usize),
            styles.tab_active,
        ));
    let inner = block.inner(r);
    block.render(r, buf);
    buf.set_style(inner, styles.base);
    let w = inner.width as usize;
    for (k, l) in lines
        .iter()
        .skip(scroll)
        .take(inner.height as usize)
        .enumerate()
    {
        // Cut a line that is wider than the overlay, with `…`.
        let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
        if text.chars().count() > w {
            let mut left = w.saturating_sub(1);
            let mut spans = Vec::new();
            for s in &l.spans {
                let n = s.content.chars().count();
                if n <= left {
                    spans.push(s.clone());
                    left -= n;
                } else {
                    let cut: String = s.content.chars().take(left).collect();
                    spans.push(Span::styled(format!("{cut}…"), s.style));
                    break;
                }
            }
            buf.set_line(inner.x, inner.y + k as u16, &Line::from(spans), inner.width);
        } else {
            buf.set_line(inner.x, inner.y + k as u16, l, inner.width);
        }
    }
    let right = r.right().saturating_sub(2);
    if scroll > 0 {
        buf.set_string(right, r.y, "▲", styles.tab_active);
    }
    if scroll < max {
        let more = format!(" ▼ {} more ", max - scroll);
        let x = r.right().saturating_sub(more.chars().count() as u16 + 1);
        buf.set_string(x, r.bottom() - 1, more, styles.tab_active);
    }
}

/// Shown instead of the UI when the terminal is smaller than the layout needs.
pub fn too_small(buf: &mut Buffer, area: Rect, styles: &Styles) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let text = format!(
        "Terminal too small: {}×{}. iotls needs at least {MIN_WIDTH}×{MIN_HEIGHT}. Enlarge the window, or press q to quit.",
        area.width, area.height
    );
    let lines = wrap(&text, area.width as usize);
    let top = area.y + area.height.saturating_sub(lines.len() as u16) / 2;
    for (k, l) in lines.iter().enumerate() {
        let y = top + k as u16;
        if y >= area.bottom() {
            break;
        }
        let x = area.x + (area.width.saturating_sub(l.chars().count() as u16)) / 2;
        buf.set_stringn(x, y, l, area.width as usize, styles.warn);
    }
}
