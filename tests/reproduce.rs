//! The calculations in the trace, and `--reproduce DIR`: reproduce.sh run by bash from another
//! working directory (openssl and python3 redo every calculation), and the trace's calculations
//! checked here against independent code — a TLS 1.2 PRF written with ring's HMAC, ring's AEAD,
//! the handshake messages as recorded from the wire.

mod common;

use common::peer_available;
use common::peers::{default_pki, iotls_connect, tempdir, wait_bounded, Serve, SESSION};
use iotls::trace::{
    CheckId, Event, EventKind, HandshakeType, KeySchedule, RecordProtection, Side, SignatureCalc,
    Trace,
};
use ring::{aead, digest, hmac};
use rustls::crypto::ring::cipher_suite;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const IOTLS: &str = env!("CARGO_BIN_EXE_iotls");

/// How long reproduce.sh may take (it runs a few dozen openssl processes).
const SCRIPT: Duration = Duration::from_secs(60);

fn peers(test: &str) -> bool {
    peer_available("openssl", test) && peer_available("python3", test)
}

/// Run reproduce.sh in `dir` with bash, from another directory; its exit code and its lines.
fn run_script(dir: &Path) -> (Option<i32>, Vec<String>) {
    let (code, lines, _) = run_script_with("bash", dir, &[]);
    (code, lines)
}

/// Run reproduce.sh in `dir` with `shell` and `args`, from another directory; its exit code, its
/// lines and its standard error.
fn run_script_with(shell: &str, dir: &Path, args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let elsewhere = tempdir("reproduce-cwd");
    let out = elsewhere.join("out.txt");
    let err = elsewhere.join("err.txt");
    let mut child = Command::new(shell)
        .arg(dir.join("reproduce.sh"))
        .args(args)
        .current_dir(&elsewhere)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("create out.txt"))
        .stderr(std::fs::File::create(&err).expect("create err.txt"))
        .spawn()
        .expect("start the shell");
    let status = wait_bounded(&mut child, SCRIPT);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let err = std::fs::read_to_string(&err).unwrap_or_default();
    eprint!("{err}");
    (
        status.and_then(|s| s.code()),
        text.lines().map(str::to_string).collect(),
        err,
    )
}

/// The check a line of reproduce.sh is about: `certificate_verify`, or `records` for a record.
fn check_of(line: &str) -> &str {
    let name = line[5..].split(':').next().unwrap_or("");
    if name.starts_with("record ") {
        "records"
    } else {
        name
    }
}

/// `sh reproduce.sh CHECK` (sh, as the tour's screens show it) prints that check's lines only, and
/// still passes where the check needs what others compute (a Finished needs the record keys);
/// an unknown name is refused with the names it knows. Every line of a full run names a check
/// the script (and the screens) know.
#[test]
fn reproduce_sh_runs_one_named_check() {
    if !peers("reproduce_sh_runs_one_named_check") {
        return;
    }
    let (dir, code) = tour_reproduce("reproduce-one", &[]);
    assert_eq!(code, Some(0));
    let (code, all, _) = run_script_with("sh", &dir, &[]);
    assert_eq!(code, Some(0), "{}", all.join("\n"));
    no_failures(&all);
    let known = iotls::narrate::calc::CHECKS;
    for l in &all {
        assert!(known.contains(&check_of(l)), "{l:?} names no known check");
    }
    // Every name the screens may show is one the script accepts.
    for &check in known {
        let (code, lines, _) = run_script_with("sh", &dir, &[check]);
        assert_eq!(code, Some(0), "{check}: {}", lines.join("\n"));
        no_failures(&lines);
        let expected: Vec<&String> = all.iter().filter(|l| check_of(l) == check).collect();
        assert!(!expected.is_empty(), "{check} is in the full run");
        assert_eq!(
            lines.iter().collect::<Vec<_>>(),
            expected,
            "`reproduce.sh {check}` prints its own lines, as the full run does"
        );
    }
    let (code, lines, err) = run_script_with("sh", &dir, &["finished"]);
    assert_eq!(code, Some(2), "{}", lines.join("\n"));
    assert!(lines.is_empty(), "{lines:?}");
    assert!(
        err.contains("no check named 'finished'") && err.contains("client_finished"),
        "the refusal names the checks: {err}"
    );
}

/// `iotls ARGS…` with its output discarded; its exit code.
fn iotls(args: &[&std::ffi::OsStr]) -> Option<i32> {
    let mut child = Command::new(IOTLS)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start iotls");
    wait_bounded(&mut child, SESSION).and_then(|s| s.code())
}

