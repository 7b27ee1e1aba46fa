//! The detail pane: the current step's decoded fields with what each means, and a hex view in
//! which the bytes of the selected field are highlighted (with this run's real bytes). An
//! encrypted record is shown decrypted, or as it was sent (`e`): header, nonce, ciphertext, tag.
//! For checks: the verdict, its facts and, when it failed, cause and fix.

use super::{fit, scroll_offset, wrap};
use crate::narrate::calc;
use crate::trace::{AlertLevel, EventKind, Trace};
use crate::ui::app::{AppState, Pane};
use crate::ui::model;
pub use crate::ui::model::{
    bytes, calc_of, field_at, record_as_sent, record_rows, rows, span_marks, DetailRow,
};
use crate::ui::narrate;
use crate::ui::steps::{self, Step};
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;
use std::borrow::Cow;

/// The name of the message or packet a step shows, for field meanings.
fn context_name(trace: &Trace, step: &Step) -> String {
    if let Some(p) = step.packet(trace) {
        return p.packet.name().to_string();
    }
    match step.event(trace).map(|e| &e.kind) {
        Some(EventKind::Handshake { msg, .. }) => msg.name(),
        _ => String::new(),
    }
}

/// One line saying what the step is and where it travelled (`sent`: the record is shown as sent).
fn heading(trace: &Trace, step: &Step, sent: bool, styles: &Styles) -> Vec<Line<'static>> {
    let Some(e) = step.event(trace) else {
        return vec![Line::raw("(no step)")];
    };
    let dir = format!("{} → {}", e.side.name(), e.side.peer().name());
    let mut out = Vec::new();
    match &e.kind {
        EventKind::Handshake {
            msg,
            hex,
            record,
            encrypted,
            ciphertext,
            ..
        } => {
            out.push(Line::from(vec![
                Span::styled(msg.name(), styles.emphasis),
                Span::styled(
                    format!(" · {dir} · {} bytes · record {record}", hex.len()),
                    styles.dim,
                ),
            ]));
            if *encrypted {
                let n = ciphertext.as_ref().map(Vec::len).unwrap_or(0);
                out.push(Line::styled(
                    format!("encrypted on the wire ({n} bytes); {}", shown_as(sent)),
                    styles.dim,
                ));
            }
        }
        EventKind::AppData {
            ciphertext, record, ..
        } => {
            let what = step
                .packet(trace)
                .map(|p| format!("MQTT {}", p.packet))
                .unwrap_or("Application data".into());
            out.push(Line::from(vec![
                Span::styled(what, styles.emphasis),
                Span::styled(format!(" · {dir} · record {record}"), styles.dim),
            ]));
            out.push(Line::styled(
                format!(
                    "inside a {}-byte encrypted record; {}",
                    ciphertext.len(),
                    shown_as(sent)
                ),
                styles.dim,
            ));
        }
        EventKind::Check {
            check,
            ok,
            reason,
            about,
            ..
        } => {
            let (mark, st) = if *ok {
                ("✔", styles.ok)
            } else {
                ("✘", styles.fail)
            };
            let about = about
                .as_ref()
                .map(|a| format!(" · about {a}"))
                .unwrap_or_default();
            let by = if e.side == crate::trace::Side::Iotls {
                " · iotls's own check".to_string()
            } else {
                format!(" · checked by the {}", e.side.name())
            };
            out.push(Line::from(vec![
                Span::styled(format!("{mark} {check}"), st),
                Span::styled(format!("{by}{about}"), styles.dim),
            ]));
            // A calculation's rows say what was checked, and its verdict row who decided; the
            // narration below tells the reason.
            if calc_of(trace, step).is_none() {
                out.push(Line::styled(
                    reason.clone(),
                    if *ok { styles.value } else { styles.fail },
                ));
            }
        }
        EventKind::Policy(p) => {
            let (mark, st) = if p.decision.allowed() {
                ("✔", styles.ok)
            } else {
                ("✘", styles.fail)
            };
            out.push(Line::from(vec![
                Span::styled(format!("{mark} {} {}", p.action, p.decision), st),
                Span::styled(" · policy decision of the broker", styles.dim),
            ]));
        }
        EventKind::ChangeCipherSpec { record, .. } => out.push(Line::from(vec![
            Span::styled("ChangeCipherSpec", styles.emphasis),
            Span::styled(format!(" · {dir} · record {record}"), styles.dim),
        ])),
        EventKind::Alert {
            level,
            description,
            encrypted,
            hex,
            ..
        } => {
            out.push(Line::from(vec![
                Span::styled(
                    format!("Alert: {description}"),
                    if *level == AlertLevel::FATAL {
                        styles.fail
                    } else {
                        styles.emphasis
                    },
                ),
                Span::styled(format!(" · {} · {dir}", level.name()), styles.dim),
            ]));
            if *encrypted {
                out.push(Line::styled(
                    format!(
                        "encrypted on the wire ({} bytes); {}",
                        hex.len(),
                        shown_as(sent)
                    ),
                    styles.dim,
                ));
            }
        }
        EventKind::Secret { .. } => out.push(Line::from(vec![
            Span::styled("Master secret", styles.emphasis),
            Span::styled(" · exported by rustls's key log, never sent", styles.dim),
        ])),
        EventKind::KeySchedule(_) => out.push(Line::from(vec![
            Span::styled("Key schedule", styles.emphasis),
            Span::styled(" · iotls's own calculation", styles.dim),
        ])),
        EventKind::Tcp { .. } => out.push(Line::styled("TCP connection", styles.emphasis)),
        EventKind::Closed { .. } => out.push(Line::styled("Connection closed", styles.emphasis)),
        EventKind::Error { stage, .. } => out.push(Line::styled(
            format!("✘ Error during the {}", stage.title()),
            styles.fail,
        )),
        EventKind::Undecodable { .. } => {
            out.push(Line::styled(format!("Not TLS · {dir}"), styles.fail))
        }
        EventKind::Gap { .. } => out.push(Line::styled("Records not kept", styles.emphasis)),
        EventKind::Witness { device, .. } => out.push(Line::from(vec![
            Span::styled(format!("Witness {device}"), styles.emphasis),
            Span::styled(
                " · another device, on its own connection to the same broker",
                styles.dim,
            ),
        ])),
        EventKind::Operation(o) => {
            out.push(Line::from(vec![
                Span::styled(o.op.name().to_string(), styles.emphasis),
                Span::styled(
                    format!(" · by the {} · {}", o.actor.name(), o.library),
                    styles.dim,
                ),
            ]));
            match &o.verdict {
                Some(v) => {
                    let (mark, st) = if v.ok {
                        ("✔", styles.ok)
                    } else {
                        ("✘", styles.fail)
                    };
                    let expected = if o.as_expected() {
                        "as the lesson expects"
                    } else {
                        "NOT as the lesson expects"
                    };
                    out.push(Line::styled(
                        format!("{mark} {} ({expected})", v.reason),
                        st,
                    ));
                }
                None => out.push(Line::styled(o.summary.clone(), styles.value)),
            }
        }
    }
    // A calculation names the reproduce.sh check that redoes it (its `redo` row has the whole
    // command).
    if let Some(c) = calc_of(trace, step) {
        out.push(Line::styled(
            format!("redo: sh DIR/reproduce.sh {}", c.check),
            styles.dim,
        ));
    }
    out
}

