//! iotls's calculations of a session, as typed trace values (`crate::trace::calc`): the spans a
//! signature or a hash covers, the digests, the signer's public key, the key schedule, each
//! record's nonce and additional data, each Finished value — and, for each, the one command that
//! redoes it in a `--reproduce` directory ([`files`] names that directory's files).
//!
//! Pure functions, no I/O, no panics on malformed input: what cannot be read is `None`.

use super::keys::{self, AeadKind, KeyBlock, PrfHash, RecordLayout, SuiteParams};
use crate::trace::{
    hex, HandshakeType, KeyExpansion, KeyPart, KeySchedule, MasterSecret, RecordProtection,
    SessionHash, Side, SignatureCalc, Span,
};
use ring::digest;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The files of a `--reproduce` directory that the trace's commands name (docs/exports.md).
/// The commands run inside that directory.
pub mod files {
    use crate::trace::{HandshakeType, Side};

    /// The key-log line of the session (NSS format).
    pub const KEYLOG: &str = "keylog.txt";
    /// Bytes 6..38 of the ClientHello and of the ServerHello.
    pub const CLIENT_RANDOM: &str = "client_random.bin";
    pub const SERVER_RANDOM: &str = "server_random.bin";
    /// What the ServerKeyExchange signature covers: client_random ‖ server_random ‖ params.
    pub const SKE_SIGNED: &str = "server_kx_signed.bin";
    pub const SKE_PARAMS: &str = "server_kx_params.bin";
    pub const SKE_SIGNATURE: &str = "server_kx_signature.sig";
    /// What the CertificateVerify signature covers: every handshake message before it.
    pub const CV_SIGNED: &str = "certificate_verify_signed.bin";
    pub const CV_SIGNATURE: &str = "certificate_verify.sig";
    /// The extended master secret's session hash covers these bytes.
    pub const SESSION_HASH_TRANSCRIPT: &str = "session_hash_transcript.bin";
    /// What each Finished hashes.
    pub const CLIENT_FINISHED_TRANSCRIPT: &str = "client_finished_transcript.bin";
    pub const SERVER_FINISHED_TRANSCRIPT: &str = "server_finished_transcript.bin";
    /// The helper with the TLS 1.2 PRF, GHASH and Poly1305 (Python standard library only).
    pub const HELPER: &str = "tls12.py";

    /// The signer's public key (PEM) for a signature: the broker's for ServerKeyExchange, the
    /// device's for CertificateVerify.
    pub fn public_key(signer: Side) -> String {
        format!("{}-public-key.pem", signer.name())
    }

    /// Handshake message number `n` (from 1, in the order sent): `03-broker-Certificate.bin`
    /// (an unknown type: `07-broker-Unknown-99.bin`). Only letters, digits, `-` and `.`, so a
    /// script can name it unquoted.
    pub fn message(n: usize, from: Side, msg: HandshakeType) -> String {
        let name: String = msg
            .name()
            .chars()
            .filter(|c| *c != ')')
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("{n:02}-{}-{name}.bin", from.name())
    }

    /// A record, without extension: `records/device-05`. `.record` is the whole record as
    /// sent, `.encrypted` the encrypted content alone (without explicit nonce and tag).
    pub fn record(from: Side, index: u32) -> String {
        format!("records/{}-{index:02}", from.name())
    }

    /// A write key or IV of the key schedule, as hex: `client_write_key.hex`, `client_write_IV.hex`.
    pub fn key_part(name: &str) -> String {
        format!("{name}.hex")
    }
}

