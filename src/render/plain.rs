//! The plain-text tour: the session narrated phase by phase, for a log or a screen reader. Each step
//! says what happened, with this run's values, and what it proves. The words come from
//! [`crate::narrate`], the same narration the terminal UI shows; this module adds the headline of
//! each step, the facts of each check and the policy explanations, and wraps the lines.

use crate::narrate::{self, calc};
use crate::trace::{Event, EventKind, Phase, Trace};
use std::fmt::Write;

/// Width the narration is wrapped to.
const WIDTH: usize = 100;
const INDENT: &str = "      ";

/// Render the whole trace as text.
pub fn render(trace: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "iotls — session {}", trace.scenario);
    if let Some(tls) = &trace.tls {
        let _ = writeln!(
            out,
            "negotiated: {} {}, key exchange {}, extended master secret {}{}",
            tls.version,
            tls.cipher_suite,
            tls.kx_group.as_deref().unwrap_or("?"),
            if tls.extended_master_secret {
                "yes"
            } else {
                "no"
            },
            tls.sni
                .as_ref()
                .map(|s| format!(", SNI {s}"))
                .unwrap_or_default()
                + &tls
                    .alpn
                    .as_ref()
                    .map(|a| format!(", ALPN {a}"))
                    .unwrap_or_default()
        );
    }
    let headers = phase_headers(trace);
    let mut heading: Option<Phase> = None;
    for (i, e) in trace.events.iter().enumerate() {
        if let Some(p) = headers[i] {
            heading = Some(p);
            let _ = writeln!(out, "\n== {} ==", p.title());
        }
        // A step under another phase's header (a check recorded after the session moved on)
        // names its own phase.
        let own = if heading == Some(e.phase) {
            String::new()
        } else {
            format!("  (phase: {})", e.phase.title())
        };
        match &e.kind {
            // One step per MQTT packet, as in the UI.
            // An operation lesson: the part of the lesson as a sub-heading when it changes.
            EventKind::Operation(o) => {
                let prev_part = trace.events[..i].iter().rev().find_map(|p| match &p.kind {
                    EventKind::Operation(q) => Some(q.part.as_str()),
                    _ => None,
                });
                if prev_part != Some(o.part.as_str()) {
                    let _ = writeln!(out, "\n-- {} --", o.part);
                }
                operation(&mut out, e, o);
            }
            EventKind::AppData { mqtt, .. } if !mqtt.is_empty() => {
                for (j, p) in mqtt.iter().enumerate() {
                    let _ = writeln!(out, "[{:>3}] {} MQTT {}{own}", e.seq, arrow(e), p.packet);
                    wrap(&mut out, &narrate::step(trace, i, Some(j)));
                }
                record(&mut out, e);
            }
            _ => {
                let _ = writeln!(out, "[{:>3}] {}{own}", e.seq, headline(e));
                wrap(&mut out, &narrate::step(trace, i, None));
                details(&mut out, e);
                if let Some(c) = calc::of_event(trace, i) {
                    calculation(&mut out, &c);
                }
                record(&mut out, e);
            }
        }
    }
    let _ = writeln!(out, "\n== Outcome ==");
    for m in &trace.outcome.mqtt {
        let _ = writeln!(out, "  {}", narrate::mqtt_line(m));
    }
    let _ = writeln!(out, "{}", verdict_line(trace));
    out
}

/// Where the phase headers go: `Some(phase)` before event `i` when a header opens there.
///
/// What travels on the wire (messages, records, the connection's opening and closing) leads: a
/// header opens when the wire moves to another phase. A verdict or a note — a check, a policy
/// decision, a key-log line — is recorded when its side decided, often after the wire moved on
/// (the broker checks the device's chain after the device's whole flight); it stays under the
/// current header and names its own phase. So a header never follows one of the same phase, and
/// a phase the wire stays in is one run under one header.
pub fn phase_headers(trace: &Trace) -> Vec<Option<Phase>> {
    let mut heading: Option<Phase> = None;
    trace
        .events
        .iter()
        .map(|e| {
            let note = matches!(
                e.kind,
                EventKind::Check { .. } | EventKind::Policy(_) | EventKind::Secret { .. }
            );
            let opens = match heading {
                None => true,
                Some(p) => p != e.phase && !note,
            };
            opens.then(|| {
                heading = Some(e.phase);
                e.phase
            })
        })
        .collect()
}