/// `iotls tour ARGS --plain --reproduce DIR` into a fresh directory: DIR and the exit code.
fn tour_reproduce(tag: &str, args: &[&str]) -> (PathBuf, Option<i32>) {
    let dir = tempdir(tag).join("calc");
    let mut all: Vec<&std::ffi::OsStr> = vec!["tour".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.extend(["--plain".as_ref(), "--reproduce".as_ref(), dir.as_os_str()]);
    let code = iotls(&all);
    (dir, code)
}

fn has(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

fn assert_lines(lines: &[String], prefixes: &[&str]) {
    for p in prefixes {
        assert!(
            has(lines, p),
            "no line starting {p:?} in\n{}",
            lines.join("\n")
        );
    }
}

fn no_failures(lines: &[String]) {
    assert!(
        !lines.iter().any(|l| l.starts_with("FAIL")),
        "{}",
        lines.join("\n")
    );
    // Every line is a check's verdict.
    for l in lines {
        assert!(
            l.starts_with("ok   ") || l.starts_with("n/a  "),
            "not a check line: {l:?}"
        );
    }
}

/// A tour lesson with the device offering only `suite` (None: rustls's default order).
fn session(lesson: &str, suite: Option<rustls::SupportedCipherSuite>) -> Trace {
    let mut s = iotls::engine::lessons::scenario(lesson).expect("lesson");
    if let Some(suite) = suite {
        s.device.cipher_suites = vec![suite];
    }
    iotls::engine::run(&s).expect("run the session")
}

fn key_schedule(t: &Trace) -> &KeySchedule {
    t.events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::KeySchedule(k) => Some(k.as_ref()),
            _ => None,
        })
        .expect("a key_schedule event")
}

fn handshake(t: &Trace, side: Side, msg: HandshakeType) -> &Event {
    t.handshake(side, msg)
        .unwrap_or_else(|| panic!("no {msg} from the {}", side.name()))
}

fn bytes(e: &Event) -> &[u8] {
    match &e.kind {
        EventKind::Handshake { hex, .. } => hex,
        _ => panic!("not a handshake message"),
    }
}

fn fact(e: &Event, name: &str) -> String {
    common::fact(e, name)
}

fn unhex(s: &str) -> Vec<u8> {
    iotls::trace::unhex(s).expect("hex")
}

/// The TLS 1.2 PRF (RFC 5246 §5), written here with ring's HMAC: P_hash(secret, label ‖ seed).
fn p_hash(alg: hmac::Algorithm, secret: &[u8], label_seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    let mut a = hmac::sign(&key, label_seed).as_ref().to_vec();
    let mut out = Vec::new();
    while out.len() < len {
        let mut m = a.clone();
        m.extend_from_slice(label_seed);
        out.extend_from_slice(hmac::sign(&key, &m).as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// reproduce.sh
// ---------------------------------------------------------------------------------------------

#[test]
fn the_default_tour_reproduces_with_openssl_and_python_from_another_directory() {
    if !peers("the_default_tour_reproduces_with_openssl_and_python_from_another_directory") {
        return;
    }
    let (dir, code) = tour_reproduce("reproduce-tour", &[]);
    assert_eq!(code, Some(0));
    let (code, lines) = run_script(&dir);
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    no_failures(&lines);
    assert_lines(
        &lines,
        &[
            "ok   server_kx_signature: openssl verifies the broker's ECDSA_NISTP256_SHA256 signature over 100 bytes",
            "ok   certificate_verify: openssl verifies the device's ECDSA_NISTP256_SHA256 signature",
            "ok   session_hash: sha384 of the 8 messages ClientHello … ClientKeyExchange",
            "n/a  master_secret: an input, not a calculation",
            "ok   key_block: PRF-SHA384(master_secret, \"key expansion\", server_random ‖ client_random) gives 72 bytes equal to iotls's",
            "ok   record device 5 (Finished): AES-256-GCM, seq 0: the tag verifies (GHASH)",
            "ok   record broker 2 (Finished): AES-256-GCM, seq 0: the tag verifies (GHASH)",
            "ok   record device 6 (application data): AES-256-GCM, seq 1: the tag verifies (GHASH), 28 bytes decrypted = iotls's plaintext",
            "ok   record device 9 (alert close_notify)",
            "ok   client_finished: PRF-SHA384(master_secret, \"client finished\"",
            "ok   server_finished: PRF-SHA384(master_secret, \"server finished\"",
        ],
    );
    // The device's and the broker's own verdicts stand beside the reproduction.
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ok   certificate_verify")
            && l.ends_with("as the broker's rustls found")));
    // The files a person reads, and the script's helper.
    for f in [
        "01-device-ClientHello.bin",
        "09-device-CertificateVerify.bin",
        "10-device-Finished.bin",
        "certs/device-0.der",
        "certs/device-0.pem",
        "certs/broker-1.pem",
        "keylog.txt",
        "records/device-06.record",
        "tls12.py",
    ] {
        assert!(dir.join(f).is_file(), "{f} is missing");
    }
}

#[test]
fn a_failing_lesson_reproduces_what_happened_and_says_what_could_not() {
    if !peers("a_failing_lesson_reproduces_what_happened_and_says_what_could_not") {
        return;
    }
    let (dir, code) = tour_reproduce("reproduce-untrusted", &["untrusted-device"]);
    assert_eq!(
        code,
        Some(4),
        "the lesson's own exit code: the handshake failed"
    );
    let (code, lines) = run_script(&dir);
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    no_failures(&lines);
    assert_lines(
        &lines,
        &[
            "ok   server_kx_signature:",
            "ok   key_block:",
            "ok   record device 5 (Finished):",
            "ok   client_finished:",
            "n/a  server_finished: could not happen — the broker sent no Finished: the handshake \
             ended first (unknown_issuer, decided by the broker in client_chain; alert unknown_ca)",
        ],
    );
    // The signature was sent, and verifies; the broker never got to check it.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok   certificate_verify:")
                && l.ends_with("the broker never checked it: it refused the device's chain first")),
        "{}",
        lines.join("\n")
    );
    assert!(
        !has(&lines, "ok   record broker"),
        "the broker encrypted nothing"
    );
}