/// The hash a TLS 1.2 signature scheme signs with: its name and ring's algorithm (`none` and
/// `None` for Ed25519 / Ed448, which sign the bytes themselves).
pub fn scheme_hash(code: u16) -> (&'static str, Option<&'static digest::Algorithm>) {
    match code {
        0x0807 | 0x0808 => ("none", None),
        0x0804 | 0x0809 => ("sha256", Some(&digest::SHA256)),
        0x0805 | 0x080a => ("sha384", Some(&digest::SHA384)),
        0x0806 | 0x080b => ("sha512", Some(&digest::SHA512)),
        c => match c >> 8 {
            2 => ("sha1", Some(&digest::SHA1_FOR_LEGACY_USE_ONLY)),
            5 => ("sha384", Some(&digest::SHA384)),
            6 => ("sha512", Some(&digest::SHA512)),
            _ => ("sha256", Some(&digest::SHA256)),
        },
    }
}

/// rustls's name of a signature scheme, e.g. `ECDSA_NISTP256_SHA256` (the `scheme` fact's words).
pub fn scheme_name(code: u16) -> String {
    format!("{:?}", rustls::SignatureScheme::from(code))
}

/// The openssl command that checks a TLS 1.2 signature with the signer's public key.
pub fn verify_command(code: u16, public_key: &str, signature: &str, signed: &str) -> String {
    let (hash, _) = scheme_hash(code);
    if hash == "none" {
        return format!(
            "openssl pkeyutl -verify -pubin -inkey {public_key} -rawin -in {signed} -sigfile {signature}"
        );
    }
    let pss = if (0x0804..=0x0806).contains(&code) || (0x0809..=0x080b).contains(&code) {
        " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1"
    } else {
        ""
    };
    format!("openssl dgst -{hash}{pss} -verify {public_key} -signature {signature} {signed}")
}

/// The SubjectPublicKeyInfo (DER) of a certificate, if it parses.
pub fn spki(cert: &[u8]) -> Option<Vec<u8>> {
    X509Certificate::from_der(cert)
        .ok()
        .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
}

/// A signature, worked out: the digest of the signed bytes, the signer's key, the command.
/// `signed` are the spans of `message`; `signer` is the side whose certificate signed.
pub fn signature(
    signer: Side,
    signed: Vec<Span>,
    message: &[u8],
    scheme: u16,
    signature: &[u8],
    cert: &[u8],
) -> SignatureCalc {
    let (hash, alg) = scheme_hash(scheme);
    let (sig_file, signed_file) = match signer {
        Side::Broker => (files::SKE_SIGNATURE, files::SKE_SIGNED),
        _ => (files::CV_SIGNATURE, files::CV_SIGNED),
    };
    SignatureCalc {
        scheme: scheme_name(scheme),
        scheme_code: scheme,
        hash_algorithm: hash.to_string(),
        signed_len: message.len(),
        signed,
        digest: alg
            .map(|a| digest::digest(a, message).as_ref().to_vec())
            .unwrap_or_default(),
        signature: signature.to_vec(),
        public_key: spki(cert).unwrap_or_default(),
        certificate: hex(digest::digest(&digest::SHA256, cert).as_ref()),
        reproduce: verify_command(scheme, &files::public_key(signer), sig_file, signed_file),
    }
}

/// The spans of whole handshake messages laid end to end, with their senders.
pub fn transcript_spans(msgs: &[(Side, Vec<u8>)]) -> Vec<Span> {
    let mut at = 0;
    msgs.iter()
        .map(|(from, m)| {
            let t = HandshakeType(m.first().copied().unwrap_or(0));
            let s = Span {
                name: t.name(),
                from: *from,
                msg: t,
                offset: at,
                len: m.len(),
            };
            at += m.len();
            s
        })
        .collect()
}

