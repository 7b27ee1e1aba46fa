//! The TLS dissector over arbitrary bytes from both sides, in any chunking.
//!
//! Input: a flags byte (bit 0: a key-log entry follows, 32 bytes of client random and 48 of master
//! secret, so decryption and the MQTT decoding inside records are reached), then frames
//! `[side: u8 (bit 0: 0 device, 1 broker)] [len: u16 BE] [len bytes]` (a short last frame takes
//! what is left). Each frame is one `push`.
//!
//! Checked besides "never panics": the complete records of a side are a prefix of what the side
//! sent, and merging a side's consecutive frames into one push changes neither the records nor
//! the events (bytes of a non-TLS stream aside, which show what was buffered when it was noticed).
#![no_main]

use iotls::tls::dissect::{Decoded, Dissector, KeyLogEntry};
use iotls::trace::{EventKind, Side};
use libfuzzer_sys::fuzz_target;

fn frames(mut data: &[u8]) -> (Vec<KeyLogEntry>, Vec<(Side, &[u8])>) {
    let mut keys = Vec::new();
    let Some((&flags, rest)) = data.split_first() else {
        return (keys, Vec::new());
    };
    data = rest;
    if flags & 1 == 1 && data.len() >= 80 {
        let mut client_random = [0u8; 32];
        client_random.copy_from_slice(&data[..32]);
        keys.push(KeyLogEntry {
            client_random,
            master_secret: data[32..80].to_vec(),
        });
        data = &data[80..];
    }
    let mut out = Vec::new();
    while let Some((&ctrl, rest)) = data.split_first() {
        let side = if ctrl & 1 == 0 {
            Side::Device
        } else {
            Side::Broker
        };
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]) as usize, rest),
            _ => (rest.len(), &rest[rest.len()..]),
        };
        let len = len.min(rest.len());
        out.push((side, &rest[..len]));
        data = &rest[len..];
    }
    (keys, out)
}

/// Events with the buffered bytes of a non-TLS stream left out (they depend on the chunking).
fn normalised(events: Vec<Decoded>) -> Vec<Decoded> {
    events
        .into_iter()
        .map(|mut d| {
            if let EventKind::Undecodable {
                hex,
                reason,
                not_tls: true,
                ..
            } = &mut d.kind
            {
                hex.clear();
                reason.clear();
            }
            d
        })
        .collect()
}

fn run(keys: Vec<KeyLogEntry>, pushes: &[(Side, Vec<u8>)]) -> (Vec<Decoded>, Vec<(Side, Vec<u8>)>) {
    let mut d = Dissector::new(keys);
    let mut events = Vec::new();
    let mut records = Vec::new();
    for (side, bytes) in pushes {
        events.extend(d.push(*side, bytes));
        records.extend(d.take_records().into_iter().map(|r| (r.from, r.bytes)));
    }
    events.extend(d.finish());
    records.extend(d.take_records().into_iter().map(|r| (r.from, r.bytes)));
    let _ = d.summary();
    let _ = d.handshake_messages().len();
    (normalised(events), records)
}

fuzz_target!(|data: &[u8]| {
    let (keys, frames) = frames(data);
    let chunked: Vec<(Side, Vec<u8>)> = frames.iter().map(|(s, b)| (*s, b.to_vec())).collect();
    let mut merged: Vec<(Side, Vec<u8>)> = Vec::new();
    for (side, bytes) in &frames {
        match merged.last_mut() {
            Some((s, b)) if s == side => b.extend_from_slice(bytes),
            _ => merged.push((*side, bytes.to_vec())),
        }
    }
    let (events_a, records_a) = run(keys.clone(), &chunked);
    let (events_b, records_b) = run(keys, &merged);
    assert_eq!(records_a, records_b, "records depend on the chunking");
    assert_eq!(events_a, events_b, "events depend on the chunking");
    for side in [Side::Device, Side::Broker] {
        let sent: Vec<u8> = frames
            .iter()
            .filter(|(s, _)| *s == side)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let recorded: Vec<u8> = records_a
            .iter()
            .filter(|(s, _)| *s == side)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        assert!(
            sent.starts_with(&recorded),
            "the records are not what the {side:?} sent"
        );
    }
});