#[test]
fn a_flipped_byte_of_a_signature_or_of_a_record_fails_that_check() {
    if !peers("a_flipped_byte_of_a_signature_or_of_a_record_fails_that_check") {
        return;
    }
    let (dir, code) = tour_reproduce("reproduce-flip", &[]);
    assert_eq!(code, Some(0));
    let (code, lines) = run_script(&dir);
    assert_eq!(code, Some(0), "untouched, it passes: {}", lines.join("\n"));

    let flip = |file: &str, at: fn(usize) -> usize| {
        let p = dir.join(file);
        let mut b = std::fs::read(&p).expect("read");
        let i = at(b.len());
        b[i] ^= 0x01;
        std::fs::write(&p, b).expect("write");
    };
    // The last byte of the ECDSA signature (inside its s value); the last byte of the tag.
    flip("certificate_verify.sig", |n| n - 1);
    let (code, lines) = run_script(&dir);
    assert_eq!(code, Some(1), "{}", lines.join("\n"));
    assert_lines(
        &lines,
        &[
            "FAIL certificate_verify: openssl does not verify the device's ECDSA_NISTP256_SHA256 signature",
            "ok   server_kx_signature:",
            "ok   record device 6",
        ],
    );
    flip("certificate_verify.sig", |n| n - 1);
    flip("records/device-06.record", |n| n - 1);
    let (code, lines) = run_script(&dir);
    assert_eq!(code, Some(1), "{}", lines.join("\n"));
    assert_lines(
        &lines,
        &[
            "FAIL record device 6 (application data): the tag does not verify",
            "ok   certificate_verify:",
        ],
    );
}

#[test]
fn every_cipher_suite_gives_a_reproduce_sh_that_passes() {
    if !peers("every_cipher_suite_gives_a_reproduce_sh_that_passes") {
        return;
    }
    for (suite, name, aead, prf) in [
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "AES-128-GCM",
            "SHA256",
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "AES-256-GCM",
            "SHA384",
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "CHACHA20-POLY1305",
            "SHA256",
        ),
    ] {
        let t = session("pizza-button", Some(suite));
        assert_eq!(t.tls.as_ref().unwrap().cipher_suite, name);
        assert!(t.outcome.ok, "{name}: {}", t.outcome.summary);
        let dir = tempdir("reproduce-suite").join("calc");
        iotls::export::reproduce::write(&t, &dir).expect("write the directory");
        let (code, lines) = run_script(&dir);
        assert_eq!(code, Some(0), "{name}:\n{}", lines.join("\n"));
        no_failures(&lines);
        let mac = if aead.starts_with("AES") {
            "GHASH"
        } else {
            "Poly1305"
        };
        assert_lines(
            &lines,
            &[
                "ok   server_kx_signature:",
                "ok   certificate_verify:",
                &format!("ok   key_block: PRF-{prf}(master_secret"),
                &format!("ok   record device 6 (application data): {aead}, seq 1: the tag verifies ({mac})"),
                &format!("ok   record broker 3 (application data): {aead}, seq 1: the tag verifies ({mac})"),
                &format!("ok   client_finished: PRF-{prf}"),
                &format!("ok   server_finished: PRF-{prf}"),
            ],
        );
    }
}

