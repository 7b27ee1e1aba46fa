//! The detail pane: the current step's decoded fields with what each means, and a hex view in
//! which the bytes of the selected field are highlighted (like The Illustrated TLS 1.2, with
//! this run's real bytes). For checks: the verdict, its facts and, when it failed, cause and fix.

use super::{fit, scroll_offset, wrap};
use crate::trace::{unhex, EventKind, Trace};
use crate::ui::app::{AppState, Pane};
use crate::ui::narrate;
use crate::ui::steps::{self, Step};
use crate::ui::theme::Styles;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

/// One selectable row of the detail pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRow {
    pub name: String,
    pub value: String,
    pub depth: u8,
    /// Bytes of this row in the hex view: (offset, length).
    pub range: Option<(usize, usize)>,
}

impl DetailRow {
    fn plain(name: &str, value: impl Into<String>) -> DetailRow {
        DetailRow {
            name: name.to_string(),
            value: value.into(),
            depth: 0,
            range: None,
        }
    }
}

/// The selectable rows of a step.
pub fn rows(trace: &Trace, step: &Step) -> Vec<DetailRow> {
    let from_fields = |fields: &[crate::trace::Field]| {
        fields
            .iter()
            .map(|f| DetailRow {
                name: f.name.clone(),
                value: f.value.clone(),
                depth: f.depth,
                range: Some((f.offset, f.len)),
            })
            .collect::<Vec<_>>()
    };
    if let Some(p) = step.packet(trace) {
        if !p.fields.is_empty() {
            return from_fields(&p.fields);
        }
        let mut v = vec![DetailRow::plain("packet", p.packet.clone())];
        let opt = [
            ("client_id", p.client_id.clone()),
            ("topic", p.topic.clone()),
            ("payload", p.payload.clone()),
            ("qos", p.qos.map(|q| q.to_string())),
            ("packet id", p.pkid.map(|q| q.to_string())),
            ("retain", p.retain.map(|q| q.to_string())),
            ("code", p.code.clone()),
        ];
        v.extend(
            opt.into_iter()
                .filter_map(|(n, val)| val.map(|val| DetailRow::plain(n, val))),
        );
        return v;
    }
    let Some(e) = step.event(trace) else {
        return Vec::new();
    };
    match &e.kind {
        EventKind::Handshake { fields, .. } => from_fields(fields),
        EventKind::Check { facts, .. } => facts
            .iter()
            .map(|f| DetailRow::plain(&f.name, f.value.clone()))
            .collect(),
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => {
            vec![
                DetailRow::plain("device", device_addr.clone()),
                DetailRow::plain("broker", broker_addr.clone()),
            ]
        }
        EventKind::ChangeCipherSpec { hex, .. } => {
            let len = hex.len() / 2;
            let mut v = vec![DetailRow {
                range: Some((0, 1.min(len))),
                ..DetailRow::plain("content type", "20 = change_cipher_spec")
            }];
            if len >= 5 {
                v.push(DetailRow {
                    range: Some((1, 2)),
                    ..DetailRow::plain("version", "3,3 = TLS 1.2")
                });
                v.push(DetailRow {
                    range: Some((3, 2)),
                    ..DetailRow::plain("length", (len - 5).to_string())
                });
                v.push(DetailRow {
                    range: Some((5, len - 5)),
                    ..DetailRow::plain("message", "1 = switch on encryption")
                });
            }
            v
        }
        EventKind::Alert {
            level,
            description,
            code,
            encrypted,
            ..
        } => vec![
            DetailRow::plain("level", level.clone()),
            DetailRow::plain("description", format!("{description} ({code})")),
            DetailRow::plain("encrypted", encrypted.to_string()),
        ],
        EventKind::AppData {
            ciphertext,
            plaintext,
            record,
            ..
        } => vec![
            DetailRow::plain("record", format!("#{record}")),
            DetailRow::plain("ciphertext", format!("{} bytes", ciphertext.len() / 2)),
            DetailRow::plain(
                "plaintext",
                plaintext
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len() / 2))
                    .unwrap_or("not decrypted".into()),
            ),
        ],
        EventKind::Undecodable { hex, reason } => {
            vec![
                DetailRow::plain("bytes", (hex.len() / 2).to_string()),
                DetailRow::plain("reason", reason.clone()),
            ]
        }
        EventKind::Secret {
            label,
            client_random,
            secret,
        } => vec![
            DetailRow::plain("label", label.clone()),
            DetailRow::plain("client_random", client_random.clone()),
            DetailRow::plain("master secret", secret.clone()),
        ],
        EventKind::Policy(p) => {
            let mut v = vec![
                DetailRow::plain("action", p.action.clone()),
                DetailRow::plain("resource", p.resource.clone()),
                DetailRow::plain("decision", p.decision.clone()),
                DetailRow::plain("enforcement", p.enforcement.clone()),
            ];
            v.extend(p.lines.iter().map(|l| DetailRow::plain("why", l.clone())));
            v
        }
        EventKind::Closed { by, reason } => vec![
            DetailRow::plain("by", by.map(|s| s.name().to_string()).unwrap_or("—".into())),
            DetailRow::plain("reason", reason.clone()),
        ],
        EventKind::Error { stage, message } => {
            vec![
                DetailRow::plain("stage", stage.clone()),
                DetailRow::plain("message", message.clone()),
            ]
        }
    }
}

