//! One self-contained page of one session, in HTML (inline CSS, no scripts, no external assets) or
//! Markdown (for a bug report): every message with its bytes annotated by the trace's fields,
//! every check and policy decision with its verdict and side, the narration of each step, the
//! certificates, the records on the wire, and the outcome.
//!
//! The page is built once as a list of [`Block`]s and then written in either syntax, so the two
//! formats say the same things. The words of each step come from [`crate::narrate`], as in the
//! terminal UI and the plain-text tour.

use super::PageFormat;
use crate::narrate;
use crate::render::plain::verdict_line;
use crate::trace::{CheckId, Event, EventKind, Failure, Field, Phase, Side, Trace, WireRecord};
use std::fmt::Write;

/// What the page says about the session's master secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// The tour: the page shows it, as the tour teaches with it.
    Shown,
    /// `connect` and `serve`: not shown; these are the places that hold it (none: not kept).
    KeptIn(Vec<String>),
}

/// The page of `trace` in `format`.
pub fn render(trace: &Trace, format: PageFormat, secrets: &Secrets) -> String {
    let doc = document(trace, secrets);
    let title = format!("iotls — session {}", trace.scenario);
    match format {
        PageFormat::Html => html(&title, &doc),
        PageFormat::Markdown => markdown(&doc),
    }
}

/// One piece of the page.
#[derive(Debug)]
enum Block {
    Heading(u8, String),
    /// A paragraph; `\n` separates paragraphs.
    Text(String),
    /// A verdict: ✔ or ✘ and what it says.
    Verdict(bool, String),
    /// A remark about where something comes from (e.g. "iotls's own check").
    Note(String),
    /// Named values.
    Facts(Vec<(String, String)>),
    /// A message's bytes, annotated field by field.
    Fields {
        caption: String,
        rows: Vec<Row>,
    },
    /// Bytes without fields (a record as sent).
    Hex {
        caption: String,
        bytes: Vec<u8>,
    },
    List(Vec<String>),
    /// Lines shown as they are (a key log).
    Code(Vec<String>),
    Table {
        head: Vec<&'static str>,
        rows: Vec<Vec<String>>,
    },
}

/// The bytes of one field that no part of it describes further.
#[derive(Debug)]
struct Row {
    offset: usize,
    len: usize,
    name: String,
    depth: u8,
    value: String,
    bytes: Vec<u8>,
}

