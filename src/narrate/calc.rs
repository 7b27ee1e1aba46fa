//! The calculations of a session as rows of text, shared by the terminal UI's calculation screens
//! and `--plain`: what each signature covers and who verified it, the key schedule, each
//! Finished, each encrypted record's nonce and additional data. Every value is the trace's
//! (`src/trace/calc.rs`); this module only lays them out, sums the spans and names the
//! `reproduce.sh` check that redoes each calculation.

use crate::trace::{
    hex, CheckId, Event, EventKind, FinishedCalc, HandshakeType, KeySchedule, RecordProtection,
    Side, SignatureCalc, Span, Trace,
};

/// One row of a calculation: a name, its value, and where its bytes are in [`Calc::bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub value: String,
    pub range: Option<(usize, usize)>,
}

/// A calculation screen: its rows, the bytes it covers (signed or hashed bytes, the key block),
/// and the `reproduce.sh` check that redoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calc {
    /// One line: what is calculated, e.g. `CertificateVerify: what the device signed`.
    pub title: String,
    pub rows: Vec<Row>,
    /// The bytes the spans of `rows` point into (the hex view shows them).
    pub bytes: Option<Vec<u8>>,
    /// The check of `reproduce.sh` that redoes this calculation.
    pub check: &'static str,
}

/// Every check name `reproduce.sh` knows (`sh DIR/reproduce.sh NAME`), in the order it runs them:
/// the `checks` list of `src/export/reproduce-preamble.sh` (tests/reproduce.rs runs the script and
/// checks each line it prints names one of these).
pub const CHECKS: &[&str] = &[
    "server_kx_signature",
    "certificate_verify",
    "session_hash",
    "master_secret",
    "key_block",
    "records",
    "client_finished",
    "server_finished",
];

/// The command that redoes check `check` for the session on screen: the tour writes its
/// `--reproduce` directory for the session shown when it quits.
pub fn redo_command(check: &str) -> String {
    format!("iotls tour --reproduce DIR && sh DIR/reproduce.sh {check}")
}

fn row(name: &str, value: impl Into<String>) -> Row {
    Row {
        name: name.to_string(),
        value: value.into(),
        range: None,
    }
}

/// The calculation of event `i`, if it has one: a signature check, iotls's key schedule,
/// iotls's Finished recomputation.
pub fn of_event(trace: &Trace, i: usize) -> Option<Calc> {
    let e = trace.events.get(i)?;
    match &e.kind {
        EventKind::Check {
            check,
            ok,
            signature: Some(sig),
            ..
        } => Some(signature(trace, Some((e.side, *ok)), *check, sig)),
        // A signature no side of this trace checked (the receiver is not iotls's, or the
        // handshake ended first): the calculation from the wire, on the message.
        EventKind::Handshake {
            msg,
            signature: Some(sig),
            ..
        } => {
            let check = if *msg == HandshakeType::SERVER_KEY_EXCHANGE {
                CheckId::ServerKxSignature
            } else {
                CheckId::CertificateVerify
            };
            let checked = trace.events.iter().any(|c| {
                matches!(&c.kind, EventKind::Check { check: k, signature: Some(_), .. } if *k == check)
            });
            (!checked).then(|| signature(trace, None, check, sig))
        }
        EventKind::Check {
            ok,
            finished: Some(f),
            ..
        } => Some(finished(trace, e, *ok, f)),
        EventKind::KeySchedule(k) => Some(key_schedule(trace, k)),
        _ => None,
    }
}

/// `145 + 57 + 941 = 1143`: the lengths of the spans, summed.
pub fn sum_text(spans: &[Span]) -> String {
    let total: usize = spans.iter().map(|s| s.len).sum();
    let parts: Vec<String> = spans.iter().map(|s| s.len.to_string()).collect();
    format!("{} = {total} bytes", parts.join(" + "))
}

fn span_rows(spans: &[Span]) -> Vec<Row> {
    spans
        .iter()
        .map(|s| Row {
            name: s.name.clone(),
            value: format!(
                "{} bytes from the {}, at {}",
                s.len,
                s.from.name(),
                s.offset
            ),
            range: Some((s.offset, s.len)),
        })
        .collect()
}