/// The last line of a report: OK or FAILED, and why — what a person debugging reads first.
pub fn verdict_line(trace: &Trace) -> String {
    format!(
        "{} {}",
        if trace.outcome.ok { "OK:" } else { "FAILED:" },
        trace.outcome.summary
    )
}

fn arrow(e: &Event) -> &'static str {
    match e.side {
        crate::trace::Side::Device => "device → broker",
        crate::trace::Side::Broker => "broker → device",
        crate::trace::Side::Iotls => "iotls",
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✔"
    } else {
        "✘"
    }
}

/// What happened, in one line.
fn headline(e: &Event) -> String {
    match &e.kind {
        EventKind::Tcp { .. } => "TCP connection".to_string(),
        EventKind::Handshake {
            msg,
            hex,
            encrypted,
            ..
        } => format!(
            "{} {msg} ({} bytes{})",
            arrow(e),
            hex.len(),
            if *encrypted { ", encrypted" } else { "" }
        ),
        EventKind::ChangeCipherSpec { .. } => format!("{} ChangeCipherSpec", arrow(e)),
        EventKind::Alert {
            level, description, ..
        } => {
            format!("{} Alert {} {description}", arrow(e), level.name())
        }
        EventKind::AppData { ciphertext, .. } => {
            format!("{} application data ({} bytes)", arrow(e), ciphertext.len())
        }
        EventKind::Undecodable { hex, .. } => {
            format!("{} {} bytes that are not TLS", arrow(e), hex.len())
        }
        EventKind::Check { check, ok, .. } if e.side == crate::trace::Side::Iotls => {
            format!("{} iotls recomputes {check} (iotls's own check)", mark(*ok))
        }
        EventKind::Check { check, ok, .. } => {
            format!("{} {} checks {check}", mark(*ok), e.side.name())
        }
        EventKind::Secret { label, .. } => format!("{} key log: {label}", e.side.name()),
        EventKind::KeySchedule(_) => {
            "iotls derives the record keys (iotls's own calculation)".into()
        }
        EventKind::Policy(p) if e.side == crate::trace::Side::Iotls => format!(
            "{} iotls re-evaluates: {} {} on {}",
            mark(p.decision.allowed()),
            p.decision,
            p.action,
            narrate::echo(&p.resource)
        ),
        EventKind::Policy(p) => format!(
            "{} {} {} on {}",
            mark(p.decision.allowed()),
            p.decision,
            p.action,
            narrate::echo(&p.resource)
        ),
        EventKind::Closed { by, .. } => {
            format!(
                "{} closed the connection",
                by.map(|s| s.name()).unwrap_or("connection")
            )
        }
        EventKind::Error { stage, .. } => format!("error in the {}", stage.title()),
        EventKind::Gap { device, broker, .. } => crate::narrate::gap_title(device, broker),
        EventKind::Operation(o) => operation_headline(o),
        EventKind::Witness { device, what } => narrate::witness_title(device, what),
    }
}

/// `✔ device · sign (ring): the device signs the order`: the actor, the operation, the library.
fn operation_headline(o: &crate::trace::Operation) -> String {
    let mark = match &o.verdict {
        Some(v) => format!("{} ", mark(v.ok)),
        None => String::new(),
    };
    format!(
        "{mark}{} · {} ({}): {}",
        o.actor.name(),
        o.op.name(),
        o.library,
        o.summary
    )
}

/// Width an operation lesson is wrapped to: it is read in an 80-column terminal.
const OP_WIDTH: usize = 80;