fn document(trace: &Trace, secrets: &Secrets) -> Vec<Block> {
    let mut d = vec![Block::Heading(
        1,
        format!("iotls — session {}", trace.scenario),
    )];
    let mut facts = vec![("started".to_string(), started(trace.started_unix))];
    if let Some((dev, brk)) = tcp(trace) {
        facts.push(("device".into(), dev.to_string()));
        facts.push(("broker".into(), brk.to_string()));
    }
    if let Some(t) = &trace.tls {
        facts.push((
            "negotiated".into(),
            format!(
                "{} {}, key exchange {}, extended master secret {}{}",
                t.version,
                t.cipher_suite,
                t.kx_group.as_deref().unwrap_or("?"),
                if t.extended_master_secret {
                    "yes"
                } else {
                    "no"
                },
                t.sni
                    .as_ref()
                    .map(|s| format!(", SNI {s}"))
                    .unwrap_or_default()
            ),
        ));
    }
    facts.push((
        "recorded".into(),
        format!(
            "{} TLS records, {} events (trace format {})",
            trace.records.len(),
            trace.events.len(),
            trace.format
        ),
    ));
    d.push(Block::Facts(facts));
    d.push(Block::Verdict(trace.outcome.ok, verdict_line(trace)));
    d.push(Block::Text(
        "Every byte below was on the socket between the device and the broker; every verdict is \
         the one the side's rustls or policy engine returned. What iotls recomputed or decrypted \
         itself is labelled as iotls's."
            .into(),
    ));

    d.push(Block::Heading(2, "Secrets".into()));
    d.extend(secrets_blocks(trace, secrets));

    let mut phase: Option<Phase> = None;
    for (i, e) in trace.events.iter().enumerate() {
        if phase != Some(e.phase) {
            phase = Some(e.phase);
            d.push(Block::Heading(2, e.phase.title().to_string()));
        }
        event_blocks(&mut d, trace, i, e, secrets);
    }

    d.push(Block::Heading(2, "Certificates".into()));
    for c in &trace.certificates {
        d.push(Block::Heading(3, c.subject.clone()));
        let mut f = vec![
            ("roles".to_string(), c.role_text()),
            ("issuer".into(), c.issuer.clone()),
            ("serial".into(), c.serial.clone()),
        ];
        if let Some(note) = narrate::serial_number_note(&c.subject) {
            f.push(("policy variable".into(), note));
        }
        f.extend([
            (
                "valid".into(),
                format!(
                    "{} … {} ({} days left at the session's start)",
                    c.not_before, c.not_after, c.days_left
                ),
            ),
            ("key".into(), c.key.clone()),
            ("signature algorithm".into(), c.signature_algorithm.clone()),
        ]);
        for (name, list) in [
            ("subject alternative names", &c.san),
            ("key usage", &c.key_usage),
            ("extended key usage", &c.extended_key_usage),
        ] {
            if !list.is_empty() {
                f.push((name.into(), list.join(", ")));
            }
        }
        if let Some(b) = &c.basic_constraints {
            f.push(("basic constraints".into(), b.clone()));
        }
        f.push(("sha256 (AWS IoT certificate id)".into(), c.sha256.clone()));
        d.push(Block::Facts(f));
    }

    d.push(Block::Heading(2, "Records on the wire".into()));
    d.push(Block::Text(
        "Every TLS record in the order sent, header included; the capture (--pcap) carries the \
         same bytes."
            .into(),
    ));
    d.push(Block::Table {
        head: vec!["from", "record", "t (µs)", "content type", "bytes"],
        rows: trace.records.iter().map(record_row).collect(),
    });

    d.push(Block::Heading(2, "Outcome".into()));
    if !trace.outcome.mqtt.is_empty() {
        d.push(Block::List(
            trace.outcome.mqtt.iter().map(narrate::mqtt_line).collect(),
        ));
    }
    d.push(Block::Verdict(trace.outcome.ok, verdict_line(trace)));
    d
}

fn secrets_blocks(trace: &Trace, secrets: &Secrets) -> Vec<Block> {
    let lines = super::keylog::lines(trace);
    match secrets {
        Secrets::Shown if lines.is_empty() => vec![Block::Text(
            "The handshake ended before the sides derived a master secret.".into(),
        )],
        Secrets::Shown => vec![
            Block::Text(
                "This is the tour: the page shows the session's master secret, because the tour \
                 teaches with it. This key log line (NSS key log format) decrypts the session in \
                 Wireshark or tshark:"
                    .into(),
            ),
            Block::Code(lines.lines().map(str::to_string).collect()),
        ],
        Secrets::KeptIn(places) if places.is_empty() => vec![Block::Text(
            "The master secret is not in this page, and this run did not keep it: run again with \
             --keylog FILE (or --pcap FILE) to keep the key log."
                .into(),
        )],
        Secrets::KeptIn(places) => vec![
            Block::Text(
                "The master secret is not in this page. The session's key log (NSS key log format) \
                 is in:"
                    .into(),
            ),
            Block::List(places.clone()),
        ],
    }
}

fn event_blocks(d: &mut Vec<Block>, trace: &Trace, i: usize, e: &Event, secrets: &Secrets) {
    let arrow = arrow(e.side);
    match &e.kind {
        EventKind::AppData {
            ciphertext,
            plaintext,
            mqtt,
            record,
            ..
        } => {
            d.push(Block::Heading(
                3,
                format!(
                    "[{}] {arrow} application data ({} bytes, record {record})",
                    e.seq,
                    ciphertext.len()
                ),
            ));
            d.push(Block::Hex {
                caption: "the record as sent (ciphertext)".into(),
                bytes: ciphertext.clone(),
            });
            if plaintext.is_none() {
                d.push(Block::Note("iotls could not decrypt this record.".into()));
            }
            for (j, p) in mqtt.iter().enumerate() {
                d.push(Block::Heading(4, format!("{arrow} MQTT {}", p.packet)));
                d.push(Block::Text(narrate::step(trace, i, Some(j))));
                d.push(Block::Fields {
                    caption: format!(
                        "MQTT {}: {} bytes at offset {} of the plaintext, decrypted by iotls \
                         from the key log",
                        p.packet,
                        p.hex.len(),
                        p.offset
                    ),
                    rows: rows(&p.hex, &p.fields),
                });
            }
            if mqtt.is_empty() {
                d.push(Block::Text(narrate::step(trace, i, None)));
            }
        }
        _ => {
            d.push(Block::Heading(3, format!("[{}] {}", e.seq, headline(e))));
            d.push(Block::Text(narrate::step(trace, i, None)));
            details(d, e, secrets);
        }
    }
}

