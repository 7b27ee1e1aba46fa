//! `--reproduce DIR`: every input of the session's calculations as a file, and `reproduce.sh`,
//! which redoes each calculation with openssl and python3 (standard library only) and prints one
//! line per check: `ok`, `FAIL` (then it exits 1), or `n/a` for a check that could not happen in
//! this session, with why. docs/exports.md describes the directory.
//!
//! Everything is written from the trace: the handshake messages and records as they were on the
//! wire, the certificates, the key-log line, and iotls's own results to compare with
//! (`iotls/`, and the values in the script). The commands the script runs are the ones the trace
//! records as `reproduce` (made by [`crate::tls::calc`]); the script is generated from typed
//! values only (file names, hex, numbers), never from text a peer sent.

use crate::tls::calc::{self, files};
use crate::tls::keys::PrfHash;
use crate::trace::{
    hex, unhex, CertRoleKind, CheckId, Event, EventKind, HandshakeType, KeySchedule,
    RecordProtection, Side, SignatureCalc, Trace,
};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// The helper with the TLS 1.2 PRF, GHASH and Poly1305.
const HELPER: &str = include_str!("tls12.py");

/// The script's fixed part: set-up and the functions the checks call.
const PREAMBLE: &str = include_str!("reproduce-preamble.sh");

/// The script's name in the directory.
pub const SCRIPT: &str = "reproduce.sh";

/// A handshake message of the trace, numbered in the order sent.
struct Msg<'t> {
    side: Side,
    msg: HandshakeType,
    bytes: &'t [u8],
    record: u32,
    /// Index of its event.
    event: usize,
    /// `NN-<side>-<Msg>.bin`.
    file: String,
}

/// Write the directory for `trace` into `dir` (created if missing; its parent must exist).
/// Returns the script's path.
pub fn write(trace: &Trace, dir: &Path) -> io::Result<PathBuf> {
    let out = Out::create(dir)?;
    let msgs: Vec<Msg<'_>> = trace
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            EventKind::Handshake {
                msg, hex, record, ..
            } => Some((i, e.side, *msg, hex.as_slice(), *record)),
            _ => None,
        })
        .enumerate()
        .map(|(n, (event, side, msg, bytes, record))| Msg {
            side,
            msg,
            bytes,
            record,
            event,
            file: files::message(n + 1, side, msg),
        })
        .collect();
    for m in &msgs {
        out.put(&m.file, m.bytes, false)?;
    }
    for c in &trace.certificates {
        for r in c.roles.iter().filter(|r| r.kind == CertRoleKind::Chain) {
            let base = cert_file(r.side, r.index);
            out.put(&format!("{base}.der"), &c.der, false)?;
            let pem = pem::encode(&pem::Pem::new("CERTIFICATE", c.der.clone()));
            out.put(&format!("{base}.pem"), pem.as_bytes(), false)?;
        }
    }
    let hello = |side: Side, t: HandshakeType| {
        msgs.iter()
            .find(|m| m.side == side && m.msg == t && m.bytes.len() >= 38)
    };
    let (ch, sh) = (
        hello(Side::Device, HandshakeType::CLIENT_HELLO),
        hello(Side::Broker, HandshakeType::SERVER_HELLO),
    );
    if let Some(m) = ch {
        out.put(files::CLIENT_RANDOM, &m.bytes[6..38], false)?;
    }
    if let Some(m) = sh {
        out.put(files::SERVER_RANDOM, &m.bytes[6..38], false)?;
    }

    let mut s = Script::new(trace);
    server_kx(trace, &out, &mut s, &msgs, ch, sh)?;
    certificate_verify(trace, &out, &mut s, &msgs)?;
    let schedule = trace.events.iter().find_map(|e| match &e.kind {
        EventKind::KeySchedule(k) => Some(k.as_ref()),
        _ => None,
    });
    match schedule {
        Some(k) => {
            key_schedule(k, &out, &mut s, &msgs, ch, sh)?;
            records(trace, &out, &mut s)?;
        }
        None => {
            let why = no_keys(trace, &msgs);
            s.na("key_block", &why);
            s.na("records", &why);
        }
    }
    finished(trace, &out, &mut s, &msgs)?;
    s.end();

    out.put(files::HELPER, HELPER.as_bytes(), false)?;
    let script = out.put(SCRIPT, s.text.as_bytes(), false)?;
    executable(&script)?;
    Ok(script)
}

