//! TLS 1.2 wire decoding: records, handshake messages, key derivation, record decryption.
//!
//! - [`calc`]: iotls's calculations as trace values (signed spans, digests, key schedule, record
//!   nonces and additional data, Finished) and the commands that redo them.
//! - [`dissect`]: the entry point — feeds both directions' bytes, returns decoded trace events.
//! - [`handshake`]: the fields of each handshake message, with byte offsets.
//! - [`keys`]: TLS 1.2 PRF, key block, AEAD record decryption, Finished `verify_data`.
//! - [`names`]: IANA names of cipher suites, groups, signature schemes, extensions, alerts.

pub mod calc;
pub mod dissect;
pub mod handshake;
pub mod keys;
pub mod names;

pub use dissect::{Decoded, Dissector, KeyLogEntry};