/// What happened, in one line.
fn headline(e: &Event) -> String {
    let arrow = arrow(e.side);
    match &e.kind {
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => format!("TCP connection: device {device_addr}, broker {broker_addr}"),
        EventKind::Handshake {
            msg,
            hex,
            encrypted,
            ..
        } => format!(
            "{arrow} {} ({} bytes{})",
            msg.name(),
            hex.len(),
            if *encrypted { ", encrypted" } else { "" }
        ),
        EventKind::ChangeCipherSpec { .. } => format!("{arrow} ChangeCipherSpec"),
        EventKind::Alert {
            level, description, ..
        } => format!("{arrow} alert {} {}", level.name(), description.name()),
        EventKind::AppData { ciphertext, .. } => {
            format!("{arrow} application data ({} bytes)", ciphertext.len())
        }
        EventKind::Undecodable { hex, .. } => {
            format!("{arrow} {} bytes iotls could not decode", hex.len())
        }
        EventKind::Check { check, ok, .. } => format!(
            "{} {}: {check} — {}",
            mark(*ok),
            who_checked(e.side, *check),
            narrate::check_title(*check)
        ),
        EventKind::Secret { label, .. } => {
            format!(
                "{}'s rustls exports its key log line ({label})",
                e.side.name()
            )
        }
        EventKind::KeySchedule(k) => format!(
            "iotls derives the {} record keys from the key log's master secret (iotls's own \
             calculation)",
            k.key_expansion.aead
        ),
        EventKind::Policy(p) => format!(
            "{} policy: {} {} on {}",
            mark(p.decision.allowed()),
            p.decision,
            p.action,
            p.resource
        ),
        EventKind::Closed { by, .. } => format!(
            "{} closed the connection",
            by.map(|s| format!("the {}", s.name()))
                .unwrap_or_else(|| "the connection was".into())
        ),
        EventKind::Error { stage, .. } => format!("error in the {}", stage.title()),
        EventKind::Gap { device, broker, .. } => crate::narrate::gap_title(device, broker),
        EventKind::Operation(o) => format!("{}: {}", o.actor.name(), o.summary),
        EventKind::Witness { device, what } => narrate::witness_title(device, what),
    }
}

fn who_checked(side: Side, check: CheckId) -> String {
    match (side, check) {
        (Side::Iotls, _) => "iotls's own check".into(),
        (s, CheckId::Registry) => format!("the {}'s registry", s.name()),
        (s, _) => format!("the {}'s rustls", s.name()),
    }
}

