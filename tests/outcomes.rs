//! Truthful outcomes, checked against real peers: what a person debugging a device would check.
//!
//! iotls's device against a real Mosquitto (MQTT 3.1.1 and 5, an ACL, an expired certificate) with
//! `mosquitto_sub` as an independent witness of what the broker delivered; iotls's broker against
//! iotls's device and `openssl s_client`; a recording relay that proves the trace's records are the
//! bytes that were on the wire. Only the binary and its JSON contract (`iotls-trace/2`) are used.

mod common;

use common::peer_available;
use common::peers::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------------------------
// Reading the JSON contract
// ---------------------------------------------------------------------------------------------

/// The trace a command printed with `--json`.
fn trace(r: &Run) -> Value {
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON trace ({e})\n{}", r.show()))
}

/// `outcome.mqtt[]` entries with this action.
fn actions<'a>(t: &'a Value, action: &str) -> Vec<&'a Value> {
    t["outcome"]["mqtt"]
        .as_array()
        .map(|a| a.iter().filter(|m| m["action"] == action).collect())
        .unwrap_or_default()
}

/// The one `outcome.mqtt[]` entry with this action.
fn action<'a>(t: &'a Value, action_name: &str, shown: &str) -> &'a Value {
    let found = actions(t, action_name);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{action_name}` in outcome.mqtt; outcome: {}\n{shown}",
        t["outcome"]
    );
    found[0]
}

/// Check events, in order, with their index in `events`.
fn checks(t: &Value) -> Vec<(usize, &Value)> {
    t["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .filter(|(_, e)| e["kind"] == "check")
                .collect()
        })
        .unwrap_or_default()
}

fn unhex(s: &str) -> Vec<u8> {
    iotls::trace::unhex(s).expect("hex")
}

/// The bytes of every record in `records` sent by `from`, concatenated in order.
fn record_bytes(t: &Value, from: &str, who: &str) -> Vec<u8> {
    let records = t["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{who}'s trace has no top-level `records` array"));
    records
        .iter()
        .filter(|r| r["from"] == from)
        .flat_map(|r| unhex(r["hex"].as_str().expect("records[].hex is a string")))
        .collect()
}

/// Split a byte stream into TLS records (content type, fragment); an error if it does not split
/// cleanly.
fn split_records(mut b: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 5 {
            return Err(format!(
                "{} trailing bytes after {} records",
                b.len(),
                out.len()
            ));
        }
        let (ty, version, len) = (
            b[0],
            [b[1], b[2]],
            u16::from_be_bytes([b[3], b[4]]) as usize,
        );
        if !(20..=23).contains(&ty) || version[0] != 3 || b.len() < 5 + len {
            return Err(format!(
                "record {} does not parse: header {:02x?}, {} bytes left",
                out.len(),
                &b[..5],
                b.len()
            ));
        }
        out.push((ty, b[5..5 + len].to_vec()));
        b = &b[5 + len..];
    }
    Ok(out)
}

/// Where two byte strings first differ, for an assertion message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    match at {
        Some(i) => format!(
            "lengths {} and {}, first difference at byte {i} ({:02x} vs {:02x})",
            a.len(),
            b.len(),
            a[i],
            b[i]
        ),
        None => format!(
            "lengths {} and {}; one is a prefix of the other",
            a.len(),
            b.len()
        ),
    }
}

const ACL: &str =
    "# a device may publish only to iotbutton/<its certificate's CN>; anyone may read iotbutton/#
pattern write iotbutton/%u
pattern read iotbutton/#
";

/// The default PKI and a Mosquitto with [`ACL`], in a directory of the test's own.
fn mosquitto(test: &str) -> Mosquitto {
    let dir = tempdir(test);
    default_pki(&dir);
    Mosquitto::start(&dir, ACL)
}

// ---------------------------------------------------------------------------------------------
// Mosquitto: MQTT 3.1.1 and 5, an ACL, an expired certificate
// ---------------------------------------------------------------------------------------------

#[test]
fn mosquitto_v311_publish_to_own_topic_is_acknowledged_and_delivered() {
    let test = "mosquitto_v311_publish_to_own_topic_is_acknowledged_and_delivered";
    if !peer_available("mosquitto", test) || !peer_available("mosquitto_sub", test) {
        return;
    }
    let m = mosquitto("v311-own");
    let witness = m.subscribe("neighbour", "witness-own", "iotbutton/#");
    let r = iotls_connect(
        &m.dir,
        &m.addr(),
        "button",
        &[
            "--topic",
            "iotbutton/pizza-button-1",
            "--message",
            "order-own-topic",
            "--json",
        ],
    );
    let delivered = witness.received_before_sentinel(&m, "neighbour", "iotbutton/pizza-button-2");
    let shown = format!("{}\nmosquitto log:\n{}", r.show(), m.log());
    // What really happened on the broker, independently of iotls.
    assert!(
        delivered
            .iter()
            .any(|l| l == "iotbutton/pizza-button-1 order-own-topic"),
        "mosquitto_sub did not receive the allowed message: {delivered:?}\n{shown}"
    );
    assert_eq!(r.code, Some(0), "exit code\n{shown}");
    let t = trace(&r);
    assert_eq!(t["outcome"]["ok"], true, "{shown}");
    assert_eq!(
        action(&t, "connect", &shown)["result"],
        "carried_out",
        "{shown}"
    );
    let publish = action(&t, "publish", &shown);
    assert_eq!(publish["topic"], "iotbutton/pizza-button-1", "{shown}");
    // On 3.1.1 a PUBACK proves receipt, not authorization.
    assert_eq!(publish["result"], "acknowledged_unverifiable", "{shown}");
}

#[test]
fn mosquitto_v311_denied_publish_is_acknowledged_but_not_claimed_authorized() {
    let test = "mosquitto_v311_denied_publish_is_acknowledged_but_not_claimed_authorized";
    if !peer_available("mosquitto", test) || !peer_available("mosquitto_sub", test) {
        return;
    }
    let m = mosquitto("v311-denied");
    let witness = m.subscribe("neighbour", "witness-denied", "iotbutton/#");
    // pizza-button-1 publishes to the neighbour's topic: the ACL denies it.
    let args = |json: bool| {
        let mut a = vec![
            "--topic",
            "iotbutton/pizza-button-2",
            "--message",
            "order-denied-topic",
        ];
        if json {
            a.push("--json");
        }
        a
    };
    let json = iotls_connect(&m.dir, &m.addr(), "button", &args(true));
    let plain = iotls_connect(&m.dir, &m.addr(), "button", &args(false));
    let delivered = witness.received_before_sentinel(&m, "neighbour", "iotbutton/pizza-button-2");
    let log = m.log();
    let shown = format!(
        "{}\n--- plain run ---\n{}\nmosquitto log:\n{log}",
        json.show(),
        plain.show()
    );
    assert!(
        log.contains("Denied PUBLISH from pizza-button-1"),
        "mosquitto did not deny the publish (ACL not in force?)\n{shown}"
    );
    assert!(
        !delivered.iter().any(|l| l.contains("order-denied-topic")),
        "mosquitto delivered a publish its ACL denies: {delivered:?}\n{shown}"
    );
    // Mosquitto acknowledges and drops: the device cannot tell, so iotls must not claim more.
    assert_eq!(json.code, Some(0), "exit code (--json)\n{shown}");
    assert_eq!(plain.code, Some(0), "exit code (plain)\n{shown}");
    let t = trace(&json);
    let publish = action(&t, "publish", &shown);
    assert_eq!(publish["topic"], "iotbutton/pizza-button-2", "{shown}");
    assert_eq!(publish["result"], "acknowledged_unverifiable", "{shown}");
    let summary = t["outcome"]["summary"].as_str().unwrap_or("");
    assert!(
        !summary.contains("authorized and carried out"),
        "outcome.summary claims authorization: {summary:?}\n{shown}"
    );
    let verdict = plain.last_line();
    assert!(
        !verdict.contains("authorized and carried out"),
        "the verdict claims authorization: {verdict:?}\n{shown}"
    );
    assert!(
        verdict.to_lowercase().contains("acknowledg"),
        "the verdict should say the publish was only acknowledged: {verdict:?}\n{shown}"
    );
}

#[test]
fn mosquitto_v5_denied_publish_is_refused_with_0x87() {
    let test = "mosquitto_v5_denied_publish_is_refused_with_0x87";
    if !peer_available("mosquitto", test) || !peer_available("mosquitto_sub", test) {
        return;
    }
    let m = mosquitto("v5-denied");
    let witness = m.subscribe("neighbour", "witness-v5", "iotbutton/#");
    let r = iotls_connect(
        &m.dir,
        &m.addr(),
        "button",
        &[
            "--mqtt5",
            "--topic",
            "iotbutton/pizza-button-2",
            "--message",
            "order-denied-v5",
            "--json",
        ],
    );
    let delivered = witness.received_before_sentinel(&m, "neighbour", "iotbutton/pizza-button-2");
    let shown = format!("{}\nmosquitto log:\n{}", r.show(), m.log());
    assert!(
        !delivered.iter().any(|l| l.contains("order-denied-v5")),
        "mosquitto delivered a publish its ACL denies: {delivered:?}\n{shown}"
    );
    assert_eq!(r.code, Some(5), "exit code\n{shown}");
    let t = trace(&r);
    assert_eq!(t["outcome"]["ok"], false, "{shown}");
    assert_eq!(
        action(&t, "connect", &shown)["result"],
        "carried_out",
        "{shown}"
    );
    let publish = action(&t, "publish", &shown);
    assert_eq!(publish["result"], "refused", "{shown}");
    assert_eq!(publish["reason_code"], 135, "{shown}");
}

#[test]
fn mosquitto_refuses_an_expired_device_certificate() {
    let test = "mosquitto_refuses_an_expired_device_certificate";
    if !peer_available("mosquitto", test) {
        return;
    }
    let dir = tempdir("expired");
    expired_pki(&dir);
    let m = Mosquitto::start(&dir, ACL);
    let topic = ["--topic", "iotbutton/pizza-button-1", "--json"];
    // The same PKI with a valid button works: only the expiry differs.
    let good = iotls_connect(&dir, &m.addr(), "button", &topic);
    let r = iotls_connect(&dir, &m.addr(), "button-expired", &topic);
    let shown = format!(
        "{}\n--- the valid button ---\n{}\nmosquitto log:\n{}",
        r.show(),
        good.show(),
        m.log()
    );
    assert_eq!(
        good.code,
        Some(0),
        "the valid button of the same PKI\n{shown}"
    );
    assert_eq!(r.code, Some(4), "exit code\n{shown}");
    let t = trace(&r);
    let failure = &t["outcome"]["failure"];
    assert_eq!(failure["code"], "expired", "{shown}");
    assert_eq!(
        failure["side"], "broker",
        "mosquitto made the check\n{shown}"
    );
    assert_eq!(failure["not_after"], EXPIRED_NOT_AFTER, "{shown}");
}

// ---------------------------------------------------------------------------------------------
// iotls's broker (serve) against iotls's device and openssl s_client
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_closes_on_a_publish_to_the_neighbours_topic() {
    let dir = tempdir("serve-neighbour");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let r = iotls_connect(
        &dir,
        &serve.addr,
        "neighbour",
        &[
            "--client-id",
            "pizza-button-2",
            "--topic",
            "iotbutton/G030JF055364XVRB",
            "--json",
        ],
    );
    let code = serve.finish(SESSION);
    let shown = format!("--- connect ---\n{}\n{}", r.show(), serve.show());
    assert_eq!(r.code, Some(5), "connect's exit code\n{shown}");
    let t = trace(&r);
    let publish = action(&t, "publish", &shown);
    assert_eq!(publish["topic"], "iotbutton/G030JF055364XVRB", "{shown}");
    assert_eq!(publish["result"], "connection_closed", "{shown}");

    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 1, "one trace line per session\n{shown}");
    let st: Value = serde_json::from_str(&lines[0])
        .unwrap_or_else(|e| panic!("serve's line is not JSON ({e})\n{shown}"));
    let publish = action(&st, "publish", &shown);
    assert_eq!(publish["result"], "refused", "{shown}");
    assert_eq!(code, Some(5), "serve --sessions 1 exit code\n{shown}");
}

#[test]
fn serve_names_the_missing_intermediate_of_openssl_s_client() {
    let test = "serve_names_the_missing_intermediate_of_openssl_s_client";
    if !peer_available("openssl", test) {
        return;
    }
    let dir = tempdir("serve-leaf-only");
    default_pki(&dir);
    std::fs::write(
        dir.join("button-leaf-only.pem"),
        leaf_only(&dir.join("button.pem")),
    )
    .expect("write leaf");
    let mut serve = Serve::start(&dir, 1);
    // Only the leaf: no -cert_chain, so the issuing CA is missing.
    let client = s_client(&dir, &serve.addr, "button-leaf-only.pem", false)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_client");
    let client = collect(client, SESSION);
    let code = serve.finish(SESSION);
    let shown = format!(
        "--- openssl s_client ---\n{}\n{}",
        client.show(),
        serve.show()
    );
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 1, "one trace line per session\n{shown}");
    let t: Value = serde_json::from_str(&lines[0])
        .unwrap_or_else(|e| panic!("serve's line is not JSON ({e})\n{shown}"));
    let failure = &t["outcome"]["failure"];
    assert_eq!(failure["code"], "missing_intermediate", "{shown}");
    assert_eq!(failure["side"], "broker", "{shown}");
    let missing = failure["missing_issuer"].as_str().unwrap_or("");
    assert!(
        missing.contains("Pizza Shop Issuing CA 1"),
        "missing_issuer should name the issuing CA: {missing:?}\n{shown}"
    );
    assert_eq!(code, Some(4), "serve --sessions 1 exit code\n{shown}");
}

/// `serve` with its own certificates and registry: a CA registered by its PEM (not a trust anchor)
/// is how the broker knows the intermediate a leaf-only device left out.
#[test]
fn serve_with_a_registry_names_a_registered_intermediate() {
    if !peer_available(
        "openssl",
        "serve_with_a_registry_names_a_registered_intermediate",
    ) {
        return;
    }
    let dir = tempdir("serve-registry-ca");
    default_pki(&dir);
    std::fs::write(
        dir.join("button-leaf-only.pem"),
        leaf_only(&dir.join("button.pem")),
    )
    .expect("write leaf");
    let registry = serde_json::json!({
        "policies": [{ "name": "AllowAll", "document": { "Version": "2012-10-17",
            "Statement": { "Effect": "Allow", "Action": "iot:*", "Resource": "*" } } }],
        "cas": [{ "pem": "issuing-ca.pem", "status": "ACTIVE" }],
        "certificates": [{ "pem": "button.pem", "status": "ACTIVE", "policies": ["AllowAll"] }]
    });
    std::fs::write(dir.join("registry.json"), registry.to_string()).expect("write registry");
    let (cert, key, ca, reg) = (
        dir.join("broker.pem"),
        dir.join("broker.key"),
        dir.join("root.pem"),
        dir.join("registry.json"),
    );
    let extra: Vec<&std::ffi::OsStr> = vec![
        "--cert".as_ref(),
        cert.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "--ca".as_ref(),
        ca.as_os_str(),
        "--registry".as_ref(),
        reg.as_os_str(),
    ];
    let mut serve = Serve::start_with(&dir.join("unused-pki"), 1, &extra);
    let client = s_client(&dir, &serve.addr, "button-leaf-only.pem", false)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_client");
    let client = collect(client, SESSION);
    let code = serve.finish(SESSION);
    let shown = format!(
        "--- openssl s_client ---\n{}\n{}",
        client.show(),
        serve.show()
    );
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 1, "one trace line per session\n{shown}");
    let t: Value = serde_json::from_str(&lines[0])
        .unwrap_or_else(|e| panic!("serve's line is not JSON ({e})\n{shown}"));
    let failure = &t["outcome"]["failure"];
    assert_eq!(failure["code"], "missing_intermediate", "{shown}");
    assert!(
        failure["missing_issuer"]
            .as_str()
            .unwrap_or("")
            .contains("Pizza Shop Issuing CA 1"),
        "{shown}"
    );
    assert_eq!(code, Some(4), "{shown}");
}

/// Options that do not go together are a usage error (exit 2), named in one line.
#[test]
fn serve_cert_without_ca_is_a_usage_error() {
    let dir = tempdir("serve-usage");
    default_pki(&dir);
    let r = iotls([
        "serve".as_ref(),
        "--port".as_ref(),
        "0".as_ref(),
        "--cert".as_ref(),
        dir.join("broker.pem").as_os_str(),
        "--key".as_ref(),
        dir.join("broker.key").as_os_str(),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.show());
    assert!(
        r.stderr.contains("--ca is needed with --cert"),
        "{}",
        r.show()
    );
}

/// A good session through iotls's broker: button publishes to its own topic.
fn good_connect(dir: &Path, addr: &str) -> Run {
    iotls_connect(
        dir,
        addr,
        "button",
        &["--topic", "iotbutton/G030JF055364XVRB", "--json"],
    )
}

#[test]
fn serve_json_stdout_is_only_json_lines() {
    let dir = tempdir("serve-jsonl");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let r = good_connect(&dir, &serve.addr);
    let code = serve.finish(SESSION);
    let shown = format!("--- connect ---\n{}\n{}", r.show(), serve.show());
    assert_eq!(
        serve.listening_on,
        Stream::Stderr,
        "`listening on ADDR` belongs on stderr\n{shown}"
    );
    assert!(!serve.stdout.is_empty(), "no trace on stdout\n{shown}");
    for line in &serve.stdout {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {line:?}\n{shown}"));
        let format = v["format"].as_str().unwrap_or("");
        assert!(
            format.starts_with("iotls-trace/"),
            "format {format:?}\n{shown}"
        );
    }
    assert_eq!(
        code,
        Some(0),
        "serve exit code after a good session\n{shown}"
    );
}

#[test]
fn serve_exits_with_the_code_of_the_first_failed_session() {
    let dir = tempdir("serve-exit");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 2);
    let good = good_connect(&dir, &serve.addr);
    // Then a peer that does not speak TLS.
    let mut tcp = std::net::TcpStream::connect(&serve.addr).expect("connect");
    let _ = tcp.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let code = serve.finish(SESSION);
    drop(tcp);
    let shown = format!("--- connect ---\n{}\n{}", good.show(), serve.show());
    assert_eq!(good.code, Some(0), "the good session\n{shown}");
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 2, "one trace line per session\n{shown}");
    let second: Value = serde_json::from_str(&lines[1])
        .unwrap_or_else(|e| panic!("serve's line is not JSON ({e})\n{shown}"));
    assert_eq!(
        second["outcome"]["failure"]["code"], "peer_not_tls",
        "{shown}"
    );
    assert_eq!(
        code,
        Some(4),
        "serve exits with the first failed session's code\n{shown}"
    );
}

#[test]
fn records_are_the_bytes_on_the_wire() {
    let dir = tempdir("relay");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let relay = Relay::start(&serve.addr);
    let r = good_connect(&dir, &relay.addr);
    let (up, down) = relay.finish();
    let code = serve.finish(SESSION);
    let shown = format!("--- connect ---\n{}\n{}", r.show(), serve.show());
    assert_eq!(r.code, Some(0), "connect exit code\n{shown}");
    assert_eq!(code, Some(0), "serve exit code\n{shown}");
    assert!(!up.is_empty() && !down.is_empty(), "relay saw nothing");
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 1, "one trace line per session\n{shown}");
    let served: Value = serde_json::from_str(&lines[0])
        .unwrap_or_else(|e| panic!("serve's line is not JSON ({e})\n{shown}"));
    let device = trace(&r);
    // The relay itself: each direction is a clean sequence of TLS 1.2 records, and the first one
    // the device sent carries the ClientHello the trace shows.
    let up_records = split_records(&up).unwrap_or_else(|e| panic!("device→broker bytes: {e}"));
    let down_records = split_records(&down).unwrap_or_else(|e| panic!("broker→device bytes: {e}"));
    assert!(
        up_records.len() >= 5 && down_records.len() >= 5,
        "too few records through the relay: {} up, {} down",
        up_records.len(),
        down_records.len()
    );
    let client_hello = device["events"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["msg"] == "ClientHello"))
        .and_then(|e| e["hex"].as_str())
        .map(unhex)
        .unwrap_or_default();
    assert!(
        up_records[0].0 == 22 && up_records[0].1 == client_hello,
        "the relay's first device record is not the trace's ClientHello"
    );
    for (who, t) in [("connect", &device), ("serve", &served)] {
        for (from, wire) in [("device", &up), ("broker", &down)] {
            let ours = record_bytes(t, from, who);
            assert!(
                ours == *wire,
                "{who}'s records from {from} differ from the relay's bytes: {}",
                first_difference(&ours, wire)
            );
        }
    }
    // The connection ends with the broker's close_notify as the last record it sent.
    let last_from_broker = device["records"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|r| r["from"] == "broker"))
        .and_then(|r| r["hex"].as_str())
        .map(unhex)
        .unwrap_or_default();
    assert_eq!(
        last_from_broker.first(),
        Some(&21),
        "the broker's last record is an alert (close_notify)"
    );
    // The device cannot observe the broker's checks.
    let broker_checks: Vec<_> = checks(&device)
        .into_iter()
        .filter(|(_, c)| c["side"] == "broker")
        .map(|(_, c)| c["check"].clone())
        .collect();
    assert!(
        broker_checks.is_empty(),
        "connect's trace claims broker-side checks it cannot have seen: {broker_checks:?}"
    );
}

#[test]
fn untrusted_device_tour_has_no_broker_side_finished_check() {
    let r = iotls(["tour", "untrusted-device", "--json"]);
    assert_eq!(r.code, Some(4), "exit code\n{}", r.show());
    let t = trace(&r);
    let all = checks(&t);
    let summary: Vec<String> = all
        .iter()
        .map(|(i, c)| format!("#{i} {} {} ok={}", c["side"], c["check"], c["ok"]))
        .collect();
    let chain_at = all
        .iter()
        .find(|(_, c)| c["check"] == "client_chain")
        .map(|(i, _)| *i)
        .unwrap_or_else(|| panic!("no client_chain check: {summary:#?}"));
    for (i, c) in &all {
        if c["check"] == "client_finished" {
            assert_eq!(
                c["side"], "iotls",
                "the broker never derived keys, so only iotls can have recomputed the Finished: {summary:#?}"
            );
            assert!(
                *i > chain_at,
                "client_finished before client_chain: {summary:#?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fixtures themselves (these must pass whatever the state of the library)
// ---------------------------------------------------------------------------------------------

#[test]
fn fixture_relay_records_both_directions_through_a_half_close() {
    // A server that reads until the client's EOF, then answers and closes.
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = server.local_addr().expect("addr").to_string();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = server.accept().expect("accept");
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut got).expect("read to EOF");
        s.write_all(b"reply after your EOF: ").expect("write");
        s.write_all(&got).expect("write");
    });
    let relay = Relay::start(&target);
    let mut c = std::net::TcpStream::connect(&relay.addr).expect("connect to relay");
    c.write_all(b"hello ").expect("write");
    c.write_all(b"broker").expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut back).expect("read reply");
    echo.join().expect("server");
    let (up, down) = relay.finish();
    assert_eq!(up, b"hello broker");
    assert_eq!(down, b"reply after your EOF: hello broker");
    assert_eq!(back, down);
}

#[test]
fn fixture_mosquitto_speaks_only_tls12_and_enforces_its_acl() {
    let test = "fixture_mosquitto_speaks_only_tls12_and_enforces_its_acl";
    if !peer_available("mosquitto", test)
        || !peer_available("mosquitto_sub", test)
        || !peer_available("openssl", test)
    {
        return;
    }
    let m = mosquitto("fixture");
    let s_client = |version: &str| {
        let c = Command::new("openssl")
            .args(["s_client", version, "-connect", &m.addr()])
            .args(["-servername", "localhost"])
            .arg("-cert")
            .arg(m.dir.join("button.pem"))
            .arg("-key")
            .arg(m.dir.join("button.key"))
            .arg("-CAfile")
            .arg(m.dir.join("root.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start openssl s_client");
        collect(c, SESSION)
    };
    let any = s_client("-no_ssl3");
    assert!(
        any.stdout.contains("Protocol  : TLSv1.2"),
        "mosquitto should negotiate TLS 1.2 with a client that offers 1.3\n{}\n{}",
        any.show(),
        m.log()
    );
    let tls13 = s_client("-tls1_3");
    assert!(
        !tls13.stdout.contains("Protocol  : TLSv1.3"),
        "mosquitto must not speak TLS 1.3 (OPENSSL_CONF not in force?)\n{}\n{}",
        tls13.show(),
        m.log()
    );
    let witness = m.subscribe("neighbour", "witness-fixture", "iotbutton/#");
    m.publish(
        "button",
        "pub-allowed",
        "iotbutton/pizza-button-1",
        "allowed",
    );
    m.publish("button", "pub-denied", "iotbutton/pizza-button-2", "denied");
    let delivered = witness.received_before_sentinel(&m, "neighbour", "iotbutton/pizza-button-2");
    assert_eq!(
        delivered,
        vec!["iotbutton/pizza-button-1 allowed".to_string()],
        "{}",
        m.log()
    );
}

/// `serve`'s default narration is a log others may read: it shows the session but neither the
/// master secret nor the payloads (they are in `--json`, which the operator asks for).
#[test]
fn serve_narration_keeps_secrets_and_payloads_out() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempdir("serve-secrets");
    default_pki(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(["serve", "--port", "0", "--sessions", "1", "--pki"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotls serve");
    let mut serve = Owned(child);
    let mut status = BufReader::new(serve.0.stderr.take().unwrap()).lines();
    let first = status.next().expect("a status line").unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .expect("listening on")
        .to_string();
    let r = good_connect(&dir, &addr);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t = trace(&r);
    let secret = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| (e["kind"] == "secret").then(|| e["secret"].as_str().unwrap().to_string()))
        .expect("connect's trace holds the key-log secret");
    let _ = wait_bounded(&mut serve.0, SESSION);
    let mut out = String::new();
    serve
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("PUBLISH"), "the session is narrated:\n{out}");
    assert!(
        !out.contains(&secret[..12]),
        "no part of the master secret:\n{out}"
    );
    assert!(!out.contains("clickType"), "no payload:\n{out}");
    // Nor the keys derived from it: the key block and the write keys the tour's key schedule
    // shows.
    let schedule = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "key_schedule")
        .expect("connect's trace holds the key schedule");
    let expansion = &schedule["key_expansion"];
    let mut keys = vec![expansion["key_block"].as_str().unwrap().to_string()];
    for p in expansion["parts"].as_array().unwrap() {
        if p["name"].as_str().unwrap().ends_with("_key") {
            keys.push(p["value"].as_str().unwrap().to_string());
        }
    }
    for k in keys {
        assert!(!out.contains(&k[..16]), "no key ({k}):\n{out}");
    }
    assert!(!out.contains("key block"), "no key schedule:\n{out}");
}

/// The device asks mosquitto for a name its certificate does not carry: iotls's device refuses the
/// broker (its own check, so it is credited to the device), exit 4, with both names.
#[test]
fn mosquitto_under_the_wrong_host_name_is_refused_by_the_device() {
    let test = "mosquitto_under_the_wrong_host_name_is_refused_by_the_device";
    if !peer_available("mosquitto", test) {
        return;
    }
    let m = mosquitto(test);
    let dir = &m.dir;
    let r = iotls([
        "connect".as_ref(),
        m.addr().as_ref(),
        "--cert".as_ref(),
        dir.join("button.pem").as_os_str(),
        "--key".as_ref(),
        dir.join("button.key").as_os_str(),
        "--ca".as_ref(),
        dir.join("root.pem").as_os_str(),
        "--server-name".as_ref(),
        "mqtt.other-shop.example".as_ref(),
        "--topic".as_ref(),
        "iotbutton/pizza-button-1".as_ref(),
        "--json".as_ref(),
    ]);
    let shown = format!("{}\nmosquitto log:\n{}", r.show(), m.log());
    assert_eq!(r.code, Some(4), "exit code\n{shown}");
    let failure = &trace(&r)["outcome"]["failure"];
    assert_eq!(failure["code"], "not_valid_for_name", "{shown}");
    assert_eq!(failure["side"], "device", "{shown}");
    assert_eq!(failure["check"], "server_name", "{shown}");
    assert_eq!(
        failure["expected_name"], "mqtt.other-shop.example",
        "{shown}"
    );
    let names = failure["presented_names"].to_string();
    assert!(names.contains("localhost"), "{names}\n{shown}");
}