/// The bytes the spans tile, rebuilt from the handshake messages of the trace: whole messages in
/// the order sent, or the parts of the ServerKeyExchange's signed bytes. `None` when the trace
/// does not hold them all.
pub fn span_bytes(trace: &Trace, spans: &[Span]) -> Option<Vec<u8>> {
    let msgs: Vec<(Side, HandshakeType, &[u8])> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Handshake { msg, hex, .. } => Some((e.side, *msg, hex.as_slice())),
            _ => None,
        })
        .collect();
    let find = |side: Side, t: HandshakeType| {
        msgs.iter()
            .find(|(s, m, _)| *s == side && *m == t)
            .map(|m| m.2)
    };
    let mut out = Vec::new();
    let mut next = 0; // the next whole message of the transcript
    for s in spans {
        if s.offset != out.len() {
            return None;
        }
        let part: &[u8] = match s.name.as_str() {
            "client_random" | "server_random" => find(s.from, s.msg)?.get(6..38)?,
            "ecdhe_params" => find(s.from, s.msg)?.get(4..4 + s.len)?,
            _ => {
                let k = msgs[next..]
                    .iter()
                    .position(|(side, m, _)| *side == s.from && *m == s.msg)?;
                next += k + 1;
                msgs[next - 1].2
            }
        };
        if part.len() != s.len {
            return None;
        }
        out.extend_from_slice(part);
    }
    Some(out)
}

/// Who made a check, for people: `the broker's rustls`, `iotls`.
fn verdict_by(side: Side) -> String {
    match side {
        Side::Iotls => "iotls (its own re-verification)".into(),
        s => format!("the {}'s rustls (WebPKI verifier)", s.name()),
    }
}

/// A signature's calculation; `verdict`: the side that checked it and its answer, if one did.
fn signature(
    trace: &Trace,
    verdict: Option<(Side, bool)>,
    check: CheckId,
    sig: &SignatureCalc,
) -> Calc {
    let (signer, what, name) = if check == CheckId::ServerKxSignature {
        (
            "broker",
            "client_random ‖ server_random ‖ ECDHE params",
            "server_kx_signature",
        )
    } else {
        (
            "device",
            "every handshake message before it",
            "certificate_verify",
        )
    };
    let mut rows = span_rows(&sig.signed);
    rows.push(row(
        "signed bytes",
        format!("{} ({what})", sum_text(&sig.signed)),
    ));
    rows.push(row(
        "hash",
        format!(
            "{} (scheme {}, 0x{:04x})",
            sig.hash_algorithm, sig.scheme, sig.scheme_code
        ),
    ));
    rows.push(row(
        "digest",
        if sig.digest.is_empty() {
            "none: this scheme signs the bytes themselves".to_string()
        } else {
            format!(
                "{} of the signed bytes, computed by iotls: {}",
                sig.hash_algorithm,
                hex(&sig.digest)
            )
        },
    ));
    rows.push(row(
        "signature",
        format!(
            "{} bytes, made with the {signer}'s private key: {}",
            sig.signature.len(),
            hex(&sig.signature)
        ),
    ));
    let cert = trace
        .certificate(&sig.certificate)
        .map(|c| format!("{} ({})", super::cn(&c.subject), c.role_text()))
        .unwrap_or_else(|| format!("certificate {}", &sig.certificate));
    rows.push(row(
        "public key",
        format!("from {cert}: {}", hex(&sig.public_key)),
    ));
    rows.push(row(
        "verdict",
        match verdict {
            Some((side, ok)) => format!(
                "{} by {}",
                if ok { "✔ verified" } else { "✘ refused" },
                verdict_by(side)
            ),
            // Said without telling whether the check comes: the tour lets the learner predict.
            None => format!(
                "not this step's: the {}'s check, when its end is iotls's and the handshake \
                 gets that far, is a later step",
                if signer == "broker" {
                    "device"
                } else {
                    "broker"
                }
            ),
        },
    ));
    push_redo(&mut rows, name, &sig.reproduce);
    let msg = if check == CheckId::ServerKxSignature {
        "ServerKeyExchange"
    } else {
        "CertificateVerify"
    };
    Calc {
        title: format!("{msg}: what the {signer} signed, and who verified it"),
        bytes: span_bytes(trace, &sig.signed),
        rows,
        check: if check == CheckId::ServerKxSignature {
            "server_kx_signature"
        } else {
            "certificate_verify"
        },
    }
}

fn push_redo(rows: &mut Vec<Row>, check: &str, command: &str) {
    rows.push(row("redo", redo_command(check)));
    rows.push(row("command", format!("in DIR: {command}")));
}