/// The values behind a step: bytes, verdicts, facts.
fn details(d: &mut Vec<Block>, e: &Event, secrets: &Secrets) {
    match &e.kind {
        EventKind::Tcp { .. } => {}
        EventKind::Handshake {
            msg,
            hex,
            encrypted,
            ciphertext,
            fields,
            record,
            ..
        } => {
            d.push(Block::Fields {
                caption: format!(
                    "{}: {} bytes, completed in record {record} from the {}{}",
                    msg.name(),
                    hex.len(),
                    e.side.name(),
                    if *encrypted {
                        "; decrypted by iotls from the key log"
                    } else {
                        ""
                    }
                ),
                rows: rows(hex, fields),
            });
            if let Some(c) = ciphertext {
                d.push(Block::Hex {
                    caption: "the record as sent (ciphertext)".into(),
                    bytes: c.clone(),
                });
            }
        }
        EventKind::ChangeCipherSpec { hex, record } => d.push(Block::Hex {
            caption: format!("record {record} as sent"),
            bytes: hex.clone(),
        }),
        EventKind::Alert {
            hex,
            record,
            encrypted,
            code,
            ..
        } => {
            d.push(Block::Hex {
                caption: format!(
                    "record {record} as sent{}",
                    if *encrypted {
                        " (ciphertext; iotls decrypted the level and the description)"
                    } else {
                        ""
                    }
                ),
                bytes: hex.clone(),
            });
            d.push(Block::Facts(vec![(
                "description code".into(),
                code.to_string(),
            )]));
        }
        EventKind::AppData { .. } => {}
        EventKind::Undecodable { hex, reason, .. } => {
            d.push(Block::Note(format!("iotls: {reason}")));
            d.push(Block::Hex {
                caption: "the bytes".into(),
                bytes: hex.clone(),
            });
        }
        EventKind::Check {
            check,
            ok,
            reason,
            facts,
            failure,
            ..
        } => {
            d.push(Block::Verdict(
                *ok,
                format!(
                    "{} — {}",
                    if *ok { "passed" } else { "failed" },
                    who_checked(e.side, *check)
                ),
            ));
            d.push(Block::Note(match e.side {
                Side::Iotls => "iotls's own check: recomputed by iotls from the bytes and the key \
                                log. A second opinion; it never decides the outcome."
                    .into(),
                s => format!("The {}'s verdict, as it returned it.", s.name()),
            }));
            let mut f: Vec<(String, String)> = vec![("reason".into(), reason.clone())];
            for fact in facts {
                if fact.name == "signed_message" {
                    // The signed bytes are the handshake messages shown above.
                    f.push((
                        fact.name.clone(),
                        format!(
                            "{} bytes: the handshake messages above, headers included",
                            fact.value.len() / 2
                        ),
                    ));
                } else {
                    f.push((fact.name.clone(), fact.value.clone()));
                }
            }
            d.push(Block::Facts(f));
            if let Some(fl) = failure {
                d.push(failure_block(fl));
            }
        }
        EventKind::KeySchedule(k) => {
            let mut f: Vec<(String, String)> = vec![
                ("PRF hash".into(), k.prf_hash.clone()),
                (
                    "master secret".into(),
                    format!(
                        "an input, from the key log ({}); the pre-master secret never leaves rustls",
                        k.master_secret.derivation
                    ),
                ),
            ];
            if let Some(h) = &k.session_hash {
                f.push((
                    "session hash".into(),
                    format!(
                        "{} of {} handshake messages ({} bytes): {}",
                        k.prf_hash,
                        h.messages.len(),
                        h.len,
                        crate::trace::hex(&h.hash)
                    ),
                ));
            }
            let x = &k.key_expansion;
            f.push((
                "key expansion".into(),
                format!(
                    "PRF(master_secret, \"{}\", server_random ‖ client_random), {} bytes",
                    x.label,
                    x.key_block.len()
                ),
            ));
            for p in &x.parts {
                let value = match secrets {
                    Secrets::Shown => crate::trace::hex(&p.value),
                    Secrets::KeptIn(_) => "not shown in this page (see Secrets)".into(),
                };
                f.push((p.name.clone(), value));
            }
            d.push(Block::Facts(f));
        }
        EventKind::Secret {
            label,
            client_random,
            secret,
        } => match secrets {
            Secrets::Shown => d.push(Block::Facts(vec![
                ("label".into(), label.clone()),
                ("client_random".into(), crate::trace::hex(client_random)),
                ("master secret".into(), crate::trace::hex(secret)),
            ])),
            Secrets::KeptIn(_) => d.push(Block::Facts(vec![
                ("label".into(), label.clone()),
                ("client_random".into(), crate::trace::hex(client_random)),
                (
                    "master secret".into(),
                    "not shown in this page (see Secrets)".into(),
                ),
            ])),
        },
        EventKind::Policy(p) => {
            d.push(Block::Verdict(
                p.decision.allowed(),
                format!("{} — {}", p.decision, narrate::enforcement(p.enforcement)),
            ));
            d.push(Block::Note(
                "The broker's policy engine decided this (its explanation follows).".into(),
            ));
            d.push(Block::List(p.lines.clone()));
        }
        EventKind::Closed {
            cause,
            reason,
            failure,
            ..
        } => {
            d.push(Block::Facts(vec![
                (
                    "cause".into(),
                    serde_json::to_value(cause)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                ),
                ("reason".into(), reason.clone()),
            ]));
            if let Some(fl) = failure {
                d.push(failure_block(fl));
            }
        }
        EventKind::Error {
            message, failure, ..
        } => {
            d.push(Block::Facts(vec![("message".into(), message.clone())]));
            if let Some(fl) = failure {
                d.push(failure_block(fl));
            }
        }
        EventKind::Gap { reason, .. } => d.push(Block::Note(format!("iotls: {reason}"))),
        EventKind::Witness { what, .. } => match what {
            crate::trace::WitnessKind::Received { topic, payload } => d.push(Block::Hex {
                caption: format!("the payload delivered on {topic}"),
                bytes: payload.clone(),
            }),
            crate::trace::WitnessKind::Refused { reason } => {
                d.push(Block::Facts(vec![("reason".into(), reason.clone())]))
            }
            _ => {}
        },
        EventKind::Operation(o) => {
            for (dir, v) in o.values() {
                match v.as_bytes() {
                    Some(b) => d.push(Block::Hex {
                        caption: format!("{dir}: {}", v.name),
                        bytes: b.to_vec(),
                    }),
                    None => d.push(Block::Facts(vec![(
                        format!("{dir}: {}", v.name),
                        v.display(0),
                    )])),
                }
            }
        }
    }
}