/// `certs/device-0`: a certificate of a side's chain, without extension (`.der`, `.pem`).
fn cert_file(side: Side, index: usize) -> String {
    format!("certs/{}-{index}", side.name())
}

/// The chain file of the certificate with this SHA-256, if the trace has it in a chain.
fn cert_pem(trace: &Trace, sha256: &str) -> Option<String> {
    let c = trace.certificate(sha256)?;
    let r = c.roles.iter().find(|r| r.kind == CertRoleKind::Chain)?;
    Some(format!("{}.pem", cert_file(r.side, r.index)))
}

fn server_kx(
    trace: &Trace,
    out: &Out,
    s: &mut Script,
    msgs: &[Msg<'_>],
    ch: Option<&Msg<'_>>,
    sh: Option<&Msg<'_>>,
) -> io::Result<()> {
    let check = "server_kx_signature";
    let ske = msgs
        .iter()
        .find(|m| m.side == Side::Broker && m.msg == HandshakeType::SERVER_KEY_EXCHANGE);
    let Some(ske) = ske else {
        s.na(
            check,
            &format!("the broker sent no ServerKeyExchange: {}", ended(trace)),
        );
        return Ok(());
    };
    let (Some(sig), Some(ch), Some(sh)) = (signature_of(trace, ske.event), ch, sh) else {
        s.na(
            check,
            "iotls could not read the ServerKeyExchange signature, the broker's certificate or \
             the hellos from the trace",
        );
        return Ok(());
    };
    let Some(cert) = cert_pem(trace, &sig.certificate) else {
        s.na(check, "the broker's certificate is not in the trace");
        return Ok(());
    };
    let plen = sig.signed.get(2).map(|p| p.len).unwrap_or(0);
    let params = ske.bytes.get(4..4 + plen).unwrap_or_default();
    let signed = [&ch.bytes[6..38], &sh.bytes[6..38], params].concat();
    out.put(files::SKE_PARAMS, params, false)?;
    out.put(files::SKE_SIGNED, &signed, false)?;
    out.put(files::SKE_SIGNATURE, &sig.signature, false)?;
    out.put(
        &files::public_key(Side::Broker),
        public_key_pem(&sig.public_key).as_bytes(),
        false,
    )?;
    let note = match trace.check_by(Side::Device, CheckId::ServerKxSignature) {
        Some(_) => "as the device's rustls found".to_string(),
        None => not_checked_by(trace, Side::Device),
    };
    s.comment(&format!(
        "{check}: the broker signed client_random ‖ server_random ‖ its ECDHE parameters \
         ({} bytes) with the key of its certificate",
        signed.len()
    ));
    let _ = writeln!(
        s.text,
        "if {{ part {} 6 32; part {} 6 32; part {} 4 {plen}; }} | cmp -s - {}; then",
        ch.file,
        sh.file,
        ske.file,
        files::SKE_SIGNED
    );
    s.signature(check, Side::Broker, &cert, sig, &note);
    let _ = writeln!(s.text, "else");
    s.fail_line(
        check,
        &format!(
            "{} is not client_random ‖ server_random ‖ the ECDHE parameters as sent",
            files::SKE_SIGNED
        ),
    );
    let _ = writeln!(s.text, "fi\n");
    Ok(())
}

fn certificate_verify(
    trace: &Trace,
    out: &Out,
    s: &mut Script,
    msgs: &[Msg<'_>],
) -> io::Result<()> {
    let check = "certificate_verify";
    let cv = msgs
        .iter()
        .position(|m| m.side == Side::Device && m.msg == HandshakeType::CERTIFICATE_VERIFY);
    let Some(at) = cv else {
        let why = if msgs
            .iter()
            .any(|m| m.side == Side::Broker && m.msg == HandshakeType::CERTIFICATE_REQUEST)
        {
            format!("the device sent no CertificateVerify: {}", ended(trace))
        } else {
            "the broker asked for no device certificate, so the device signed nothing".to_string()
        };
        s.na(check, &why);
        return Ok(());
    };
    let Some(sig) = signature_of(trace, msgs[at].event) else {
        s.na(
            check,
            "iotls could not read the CertificateVerify signature or the device's certificate \
             from the trace",
        );
        return Ok(());
    };
    let Some(cert) = cert_pem(trace, &sig.certificate) else {
        s.na(check, "the device's certificate is not in the trace");
        return Ok(());
    };
    // What the broker's rustls was handed, when the broker is iotls's; else the wire's messages.
    let broker = trace.check_by(Side::Broker, CheckId::CertificateVerify);
    let handed = broker.and_then(signed_message);
    let signed =
        handed.unwrap_or_else(|| msgs[..at].iter().flat_map(|m| m.bytes.to_vec()).collect());
    out.put(files::CV_SIGNED, &signed, false)?;
    out.put(files::CV_SIGNATURE, &sig.signature, false)?;
    out.put(
        &files::public_key(Side::Device),
        public_key_pem(&sig.public_key).as_bytes(),
        false,
    )?;
    let note = match broker {
        Some(_) => "as the broker's rustls found".to_string(),
        None => not_checked_by(trace, Side::Broker),
    };
    s.comment(&format!(
        "{check}: the device signed every handshake message before it ({} messages, {} bytes, \
         {}) with the key of its certificate",
        at,
        signed.len(),
        span_text(msgs[..at].iter().map(|m| m.msg))
    ));
    let list: Vec<&str> = msgs[..at].iter().map(|m| m.file.as_str()).collect();
    let _ = writeln!(
        s.text,
        "if cat {} | cmp -s - {}; then",
        list.join(" "),
        files::CV_SIGNED
    );
    s.signature(check, Side::Device, &cert, sig, &note);
    let _ = writeln!(s.text, "else");
    s.fail_line(
        check,
        &format!(
            "{} is not the handshake messages before the CertificateVerify as sent",
            files::CV_SIGNED
        ),
    );
    let _ = writeln!(s.text, "fi\n");
    Ok(())
}

fn key_schedule(
    k: &KeySchedule,
    out: &Out,
    s: &mut Script,
    msgs: &[Msg<'_>],
    ch: Option<&Msg<'_>>,
    sh: Option<&Msg<'_>>,
) -> io::Result<()> {
    let line = format!(
        "CLIENT_RANDOM {} {}\n",
        hex(&k.client_random),
        hex(&k.master_secret.value)
    );
    out.put(files::KEYLOG, line.as_bytes(), true)?;
    let x = &k.key_expansion;
    out.put("iotls/key_block.hex", hex(&x.key_block).as_bytes(), true)?;
    for p in &x.parts {
        out.put(&files::key_part(&p.name), hex(&p.value).as_bytes(), true)?;
    }
    let h = &k.prf_hash;
    let Some(hash) = PrfHash::by_id(h) else {
        s.na(
            "key_block",
            &format!("iotls does not know the PRF hash {h}"),
        );
        return Ok(());
    };

    if let Some(sh_) = &k.session_hash {
        let n = sh_.messages.len().min(msgs.len());
        let bytes: Vec<u8> = msgs[..n].iter().flat_map(|m| m.bytes.to_vec()).collect();
        out.put(files::SESSION_HASH_TRANSCRIPT, &bytes, false)?;
        let list: Vec<&str> = msgs[..n].iter().map(|m| m.file.as_str()).collect();
        s.comment(
            "session_hash: the extended master secret is derived from the hash of the handshake \
             messages ClientHello … ClientKeyExchange",
        );
        let _ = writeln!(
            s.text,
            "if cat {} | cmp -s - {}; then",
            list.join(" "),
            files::SESSION_HASH_TRANSCRIPT
        );
        let _ = writeln!(
            s.text,
            "  session_hash=$({} | sed 's/.*= //')",
            calc::session_hash_command(hash)
        );
        let _ = writeln!(
            s.text,
            "  if [ \"$session_hash\" = {} ]; then",
            hex(&sh_.hash)
        );
        s.ok_line_indented(
            "session_hash",
            &format!(
                "{h} of the {n} messages {} ({} bytes) equals iotls's",
                span_text(msgs[..n].iter().map(|m| m.msg)),
                bytes.len()
            ),
            4,
        );
        let _ = writeln!(s.text, "  else");
        s.fail_indented(
            "session_hash",
            &format!(
                "{h}({}) is $session_hash, iotls says {}",
                files::SESSION_HASH_TRANSCRIPT,
                hex(&sh_.hash)
            ),
            4,
        );
        let _ = writeln!(s.text, "  fi\nelse");
        s.fail_line(
            "session_hash",
            &format!(
                "{} is not ClientHello … ClientKeyExchange as sent",
                files::SESSION_HASH_TRANSCRIPT
            ),
        );
        let _ = writeln!(s.text, "fi\n");
    }
    s.na_text(
        "master_secret",
        &format!(
            "an input, not a calculation: it comes from the key-log line ({}). The sides derived \
             it as {}; the pre-master secret (the ECDHE shared secret) never leaves rustls, so \
             nothing outside it can recompute the master secret",
            files::KEYLOG,
            k.master_secret.derivation
        ),
    );

    let len = x.key_block.len();
    s.comment(&format!(
        "key_block: PRF-{}(master_secret, \"key expansion\", server_random ‖ client_random), {len} \
         bytes, cut into the write keys and IVs",
        h.to_uppercase()
    ));
    let (Some(ch), Some(sh)) = (ch, sh) else {
        s.na("key_block", "the hellos are not both in the trace");
        return Ok(());
    };
    let _ = writeln!(
        s.text,
        "if ! part {} 6 32 | cmp -s - {cr} || ! part {} 6 32 | cmp -s - {sr}; then",
        ch.file,
        sh.file,
        cr = files::CLIENT_RANDOM,
        sr = files::SERVER_RANDOM
    );
    s.fail_indented(
        "key_block",
        &format!(
            "{} and {} are not the randoms of the hellos as sent",
            files::CLIENT_RANDOM,
            files::SERVER_RANDOM
        ),
        2,
    );
    let _ = writeln!(
        s.text,
        "elif [ \"$(cut -d' ' -f2 {})\" != \"$(hexof {})\" ]; then",
        files::KEYLOG,
        files::CLIENT_RANDOM
    );
    s.fail_indented(
        "key_block",
        &format!(
            "the key-log line ({}) is not for this session's client random",
            files::KEYLOG
        ),
        2,
    );
    let _ = writeln!(
        s.text,
        "else\n  key_block=$({})",
        calc::key_block_command(hash, len)
    );
    let _ = writeln!(
        s.text,
        "  if [ \"$key_block\" = \"$(cat iotls/key_block.hex)\" ]; then"
    );
    s.ok_line_indented(
        "key_block",
        &format!(
            "PRF-{}(master_secret, \"key expansion\", server_random ‖ client_random) gives {len} \
             bytes equal to iotls's key block ({})",
            h.to_uppercase(),
            x.aead
        ),
        4,
    );
    let _ = writeln!(s.text, "  else");
    s.fail_indented(
        "key_block",
        "the PRF gives $key_block, iotls's key block is $(cat iotls/key_block.hex)",
        4,
    );
    let _ = writeln!(s.text, "  fi\nfi");
    let _ = writeln!(s.text, "key_block=${{key_block:-}}");
    for p in &x.parts {
        let _ = writeln!(
            s.text,
            "{}=${{key_block:{}:{}}}",
            p.name,
            2 * p.offset,
            2 * p.len
        );
    }
    let names: Vec<String> = x.parts.iter().map(|p| p.name.clone()).collect();
    let _ = writeln!(s.text, "for part in {}; do", names.join(" "));
    let _ = writeln!(
        s.text,
        "  [ \"$(cat \"$part.hex\")\" = \"${{!part}}\" ] || fail \"key_block: $part.hex is not the $part the PRF gives\""
    );
    let _ = writeln!(s.text, "done\n");
    Ok(())
}

fn records(trace: &Trace, out: &Out, s: &mut Script) -> io::Result<()> {
    let mut seen: Vec<(Side, u32)> = Vec::new();
    for e in &trace.events {
        let Some((record, p, what)) = protected(e) else {
            continue;
        };
        if seen.contains(&(e.side, record)) {
            continue;
        }
        seen.push((e.side, record));
        let Some(wire) = trace
            .records
            .iter()
            .find(|r| r.from == e.side && r.index == record)
        else {
            continue;
        };
        let Some(aead) = calc::aead_by_name(&p.aead) else {
            continue;
        };
        let base = files::record(e.side, record);
        let explicit = aead.explicit_nonce_len();
        let encrypted = wire
            .bytes
            .get(5 + explicit..wire.bytes.len().saturating_sub(16))
            .unwrap_or_default();
        out.put(&format!("{base}.record"), &wire.bytes, false)?;
        out.put(&format!("{base}.encrypted"), encrypted, false)?;
        if let Some(plain) = iotls_plaintext(trace, e.side, record) {
            if plain.len() == encrypted.len() {
                out.put(&format!("{base}.iotls-plaintext"), &plain, false)?;
            }
        }
        let name = format!("record {} {record} ({what})", e.side.name());
        let iv = if p.key.starts_with("server") {
            "server_write_IV"
        } else {
            "client_write_IV"
        };
        let _ = writeln!(
            s.text,
            "check_record {} {} \"${}\" \"${iv}\" {} {base} {} {} \\\n  {}",
            sh_quote(&name),
            aead_arg(aead),
            p.key,
            p.seq,
            hex(&p.nonce),
            hex(&p.aad),
            calc::record_command(aead, e.side, record, &p.nonce),
        );
    }
    if seen.is_empty() {
        s.na(
            "records",
            &format!("no encrypted record was sent: {}", ended(trace)),
        );
    } else {
        let _ = writeln!(s.text);
    }
    Ok(())
}

/// An event carried in an encrypted record: its record, protection and what it was.
fn protected(e: &Event) -> Option<(u32, &RecordProtection, String)> {
    match &e.kind {
        EventKind::Handshake {
            record,
            protection: Some(p),
            msg,
            ..
        } => Some((*record, p, msg.name())),
        EventKind::AppData {
            record,
            protection: Some(p),
            ..
        } => Some((*record, p, "application data".into())),
        EventKind::Alert {
            record,
            protection: Some(p),
            description,
            ..
        } => Some((*record, p, format!("alert {description}"))),
        _ => None,
    }
}

/// What iotls decrypted from a record: the application data, the alerts, or the handshake
/// messages it completed (when they were all in it).
fn iotls_plaintext(trace: &Trace, side: Side, record: u32) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in trace.events.iter().filter(|e| e.side == side) {
        match &e.kind {
            EventKind::AppData {
                record: r,
                plaintext,
                ..
            } if *r == record => return plaintext.clone(),
            EventKind::Alert {
                record: r,
                level,
                code,
                ..
            } if *r == record => out.extend([level.0, *code]),
            EventKind::Handshake { record: r, hex, .. } if *r == record => {
                out.extend_from_slice(hex)
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

fn finished(trace: &Trace, out: &Out, s: &mut Script, msgs: &[Msg<'_>]) -> io::Result<()> {
    for (check, sender) in [
        (CheckId::ClientFinished, Side::Device),
        (CheckId::ServerFinished, Side::Broker),
    ] {
        let name = check.as_str();
        let at = msgs
            .iter()
            .position(|m| m.side == sender && m.msg == HandshakeType::FINISHED);
        let calc = trace
            .check_by(Side::Iotls, check)
            .and_then(|e| match &e.kind {
                EventKind::Check {
                    finished: Some(f), ..
                } => Some(f.as_ref()),
                _ => None,
            });
        let (Some(at), Some(f)) = (at, calc) else {
            let sent_ccs = trace
                .events
                .iter()
                .any(|e| e.side == sender && matches!(e.kind, EventKind::ChangeCipherSpec { .. }));
            let why = if sent_ccs {
                format!(
                    "the {} sent its Finished encrypted, and iotls could not decrypt it: {}",
                    sender.name(),
                    no_keys(trace, msgs)
                )
            } else {
                format!("the {} sent no Finished: {}", sender.name(), ended(trace))
            };
            s.na(name, &why);
            continue;
        };
        let file = if sender == Side::Device {
            files::CLIENT_FINISHED_TRANSCRIPT
        } else {
            files::SERVER_FINISHED_TRANSCRIPT
        };
        let bytes: Vec<u8> = msgs[..at].iter().flat_map(|m| m.bytes.to_vec()).collect();
        out.put(file, &bytes, false)?;
        let list: Vec<&str> = msgs[..at].iter().map(|m| m.file.as_str()).collect();
        let plaintext = format!("{}.plaintext", files::record(sender, msgs[at].record));
        let h = &f.prf_hash;
        s.comment(&format!(
            "{name}: verify_data = PRF-{}(master_secret, \"{}\", {h}(every handshake message before \
             it))[0..12], against what the {} sent (decrypted above)",
            h.to_uppercase(),
            f.label,
            sender.name()
        ));
        let _ = writeln!(s.text, "if cat {} | cmp -s - {file}; then", list.join(" "));
        let _ = writeln!(
            s.text,
            "  expected=$({})",
            calc::finished_command(PrfHash::by_id(h).unwrap_or(PrfHash::Sha256), &f.label)
        );
        let _ = writeln!(
            s.text,
            "  sent=$(hexof {plaintext} 2>/dev/null); sent=${{sent:8:24}}"
        );
        let _ = writeln!(
            s.text,
            "  if [ \"$expected\" != {} ]; then",
            hex(&f.expected)
        );
        s.fail_indented(
            name,
            &format!(
                "the PRF gives $expected, iotls recomputed {}",
                hex(&f.expected)
            ),
            4,
        );
        let _ = writeln!(s.text, "  elif [ \"$expected\" = \"$sent\" ]; then");
        s.ok_line_indented(
            name,
            &format!(
                "PRF-{}(master_secret, \"{}\", {h} of the {at} messages before it, {} bytes)[0..12] \
                 = the verify_data the {} sent ($sent), as iotls found",
                h.to_uppercase(),
                f.label,
                bytes.len(),
                sender.name()
            ),
            4,
        );
        let _ = writeln!(s.text, "  else");
        s.fail_indented(
            name,
            &format!(
                "the PRF gives $expected, the {} sent ${{sent:-nothing this script could decrypt}}",
                sender.name()
            ),
            4,
        );
        let _ = writeln!(s.text, "  fi\nelse");
        s.fail_line(
            name,
            &format!("{file} is not the handshake messages before the Finished as sent"),
        );
        let _ = writeln!(s.text, "fi\n");
    }
    Ok(())
}

/// The signature calculation of a handshake event.
fn signature_of(trace: &Trace, event: usize) -> Option<&SignatureCalc> {
    match &trace.events.get(event)?.kind {
        EventKind::Handshake {
            signature: Some(s), ..
        } => Some(s),
        _ => None,
    }
}

/// The `signed_message` fact of a signature check: the bytes rustls handed the verifier.
fn signed_message(e: &Event) -> Option<Vec<u8>> {
    match &e.kind {
        EventKind::Check { facts, .. } => facts
            .iter()
            .find(|f| f.name == "signed_message")
            .and_then(|f| unhex(&f.value)),
        _ => None,
    }
}

/// Why `side` never checked a signature it received.
fn not_checked_by(trace: &Trace, side: Side) -> String {
    let chain = match side {
        Side::Broker => CheckId::ClientChain,
        _ => CheckId::ServerChain,
    };
    let own = trace.checks().any(|(e, _, _)| e.side == side);
    match trace.check_by(side, chain) {
        Some(e) if matches!(e.kind, EventKind::Check { ok: false, .. }) => format!(
            "the {} never checked it: it refused the {}'s chain first",
            side.name(),
            side.peer().name()
        ),
        _ if !own => format!(
            "checked here from the wire: the {} is not iotls's, so its own verdict is not in the \
             trace",
            side.name()
        ),
        _ => format!("the {} did not check it", side.name()),
    }
}

/// Why the handshake did not get further, for an `n/a` line.
fn ended(trace: &Trace) -> String {
    match &trace.outcome.failure {
        Some(f) => {
            let mut s = format!("the handshake ended first ({}", f.code.as_str());
            if let Some(side) = f.side {
                let _ = write!(s, ", decided by the {}", side.name());
            }
            if let Some(c) = f.check {
                let _ = write!(s, " in {c}");
            }
            if let Some(a) = &f.alert {
                let _ = write!(s, "; alert {a}");
            }
            s.push(')');
            s
        }
        None => "the session ended before it".to_string(),
    }
}

/// Why there is no key schedule.
fn no_keys(trace: &Trace, msgs: &[Msg<'_>]) -> String {
    let cke = msgs
        .iter()
        .any(|m| m.side == Side::Device && m.msg == HandshakeType::CLIENT_KEY_EXCHANGE);
    if !cke {
        return format!(
            "the device sent no ClientKeyExchange, so no keys were derived: {}",
            ended(trace)
        );
    }
    let suite = trace
        .tls
        .as_ref()
        .map(|t| t.cipher_suite.clone())
        .unwrap_or_default();
    let has_key = trace
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Secret { .. }));
    if has_key {
        format!("iotls cannot derive the keys of the cipher suite {suite}")
    } else {
        "the trace holds no key-log line (CLIENT_RANDOM) for this session".to_string()
    }
}

/// `ClientHello … ClientKeyExchange`.
fn span_text(mut types: impl Iterator<Item = HandshakeType>) -> String {
    let first = types.next();
    let last = types.last().or(first);
    match (first, last) {
        (Some(a), Some(b)) if a == b => a.name(),
        (Some(a), Some(b)) => format!("{} … {}", a.name(), b.name()),
        _ => "nothing".into(),
    }
}

fn public_key_pem(spki: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PUBLIC KEY", spki.to_vec()))
}

fn aead_arg(a: crate::tls::keys::AeadKind) -> &'static str {
    match a {
        crate::tls::keys::AeadKind::Aes128Gcm => "aes-128-gcm",
        crate::tls::keys::AeadKind::Aes256Gcm => "aes-256-gcm",
        crate::tls::keys::AeadKind::Chacha20Poly1305 => "chacha20-poly1305",
    }
}

/// A word for the shell, single-quoted.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A text for the shell that may hold `$variables`, double-quoted (only `"`, `\` and backquotes
/// are escaped: the texts are iotls's own).
fn sh_text(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('`', "\\`")
    )
}

/// The script being written.
struct Script {
    text: String,
}

impl Script {
    fn new(trace: &Trace) -> Self {
        let suite = trace.tls.as_ref().map(|t| t.cipher_suite.as_str());
        let mut text = String::new();
        let _ = writeln!(text, "#!/usr/bin/env bash");
        let _ = writeln!(
            text,
            "# Written by iotls for one session: {}, {}.",
            trace.scenario.replace(['\n', '\r'], " "),
            suite.unwrap_or("no ServerHello")
        );
        text.push_str(PREAMBLE);
        Script { text }
    }

    fn comment(&mut self, c: &str) {
        let _ = writeln!(self.text, "# {}", c.replace(['\n', '\r'], " "));
    }

    /// An `n/a` line: a check that could not happen in this session, and why.
    fn na(&mut self, check: &str, why: &str) {
        self.na_text(check, &format!("could not happen — {why}"));
    }

    fn na_text(&mut self, check: &str, text: &str) {
        let _ = writeln!(self.text, "na {}\n", sh_quote(&format!("{check}: {text}")));
    }

    fn ok_line_indented(&mut self, check: &str, what: &str, indent: usize) {
        let _ = writeln!(
            self.text,
            "{}ok {}",
            " ".repeat(indent),
            sh_text(&format!("{check}: {what}"))
        );
    }

    fn fail_indented(&mut self, check: &str, what: &str, indent: usize) {
        let _ = writeln!(
            self.text,
            "{}fail {}",
            " ".repeat(indent),
            sh_text(&format!("{check}: {what}"))
        );
    }

    fn fail_line(&mut self, check: &str, what: &str) {
        self.fail_indented(check, what, 2);
    }

    /// `check_signature …` with the command the trace records.
    fn signature(
        &mut self,
        check: &str,
        signer: Side,
        cert: &str,
        sig: &SignatureCalc,
        note: &str,
    ) {
        let (sig_file, signed) = match signer {
            Side::Broker => (files::SKE_SIGNATURE, files::SKE_SIGNED),
            _ => (files::CV_SIGNATURE, files::CV_SIGNED),
        };
        let who = format!("the {}", signer.name());
        let command = calc::verify_command(
            sig.scheme_code,
            &files::public_key(signer),
            sig_file,
            signed,
        );
        let _ = writeln!(
            self.text,
            "  check_signature {check} {} {cert} {} {sig_file} {signed} {} {} {} {} \\\n    {command}",
            sh_quote(&who),
            files::public_key(signer),
            sig.hash_algorithm,
            if sig.digest.is_empty() {
                "-".to_string()
            } else {
                hex(&sig.digest)
            },
            sh_quote(&sig.scheme),
            sh_quote(note),
        );
    }

    fn end(&mut self) {
        self.text.push_str(
            "if [ \"$failures\" -gt 0 ]; then\n  echo \"reproduce.sh: $failures check(s) differ\" >&2\n  exit 1\nfi\n",
        );
    }
}

/// The directory being written.
struct Out {
    root: PathBuf,
}

impl Out {
    fn create(dir: &Path) -> io::Result<Out> {
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            // It holds the session's master secret and keys.
            b.mode(0o700);
        }
        if !dir.is_dir() {
            b.create(dir)?;
        }
        for sub in ["certs", "records", "iotls"] {
            let d = dir.join(sub);
            if !d.is_dir() {
                b.create(&d)?;
            }
        }
        Ok(Out {
            root: dir.to_path_buf(),
        })
    }

    /// Write one file (replacing it); `secret` files get mode 0600.
    fn put(&self, name: &str, bytes: &[u8], secret: bool) -> io::Result<PathBuf> {
        let path = self.root.join(name);
        let _ = std::fs::remove_file(&path);
        if secret {
            super::write_private(&path, bytes, false)?;
        } else {
            std::fs::write(&path, bytes)?;
        }
        Ok(path)
    }
}

fn executable(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