fn key_schedule(trace: &Trace, k: &KeySchedule) -> Calc {
    let _ = trace;
    let mut rows = vec![
        row("cipher suite", k.cipher_suite.clone()),
        row("PRF hash", k.prf_hash.clone()),
        row("client_random", hex(&k.client_random)),
        row("server_random", hex(&k.server_random)),
    ];
    match &k.session_hash {
        Some(h) => {
            let first = h.messages.first().map(|s| s.name.as_str()).unwrap_or("?");
            let last = h.messages.last().map(|s| s.name.as_str()).unwrap_or("?");
            rows.push(row(
                "session hash",
                format!(
                    "{} of the {} messages {first} … {last} ({}), computed by iotls: {}",
                    k.prf_hash,
                    h.messages.len(),
                    sum_text(&h.messages),
                    hex(&h.hash)
                ),
            ));
        }
        None => rows.push(row(
            "session hash",
            "none: extended master secret (EMS) was not negotiated; the seed is the two randoms",
        )),
    }
    rows.push(row(
        "pre-master",
        "the ECDHE shared secret: the ECDHE private keys and the pre-master secret never leave \
         rustls, so the master secret is an input here, not recomputed",
    ));
    rows.push(row(
        "master secret",
        format!(
            "{} bytes from rustls's key log ({}): {}",
            k.master_secret.value.len(),
            k.master_secret.source,
            hex(&k.master_secret.value)
        ),
    ));
    rows.push(row("derived as", k.master_secret.derivation.clone()));
    let x = &k.key_expansion;
    rows.push(row("label", format!("\"{}\"", x.label)));
    rows.push(row(
        "seed",
        format!("server_random ‖ client_random: {}", hex(&x.seed)),
    ));
    rows.push(row(
        "key block",
        format!(
            "PRF-{}(master secret, label, seed), {} bytes for {}: {}",
            k.prf_hash.to_uppercase(),
            x.key_block.len(),
            x.aead,
            hex(&x.key_block)
        ),
    ));
    for p in &x.parts {
        let what = if p.name.ends_with("_IV") && p.len == 4 {
            " (implicit nonce salt)"
        } else {
            ""
        };
        rows.push(Row {
            name: p.name.clone(),
            value: format!("{} bytes at {}{what}: {}", p.len, p.offset, hex(&p.value)),
            range: Some((p.offset, p.len)),
        });
    }
    push_redo(&mut rows, "key_block", &x.reproduce);
    Calc {
        title: "Key schedule: from the master secret to the record keys (iotls)".into(),
        rows,
        bytes: Some(x.key_block.clone()),
        check: "key_block",
    }
}

fn finished(trace: &Trace, e: &Event, ok: bool, f: &FinishedCalc) -> Calc {
    let (who, check) = if f.label.starts_with("client") {
        ("device", "client_finished")
    } else {
        ("broker", "server_finished")
    };
    let mut rows = span_rows(&f.transcript);
    rows.push(row(
        "transcript",
        format!(
            "{} (every handshake message before this Finished)",
            sum_text(&f.transcript)
        ),
    ));
    rows.push(row(
        "transcript hash",
        format!(
            "{} of the transcript, computed by iotls: {}",
            f.prf_hash,
            hex(&f.transcript_hash)
        ),
    ));
    rows.push(row(
        "verify_data",
        format!(
            "PRF-{}(master secret, \"{}\", transcript hash)[0..12]",
            f.prf_hash.to_uppercase(),
            f.label
        ),
    ));
    rows.push(row(
        "expected",
        format!("{} (iotls, from the key log)", hex(&f.expected)),
    ));
    rows.push(row(
        "received",
        format!("{} (decrypted from the {who}'s Finished)", hex(&f.received)),
    ));
    rows.push(row(
        "verdict",
        format!(
            "{} by {}",
            if ok { "✔ equal" } else { "✘ different" },
            if e.side == Side::Iotls {
                "iotls (its own recomputation; the sides' own checks are their steps)".to_string()
            } else {
                verdict_by(e.side)
            }
        ),
    ));
    push_redo(&mut rows, check, &f.reproduce);
    Calc {
        title: format!("Finished of the {who}: PRF over the transcript hash"),
        bytes: span_bytes(trace, &f.transcript),
        rows,
        check,
    }
}