fn failure_block(f: &Failure) -> Block {
    Block::Verdict(false, narrate::failure_line(f))
}

/// The rows of a message: each field's own bytes (up to its first part, which has a row of its
/// own), and a row for any bytes no field describes, so every byte appears once, in order.
fn rows(bytes: &[u8], fields: &[Field]) -> Vec<Row> {
    let mut out = Vec::new();
    let mut at = 0usize;
    // Bytes no field describes: the rest of the innermost field around them, if any.
    let gap = |from: usize, to: usize| {
        let around = fields
            .iter()
            .filter(|f| f.offset <= from && to <= f.offset + f.len)
            .max_by_key(|f| f.depth);
        Row {
            offset: from,
            len: to - from,
            name: around
                .map(|f| format!("(rest of {})", f.name))
                .unwrap_or_else(|| "(not described by a field)".into()),
            depth: around.map(|f| f.depth + 1).unwrap_or(0),
            value: String::new(),
            bytes: bytes[from..to].to_vec(),
        }
    };
    for (k, f) in fields.iter().enumerate() {
        let start = f.offset.min(bytes.len());
        let end = (f.offset + f.len).min(bytes.len());
        if start > at {
            out.push(gap(at, start));
            at = start;
        }
        // A field with parts shows its own bytes up to where its first part starts.
        let own_end = match fields.get(k + 1) {
            Some(next) if next.depth > f.depth && next.offset >= start && next.offset < end => {
                next.offset
            }
            _ => end,
        };
        let from = start.max(at);
        let to = own_end.max(from);
        out.push(Row {
            offset: f.offset,
            len: f.len,
            name: f.name.clone(),
            depth: f.depth,
            value: f.value.clone(),
            bytes: bytes[from..to].to_vec(),
        });
        at = at.max(to);
    }
    if at < bytes.len() {
        out.push(gap(at, bytes.len()));
    }
    out
}

fn record_row(r: &WireRecord) -> Vec<String> {
    let kind = match r.bytes.first() {
        Some(20) => "change_cipher_spec (20)".to_string(),
        Some(21) => "alert (21)".to_string(),
        Some(22) => "handshake (22)".to_string(),
        Some(23) => "application_data (23)".to_string(),
        Some(n) => format!("{n}"),
        None => String::new(),
    };
    vec![
        r.from.name().to_string(),
        r.index.to_string(),
        r.t_us.to_string(),
        kind,
        r.bytes.len().to_string(),
    ]
}

fn tcp(trace: &Trace) -> Option<(&str, &str)> {
    trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => Some((device_addr.as_str(), broker_addr.as_str())),
        _ => None,
    })
}

fn started(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (seconds since the Unix epoch)"))
}

fn arrow(side: Side) -> &'static str {
    match side {
        Side::Device => "device → broker",
        Side::Broker => "broker → device",
        Side::Iotls => "iotls",
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✔"
    } else {
        "✘"
    }
}

