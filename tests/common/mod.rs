//! Shared helpers for integration tests.
#![allow(dead_code)]

pub mod peers;
pub mod tmux;

use iotls::trace::{CheckId, Event, EventKind, HandshakeType, Side, Trace};

/// Whether a real peer program is available. With `IOTLS_REQUIRE_PEERS=1` (CI) a missing peer is a
/// failure; otherwise the test says clearly that it skipped.
pub fn peer_available(program: &str, test: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("IOTLS_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
            panic!("{test}: the peer program `{program}` is not installed, and IOTLS_REQUIRE_PEERS=1 requires it");
        }
        eprintln!("SKIPPED {test}: `{program}` is not installed (set IOTLS_REQUIRE_PEERS=1 to make this a failure)");
    }
    found
}

/// Handshake message names in order, as (sender, name).
pub fn handshake_sequence(t: &Trace) -> Vec<(Side, String)> {
    t.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Handshake { msg, .. } => Some((e.side, msg.name())),
            _ => None,
        })
        .collect()
}

/// The bytes of a handshake event.
pub fn message_bytes(e: &Event) -> Vec<u8> {
    match &e.kind {
        EventKind::Handshake { hex, .. } => hex.clone(),
        _ => panic!("not a handshake event"),
    }
}

/// The check event with this name made by a side (not iotls's own recomputation).
pub fn check<'a>(t: &'a Trace, name: &str) -> Option<&'a Event> {
    t.events.iter().find(|e| {
        e.side != Side::Iotls
            && matches!(&e.kind, EventKind::Check { check, .. } if check.as_str() == name)
    })
}

/// The check event with this name recomputed by iotls itself.
pub fn iotls_check<'a>(t: &'a Trace, name: &str) -> Option<&'a Event> {
    t.events.iter().find(|e| {
        e.side == Side::Iotls
            && matches!(&e.kind, EventKind::Check { check, .. } if check.as_str() == name)
    })
}

/// A check id by its JSON name.
pub fn check_id(name: &str) -> CheckId {
    serde_json::from_value(serde_json::Value::String(name.into())).expect("a check id")
}

pub fn check_ok(t: &Trace, name: &str) -> Option<bool> {
    check(t, name).map(|e| matches!(&e.kind, EventKind::Check { ok: true, .. }))
}

pub fn fact(e: &Event, name: &str) -> String {
    match &e.kind {
        EventKind::Check { facts, .. } => facts
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The wire transcript a CertificateVerify signs: every handshake message from ClientHello up to
/// (not including) CertificateVerify, as recorded from the wire.
pub fn transcript_before_certificate_verify(t: &Trace) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &t.events {
        if let EventKind::Handshake { msg, hex, .. } = &e.kind {
            if *msg == HandshakeType::CERTIFICATE_VERIFY {
                break;
            }
            out.extend(hex.iter().copied());
        }
    }
    out
}