#[test]
fn connect_and_serve_each_reproduce_their_own_view_of_one_session() {
    if !peers("connect_and_serve_each_reproduce_their_own_view_of_one_session") {
        return;
    }
    let dir = tempdir("reproduce-serve");
    default_pki(&dir);
    let served = dir.join("served");
    let mut serve = Serve::start_with(&dir, 1, &["--reproduce".as_ref(), served.as_os_str()]);
    let device = dir.join("device");
    let code = iotls(&[
        "connect".as_ref(),
        serve.addr.as_ref(),
        "--cert".as_ref(),
        dir.join("button.pem").as_os_str(),
        "--key".as_ref(),
        dir.join("button.key").as_os_str(),
        "--ca".as_ref(),
        dir.join("root.pem").as_os_str(),
        "--server-name".as_ref(),
        "localhost".as_ref(),
        "--topic".as_ref(),
        "iotbutton/G030JF055364XVRB".as_ref(),
        "--reproduce".as_ref(),
        device.as_os_str(),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());
    assert!(
        serve
            .stderr
            .iter()
            .any(|l| l.contains("session-1/reproduce.sh")),
        "{}",
        serve.show()
    );

    // The device's view: the broker is not iotls's, so it has no verdict on the signature.
    let (code, lines) = run_script(&device);
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    no_failures(&lines);
    assert!(lines.iter().any(|l| l.starts_with("ok   certificate_verify:")
        && l.ends_with("checked here from the wire: the broker is not iotls's, so its own verdict is not in the trace")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ok   server_kx_signature:")
            && l.ends_with("as the device's rustls found")));
    // The broker's view, of the same session.
    let (code, broker_lines) = run_script(&served.join("session-1"));
    assert_eq!(code, Some(0), "{}", broker_lines.join("\n"));
    no_failures(&broker_lines);
    assert!(broker_lines.iter().any(|l| l.starts_with("ok   server_kx_signature:")
        && l.ends_with("checked here from the wire: the device is not iotls's, so its own verdict is not in the trace")));
    assert_lines(
        &broker_lines,
        &["ok   client_finished:", "ok   server_finished:"],
    );
    assert_eq!(
        std::fs::read(device.join("keylog.txt")).unwrap(),
        std::fs::read(served.join("session-1/keylog.txt")).unwrap(),
        "one session, one key-log line"
    );
}

#[test]
fn a_reproduce_path_that_is_a_file_is_refused_in_one_line_before_the_session() {
    let dir = tempdir("reproduce-file");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(IOTLS)
        .args([
            "tour".as_ref(),
            "--plain".as_ref(),
            "--reproduce".as_ref(),
            file.as_os_str(),
        ])
        .output()
        .expect("run iotls");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--reproduce") && err.contains("not a directory"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no session ran");
    let missing: PathBuf = dir.join("no/such/dir");
    let out = Command::new(IOTLS)
        .args(["tour".as_ref(), "--reproduce".as_ref(), missing.as_os_str()])
        .output()
        .expect("run iotls");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

// ---------------------------------------------------------------------------------------------
// The calculations in the trace, against independent code
// ---------------------------------------------------------------------------------------------

#[test]
fn the_key_block_is_the_tls12_prf_of_the_key_log_and_the_hellos() {
    for (suite, alg, k, iv) in [
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            hmac::HMAC_SHA384,
            32,
            4,
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            hmac::HMAC_SHA256,
            16,
            4,
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            hmac::HMAC_SHA256,
            32,
            12,
        ),
    ] {
        let t = session("pizza-button", Some(suite));
        let ks = key_schedule(&t);
        // The inputs, from elsewhere in the trace: the key log as rustls exported it, the randoms
        // from the hellos as sent.
        let master = t
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Secret { secret, .. } => Some(secret.clone()),
                _ => None,
            })
            .expect("a key-log line");
        let cr = &bytes(handshake(&t, Side::Device, HandshakeType::CLIENT_HELLO))[6..38];
        let sr = &bytes(handshake(&t, Side::Broker, HandshakeType::SERVER_HELLO))[6..38];
        assert_eq!(ks.master_secret.value, master);
        assert_eq!(ks.master_secret.source, "key_log");
        let seed = [b"key expansion".as_slice(), sr, cr].concat();
        let block = p_hash(alg, &master, &seed, 2 * k + 2 * iv);
        let x = &ks.key_expansion;
        assert_eq!(x.key_block, block, "{}", ks.cipher_suite);
        assert_eq!(x.seed, [sr, cr].concat());
        let parts: Vec<(&str, &[u8])> = x
            .parts
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_slice()))
            .collect();
        assert_eq!(
            parts,
            [
                ("client_write_key", &block[..k]),
                ("server_write_key", &block[k..2 * k]),
                ("client_write_IV", &block[2 * k..2 * k + iv]),
                ("server_write_IV", &block[2 * k + iv..]),
            ]
        );
        for p in &x.parts {
            assert_eq!(&block[p.offset..p.offset + p.len], p.value.as_slice());
        }
        // The extended master secret's session hash: ClientHello … ClientKeyExchange as sent.
        let sh = ks
            .session_hash
            .as_ref()
            .expect("rustls negotiates the extended master secret");
        let mut hashed = Vec::new();
        for e in &t.events {
            if let EventKind::Handshake { hex, msg, .. } = &e.kind {
                hashed.extend_from_slice(hex);
                if *msg == HandshakeType::CLIENT_KEY_EXCHANGE {
                    break;
                }
            }
        }
        let d = if alg == hmac::HMAC_SHA384 {
            &digest::SHA384
        } else {
            &digest::SHA256
        };
        assert_eq!(sh.hash, digest::digest(d, &hashed).as_ref());
        assert_eq!(sh.len, hashed.len());
        assert_eq!(sh.messages.last().unwrap().name, "ClientKeyExchange");
        // The event is iotls's, right after the ClientKeyExchange.
        let at = t
            .events
            .iter()
            .position(|e| matches!(e.kind, EventKind::KeySchedule(_)))
            .unwrap();
        assert_eq!(t.events[at].side, Side::Iotls);
        assert!(matches!(&t.events[at - 1].kind,
            EventKind::Handshake { msg, .. } if *msg == HandshakeType::CLIENT_KEY_EXCHANGE));
    }
}