/// An operation: its headline, what it shows, its inputs and outputs (long hex shortened to fit
/// 80 columns), and the verdict.
fn operation(out: &mut String, e: &Event, o: &crate::trace::Operation) {
    let head = format!("[{:>3}] {}", e.seq, operation_headline(o));
    wrap_to(out, &head, "", INDENT, OP_WIDTH);
    wrap_to(out, &o.explain, INDENT, INDENT, OP_WIDTH);
    for (dir, v) in o.values() {
        let label = format!("{INDENT}  {dir} {}: ", v.name);
        let room = OP_WIDTH.saturating_sub(label.chars().count() + 14).max(16);
        let line = format!("{label}{}", v.display(room - room % 2));
        wrap_to(out, &line, "", &format!("{INDENT}    "), OP_WIDTH);
    }
    if let Some(v) = narrate::operation_verdict(o) {
        wrap_to(out, &v, INDENT, INDENT, OP_WIDTH);
    }
}

/// Word-wrap `text` at `width` columns: the first line of each paragraph starts with `first`
/// (or the paragraph's own leading spaces, after `rest`), the others with `rest`. A word longer
/// than a line (a hex string) is cut.
fn wrap_to(out: &mut String, text: &str, first: &str, rest: &str, width: usize) {
    for (n, para) in text.split('\n').enumerate() {
        let own: String = para.chars().take_while(|c| *c == ' ').collect();
        let mut line = if n == 0 {
            format!("{first}{own}")
        } else {
            format!("{rest}{own}")
        };
        let mut fresh = true;
        for word in para.split_whitespace() {
            let w = word.chars().count();
            if !fresh && line.chars().count() + 1 + w > width {
                let _ = writeln!(out, "{line}");
                line = rest.to_string();
                fresh = true;
            }
            if !fresh {
                line.push(' ');
            }
            let mut chars: Vec<char> = word.chars().collect();
            while line.chars().count() + chars.len() > width {
                let room = width.saturating_sub(line.chars().count());
                if room == 0 {
                    let _ = writeln!(out, "{line}");
                    line = rest.to_string();
                    continue;
                }
                line.extend(chars.drain(..room));
                let _ = writeln!(out, "{line}");
                line = rest.to_string();
            }
            line.extend(chars);
            fresh = false;
        }
        if !fresh {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The values behind a verdict: the facts of a check, the explanation of a policy decision.
fn details(out: &mut String, e: &Event) {
    match &e.kind {
        // A calculation's rows say all its facts (below).
        EventKind::Check {
            signature: Some(_), ..
        }
        | EventKind::Check {
            finished: Some(_), ..
        } => {}
        EventKind::Check { facts, .. } => {
            // The signed message is in the handshake events already; its length and hash are facts.
            for f in facts.iter().filter(|f| f.name != "signed_message") {
                let _ = writeln!(out, "{INDENT}  {}: {}", f.name, f.value);
            }
        }
        EventKind::Policy(p) => {
            let _ = writeln!(out, "{INDENT}  {}", narrate::enforcement(p.enforcement));
            for l in &p.lines {
                let _ = writeln!(out, "{INDENT}  {}", narrate::echo_line(l));
            }
        }
        _ => {}
    }
}

/// A calculation, row by row under its title: values in full (hashes and keys stay on one line,
/// to be copied), and the `reproduce.sh` check that redoes it.
fn calculation(out: &mut String, c: &calc::Calc) {
    let _ = writeln!(out, "{INDENT}  calculation: {}", c.title);
    for r in &c.rows {
        let value = if r.name == "redo" {
            format!(
                "sh DIR/reproduce.sh {} (DIR: the directory --reproduce wrote for this session)",
                c.check
            )
        } else {
            r.value.clone()
        };
        let _ = writeln!(out, "{INDENT}    {}: {value}", r.name);
    }
}

/// How an encrypted record was protected: nonce, additional data, tag.
fn record(out: &mut String, e: &Event) {
    if let Some(p) = calc::protection(e) {
        let _ = writeln!(out, "{INDENT}  record protection:");
        for r in calc::record_rows(p)
            .iter()
            .filter(|r| r.name != "redo" && r.name != "command")
        {
            let _ = writeln!(out, "{INDENT}    {}: {}", r.name, r.value);
        }
    }
}

/// Word-wrap `text` at [`WIDTH`], indented.
fn wrap(out: &mut String, text: &str) {
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty()
                && INDENT.len() + line.chars().count() + 1 + word.chars().count() > WIDTH
            {
                let _ = writeln!(out, "{INDENT}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            let _ = writeln!(out, "{INDENT}{line}");
        }
    }
}