/// The bytes shown in the hex view, if the step has any.
pub fn bytes(trace: &Trace, step: &Step) -> Option<Vec<u8>> {
    if let Some(p) = step.packet(trace) {
        return unhex(&p.hex);
    }
    match &step.event(trace)?.kind {
        EventKind::Handshake { hex, .. } => unhex(hex),
        EventKind::ChangeCipherSpec { hex, .. } => unhex(hex),
        EventKind::Alert { hex, .. } => unhex(hex),
        EventKind::AppData {
            ciphertext,
            plaintext,
            ..
        } => unhex(plaintext.as_ref().unwrap_or(ciphertext)),
        EventKind::Undecodable { hex, .. } => unhex(hex),
        _ => None,
    }
}

/// The name of the message or packet a step shows, for field meanings.
fn context_name(trace: &Trace, step: &Step) -> String {
    if let Some(p) = step.packet(trace) {
        return p.packet.clone();
    }
    match step.event(trace).map(|e| &e.kind) {
        Some(EventKind::Handshake { msg, .. }) => msg.clone(),
        _ => String::new(),
    }
}

/// One line saying what the step is and where it travelled.
fn heading(trace: &Trace, step: &Step, styles: &Styles) -> Vec<Line<'static>> {
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
                Span::styled(msg.clone(), styles.emphasis),
                Span::styled(
                    format!(" · {dir} · {} bytes · record {record}", hex.len() / 2),
                    styles.dim,
                ),
            ]));
            if *encrypted {
                let n = ciphertext.as_ref().map(|c| c.len() / 2).unwrap_or(0);
                out.push(Line::styled(
                    format!("encrypted on the wire ({n} bytes); shown decrypted"),
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
                    "inside a {}-byte encrypted record; shown decrypted",
                    ciphertext.len() / 2
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
            out.push(Line::from(vec![
                Span::styled(format!("{mark} {check}"), st),
                Span::styled(
                    format!(" · checked by the {}{about}", e.side.name()),
                    styles.dim,
                ),
            ]));
            out.push(Line::styled(
                reason.clone(),
                if *ok { styles.value } else { styles.fail },
            ));
        }
        EventKind::Policy(p) => {
            let (mark, st) = if p.decision == "ALLOWED" {
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
            level, description, ..
        } => out.push(Line::from(vec![
            Span::styled(
                format!("Alert: {description}"),
                if level == "fatal" {
                    styles.fail
                } else {
                    styles.emphasis
                },
            ),
            Span::styled(format!(" · {level} · {dir}"), styles.dim),
        ])),
        EventKind::Secret { .. } => out.push(Line::from(vec![
            Span::styled("Master secret", styles.emphasis),
            Span::styled(" · exported by rustls's key log, never sent", styles.dim),
        ])),
        EventKind::Tcp { .. } => out.push(Line::styled("TCP connection", styles.emphasis)),
        EventKind::Closed { .. } => out.push(Line::styled("Connection closed", styles.emphasis)),
        EventKind::Error { stage, .. } => {
            out.push(Line::styled(format!("✘ Error during {stage}"), styles.fail))
        }
        EventKind::Undecodable { .. } => {
            out.push(Line::styled(format!("Not TLS · {dir}"), styles.fail))
        }
    }
    out
}

/// Geometry of the detail pane, shared with the mouse mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailGeometry {
    pub inner: Rect,
    /// The field list and its first visible row.
    pub list: Rect,
    pub list_offset: usize,
    /// The hex rows (without the caption) and the first visible hex row.
    pub hex: Rect,
    pub hex_offset: usize,
    pub bytes_per_row: usize,
}