/// Every encrypted record's protection, with the event that carried it.
fn protected(t: &Trace) -> Vec<(&Event, u32, &RecordProtection)> {
    t.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AppData {
                record,
                protection: Some(p),
                ..
            }
            | EventKind::Alert {
                record,
                protection: Some(p),
                ..
            }
            | EventKind::Handshake {
                record,
                protection: Some(p),
                ..
            } => Some((e, *record, p.as_ref())),
            _ => None,
        })
        .collect()
}

#[test]
fn each_record_decrypts_with_ring_from_the_traces_key_nonce_and_additional_data() {
    for (suite, alg, explicit) in [
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            &aead::AES_128_GCM,
            8,
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            &aead::AES_256_GCM,
            8,
        ),
        (
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            &aead::CHACHA20_POLY1305,
            0,
        ),
    ] {
        let t = session("pizza-button", Some(suite));
        let ks = key_schedule(&t);
        let part = |name: &str| {
            ks.key_expansion
                .parts
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.clone())
                .unwrap()
        };
        let records = protected(&t);
        assert!(
            records.len() >= 6,
            "Finished, MQTT and close_notify of both sides"
        );
        let mut decrypted = 0;
        for (e, index, p) in records {
            let wire = &t
                .records
                .iter()
                .find(|r| r.from == e.side && r.index == index)
                .expect("the record on the wire")
                .bytes;
            let (key, iv) = match e.side {
                Side::Device => (part("client_write_key"), part("client_write_IV")),
                _ => (part("server_write_key"), part("server_write_IV")),
            };
            assert_eq!(
                p.key,
                if e.side == Side::Device {
                    "client_write_key"
                } else {
                    "server_write_key"
                }
            );
            // The nonce, from the write IV and the record (AES-GCM) or the sequence number.
            assert_eq!(p.explicit_nonce, wire[5..5 + explicit]);
            let nonce: Vec<u8> = if explicit == 8 {
                [iv.as_slice(), &wire[5..13]].concat()
            } else {
                let mut n = iv.clone();
                for (b, s) in n[4..].iter_mut().zip(p.seq.to_be_bytes()) {
                    *b ^= s;
                }
                n
            };
            assert_eq!(p.nonce, nonce);
            let fragment = &wire[5 + explicit..];
            let plain_len = fragment.len() - 16;
            let aad = [
                p.seq.to_be_bytes().as_slice(),
                &wire[..3],
                &(plain_len as u16).to_be_bytes(),
            ]
            .concat();
            assert_eq!(p.aad, aad);
            assert_eq!(p.tag, wire[wire.len() - 16..]);
            // ring opens the record with exactly these values.
            let k = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key).unwrap());
            let mut buf = fragment.to_vec();
            let n = aead::Nonce::try_assume_unique_for_key(&p.nonce).unwrap();
            let plain = k
                .open_in_place(n, aead::Aad::from(&p.aad[..]), &mut buf)
                .expect("the tag verifies")
                .to_vec();
            match &e.kind {
                EventKind::AppData { plaintext, .. } => {
                    assert_eq!(Some(&plain), plaintext.as_ref());
                    decrypted += 1;
                }
                EventKind::Handshake { hex, .. } => assert_eq!(&plain, hex),
                EventKind::Alert { level, code, .. } => assert_eq!(plain, [level.0, *code]),
                _ => unreachable!(),
            }
            // The one-line command names this record's file and nonce.
            assert!(
                p.reproduce.contains(&iotls::trace::hex(&p.nonce)),
                "{}",
                p.reproduce
            );
        }
        assert!(
            decrypted >= 4,
            "CONNECT, CONNACK, PUBLISH, PUBACK, DISCONNECT"
        );
        // Sequence numbers count each direction's encrypted records from 0.
        for side in [Side::Device, Side::Broker] {
            let seqs: Vec<u64> = {
                let mut v: Vec<(u32, u64)> = protected(&t)
                    .into_iter()
                    .filter(|(e, _, _)| e.side == side)
                    .map(|(_, r, p)| (r, p.seq))
                    .collect();
                v.dedup();
                v.into_iter().map(|(_, s)| s).collect()
            };
            assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        }
    }
}

