//! The calculations of a session, with this run's values: what each signature covers, how the
//! master secret came in and the record keys came out, how each record was protected, what each
//! Finished hashes. iotls computes them itself from the bytes on the wire and the key log
//! (`src/tls/calc.rs`); they are iotls's own arithmetic, never a side's verdict.
//!
//! Each calculation carries `reproduce`: the one command that redoes it, to run inside the
//! directory `--reproduce DIR` writes (docs/exports.md). docs/trace-format.md documents every key.

use super::{hexbytes, HandshakeType, Side};
use serde::{Deserialize, Serialize};

/// A stretch of bytes that were signed or hashed: a whole handshake message (4-byte header
/// included), or one part of a message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Span {
    /// What the bytes are: the message's name (`ClientHello`, …) for a whole message, or the
    /// part's (`client_random`, `server_random`, `ecdhe_params`).
    pub name: String,
    /// Who sent the bytes.
    pub from: Side,
    /// The handshake message the bytes are, or are taken from.
    pub msg: HandshakeType,
    /// Where the bytes start in the signed (or hashed) bytes.
    pub offset: usize,
    /// How many bytes.
    pub len: usize,
}

/// A handshake signature (ServerKeyExchange or CertificateVerify): what was signed, with which
/// hash, by which key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureCalc {
    /// rustls's name of the signature scheme, e.g. `ECDSA_NISTP256_SHA256`.
    pub scheme: String,
    /// The scheme's code point, e.g. 1027 (0x0403).
    pub scheme_code: u16,
    /// The hash the scheme signs with: `sha256`, `sha384`, `sha512`, or `none` (Ed25519 signs the
    /// bytes themselves).
    pub hash_algorithm: String,
    /// Length of the signed bytes: the sum of `signed`'s lengths.
    pub signed_len: usize,
    /// The signed bytes, span by span, in order; the spans tile them.
    pub signed: Vec<Span>,
    /// `hash_algorithm` of the signed bytes (empty for `none`), computed by iotls.
    #[serde(with = "hexbytes")]
    pub digest: Vec<u8>,
    /// The signature as sent (DER for ECDSA).
    #[serde(with = "hexbytes")]
    pub signature: Vec<u8>,
    /// The signer's public key: the SubjectPublicKeyInfo (DER) of the signer's certificate.
    #[serde(with = "hexbytes")]
    pub public_key: Vec<u8>,
    /// SHA-256 of the signer's certificate (its key in `certificates`).
    pub certificate: String,
    /// The command that checks the signature in a `--reproduce` directory.
    pub reproduce: String,
}

/// iotls's key schedule of the session: from the key log's master secret to the record keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeySchedule {
    /// IANA name of the cipher suite.
    pub cipher_suite: String,
    /// The hash of the suite's PRF: `sha256` or `sha384`.
    pub prf_hash: String,
    #[serde(with = "hexbytes")]
    pub client_random: Vec<u8>,
    #[serde(with = "hexbytes")]
    pub server_random: Vec<u8>,
    /// When both hellos carried `extended_master_secret`: the session hash the master secret was
    /// derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_hash: Option<SessionHash>,
    pub master_secret: MasterSecret,
    pub key_expansion: KeyExpansion,
}

/// The session hash of the extended master secret (RFC 7627).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionHash {
    /// The hashed handshake messages, ClientHello … ClientKeyExchange, with their offsets.
    pub messages: Vec<Span>,
    /// Length of the hashed bytes.
    pub len: usize,
    /// `prf_hash` of those bytes.
    #[serde(with = "hexbytes")]
    pub hash: Vec<u8>,
    pub reproduce: String,
}

/// The master secret: an input, never a calculation iotls could make.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MasterSecret {
    /// Always `key_log`: the value comes from the key-log line (`CLIENT_RANDOM`) that rustls
    /// exported. It is derived from the pre-master secret (the ECDHE shared secret), which never
    /// leaves rustls, so it cannot be recomputed from the wire.
    pub source: String,
    /// The 48 bytes.
    #[serde(with = "hexbytes")]
    pub value: Vec<u8>,
    /// How the sides derived it, for people:
    /// `PRF(pre_master_secret, "extended master secret", session_hash)[0..48]` or
    /// `PRF(pre_master_secret, "master secret", client_random ‖ server_random)[0..48]`.
    pub derivation: String,
}

/// `key_block = PRF(master_secret, "key expansion", server_random ‖ client_random)`, split.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyExpansion {
    /// `key expansion`.
    pub label: String,
    /// server_random ‖ client_random.
    #[serde(with = "hexbytes")]
    pub seed: Vec<u8>,
    /// The key block: as many PRF bytes as the keys need.
    #[serde(with = "hexbytes")]
    pub key_block: Vec<u8>,
    /// The record protection the keys are for: `AES-128-GCM`, `AES-256-GCM`,
    /// `ChaCha20-Poly1305`.
    pub aead: String,
    /// The key block's parts, in order: `client_write_key`, `server_write_key`,
    /// `client_write_IV`, `server_write_IV`.
    pub parts: Vec<KeyPart>,
    pub reproduce: String,
}

/// One part of the key block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyPart {
    /// `client_write_key`, `server_write_key`, `client_write_IV`, `server_write_IV`.
    pub name: String,
    /// Where the part is in the key block.
    pub offset: usize,
    pub len: usize,
    #[serde(with = "hexbytes")]
    pub value: Vec<u8>,
}

/// How one encrypted record was protected (RFC 5246 §6.2.3.3; RFC 5288, RFC 7905).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordProtection {
    /// `AES-128-GCM`, `AES-256-GCM`, `ChaCha20-Poly1305`.
    pub aead: String,
    /// The key of the key schedule: `client_write_key` (device) or `server_write_key` (broker).
    pub key: String,
    /// The record's sequence number in its direction, from 0 after ChangeCipherSpec.
    pub seq: u64,
    /// The 8 bytes after the record header (AES-GCM); empty for ChaCha20-Poly1305.
    #[serde(with = "hexbytes")]
    pub explicit_nonce: Vec<u8>,
    /// The 12-byte nonce: write_IV ‖ explicit_nonce (AES-GCM), or write_IV XOR the sequence
    /// number, left-padded (ChaCha20-Poly1305).
    #[serde(with = "hexbytes")]
    pub nonce: Vec<u8>,
    /// The 13 bytes of additional data: seq_num (8) ‖ content type (1) ‖ version (2) ‖
    /// plaintext length (2).
    #[serde(with = "hexbytes")]
    pub aad: Vec<u8>,
    /// The 16-byte authentication tag: the record's last 16 bytes.
    #[serde(with = "hexbytes")]
    pub tag: Vec<u8>,
    /// The command that decrypts the record (without checking the tag) in a `--reproduce`
    /// directory.
    pub reproduce: String,
}

/// A Finished value: `PRF(master_secret, label, Hash(transcript))[0..12]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FinishedCalc {
    /// `client finished` or `server finished`.
    pub label: String,
    /// The suite's PRF hash: `sha256` or `sha384`.
    pub prf_hash: String,
    /// The hashed handshake messages (every one before this Finished), with their offsets.
    pub transcript: Vec<Span>,
    /// Length of the hashed bytes.
    pub transcript_len: usize,
    /// `prf_hash` of those bytes.
    #[serde(with = "hexbytes")]
    pub transcript_hash: Vec<u8>,
    /// The 12 bytes recomputed from the key log.
    #[serde(with = "hexbytes")]
    pub expected: Vec<u8>,
    /// The 12 bytes decrypted from the wire.
    #[serde(with = "hexbytes")]
    pub received: Vec<u8>,
    pub reproduce: String,
}
