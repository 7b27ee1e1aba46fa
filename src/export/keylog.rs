//! The NSS key log format: one line `LABEL <client_random hex> <secret hex>` per secret, the
//! format rustls's `KeyLogFile`, browsers and curl write to `SSLKEYLOGFILE` and Wireshark reads.
//! For TLS 1.2 the label is `CLIENT_RANDOM` and the secret is the 48-byte master secret.
//!
//! The lines come from the trace's `secret` events. In the tour both ends are iotls's and both
//! rustls instances log the same line; it is written once.

use crate::trace::{hex, EventKind, Trace};

/// The key log of one session, one line per distinct secret, in the order they were logged
/// (empty when the handshake ended before any secret was derived).
pub fn lines(trace: &Trace) -> String {
    let mut out = String::new();
    let mut seen: Vec<(&str, &[u8], &[u8])> = Vec::new();
    for e in &trace.events {
        if let EventKind::Secret {
            label,
            client_random,
            secret,
        } = &e.kind
        {
            let key = (label.as_str(), client_random.as_slice(), secret.as_slice());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            out.push_str(&format!("{label} {} {}\n", hex(client_random), hex(secret)));
        }
    }
    out
}
