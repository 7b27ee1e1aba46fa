//! Test traces for the views: saved traces of real sessions (`fixtures/traces/`, written by
//! `iotls tour LESSON --json`; `tests/fixtures.rs` checks they still load and match a fresh run,
//! and rewrites them with `IOTLS_UPDATE_FIXTURES=1`), and two hand-built edge cases that no real
//! run produces: an empty trace (a session that never started), and unknown messages,
//! undecodable bytes and out-of-range fields (what a corrupted or hostile saved trace may hold).

use crate::trace::*;

/// The saved traces, by lesson.
pub const SAVED: &[(&str, &str)] = &[
    (
        "pizza-button",
        include_str!("../../fixtures/traces/pizza-button.json"),
    ),
    (
        "untrusted-device",
        include_str!("../../fixtures/traces/untrusted-device.json"),
    ),
];

/// A real session: the pizza button orders on its own topic.
pub fn pizza() -> Trace {
    saved("pizza-button")
}

/// A real session: a counterfeit button whose CA the broker does not trust.
pub fn unknown_ca() -> Trace {
    saved("untrusted-device")
}

/// The saved trace of `lesson` (a test helper: the fixtures are embedded, and a test that
/// cannot read one should fail loudly).
pub fn saved(lesson: &str) -> Trace {
    let (_, json) = SAVED
        .iter()
        .find(|(l, _)| *l == lesson)
        .expect("a saved trace of this lesson");
    serde_json::from_str(json).expect("a saved trace in the current format")
}

/// A trace with nothing in it.
pub fn empty() -> Trace {
    Trace {
        format: FORMAT.into(),
        scenario: "empty".into(),
        started_unix: 0,
        tls: None,
        outcome: Outcome {
            ok: false,
            phase: Phase::Connect,
            summary: String::new(),
            failure: None,
            mqtt: Vec::new(),
            tls_completed: false,
        },
        certificates: Vec::new(),
        records: Vec::new(),
        events: Vec::new(),
        replay: None,
        words: Default::default(),
    }
}

/// Odd events: an unknown handshake message, undecodable bytes, out-of-range fields.
pub fn odd() -> Trace {
    let mut t = empty();
    t.events = vec![
        Event {
            seq: 0,
            t_us: 0,
            phase: Phase::Hello,
            side: Side::Device,
            kind: EventKind::Handshake {
                msg: HandshakeType(99),
                msg_type: 99,
                hex: vec![0x63],
                record: 0,
                encrypted: false,
                ciphertext: None,
                fields: vec![Field {
                    name: "x".repeat(200),
                    offset: 9999,
                    len: 5,
                    value: "ü".repeat(300),
                    depth: 7,
                }],
                signature: None,
                protection: None,
            },
        },
        Event {
            seq: 1,
            t_us: 0,
            phase: Phase::Hello,
            side: Side::Broker,
            kind: EventKind::Undecodable {
                hex: b"HTTP/1.1".to_vec(),
                reason: "HTTP, not TLS".into(),
                record: None,
                not_tls: true,
            },
        },
        Event {
            seq: 2,
            t_us: 0,
            phase: Phase::Mqtt,
            side: Side::Broker,
            kind: EventKind::AppData {
                ciphertext: vec![0x17, 3, 3, 0],
                plaintext: None,
                record: 9,
                mqtt: vec![],
                mqtt_not_listed: 0,
                protection: None,
            },
        },
        Event {
            seq: 3,
            t_us: 0,
            phase: Phase::Close,
            side: Side::Device,
            kind: EventKind::Error {
                stage: Stage::TcpConnect,
                message: "connection refused".into(),
                failure: None,
            },
        },
    ];
    t
}