/// The handshake messages inside signed bytes that are a transcript (what CertificateVerify
/// signs), with their senders in TLS 1.2's order: the ClientHello is the device's, the messages
/// up to ServerHelloDone the broker's, the rest the device's. Bytes that do not end on a whole
/// message end in a span named `rest`.
pub fn split_transcript(signed: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut server_done = false;
    while at < signed.len() {
        let t = signed[at];
        let len = signed
            .get(at + 1..at + 4)
            .map(|b| 4 + ((b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize));
        let msg = HandshakeType(t);
        let from = match t {
            1 => Side::Device,
            _ if server_done => Side::Device,
            _ => Side::Broker,
        };
        match len {
            Some(len) if at + len <= signed.len() => {
                out.push(Span {
                    name: msg.name(),
                    from,
                    msg,
                    offset: at,
                    len,
                });
                at += len;
                if msg == HandshakeType::SERVER_HELLO_DONE {
                    server_done = true;
                }
            }
            _ => {
                out.push(Span {
                    name: "rest".into(),
                    from,
                    msg,
                    offset: at,
                    len: signed.len() - at,
                });
                break;
            }
        }
    }
    out
}

/// The three spans of what a ServerKeyExchange signature covers.
pub fn ske_spans(params_len: usize) -> Vec<Span> {
    vec![
        Span {
            name: "client_random".into(),
            from: Side::Device,
            msg: HandshakeType::CLIENT_HELLO,
            offset: 0,
            len: 32,
        },
        Span {
            name: "server_random".into(),
            from: Side::Broker,
            msg: HandshakeType::SERVER_HELLO,
            offset: 32,
            len: 32,
        },
        Span {
            name: "ecdhe_params".into(),
            from: Side::Broker,
            msg: HandshakeType::SERVER_KEY_EXCHANGE,
            offset: 64,
            len: params_len,
        },
    ]
}

/// A ServerKeyExchange (header included): the ECDHE parameters, the scheme and the signature.
pub fn parse_ske(msg: &[u8]) -> Option<(&[u8], u16, &[u8])> {
    let body = msg.get(4..)?;
    if body.first() != Some(&3) {
        return None;
    }
    let plen = 4 + *body.get(3)? as usize;
    let params = body.get(..plen)?;
    let (scheme, sig) = digitally_signed(body.get(plen..)?)?;
    Some((params, scheme, sig))
}

/// A CertificateVerify (header included): the scheme and the signature.
pub fn parse_cv(msg: &[u8]) -> Option<(u16, &[u8])> {
    digitally_signed(msg.get(4..)?)
}

fn digitally_signed(b: &[u8]) -> Option<(u16, &[u8])> {
    let scheme = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let len = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize;
    Some((scheme, b.get(4..4 + len)?))
}

/// The first certificate of a Certificate message (header included).
pub fn leaf_of(certificate_msg: &[u8]) -> Option<&[u8]> {
    let u24 = |b: &[u8]| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize;
    let len = u24(certificate_msg.get(7..10)?);
    certificate_msg.get(10..10 + len)
}

/// The names and lengths of the key block's parts, in the order RFC 5246 §6.3 cuts them
/// (AEAD suites have no MAC keys).
fn key_parts(kb: &KeyBlock, aead: AeadKind) -> Vec<KeyPart> {
    let (k, iv) = (aead.key_len(), aead.fixed_iv_len());
    [
        ("client_write_key", 0, k, &kb.client.key),
        ("server_write_key", k, k, &kb.server.key),
        ("client_write_IV", 2 * k, iv, &kb.client.iv),
        ("server_write_IV", 2 * k + iv, iv, &kb.server.iv),
    ]
    .into_iter()
    .map(|(name, offset, len, value)| KeyPart {
        name: name.into(),
        offset,
        len,
        value: value.clone(),
    })
    .collect()
}

/// The inputs of the key schedule the dissector has.
pub struct ScheduleInputs<'a> {
    pub suite: SuiteParams,
    pub cipher_suite: String,
    pub master_secret: &'a [u8],
    pub client_random: &'a [u8; 32],
    pub server_random: &'a [u8; 32],
    /// The handshake messages so far, when both hellos negotiated the extended master secret.
    pub ems_transcript: Option<&'a [(Side, Vec<u8>)]>,
}