pub fn geometry(area: Rect, trace: &Trace, state: &AppState) -> DetailGeometry {
    let inner = Block::bordered().inner(area);
    let empty = Rect { height: 0, ..inner };
    let Some(step) = state.current() else {
        return DetailGeometry {
            inner,
            list: empty,
            list_offset: 0,
            hex: empty,
            hex_offset: 0,
            bytes_per_row: 8,
        };
    };
    let head_h = heading_height(trace, step, inner.width);
    let body = Rect {
        y: inner.y + head_h,
        height: inner.height.saturating_sub(head_h),
        ..inner
    };
    let rows = rows(trace, step);
    let data = bytes(trace, step);
    let bpr = bytes_per_row(inner.width);
    let failed = steps::is_failure(trace, step)
        && !matches!(
            step.event(trace).map(|e| &e.kind),
            Some(EventKind::Alert { .. })
        );
    let help_h: u16 = if failed {
        help_lines(trace, step, inner.width).len() as u16
    } else {
        0
    };
    let meaning_h: u16 = if data.is_some() && !state.hex_expanded {
        2
    } else {
        0
    };
    let (list_h, hex_h) = match &data {
        None => (body.height.saturating_sub(help_h), 0),
        Some(d) => {
            let hex_rows = d.len().div_ceil(bpr) as u16;
            if state.hex_expanded {
                (0, body.height.saturating_sub(1))
            } else {
                let avail = body.height.saturating_sub(meaning_h + 1);
                // Give the hex at least 40% of the room, the list what it needs of the rest.
                let want_list =
                    (rows.len() as u16).min(avail.saturating_sub(hex_rows.min(avail * 2 / 5)));
                let hex_h = avail.saturating_sub(want_list).min(hex_rows.max(1));
                (avail - hex_h, hex_h)
            }
        }
    };
    let list = Rect {
        height: list_h,
        ..body
    };
    let hex_y = body.y + list_h + meaning_h + 1;
    let hex = Rect {
        y: hex_y.min(body.bottom()),
        height: hex_h.min(body.bottom().saturating_sub(hex_y)),
        ..body
    };
    let list_offset = scroll_offset(state.field, list_h as usize, rows.len());
    let hex_offset = match (&data, rows.get(state.field).and_then(|r| r.range)) {
        (Some(d), Some((off, _))) => {
            scroll_offset(off / bpr, hex.height as usize, d.len().div_ceil(bpr))
        }
        _ => 0,
    };
    DetailGeometry {
        inner,
        list,
        list_offset,
        hex,
        hex_offset,
        bytes_per_row: bpr,
    }
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

fn heading_height(trace: &Trace, step: &Step, width: u16) -> u16 {
    let lines = heading_lines_wrapped(trace, step, width, &Styles::new(Default::default()));
    lines.len() as u16
}

fn heading_lines_wrapped(
    trace: &Trace,
    step: &Step,
    width: u16,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for line in heading(trace, step, styles) {
        if line.width() <= width as usize || line.spans.len() > 1 {
            out.push(line);
        } else {
            // A long reason: wrap it, at most 3 lines.
            let style = line
                .style
                .patch(line.spans.first().map(|s| s.style).unwrap_or_default());
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            let wrapped = wrap(&text, width as usize);
            let n = wrapped.len();
            for (i, l) in wrapped.into_iter().take(3).enumerate() {
                let l = if i == 2 && n > 3 {
                    fit(&format!("{l} …"), width as usize)
                } else {
                    l
                };
                out.push(Line::styled(l, style));
            }
        }
    }
    out
}

fn help_lines(trace: &Trace, step: &Step, width: u16) -> Vec<(String, bool)> {
    let Some(e) = step.event(trace) else {
        return Vec::new();
    };
    let (check, reason) = match &e.kind {
        EventKind::Check { check, reason, .. } => (check.clone(), reason.clone()),
        EventKind::Policy(p) => (
            p.action.clone(),
            p.decision.replace('_', " ").to_lowercase(),
        ),
        EventKind::Error { stage, message } => (stage.clone(), message.clone()),
        _ => return Vec::new(),
    };
    let help = narrate::failure_help(trace, &check, &reason);
    let w = width as usize;
    let mut out = vec![("─".repeat(w), false)];
    if let Some(a) = &help.alert {
        out.extend(
            wrap(&format!("Alert sent: {a} — {}", alert_gloss(a)), w)
                .into_iter()
                .map(|l| (l, true)),
        );
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
    narrate::alert_meaning(alert.split_whitespace().next().unwrap_or(""))
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
    let mut y = inner.y;
    for line in heading_lines_wrapped(trace, step, inner.width, styles) {
        if y >= inner.bottom() {
            break;
        }
        buf.set_line(inner.x, y, &line, inner.width);
        y += 1;
    }
    let rows = rows(trace, step);
    let ctx = context_name(trace, step);
    // Field list.
    let name_w = rows
        .iter()
        .map(|r| r.name.chars().count() + 2 * r.depth as usize)
        .max()
        .unwrap_or(0)
        .min(inner.width as usize / 3)
        .max(6);
    for (k, (i, r)) in rows
        .iter()
        .enumerate()
        .skip(g.list_offset)
        .take(g.list.height as usize)
        .enumerate()
    {
        let _ = k;
        let ly = g.list.y + (i - g.list_offset) as u16;
        let selected = i == state.field;
        let indent = "  ".repeat(r.depth as usize);
        let name = fit(&format!("{indent}{}", r.name), name_w);
        let value_w = (inner.width as usize).saturating_sub(name_w + 3);
        let value = fit(&r.value, value_w);
        let marker = if selected { "▸" } else { " " };
        let row_style = if selected {
            styles.selected
        } else {
            Style::new()
        };
        let line = Line::from(vec![
            Span::styled(marker.to_string(), row_style),
            Span::styled(format!("{name:<name_w$} "), row_style.patch(styles.label)),
            Span::styled(format!(" {value}"), row_style.patch(styles.value)),
        ]);
        if selected {
            buf.set_style(
                Rect {
                    x: inner.x,
                    y: ly,
                    width: inner.width,
                    height: 1,
                },
                styles.selected,
            );
        }
        buf.set_line(inner.x, ly, &line, inner.width);
    }
    if rows.len() > g.list.height as usize && g.list.height > 0 {
        let shown = format!(" {}/{} ", state.field + 1, rows.len());
        let x = inner.right().saturating_sub(shown.chars().count() as u16);
        buf.set_string(x, g.list.bottom().saturating_sub(1), shown, styles.dim);
    }
    // Failure help (checks and policy decisions that failed).
    let failed = steps::is_failure(trace, step)
        && !matches!(
            step.event(trace).map(|e| &e.kind),
            Some(EventKind::Alert { .. })
        );
    if failed {
        let lines = help_lines(trace, step, inner.width);
        let mut hy = g.list.bottom();
        for (text, is_alert) in lines {
            if hy >= inner.bottom() {
                break;
            }
            buf.set_string(
                inner.x,
                hy,
                fit(&text, inner.width as usize),
                if is_alert { styles.fail } else { styles.warn },
            );
            hy += 1;
        }
    }
    // Meaning of the selected field and the hex view.
    let Some(data) = bytes(trace, step) else {
        return;
    };
    let selected = rows.get(state.field);
    if !state.hex_expanded {
        let meaning = selected
            .and_then(|r| narrate::field_meaning(&ctx, &r.name))
            .unwrap_or("");
        let text = match selected {
            Some(r) if !meaning.is_empty() => format!("{}: {meaning}", r.name),
            Some(r) => r.name.clone(),
            None => String::new(),
        };
        for (k, l) in wrap(&text, inner.width as usize)
            .into_iter()
            .take(2)
            .enumerate()
        {
            let my = g.list.bottom() + k as u16;
            if my < inner.bottom() {
                buf.set_string(inner.x, my, l, styles.warn);
            }
        }
    }
    let caption_y = g.hex.y.saturating_sub(1);
    if caption_y >= inner.y && caption_y < inner.bottom() {
        let sel = selected
            .and_then(|r| {
                r.range
                    .map(|(o, l)| format!("{} = bytes {o}…{} ", r.name, o + l.max(1) - 1))
            })
            .unwrap_or_default();
        let cap = format!("── hex ({} bytes) {sel}", data.len());
        let pad = (inner.width as usize).saturating_sub(cap.chars().count());
        buf.set_string(
            inner.x,
            caption_y,
            fit(&format!("{cap}{}", "─".repeat(pad)), inner.width as usize),
            styles.dim,
        );
    }
    hex_view(buf, &g, &data, &rows, state.field, styles);
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

/// The field whose bytes include `offset`: the deepest (most specific) one.
pub fn field_at(rows: &[DetailRow], offset: usize) -> Option<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.range.is_some_and(|(o, l)| offset >= o && offset < o + l))
        .max_by_key(|(i, r)| (r.depth, usize::MAX - r.range.map(|x| x.1).unwrap_or(0), *i))
        .map(|(i, _)| i)
}