fn signature_of_check(e: &Event) -> &SignatureCalc {
    match &e.kind {
        EventKind::Check {
            signature: Some(s), ..
        } => s,
        _ => panic!("no signature calculation on {e:?}"),
    }
}

fn signature_of_message(e: &Event) -> &SignatureCalc {
    match &e.kind {
        EventKind::Handshake {
            signature: Some(s), ..
        } => s,
        _ => panic!("no signature calculation on the message"),
    }
}

#[test]
fn certificate_verify_spans_tile_the_signed_bytes_and_name_the_messages_as_sent() {
    let t = session("pizza-button", None);
    let check = t
        .check_by(Side::Broker, CheckId::CertificateVerify)
        .expect("the broker's check");
    let signed = unhex(&fact(check, "signed_message"));
    let calc = signature_of_check(check);
    assert_eq!(calc.signed_len, signed.len());
    assert_eq!(
        calc.signed.iter().map(|s| s.len).sum::<usize>(),
        signed.len()
    );
    // The spans tile the signed bytes, and each is a handshake message as it was on the wire,
    // from its sender, in order: ClientHello … ClientKeyExchange.
    let wire: Vec<&Event> = t
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Handshake { msg, .. } if *msg != HandshakeType::CERTIFICATE_VERIFY && *msg != HandshakeType::FINISHED))
        .collect();
    assert_eq!(calc.signed.len(), wire.len());
    let mut at = 0;
    for (span, e) in calc.signed.iter().zip(&wire) {
        assert_eq!(span.offset, at);
        assert_eq!(&signed[span.offset..span.offset + span.len], bytes(e));
        assert_eq!(span.from, e.side);
        assert_eq!(
            Some(span.msg),
            match &e.kind {
                EventKind::Handshake { msg, .. } => Some(*msg),
                _ => None,
            }
        );
        at += span.len;
    }
    assert_eq!(at, signed.len());
    assert_eq!(calc.signed.first().unwrap().name, "ClientHello");
    assert_eq!(calc.signed.last().unwrap().name, "ClientKeyExchange");
    // The digest is the scheme's hash of those bytes; the key is the one in the device's
    // certificate (its SubjectPublicKeyInfo is a part of the certificate's DER).
    assert_eq!(calc.hash_algorithm, "sha256");
    assert_eq!(
        calc.digest,
        digest::digest(&digest::SHA256, &signed).as_ref()
    );
    assert_eq!(iotls::trace::hex(&calc.digest), fact(check, "signed_hash"));
    assert_eq!(iotls::trace::hex(&calc.signature), fact(check, "signature"));
    let leaf = t
        .certificate(&calc.certificate)
        .expect("the signer's certificate");
    assert!(leaf
        .roles
        .iter()
        .any(|r| r.side == Side::Device && r.index == 0));
    assert!(
        leaf.der
            .windows(calc.public_key.len())
            .any(|w| w == calc.public_key),
        "the public key is the certificate's"
    );
    assert_eq!(
        calc.reproduce,
        "openssl dgst -sha256 -verify device-public-key.pem -signature certificate_verify.sig \
         certificate_verify_signed.bin"
    );
    // iotls's own view, from the wire, is the same calculation.
    let cv = handshake(&t, Side::Device, HandshakeType::CERTIFICATE_VERIFY);
    assert_eq!(signature_of_message(cv), calc);
}

