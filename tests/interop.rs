//! Interop with the real openssl program: iotls's device against `openssl s_server`, iotls's broker
//! against `openssl s_client`, and openssl verifying a CertificateVerify from nothing but the JSON trace.

mod common;

use common::peers::{default_pki, free_port, s_client, tempdir, Owned};
use common::*;
use iotls::engine::connect::{self, ConnectOptions};
use iotls::trace::{unhex, HandshakeType, Side, Trace};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn iotls_device_against_openssl_s_server() {
    if !peer_available("openssl", "iotls_device_against_openssl_s_server") {
        return;
    }
    let dir = tempdir("s_server");
    default_pki(&dir);
    let port = free_port();
    // s_server's -cert takes the leaf; the issuing CA goes in -cert_chain.
    let leaf_and_ca = std::fs::read_to_string(dir.join("broker.pem")).unwrap();
    let (leaf, ca) =
        leaf_and_ca.split_at(leaf_and_ca.find("-----END CERTIFICATE-----").unwrap() + 26);
    std::fs::write(dir.join("broker-leaf.pem"), leaf).unwrap();
    std::fs::write(dir.join("broker-ca.pem"), ca.trim_start()).unwrap();
    let server = Command::new("openssl")
        .args(["s_server", "-tls1_2", "-Verify", "1", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(dir.join("broker-leaf.pem"))
        .arg("-cert_chain")
        .arg(dir.join("broker-ca.pem"))
        .arg("-key")
        .arg(dir.join("broker.key"))
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .arg("-naccept")
        .arg("1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_server");
    let mut server = Owned(server);
    // Wait for s_server's "ACCEPT" (a probe connection would use up its one -naccept).
    let mut out_lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in out_lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("ACCEPT") {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.starts_with("ACCEPT")),
        "s_server did not start: {seen:?}"
    );
    let t: Trace = connect::run(&ConnectOptions {
        addr: format!("127.0.0.1:{port}"),
        cert: dir.join("button.pem"),
        key: dir.join("button.key"),
        ca: dir.join("root.pem"),
        server_name: Some("localhost".into()),
        client_id: None,
        topic: None,
        message: None,
        tls_only: true,
        mqtt5: false,
        ..ConnectOptions::default()
    })
    .expect("connect runs");
    assert!(t.outcome.ok, "{:?}", t.outcome);
    assert_eq!(t.tls.as_ref().unwrap().version, "TLSv1.2");
    for c in [
        "server_chain",
        "server_name",
        "server_kx_signature",
        "server_finished",
    ] {
        assert_eq!(check_ok(&t, c), Some(true), "check {c} against openssl");
    }
    // openssl's own check of the device's Finished is not observable from the device: only iotls's
    // recomputation from the key log is in the trace, labelled as iotls's.
    assert!(
        check(&t, "client_finished").is_none(),
        "not credited to openssl"
    );
    assert!(matches!(
        iotls_check(&t, "client_finished").map(|e| &e.kind),
        Some(iotls::trace::EventKind::Check { ok: true, .. })
    ));
    assert!(
        t.handshake(Side::Broker, HandshakeType::CERTIFICATE_REQUEST)
            .is_some(),
        "s_server -Verify asks for a certificate"
    );
    assert!(t
        .handshake(Side::Device, HandshakeType::CERTIFICATE_VERIFY)
        .is_some());
    // openssl's view: it verified our device certificate.
    drop(server.0.stdin.take());
    let _ = server.0.wait();
    let out: String = out_lines
        .map_while(Result::ok)
        .collect::<Vec<_>>()
        .join("\n");
    let mut err = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let all = format!("{out}{err}");
    assert!(
        all.contains("CN = pizza-button-1") || all.contains("CN=pizza-button-1"),
        "s_server output:\n{all}"
    );
    assert!(all.contains("verify return:1"), "s_server output:\n{all}");
}

#[test]
fn openssl_s_client_against_the_iotls_broker() {
    if !peer_available("openssl", "openssl_s_client_against_the_iotls_broker") {
        return;
    }
    let dir = tempdir("s_client");
    let serve = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(["serve", "--port", "0", "--sessions", "1", "--json", "--pki"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotls serve");
    let mut serve = Owned(serve);
    let mut lines = BufReader::new(serve.0.stdout.take().unwrap()).lines();
    // The status line is on stderr: stdout carries only traces (JSON Lines).
    let mut status = BufReader::new(serve.0.stderr.take().unwrap()).lines();
    let first = status.next().expect("a status line").unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let client = s_client(&dir, &addr, "button.pem", true)
        .arg("-verify_return_error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run openssl s_client");
    let client_out = String::from_utf8_lossy(&client.stdout).to_string()
        + &String::from_utf8_lossy(&client.stderr);
    assert!(
        client_out.contains("Verify return code: 0 (ok)"),
        "s_client output:\n{client_out}"
    );
    assert!(
        client_out.contains("Protocol  : TLSv1.2") || client_out.contains("TLSv1.2"),
        "{client_out}"
    );
    let json = lines.next().expect("a trace line").unwrap();
    let t: Trace = serde_json::from_str(&json).expect("trace JSON");
    // s_client's check of the broker's Finished happens inside openssl: only iotls's
    // recomputation of it is in the trace.
    assert!(
        check(&t, "server_finished").is_none(),
        "not credited to s_client"
    );
    assert!(iotls_check(&t, "server_finished").is_some());
    for c in ["client_chain", "certificate_verify", "client_finished"] {
        assert_eq!(
            check_ok(&t, c),
            Some(true),
            "check {c} with openssl s_client as the device"
        );
    }
    // The tap on the broker's transport saw the same transcript the verifier was given.
    let cv = check(&t, "certificate_verify").unwrap();
    assert_eq!(
        unhex(&fact(cv, "signed_message")).unwrap(),
        transcript_before_certificate_verify(&t)
    );
    let _ = serve.0.wait();
}

#[test]
fn openssl_verifies_certificate_verify_from_the_json_trace_alone() {
    if !peer_available(
        "openssl",
        "openssl_verifies_certificate_verify_from_the_json_trace_alone",
    ) {
        return;
    }
    let t = iotls::engine::run(&iotls::engine::lessons::scenario("pizza-button").unwrap()).unwrap();
    // Only the JSON from here on.
    let v: serde_json::Value = serde_json::from_str(&iotls::render::json(&t)).unwrap();
    let mut transcript = Vec::new();
    let mut device_cert_msg = None;
    let mut cv_msg = None;
    for e in v["events"].as_array().unwrap() {
        if e["kind"] != "handshake" {
            continue;
        }
        let bytes = unhex(e["hex"].as_str().unwrap()).unwrap();
        match (e["msg"].as_str().unwrap(), e["side"].as_str().unwrap()) {
            ("CertificateVerify", _) => {
                cv_msg = Some(bytes);
                break;
            }
            ("Certificate", "device") => device_cert_msg = Some(bytes.clone()),
            _ => {}
        }
        transcript.extend(bytes);
    }
    let cv = cv_msg.expect("CertificateVerify in JSON");
    let sig_len = u16::from_be_bytes([cv[6], cv[7]]) as usize;
    let dir = tempdir("cv");
    std::fs::write(dir.join("transcript.bin"), &transcript).unwrap();
    std::fs::write(dir.join("sig.der"), &cv[8..8 + sig_len]).unwrap();
    let leaf = iotls::engine::certificate_list(&device_cert_msg.unwrap())[0].to_vec();
    std::fs::write(dir.join("device.der"), &leaf).unwrap();
    let pubkey = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(dir.join("device.der"))
        .args(["-pubkey", "-noout", "-out"])
        .arg(dir.join("device.pub"))
        .status()
        .unwrap();
    assert!(pubkey.success());
    let verify = |file: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(dir.join("device.pub"))
            .arg("-signature")
            .arg(dir.join("sig.der"))
            .arg(dir.join(file))
            .output()
            .unwrap()
    };
    let ok = verify("transcript.bin");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
    // The same signature over a tampered transcript fails in openssl too.
    transcript[5] ^= 0x80;
    std::fs::write(dir.join("tampered.bin"), &transcript).unwrap();
    let bad = verify("tampered.bin");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("Verification failure"));
    // The trace's signed_hash is openssl's SHA-256 of the same (untampered) bytes.
    transcript[5] ^= 0x80;
    std::fs::write(dir.join("transcript.bin"), &transcript).unwrap();
    let dgst = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(dir.join("transcript.bin"))
        .output()
        .unwrap();
    let ours = fact(check(&t, "certificate_verify").unwrap(), "signed_hash");
    assert_eq!(
        String::from_utf8_lossy(&dgst.stdout)
            .split_whitespace()
            .next(),
        Some(ours.as_str())
    );
}