/// How an encrypted step's bytes are shown, and the key that shows the other way.
fn shown_as(sent: bool) -> &'static str {
    if sent {
        "shown as sent (e: decrypted)"
    } else {
        "shown decrypted (e: as sent)"
    }
}

/// Geometry of the detail pane, shared with the mouse mapping. From the top: heading, field
/// list, note (what the selected field means, or its full value), hex caption and hex rows,
/// failure help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailGeometry {
    pub inner: Rect,
    pub list: Rect,
    pub list_offset: usize,
    pub note: Rect,
    /// The hex rows (the caption is the row above) and the first visible hex row.
    pub hex: Rect,
    pub hex_offset: usize,
    pub bytes_per_row: usize,
    /// Right of the hex rows, for a calculation's bytes: the name of each span that starts on
    /// the row.
    pub marks: Rect,
    pub help: Rect,
}

pub fn geometry(area: Rect, trace: &Trace, state: &AppState) -> DetailGeometry {
    let inner = Block::bordered().inner(area);
    let empty = Rect { height: 0, ..inner };
    let bpr = bytes_per_row(inner.width);
    let mut g = DetailGeometry {
        inner,
        list: empty,
        list_offset: 0,
        note: empty,
        hex: empty,
        hex_offset: 0,
        bytes_per_row: bpr,
        marks: empty,
        help: empty,
    };
    let Some(step) = state.current() else {
        return g;
    };
    let sent = showing_sent(trace, state, step);
    let head_h = heading_lines(
        trace,
        step,
        sent,
        inner.width,
        &Styles::new(Default::default()),
    )
    .len() as u16
        + lesson_lines(state, step, inner.width, &Styles::new(Default::default())).len() as u16;
    let body = Rect {
        y: inner.y + head_h.min(inner.height),
        height: inner.height.saturating_sub(head_h),
        ..inner
    };
    let rows = shown_rows(trace, state, step);
    let data = shown_bytes(trace, state, step);
    // A failure's alert, cause and fix come first; the facts get what is left.
    let help_h =
        (help_lines(trace, step, inner.width).len() as u16).min(body.height.saturating_sub(2));
    let avail = body.height.saturating_sub(help_h);
    let full = full_note(trace, step, sent, rows.get(state.field));
    let (list_h, note_h, hex_h) = match &data {
        Some(d) => {
            let hex_total = d.len().div_ceil(bpr) as u16;
            if state.hex_expanded {
                (0, 0, avail.saturating_sub(1).min(hex_total))
            } else if full {
                // The selected value in full (a hash, a key, a command) under a shorter list.
                let room = avail.saturating_sub(1);
                let lines = |room| {
                    note_lines(
                        trace,
                        step,
                        sent,
                        rows.get(state.field),
                        inner.width,
                        true,
                        room,
                    )
                    .len() as u16
                };
                let keep = hex_total.min(3) + (rows.len() as u16).min(3);
                let most = room.saturating_sub(keep).max(1.min(room));
                // The value, and what it means when both fit.
                let note_h = lines(most as usize).min(most);
                let room = room - note_h;
                let hex_min = hex_total.min((room * 2 / 5).max(3)).min(room);
                let list_h = (rows.len() as u16).min(room - hex_min);
                (list_h, note_h, (room - list_h).min(hex_total))
            } else {
                let room = avail.saturating_sub(2 + 1);
                let hex_min = hex_total.min((room * 2 / 5).max(3)).min(room);
                let list_h = (rows.len() as u16).min(room - hex_min);
                (list_h, 2.min(avail), (room - list_h).min(hex_total))
            }
        }
        None => {
            let note_h = (note_lines(
                trace,
                step,
                sent,
                rows.get(state.field),
                inner.width,
                false,
                usize::MAX,
            )
            .len() as u16)
                .min(avail / 2);
            let list_h = (rows.len() as u16).min(avail - note_h);
            (list_h, note_h, 0)
        }
    };
    let mut y = body.y;
    g.list = Rect {
        y,
        height: list_h,
        ..body
    };
    y += list_h;
    g.note = Rect {
        y,
        height: note_h,
        ..body
    };
    y += note_h;
    if data.is_some() && avail > list_h + note_h {
        y += 1; // caption
        g.hex = Rect {
            y,
            height: hex_h,
            ..body
        };
        y += hex_h;
    }
    g.help = Rect {
        y: y.min(inner.bottom()),
        height: help_h.min(inner.bottom().saturating_sub(y)),
        ..body
    };
    // A calculation's spans are named beside the hex rows, where the ASCII column would be.
    if g.hex.height > 0 && !span_marks(trace, step).is_empty() {
        let hex_w = (6 + bpr * 3) as u16;
        if g.hex.width >= hex_w + 6 {
            g.marks = Rect {
                x: g.hex.x + hex_w,
                width: g.hex.width - hex_w,
                ..g.hex
            };
            g.hex.width = hex_w;
        }
    }
    g.list_offset = scroll_offset(state.field, list_h as usize, rows.len());
    if let (Some(d), Some((off, _))) = (&data, rows.get(state.field).and_then(|r| r.range)) {
        g.hex_offset = scroll_offset(off / bpr, g.hex.height as usize, d.len().div_ceil(bpr));
    }
    g
}