/// `serve` keeps the verifier's evidence as digests and rebuilds it from its bounded recording. The
/// broker's `certificate_verify` calculation holds exactly the bytes the device signed: they are
/// the handshake messages the device itself recorded (another process, its own tap), and ring
/// verifies the device's signature over them with the public key of the certificate file the
/// device was given.
#[test]
fn a_served_sessions_certificate_verify_holds_exactly_the_bytes_the_device_signed() {
    let dir = tempdir("serve-certificate-verify");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let device = iotls_connect(
        &dir,
        &serve.addr,
        "button",
        &["--topic", "iotbutton/G030JF055364XVRB", "--json"],
    );
    assert_eq!(device.code, Some(0), "{}", device.show());
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());
    let served: Trace = serde_json::from_value(serve.traces().pop().expect("serve's trace"))
        .expect("serve's trace parses");
    let device: Trace = serde_json::from_str(&device.stdout).expect("connect's trace parses");

    let check = served
        .check_by(Side::Broker, CheckId::CertificateVerify)
        .expect("the broker's check");
    let calc = signature_of_check(check);
    let signed = unhex(&fact(check, "signed_message"));
    // The device's own recording: every handshake message it sent or received before its
    // CertificateVerify, and the signature in that CertificateVerify.
    let mut sent = Vec::new();
    let mut signature = None;
    for e in &device.events {
        if let EventKind::Handshake { msg, hex, .. } = &e.kind {
            if *msg == HandshakeType::CERTIFICATE_VERIFY {
                // scheme (2), length (2), signature
                signature = Some(hex[8..].to_vec());
                break;
            }
            sent.extend_from_slice(hex);
        }
    }
    assert_eq!(
        signed, sent,
        "the bytes the broker's check shows are the device's transcript"
    );
    assert_eq!(calc.signed_len, sent.len());
    assert_eq!(calc.digest, digest::digest(&digest::SHA256, &sent).as_ref());
    assert_eq!(Some(calc.signature.clone()), signature);

    // ring, with the key of the device's certificate file, accepts the signature over these
    // bytes and over no others.
    let pem = std::fs::read(dir.join("button.pem")).expect("button.pem");
    let leaf = iotls::pki::parse_certs(&pem).expect("the device's certificate")[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).expect("DER");
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.to_vec(),
    );
    assert!(key.verify(&signed, &calc.signature).is_ok());
    let mut other = signed.clone();
    other[10] ^= 0x01;
    assert!(key.verify(&other, &calc.signature).is_err());
}

#[test]
fn the_server_key_exchange_signature_covers_the_two_randoms_and_the_ecdhe_parameters() {
    let t = session("pizza-button", None);
    let check = t
        .check_by(Side::Device, CheckId::ServerKxSignature)
        .expect("the device's check");
    let signed = unhex(&fact(check, "signed_message"));
    let calc = signature_of_check(check);
    let names: Vec<(&str, Side, usize, usize)> = calc
        .signed
        .iter()
        .map(|s| (s.name.as_str(), s.from, s.offset, s.len))
        .collect();
    let ske = bytes(handshake(
        &t,
        Side::Broker,
        HandshakeType::SERVER_KEY_EXCHANGE,
    ));
    // named curve: type (1), group (2), key length (1), key.
    let params = 4 + ske[7] as usize;
    assert_eq!(
        names,
        [
            ("client_random", Side::Device, 0, 32),
            ("server_random", Side::Broker, 32, 32),
            ("ecdhe_params", Side::Broker, 64, params),
        ]
    );
    let ch = bytes(handshake(&t, Side::Device, HandshakeType::CLIENT_HELLO));
    let sh = bytes(handshake(&t, Side::Broker, HandshakeType::SERVER_HELLO));
    assert_eq!(
        signed,
        [&ch[6..38], &sh[6..38], &ske[4..4 + params]].concat()
    );
    assert_eq!(calc.signed_len, signed.len());
    assert_eq!(
        calc.digest,
        digest::digest(&digest::SHA256, &signed).as_ref()
    );
    let leaf = t
        .certificate(&calc.certificate)
        .expect("the signer's certificate");
    assert!(leaf
        .roles
        .iter()
        .any(|r| r.side == Side::Broker && r.index == 0));
    assert!(leaf
        .der
        .windows(calc.public_key.len())
        .any(|w| w == calc.public_key));
    assert_eq!(
        signature_of_message(handshake(
            &t,
            Side::Broker,
            HandshakeType::SERVER_KEY_EXCHANGE
        )),
        calc
    );
}