/// `01 02 …`, 16 bytes a line.
fn hex_lines(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

const CSS: &str =
    "body{font-family:system-ui,sans-serif;max-width:80em;margin:2em auto;padding:0 1em;\
line-height:1.45;color:#1b1b1b;background:#fff}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-bottom:.3em}\
h4{margin:1em 0 .3em}code,pre,.hex{font-family:ui-monospace,monospace;font-size:.9em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.15em .5em;\
vertical-align:top;text-align:left}th{background:#f3f3f3}\
td.hex{word-break:break-all;max-width:34em}td.num{text-align:right}\
td.bytes{white-space:nowrap;font-family:ui-monospace,monospace;font-size:.9em}\
td.value{min-width:16em;overflow-wrap:anywhere}td.field{min-width:11em;overflow-wrap:anywhere}pre.keys{white-space:pre-wrap;word-break:break-all}\
.d1{padding-left:1.5em}.d2{padding-left:3em}.d3{padding-left:4.5em}.d4{padding-left:6em}\
.ok{color:#0a6b1f;font-weight:bold}.fail{color:#b00020;font-weight:bold}\
.note{color:#555;font-style:italic}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}\
caption{text-align:left;font-style:italic;color:#555}\
@media (prefers-color-scheme:dark){body{background:#161616;color:#e6e6e6}th{background:#2a2a2a}\
td,th{border-color:#444}pre{background:#222}.note,caption{color:#aaa}.ok{color:#5fd27a}\
.fail{color:#ff6b81}}";

fn html(title: &str, doc: &[Block]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(title)
    );
    for b in doc {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(o, "<h{level}>{}</h{level}>", esc(text));
            }
            Block::Text(text) => {
                for p in text.split('\n').filter(|p| !p.trim().is_empty()) {
                    let _ = writeln!(o, "<p>{}</p>", esc(p));
                }
            }
            Block::Verdict(ok, text) => {
                let (class, m) = if *ok { ("ok", "✔") } else { ("fail", "✘") };
                let _ = writeln!(o, "<p><span class=\"{class}\">{m}</span> {}</p>", esc(text));
            }
            Block::Note(text) => {
                let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(text));
            }
            Block::Facts(facts) => {
                o.push_str("<table>\n");
                for (k, v) in facts {
                    let _ = writeln!(
                        o,
                        "<tr><th>{}</th><td class=\"hex\">{}</td></tr>",
                        esc(k),
                        esc(v)
                    );
                }
                o.push_str("</table>\n");
            }
            Block::Fields { caption, rows } => {
                let _ = writeln!(
                    o,
                    "<table>\n<caption>{}</caption>\n<tr><th>offset</th><th>len</th><th>field</th>\
                     <th>value</th><th>bytes</th></tr>",
                    esc(caption)
                );
                for r in rows {
                    let _ = writeln!(
                        o,
                        "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"field d{}\">{}</td>\
                         <td class=\"value\">{}</td><td class=\"bytes\">{}</td></tr>",
                        r.offset,
                        r.len,
                        r.depth.min(4),
                        esc(&r.name),
                        esc(&r.value),
                        hex_lines(&r.bytes).join("<br>")
                    );
                }
                o.push_str("</table>\n");
            }
            Block::Hex { caption, bytes } => {
                let _ = writeln!(
                    o,
                    "<p class=\"note\">{} — {} bytes</p>\n<pre>{}</pre>",
                    esc(caption),
                    bytes.len(),
                    dump(bytes)
                );
            }
            Block::Code(lines) => {
                let _ = writeln!(o, "<pre class=\"keys\">{}</pre>", esc(&lines.join("\n")));
            }
            Block::List(items) => {
                o.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(o, "<li>{}</li>", esc(i));
                }
                o.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                o.push_str("<table>\n<tr>");
                for h in head {
                    let _ = write!(o, "<th>{}</th>", esc(h));
                }
                o.push_str("</tr>\n");
                for r in rows {
                    o.push_str("<tr>");
                    for c in r {
                        let _ = write!(o, "<td>{}</td>", esc(c));
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</table>\n");
            }
        }
    }
    o.push_str("</body>\n</html>\n");
    o
}

/// A hex dump with offsets, 16 bytes a line.
fn dump(bytes: &[u8]) -> String {
    hex_lines(bytes)
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{:04x}  {l}", i * 16))
        .collect::<Vec<_>>()
        .join("\n")
}

/// HTML text: the five characters that mean something in markup, escaped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