fn bytes_per_row(width: u16) -> usize {
    // offset (4) + 2 + 3 per byte, then the ASCII column (2 + n) when it fits.
    if width >= 8 + 16 * 4 {
        16
    } else if width >= 6 + 8 * 3 {
        8
    } else {
        4
    }
}

/// The heading, fitted to the width: a long first line loses the end of its dim part; a long
/// single-span line (a check's reason) wraps over at most three lines.
/// The lesson's emphasis at this step (its first packet, for a record carrying several), marked »
/// and wrapped to the pane.
fn lesson_lines(state: &AppState, step: &Step, width: u16, styles: &Styles) -> Vec<Line<'static>> {
    if step.packet.unwrap_or(0) != 0 {
        return Vec::new();
    }
    let w = (width as usize).saturating_sub(2).max(10);
    let mut out = Vec::new();
    for (_, say) in state.notes.iter().filter(|(i, _)| *i == step.event) {
        let text = say.split_whitespace().collect::<Vec<_>>().join(" ");
        for (k, l) in wrap(&text, w).into_iter().enumerate() {
            let mark = if k == 0 { "» " } else { "  " };
            out.push(Line::styled(format!("{mark}{l}"), styles.title));
        }
    }
    out
}

fn heading_lines(
    trace: &Trace,
    step: &Step,
    sent: bool,
    width: u16,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let w = width as usize;
    let mut out = Vec::new();
    for line in heading(trace, step, sent, styles) {
        if line.width() <= w {
            out.push(line);
        } else if line.spans.len() > 1 {
            let first = line.spans[0].clone();
            let rest: String = line.spans[1..].iter().map(|s| s.content.as_ref()).collect();
            let rest_style = line.spans[1].style;
            let room = w.saturating_sub(first.width());
            out.push(Line::from(vec![
                first,
                Span::styled(fit(&rest, room), rest_style),
            ]));
        } else {
            let style = line
                .style
                .patch(line.spans.first().map(|s| s.style).unwrap_or_default());
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            let wrapped = wrap(&text, w);
            let n = wrapped.len();
            for (i, l) in wrapped.into_iter().take(3).enumerate() {
                let l = if i == 2 && n > 3 {
                    fit(&format!("{l} …"), w)
                } else {
                    l
                };
                out.push(Line::styled(l, style));
            }
        }
    }
    out
}