/// The rows of an encrypted record's protection: key, sequence number, nonce, AAD, tag.
pub fn record_rows(p: &RecordProtection) -> Vec<Row> {
    let aad = &p.aad;
    let aad_text = if aad.len() == 13 {
        format!(
            "seq {} ‖ type {} ‖ version {} ‖ length {} = {}",
            hex(&aad[0..8]),
            hex(&aad[8..9]),
            hex(&aad[9..11]),
            hex(&aad[11..13]),
            hex(aad)
        )
    } else {
        hex(aad)
    };
    let nonce = if p.explicit_nonce.is_empty() {
        format!("write IV XOR sequence number: {}", hex(&p.nonce))
    } else {
        format!(
            "write IV ‖ explicit nonce: {} ‖ {}",
            hex(&p.nonce[..p.nonce.len().saturating_sub(p.explicit_nonce.len())]),
            hex(&p.explicit_nonce)
        )
    };
    let mut rows = vec![
        row("AEAD", format!("{} with the {}", p.aead, p.key)),
        row("seq", format!("{} (this direction, from 0)", p.seq)),
        row("nonce", nonce),
        row("AAD", aad_text),
        row("tag", hex(&p.tag)),
    ];
    push_redo(&mut rows, "records", &p.reproduce);
    rows
}

/// An event's record protection, when it travelled encrypted and the keys are known.
pub fn protection(e: &Event) -> Option<&RecordProtection> {
    match &e.kind {
        EventKind::AppData {
            protection: Some(p),
            ..
        }
        | EventKind::Handshake {
            protection: Some(p),
            ..
        }
        | EventKind::Alert {
            protection: Some(p),
            ..
        } => Some(p),
        _ => None,
    }
}

/// What a row of a calculation means, in one or two sentences.
pub fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "client_random" | "server_random" => {
            "32 bytes each hello carries, fresh for this session: signing them proves the signature is not a replay."
        }
        "ecdhe_params" => {
            "The curve and the broker's ephemeral ECDHE public key, as in the ServerKeyExchange."
        }
        "signed bytes" => "The spans above laid end to end: exactly the bytes the signature covers.",
        "hash" => "The hash the signature scheme signs with.",
        "digest" => "iotls's hash of the signed bytes: what the signature really signs.",
        "signature" => "As sent (DER for ECDSA): only the holder of the private key can make it.",
        "public key" => {
            "The key in the signer's certificate (SPKI): it verifies the signature; the chain check vouches for it."
        }
        "verdict" => "Who decided: a side's rustls, or iotls's own recomputation (side iotls).",
        "redo" => {
            "Run it in a shell: the tour writes the session on screen into DIR when you quit, and \
             reproduce.sh redoes this check with openssl and python3."
        }
        "command" => "What reproduce.sh runs for this check, inside DIR.",
        "session hash" => {
            "EMS: the master secret is bound to the hash of the handshake up to ClientKeyExchange."
        }
        "master secret" => {
            "48 bytes from the key log: the input of everything below. Anyone holding it can decrypt the session."
        }
        "derived as" => "How both sides derived it inside rustls, from the pre-master secret.",
        "label" | "seed" => "The PRF's inputs besides the master secret.",
        "key block" => "The PRF's output, cut in order into the parts below.",
        "client_write_key" | "server_write_key" => {
            "The AEAD key each side encrypts its records with; the peer decrypts with it."
        }
        "client_write_IV" | "server_write_IV" => {
            "For GCM, a 4-byte salt: the first part of every nonce of that side's records."
        }
        "transcript" => "Every handshake message before this Finished, as sent, laid end to end.",
        "transcript hash" => "The PRF hash of the transcript, computed by iotls.",
        "verify_data" => "The 12 bytes a Finished carries: a MAC of the whole handshake.",
        "expected" => "What iotls computed from the key log and the transcript.",
        "received" => "What the Finished carried, decrypted.",
        "AEAD" => "The record protection and the key of the key block it used.",
        "decrypted" => "The plaintext iotls decrypted from the encrypted content above.",
        "seq" => "The record's number in its direction; never sent, it is in the AAD.",
        "nonce" => "The 12-byte GCM nonce: the 4-byte write IV, then the explicit nonce sent in the record.",
        "AAD" => "Additional data: authenticated by the tag, never sent in this form.",
        "tag" => "The record's last 16 bytes: checks the ciphertext and the AAD.",
        "cipher suite" => "The suite the ServerHello chose: it fixes the PRF hash and the AEAD.",
        "PRF hash" => "The hash inside TLS 1.2's PRF (an HMAC expansion), fixed by the suite.",
        "ClientHello" | "ServerHello" | "Certificate" | "ServerKeyExchange"
        | "CertificateRequest" | "ServerHelloDone" | "ClientKeyExchange" | "CertificateVerify"
        | "Finished" => "The whole handshake message as sent, its 4-byte header included.",
        _ => return None,
    })
}