/// iotls's key schedule, from the key log's master secret.
pub fn key_schedule(i: &ScheduleInputs<'_>) -> KeySchedule {
    let hash = i.suite.hash;
    let session_hash = i.ems_transcript.map(|msgs| {
        // RFC 7627: every handshake message up to and including ClientKeyExchange.
        let upto = msgs
            .iter()
            .position(|(s, m)| *s == Side::Device && m.first() == Some(&16))
            .map(|p| p + 1)
            .unwrap_or(msgs.len());
        let msgs = &msgs[..upto];
        let bytes: Vec<u8> = msgs.iter().flat_map(|(_, m)| m.iter().copied()).collect();
        SessionHash {
            messages: transcript_spans(msgs),
            len: bytes.len(),
            hash: keys::transcript_hash(hash, &bytes),
            reproduce: session_hash_command(hash),
        }
    });
    let derivation = if session_hash.is_some() {
        "PRF(pre_master_secret, \"extended master secret\", session_hash)[0..48]"
    } else {
        "PRF(pre_master_secret, \"master secret\", client_random ‖ server_random)[0..48]"
    };
    let kb = keys::key_block(i.suite, i.master_secret, i.client_random, i.server_random);
    let parts = key_parts(&kb, i.suite.aead);
    let len = parts.iter().map(|p| p.len).sum::<usize>();
    let key_block: Vec<u8> = parts.iter().flat_map(|p| p.value.clone()).collect();
    KeySchedule {
        cipher_suite: i.cipher_suite.clone(),
        prf_hash: hash.id().into(),
        client_random: i.client_random.to_vec(),
        server_random: i.server_random.to_vec(),
        session_hash,
        master_secret: MasterSecret {
            source: "key_log".into(),
            value: i.master_secret.to_vec(),
            derivation: derivation.into(),
        },
        key_expansion: KeyExpansion {
            label: "key expansion".into(),
            seed: [i.server_random.as_slice(), i.client_random.as_slice()].concat(),
            key_block,
            aead: i.suite.aead.name().into(),
            parts,
            reproduce: key_block_command(hash, len),
        },
    }
}

/// The key a side encrypts with: `client_write_key` (device) or `server_write_key` (broker).
pub fn write_key(from: Side) -> &'static str {
    match from {
        Side::Broker => "server_write_key",
        _ => "client_write_key",
    }
}

/// The record protection of a key schedule's `aead` name (`AES-128-GCM`, …).
pub fn aead_by_name(name: &str) -> Option<AeadKind> {
    [
        AeadKind::Aes128Gcm,
        AeadKind::Aes256Gcm,
        AeadKind::Chacha20Poly1305,
    ]
    .into_iter()
    .find(|a| a.name() == name)
}

/// The openssl command that decrypts a record's encrypted part (without checking its tag): the
/// block cipher in counter mode from the counter the AEAD uses for the plaintext — 2 for AES-GCM
/// (1 makes the tag's mask), 1 for ChaCha20 (0 makes the Poly1305 key; openssl's IV is the
/// counter, little-endian, then the nonce).
pub fn record_command(aead: AeadKind, from: Side, index: u32, nonce: &[u8]) -> String {
    let key = files::key_part(write_key(from));
    let input = format!("{}.encrypted", files::record(from, index));
    match aead {
        AeadKind::Chacha20Poly1305 => format!(
            "openssl enc -d -chacha20 -K \"$(cat {key})\" -iv 01000000{} -in {input}",
            hex(nonce)
        ),
        AeadKind::Aes128Gcm | AeadKind::Aes256Gcm => format!(
            "openssl enc -d -aes-{}-ctr -K \"$(cat {key})\" -iv {}00000002 -in {input}",
            aead.key_len() * 8,
            hex(nonce)
        ),
    }
}

/// How one record was protected, from the layout the record cipher used.
pub fn protection(aead: AeadKind, from: Side, index: u32, l: RecordLayout) -> RecordProtection {
    RecordProtection {
        aead: aead.name().into(),
        key: write_key(from).into(),
        seq: l.seq,
        reproduce: record_command(aead, from, index, &l.nonce),
        explicit_nonce: l.explicit_nonce,
        nonce: l.nonce.to_vec(),
        aad: l.aad.to_vec(),
        tag: l.tag,
    }
}