/// The note under the list: with bytes, what the selected field means; without, the selected
/// row's full value (long hex values shortened) and its meaning.
fn note_lines(
    trace: &Trace,
    step: &Step,
    sent: bool,
    row: Option<&DetailRow>,
    width: u16,
    has_bytes: bool,
    room: usize,
) -> Vec<String> {
    let Some(r) = row else {
        return Vec::new();
    };
    let meaning = if calc_of(trace, step).is_some() || (sent && r.range.is_none()) {
        calc::meaning(&r.name).map(Cow::Borrowed)
    } else if sent {
        narrate::record_field_meaning(&r.name).map(Cow::Borrowed)
    } else {
        narrate::field_meaning(&trace.words, &context_name(trace, step), &r.name)
    };
    let meaning = meaning.as_deref();
    let w = width as usize;
    if has_bytes && full_note(trace, step, sent, Some(r)) {
        // The value in full; what it means too, when there is room for all of it.
        let mut lines = wrap(&format!("{} = {}", r.name.trim(), r.value), w);
        if let Some(m) = meaning {
            let m = wrap(m, w);
            if lines.len() + m.len() <= room {
                lines.extend(m);
            }
        }
        return lines;
    }
    if has_bytes {
        let text = match meaning {
            Some(m) => format!("{}: {m}", r.name.trim()),
            None => r.name.trim().to_string(),
        };
        return wrap(&text, w).into_iter().take(2).collect();
    }
    let value = if r.value.len() > 200 && r.value.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("{}… ({} bytes)", &r.value[..128], r.value.len() / 2)
    } else {
        r.value.clone()
    };
    let mut text = format!("{} = {value}", r.name.trim());
    if let Some(m) = meaning {
        text.push_str(&format!("\n{m}"));
    }
    wrap(&text, w).into_iter().take(6).collect()
}