#[test]
fn each_finished_lists_the_messages_it_hashes() {
    let t = session("pizza-button", None);
    for (check, before) in [(CheckId::ClientFinished, 9), (CheckId::ServerFinished, 10)] {
        let e = t
            .check_by(Side::Iotls, check)
            .expect("iotls's recomputation");
        let EventKind::Check {
            finished: Some(f), ..
        } = &e.kind
        else {
            panic!("no Finished calculation");
        };
        let msgs: Vec<&[u8]> = t
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Handshake { hex, .. } => Some(hex.as_slice()),
                _ => None,
            })
            .take(before)
            .collect();
        assert_eq!(f.transcript.len(), before);
        let hashed = msgs.concat();
        assert_eq!(f.transcript_len, hashed.len());
        assert_eq!(
            f.transcript.iter().map(|s| s.len).sum::<usize>(),
            hashed.len()
        );
        assert_eq!(
            f.transcript_hash,
            digest::digest(&digest::SHA384, &hashed).as_ref()
        );
        // verify_data = PRF(master_secret, label, hash)[0..12], with the PRF written here.
        let ks = key_schedule(&t);
        let seed = [f.label.as_bytes(), &f.transcript_hash].concat();
        let expected = p_hash(hmac::HMAC_SHA384, &ks.master_secret.value, &seed, 12);
        assert_eq!(f.expected, expected);
        assert_eq!(f.received, expected, "what was sent is what the PRF gives");
        assert_eq!(
            iotls::trace::hex(&f.expected),
            fact(e, "expected_verify_data")
        );
    }
}

#[test]
fn reproduce_sh_runs_the_commands_the_trace_records() {
    let t = session("pizza-button", None);
    let dir = tempdir("reproduce-commands").join("calc");
    let script = iotls::export::reproduce::write(&t, &dir).expect("write");
    let text = std::fs::read_to_string(script).unwrap();
    let mut commands: Vec<String> = Vec::new();
    let ks = key_schedule(&t);
    commands.push(ks.key_expansion.reproduce.clone());
    commands.push(ks.session_hash.as_ref().unwrap().reproduce.clone());
    for e in &t.events {
        match &e.kind {
            EventKind::Check {
                signature: Some(s), ..
            } => commands.push(s.reproduce.clone()),
            EventKind::Check {
                finished: Some(f), ..
            } => commands.push(f.reproduce.clone()),
            _ => {}
        }
    }
    commands.extend(
        protected(&t)
            .into_iter()
            .map(|(_, _, p)| p.reproduce.clone()),
    );
    assert!(commands.len() >= 14, "{commands:?}");
    for c in commands {
        assert!(text.contains(&c), "reproduce.sh does not run {c:?}");
    }
    // A log for others keeps no key: without_secrets drops the key schedule with the key log.
    assert!(!t
        .without_secrets()
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::KeySchedule(_))));
}

/// `replay --reproduce DIR`: a session saved as a capture (pcapng with its key log) and replayed
/// offline gives a reproduce.sh that openssl and python3 pass, like the live session's; a saved
/// trace too.
#[test]
fn a_replayed_capture_and_a_replayed_trace_reproduce_with_openssl_and_python() {
    if !peers("a_replayed_capture_and_a_replayed_trace_reproduce_with_openssl_and_python") {
        return;
    }
    let base = tempdir("reproduce-replay");
    let pcap = base.join("tour.pcapng");
    let json = base.join("tour.json");
    let mut child = Command::new(IOTLS)
        .args(["tour", "--json", "--pcap"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&json).expect("create tour.json"))
        .spawn()
        .expect("start iotls");
    assert_eq!(
        wait_bounded(&mut child, SESSION).and_then(|s| s.code()),
        Some(0)
    );
    for (input, name) in [(&pcap, "from-capture"), (&json, "from-trace")] {
        let dir = base.join(name);
        let code = iotls(&[
            "replay".as_ref(),
            input.as_os_str(),
            "--plain".as_ref(),
            "--reproduce".as_ref(),
            dir.as_os_str(),
        ]);
        assert_eq!(code, Some(0), "replay {name}");
        let (code, lines) = run_script(&dir);
        assert_eq!(code, Some(0), "{name}:\n{}", lines.join("\n"));
        no_failures(&lines);
        assert_lines(
            &lines,
            &[
                "ok   server_kx_signature",
                "ok   certificate_verify",
                "ok   key_block",
                "ok   client_finished",
                "ok   server_finished",
            ],
        );
    }
}