fn markdown(doc: &[Block]) -> String {
    let mut o = String::new();
    for b in doc {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(o, "{} {}\n", "#".repeat(*level as usize), md(text));
            }
            Block::Text(text) => {
                for p in text.split('\n').filter(|p| !p.trim().is_empty()) {
                    let _ = writeln!(o, "{}\n", md(p));
                }
            }
            Block::Verdict(ok, text) => {
                let _ = writeln!(o, "**{}** {}\n", mark(*ok), md(text));
            }
            Block::Note(text) => {
                let _ = writeln!(o, "*{}*\n", md(text));
            }
            Block::Facts(facts) => {
                for (k, v) in facts {
                    let _ = writeln!(o, "- {}: {}", md(k), md(v));
                }
                o.push('\n');
            }
            Block::Fields { caption, rows } => {
                let _ = writeln!(o, "*{}*\n\n```", md(caption));
                let _ = writeln!(o, "{:>6} {:>5}  field = value / bytes", "offset", "len");
                for r in rows {
                    let indent = "  ".repeat(r.depth as usize);
                    let value = if r.value.is_empty() {
                        String::new()
                    } else {
                        format!(" = {}", r.value)
                    };
                    let _ = writeln!(o, "{:>6} {:>5}  {indent}{}{value}", r.offset, r.len, r.name);
                    for l in hex_lines(&r.bytes) {
                        let _ = writeln!(o, "{:>12}    {indent}{l}", "");
                    }
                }
                o.push_str("```\n\n");
            }
            Block::Hex { caption, bytes } => {
                let _ = writeln!(
                    o,
                    "*{} — {} bytes*\n\n```\n{}\n```\n",
                    md(caption),
                    bytes.len(),
                    dump(bytes)
                );
            }
            Block::Code(lines) => {
                let _ = writeln!(o, "```\n{}\n```\n", lines.join("\n"));
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(o, "- {}", md(i));
                }
                o.push('\n');
            }
            Block::Table { head, rows } => {
                let _ = writeln!(o, "| {} |", head.join(" | "));
                let _ = writeln!(o, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md(c).replace('|', "\\|")).collect();
                    let _ = writeln!(o, "| {} |", cells.join(" | "));
                }
                o.push('\n');
            }
        }
    }
    o
}

/// Markdown text: the characters that would start emphasis, code or markup, escaped.
fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '`' | '<' | '>') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::rows;
    use crate::trace::EventKind;

    /// The annotated rows of every message and MQTT packet of a real session hold every byte of
    /// it once, in order.
    #[test]
    fn the_rows_of_a_message_are_its_bytes() {
        let s = crate::engine::lessons::scenario("pizza-button").expect("the lesson");
        let t = crate::engine::run(&s).expect("a session");
        let mut seen = 0;
        for e in &t.events {
            let parts: Vec<(&Vec<u8>, &Vec<crate::trace::Field>)> = match &e.kind {
                EventKind::Handshake { hex, fields, .. } => vec![(hex, fields)],
                EventKind::AppData { mqtt, .. } => {
                    mqtt.iter().map(|p| (&p.hex, &p.fields)).collect()
                }
                _ => continue,
            };
            for (bytes, fields) in parts {
                let joined: Vec<u8> = rows(bytes, fields)
                    .into_iter()
                    .flat_map(|r| r.bytes)
                    .collect();
                assert_eq!(&joined, bytes, "{:?}", e.kind);
                seen += 1;
            }
        }
        assert!(seen >= 15, "handshake messages and MQTT packets: {seen}");
    }

    /// The device certificate's facts tell its serial number from the subject's serialNumber,
    /// which the policy variable reads; a certificate without that attribute has no such line.
    #[test]
    fn the_device_certificate_tells_its_two_serials_apart() {
        let s = crate::engine::lessons::scenario("pizza-button").expect("the lesson");
        let t = crate::engine::run(&s).expect("a session");
        let page = super::render(
            &t,
            crate::export::PageFormat::Markdown,
            &super::Secrets::Shown,
        );
        let note = "reads the subject's serialNumber (G030JF055364XVRB), not the certificate's \
                    serial number";
        assert_eq!(page.matches(note).count(), 1, "{page}");
        assert_eq!(page.matches("policy variable").count(), 1, "{page}");
    }
}