/// Whether the note shows the selected row's value in full: on a calculation, and for the
/// parts of a record as sent that are not bytes of it (the nonce, the additional data, the
/// command), whose values do not fit the list.
fn full_note(trace: &Trace, step: &Step, sent: bool, row: Option<&DetailRow>) -> bool {
    calc_of(trace, step).is_some() || (sent && row.is_some_and(|r| r.range.is_none()))
}

/// Failure help: the alert sent, the cause and the fix (text, is the alert line).
fn help_lines(trace: &Trace, step: &Step, width: u16) -> Vec<(String, bool)> {
    let Some(e) = step.event(trace) else {
        return Vec::new();
    };
    if !steps::is_failure(trace, step) {
        return Vec::new();
    }
    let failure = match &e.kind {
        EventKind::Check { .. } | EventKind::Policy(_) => narrate::failure_at(trace, step.event),
        EventKind::Error { failure, .. } => failure.as_deref().cloned(),
        _ => None,
    };
    let Some(failure) = failure else {
        return Vec::new();
    };
    let help = narrate::failure_help(&failure);
    let w = width as usize;
    let mut out = vec![("─".repeat(w), false)];
    if let Some(a) = &help.alert {
        let text = format!("Alert sent: {a} — {}", alert_gloss(a));
        out.extend(wrap(&text, w).into_iter().map(|l| (l, true)));
    }
    out.extend(
        wrap(&format!("Cause: {}", help.cause), w)
            .into_iter()
            .map(|l| (l, false)),
    );
    out.extend(
        wrap(&format!("Fix: {}", help.fix), w)
            .into_iter()
            .map(|l| (l, false)),
    );
    out
}

fn alert_gloss(alert: &str) -> &'static str {
    let name = alert.split_whitespace().next().unwrap_or("");
    let code = (0..=u8::MAX).find(|c| crate::trace::AlertDescription(*c).name() == name);
    code.map(|c| narrate::alert_meaning(crate::trace::AlertDescription(c)))
        .unwrap_or("an error the peer reported")
}

