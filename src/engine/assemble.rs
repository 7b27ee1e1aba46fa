//! From raw observations to a [`Trace`]: decode the bytes with the dissector, keep every hook event
//! where it happened, describe the certificates, and say how the session ended.

use super::device::DeviceReport;
use super::observe::Raw;
use crate::pki::describe;
use crate::tls::dissect::{Dissector, KeyLogEntry};
use crate::trace::{unhex, CertInfo, Event, EventKind, Outcome, Phase, Side, Trace, FORMAT};

/// Build the trace. `anchors` are the configured trust anchors (role, DER); `report` is what the
/// in-process device got done (None when the device was not iotls's own).
pub fn assemble(
    scenario: &str,
    started_unix: u64,
    raws: Vec<Raw>,
    anchors: &[(String, Vec<u8>)],
    report: Option<&DeviceReport>,
) -> Trace {
    let keys = raws
        .iter()
        .filter_map(|r| match r {
            Raw::Key {
                client_random,
                master_secret,
            } => Some(KeyLogEntry {
                client_random: *client_random,
                master_secret: master_secret.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut d = Dissector::new(keys);
    let mut events: Vec<Event> = Vec::new();
    let push = |phase: Phase, side: Side, kind: EventKind, t_us: u64, events: &mut Vec<Event>| {
        let seq = events.len() as u32;
        events.push(Event {
            seq,
            t_us,
            phase,
            side,
            kind,
        });
    };
    let mut last_t = 0;
    for raw in raws {
        match raw {
            Raw::Bytes { from, data, t_us } => {
                last_t = t_us;
                for x in d.push(from, &data) {
                    push(x.phase, x.side, x.kind, t_us, &mut events);
                }
            }
            Raw::Event {
                phase,
                side,
                kind,
                t_us,
            } => {
                last_t = t_us;
                push(phase, side, kind, t_us, &mut events);
            }
            Raw::Pending {
                phase,
                side,
                check,
                t_us,
            } => {
                last_t = t_us;
                push(phase, side, check.resolve(), t_us, &mut events);
            }
            Raw::Key { .. } => {}
        }
    }
    for x in d.finish() {
        push(x.phase, x.side, x.kind, last_t, &mut events);
    }

    let mut certificates = certificates(&events, started_unix as i64);
    for (role, der) in anchors {
        let info = describe(der, role, started_unix as i64);
        if let Some(existing) = certificates.iter_mut().find(|c| c.sha256 == info.sha256) {
            if !existing.role.contains(role.as_str()) {
                existing.role = format!("{}, {role}", existing.role);
            }
        } else {
            certificates.push(info);
        }
    }
    let outcome = outcome(&events, report);
    Trace {
        format: FORMAT.to_string(),
        scenario: scenario.to_string(),
        started_unix,
        tls: d.summary(),
        outcome,
        certificates,
        events,
    }
}

/// Every certificate carried in a Certificate message, described with its place in the chain.
fn certificates(events: &[Event], now: i64) -> Vec<CertInfo> {
    let mut out: Vec<CertInfo> = Vec::new();
    for e in events {
        let EventKind::Handshake { msg, hex, .. } = &e.kind else {
            continue;
        };
        if msg != "Certificate" {
            continue;
        }
        let Some(bytes) = unhex(hex) else { continue };
        for (i, der) in certificate_list(&bytes).into_iter().enumerate() {
            let role = format!("{} chain[{i}]", e.side.name());
            let info = describe(der, &role, now);
            if !out.iter().any(|c| c.sha256 == info.sha256) {
                out.push(info);
            }
        }
    }
    out
}

/// The DER certificates of a Certificate handshake message (header included); malformed → what parsed.
pub fn certificate_list(msg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let u24 = |b: &[u8]| ((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize;
    if msg.len() < 7 {
        return out;
    }
    let end = (7 + u24(&msg[4..7])).min(msg.len());
    let mut i = 7;
    while i + 3 <= end {
        let n = u24(&msg[i..i + 3]);
        i += 3;
        if i + n > end {
            break;
        }
        out.push(&msg[i..i + n]);
        i += n;
    }
    out
}

fn outcome(events: &[Event], report: Option<&DeviceReport>) -> Outcome {
    let failure = events.iter().find(|e| match &e.kind {
        EventKind::Check { ok, .. } => !ok,
        EventKind::Policy(p) => p.decision != "ALLOWED",
        EventKind::Error { .. } => true,
        _ => false,
    });
    let fatal_alert = |after: u32| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::Alert {
                level, description, ..
            } if e.seq >= after && level == "fatal" => Some(description.clone()),
            _ => None,
        })
    };
    if let Some(f) = failure {
        let alert = fatal_alert(f.seq);
        let (check, summary) = match &f.kind {
            EventKind::Check { check, reason, .. } => (
                Some(check.clone()),
                format!(
                    "Stopped in {}: the {}'s {} check failed — {}",
                    f.phase.title(),
                    f.side.name(),
                    check,
                    reason
                ),
            ),
            EventKind::Policy(p) => (
                Some(format!("policy {}", p.action)),
                format!(
                    "{} {} on {} — {}",
                    p.decision, p.action, p.resource, p.enforcement
                ),
            ),
            EventKind::Error { stage, message } => (None, format!("{stage}: {message}")),
            _ => (None, String::new()),
        };
        let summary = match &alert {
            Some(a) => format!("{summary} (alert {a} sent)"),
            None => summary,
        };
        return Outcome {
            ok: false,
            phase: f.phase,
            summary,
            failed_check: check,
            failed_side: Some(f.side),
            alert,
        };
    }
    if let Some(a) = fatal_alert(0) {
        return Outcome {
            ok: false,
            phase: Phase::Close,
            summary: format!("a fatal alert ended the session: {a}"),
            failed_check: None,
            failed_side: None,
            alert: Some(a),
        };
    }
    let closed = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Closed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let ok = report
        .map(|r| r.handshake_ok && (r.connected || !r.mqtt))
        .unwrap_or(true);
    let actions = report.map(|r| r.completed).unwrap_or(0);
    Outcome {
        ok,
        phase: Phase::Close,
        summary: if ok && report.is_some_and(|r| !r.mqtt) {
            "Both sides authenticated each other over TLS 1.2 (handshake only, no MQTT)."
                .to_string()
        } else if ok {
            format!(
                "Both sides authenticated each other over TLS 1.2 and {actions} MQTT action(s) were authorized and carried out."
            )
        } else {
            format!(
                "The session ended early: {}",
                closed.unwrap_or_else(|| "no reason recorded".into())
            )
        },
        failed_check: None,
        failed_side: None,
        alert: None,
    }
}