/// The command that hashes what the extended master secret's session hash covers.
pub fn session_hash_command(hash: PrfHash) -> String {
    format!(
        "openssl dgst -{} {}",
        hash.id(),
        files::SESSION_HASH_TRANSCRIPT
    )
}

/// The command that recomputes the key block (`len` bytes) from the key-log line and the randoms.
pub fn key_block_command(hash: PrfHash, len: usize) -> String {
    format!(
        "python3 {} prf {} {} \"key expansion\" {} {} {len}",
        files::HELPER,
        hash.id(),
        files::KEYLOG,
        files::SERVER_RANDOM,
        files::CLIENT_RANDOM
    )
}

/// The command that recomputes a Finished value.
pub fn finished_command(hash: PrfHash, label: &str) -> String {
    let transcript = if label.starts_with("client") {
        files::CLIENT_FINISHED_TRANSCRIPT
    } else {
        files::SERVER_FINISHED_TRANSCRIPT
    };
    format!(
        "python3 {} prf {h} {} \"{label}\" \"{h}({transcript})\" 12",
        files::HELPER,
        files::KEYLOG,
        h = hash.id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t, 0, 0, body.len() as u8];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn a_transcript_splits_into_its_messages_with_their_senders() {
        let parts = [
            msg(1, &[1; 5]),
            msg(2, &[2; 3]),
            msg(11, &[3; 7]),
            msg(14, &[]),
            msg(11, &[4; 2]),
            msg(16, &[5; 4]),
        ];
        let signed = parts.concat();
        let spans = split_transcript(&signed);
        let got: Vec<(String, Side, usize, usize)> = spans
            .iter()
            .map(|s| (s.name.clone(), s.from, s.offset, s.len))
            .collect();
        assert_eq!(
            got,
            [
                ("ClientHello".into(), Side::Device, 0, 9),
                ("ServerHello".into(), Side::Broker, 9, 7),
                ("Certificate".into(), Side::Broker, 16, 11),
                ("ServerHelloDone".into(), Side::Broker, 27, 4),
                ("Certificate".into(), Side::Device, 31, 6),
                ("ClientKeyExchange".into(), Side::Device, 37, 8),
            ]
        );
        // Cut short: the last span is what is left.
        let cut = split_transcript(&signed[..signed.len() - 2]);
        assert_eq!(cut.last().unwrap().name, "rest");
        assert_eq!(cut.iter().map(|s| s.len).sum::<usize>(), signed.len() - 2);
    }

    #[test]
    fn message_files_can_be_named_unquoted() {
        assert_eq!(
            files::message(3, Side::Broker, HandshakeType::CERTIFICATE),
            "03-broker-Certificate.bin"
        );
        assert_eq!(
            files::message(12, Side::Device, HandshakeType(99)),
            "12-device-Unknown-99.bin"
        );
    }

    #[test]
    fn commands_take_the_digest_from_the_scheme() {
        assert_eq!(
            verify_command(0x0403, "p.pem", "s.sig", "m.bin"),
            "openssl dgst -sha256 -verify p.pem -signature s.sig m.bin"
        );
        assert!(verify_command(0x0503, "p", "s", "m").starts_with("openssl dgst -sha384 "));
        assert!(verify_command(0x0805, "p", "s", "m").contains("rsa_padding_mode:pss"));
        assert!(verify_command(0x0807, "p", "s", "m").starts_with("openssl pkeyutl -verify"));
        assert_eq!(scheme_name(0x0403), "ECDSA_NISTP256_SHA256");
    }

    #[test]
    fn unreadable_signatures_are_none() {
        assert!(parse_cv(&[15, 0, 0, 4, 4, 3, 0, 9]).is_none());
        assert!(parse_ske(&[12, 0, 0, 1, 1]).is_none());
        assert_eq!(
            parse_cv(&[15, 0, 0, 5, 4, 3, 0, 1, 0xaa]),
            Some((0x0403, &[0xaa][..]))
        );
    }
}