pub fn render(buf: &mut Buffer, area: Rect, trace: &Trace, state: &AppState, styles: &Styles) {
    let focus = state.focus == Pane::Detail;
    super::chrome::tabbed_block(buf, area, state, focus, styles);
    let g = geometry(area, trace, state);
    let inner = g.inner;
    if inner.width < 10 || inner.height < 3 {
        return;
    }
    let Some(step) = state.current() else {
        buf.set_string(inner.x, inner.y, "(no events recorded)", styles.dim);
        return;
    };
    let sent = showing_sent(trace, state, step);
    let mut head = heading_lines(trace, step, sent, inner.width, styles);
    head.extend(lesson_lines(state, step, inner.width, styles));
    for (k, line) in head.iter().enumerate() {
        if inner.y + (k as u16) < inner.bottom() {
            buf.set_line(inner.x, inner.y + k as u16, line, inner.width);
        }
    }
    let rows = shown_rows(trace, state, step);
    // Field list.
    let name_w = rows
        .iter()
        .map(|r| r.name.chars().count() + 2 * r.depth as usize)
        .max()
        .unwrap_or(0)
        .min(inner.width as usize * 2 / 5)
        .max(6);
    let value_w = (inner.width as usize).saturating_sub(name_w + 3);
    for (i, r) in rows
        .iter()
        .enumerate()
        .skip(g.list_offset)
        .take(g.list.height as usize)
    {
        let y = g.list.y + (i - g.list_offset) as u16;
        let selected = i == state.field;
        let indent = "  ".repeat(r.depth.min(4) as usize);
        let name = fit(&format!("{indent}{}", r.name), name_w);
        let row_style = if selected {
            styles.selected
        } else {
            Style::new()
        };
        if selected {
            buf.set_style(
                Rect {
                    x: inner.x,
                    y,
                    width: inner.width,
                    height: 1,
                },
                styles.selected,
            );
        }
        let line = Line::from(vec![
            Span::styled(if selected { "▸" } else { " " }, row_style),
            Span::styled(format!("{name:<name_w$} "), row_style.patch(styles.label)),
            Span::styled(
                format!(" {}", fit(&r.value, value_w)),
                row_style.patch(styles.value),
            ),
        ]);
        buf.set_line(inner.x, y, &line, inner.width);
    }
    // Which field of how many, on the bottom border.
    if !rows.is_empty() {
        let text = format!(" field {}/{} ", state.field + 1, rows.len());
        let x = inner
            .right()
            .saturating_sub(text.chars().count() as u16 + 1);
        buf.set_string(x, inner.bottom(), text, styles.dim);
    }
    let data = shown_bytes(trace, state, step);
    for (k, l) in note_lines(
        trace,
        step,
        sent,
        rows.get(state.field),
        inner.width,
        data.is_some(),
        g.note.height as usize,
    )
    .into_iter()
    .take(g.note.height as usize)
    .enumerate()
    {
        buf.set_string(inner.x, g.note.y + k as u16, l, styles.warn);
    }
    for (k, (text, is_alert)) in help_lines(trace, step, inner.width)
        .into_iter()
        .take(g.help.height as usize)
        .enumerate()
    {
        buf.set_string(
            inner.x,
            g.help.y + k as u16,
            fit(&text, inner.width as usize),
            if is_alert { styles.fail } else { styles.warn },
        );
    }
    let Some(data) = data else { return };
    if g.hex.y > inner.y
        && g.hex.y - 1 < inner.bottom()
        && (g.hex.height > 0 || g.hex.y <= inner.bottom())
    {
        let calc_bytes = calc_of(trace, step).map(|c| match c.check {
            "server_kx_signature" | "certificate_verify" => "signed:",
            "key_block" => "key block:",
            _ => "hashed:",
        });
        // A calculation's caption is short, so the selected span's name and bytes fit.
        let bytes_word = if calc_bytes.is_some() { "" } else { "bytes " };
        let sel = rows
            .get(state.field)
            .and_then(|r| {
                r.range.map(|(o, l)| {
                    format!("{}: {bytes_word}{o}–{} ", r.name.trim(), o + l.max(1) - 1)
                })
            })
            .unwrap_or_default();
        // The hex view's title: decrypted or as sent, for an encrypted record.
        let what = if let Some(w) = calc_bytes {
            w
        } else if sent {
            "as sent, encrypted:"
        } else if record_as_sent(trace, step).is_some() {
            "decrypted:"
        } else {
            "hex,"
        };
        let cap = format!("── {what} {} bytes ── {sel}", data.len());
        let pad = (inner.width as usize).saturating_sub(cap.chars().count());
        let cap = fit(&format!("{cap}{}", "─".repeat(pad)), inner.width as usize);
        buf.set_string(inner.x, g.hex.y - 1, cap, styles.dim);
    }
    hex_view(buf, &g, &data, &rows, state.field, styles);
    marks_view(
        buf,
        &g,
        &span_marks(trace, step),
        &rows,
        state.field,
        styles,
    );
}

/// Beside each hex row, the spans that start on it (`◂ServerHello`), in their span's shade; the
/// selected span's name highlighted.
fn marks_view(
    buf: &mut Buffer,
    g: &DetailGeometry,
    marks: &[(usize, String)],
    rows: &[DetailRow],
    field: usize,
    styles: &Styles,
) {
    if g.marks.width == 0 {
        return;
    }
    let bpr = g.bytes_per_row;
    let sel = rows.get(field).and_then(|r| r.range).map(|(o, _)| o);
    for k in 0..g.marks.height as usize {
        let start = (g.hex_offset + k) * bpr;
        let here: Vec<(usize, &(usize, String))> = marks
            .iter()
            .enumerate()
            .filter(|(_, (off, _))| *off >= start && *off < start + bpr)
            .collect();
        // When the names do not all fit, the selected span's keeps its length and the others
        // share what is left.
        let width = g.marks.width as usize;
        let full = |name: &str| name.chars().count() + 2;
        let total: usize = here.iter().map(|(_, (_, n))| full(n)).sum();
        let selected_len = here
            .iter()
            .find(|(_, (off, _))| sel == Some(*off))
            .map(|(_, (_, n))| full(n).min(width))
            .unwrap_or(0);
        let others = here.len() - usize::from(selected_len > 0);
        let share = width
            .saturating_sub(selected_len)
            .checked_div(others)
            .map_or(0, |w| w.max(3));
        let mut spans = Vec::new();
        let mut used = 0;
        for (i, (off, name)) in here {
            let room = width.saturating_sub(used);
            if room < 2 {
                break;
            }
            let want = if total <= width || sel == Some(*off) {
                full(name)
            } else {
                share
            };
            let text = fit(&format!("◂{name}"), want.min(room).saturating_sub(1)) + " ";
            used += text.chars().count();
            let st = if sel == Some(*off) {
                styles.hex_selected
            } else {
                styles.hex_alt[i % 2]
            };
            spans.push(Span::styled(text, st));
        }
        if !spans.is_empty() {
            buf.set_line(
                g.marks.x,
                g.marks.y + k as u16,
                &Line::from(spans),
                g.marks.width,
            );
        }
    }
}

fn hex_view(
    buf: &mut Buffer,
    g: &DetailGeometry,
    data: &[u8],
    rows: &[DetailRow],
    field: usize,
    styles: &Styles,
) {
    let bpr = g.bytes_per_row;
    // Which top-level field each byte belongs to (alternating shades), and the selected range.
    let mut owner: Vec<Option<usize>> = vec![None; data.len()];
    let mut top = 0usize;
    for r in rows.iter().filter(|r| r.depth == 0) {
        if let Some((o, l)) = r.range {
            for b in owner.iter_mut().skip(o).take(l) {
                *b = Some(top);
            }
            top += 1;
        }
    }
    let sel = rows.get(field).and_then(|r| r.range);
    let in_sel = |i: usize| sel.is_some_and(|(o, l)| i >= o && i < o + l);
    let ascii = g.hex.width as usize >= 8 + bpr * 4;
    for k in 0..g.hex.height as usize {
        let row = g.hex_offset + k;
        let start = row * bpr;
        if start >= data.len() {
            break;
        }
        let y = g.hex.y + k as u16;
        let mut spans = vec![Span::styled(format!("{start:04x}  "), styles.dim)];
        let end = (start + bpr).min(data.len());
        for i in start..end {
            let st = if in_sel(i) {
                styles.hex_selected
            } else {
                match owner[i] {
                    Some(t) => styles.hex_alt[t % 2],
                    None => styles.dim,
                }
            };
            spans.push(Span::styled(format!("{:02x}", data[i]), st));
            // Keep the highlight continuous between selected bytes.
            let gap_st = if in_sel(i) && in_sel(i + 1) && i + 1 < end {
                styles.hex_selected
            } else {
                Style::new()
            };
            spans.push(Span::styled(" ", gap_st));
        }
        if ascii {
            spans.push(Span::raw("   ".repeat(bpr - (end - start))));
            spans.push(Span::styled("┊", styles.dim));
            for (i, b) in data.iter().enumerate().take(end).skip(start) {
                let ch = if b.is_ascii_graphic() || *b == b' ' {
                    *b as char
                } else {
                    '·'
                };
                let st = if in_sel(i) {
                    styles.hex_selected
                } else {
                    styles.dim
                };
                spans.push(Span::styled(ch.to_string(), st));
            }
            spans.push(Span::styled("┊", styles.dim));
        }
        buf.set_line(g.hex.x, y, &Line::from(spans), g.hex.width);
    }
}

/// How the state asks the detail pane to show steps.
pub fn shown(state: &AppState) -> model::Shown {
    model::Shown {
        as_sent: state.as_sent,
        replayed: state.opts.replayed,
    }
}

/// Whether the detail pane shows the step's record as sent (`e`) rather than decrypted.
pub fn showing_sent(trace: &Trace, state: &AppState, step: &Step) -> bool {
    model::showing_sent(trace, shown(state), step)
}

/// The rows the detail pane shows for a step in the state's view.
pub fn shown_rows(trace: &Trace, state: &AppState, step: &Step) -> Vec<DetailRow> {
    model::shown_rows(trace, shown(state), step)
}

/// The bytes the hex view shows for a step in the state's view.
pub fn shown_bytes(trace: &Trace, state: &AppState, step: &Step) -> Option<Vec<u8>> {
    model::shown_bytes(trace, shown(state), step)
}
