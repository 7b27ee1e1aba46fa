//! `iotls connect` as an engineer debugging a real device uses it against AWS IoT: ALPN
//! (`x-amzn-mqtt-ca`, which AWS IoT needs on port 443) against `openssl s_server` and `iotls serve`,
//! the broker address and its defaults, QoS, retain, subscribe and listen, keep-alive, and the
//! pre-flight checks of the device's own files.
//!
//! Every server listens on 127.0.0.1 on a free port and is killed by its PID when the test ends
//! (`Owned`, `Serve`); files go into a directory of the test's own.

mod common;

use common::peer_available;
use common::peers::{
    default_pki, expired_pki, free_port, iotls, leaf_only, tempdir, Owned, Run, Serve,
    EXPIRED_NOT_AFTER, SESSION,
};
use iotls::engine::connect::{sni, Target};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const AWS_ALPN: &str = "x-amzn-mqtt-ca";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `iotls connect ADDR --cert CERT --key KEY --ca CA EXTRA…`, files relative to `dir`.
fn connect(dir: &Path, addr: &str, cert: &str, key: &str, ca: &str, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["connect".into(), addr.into()];
    for (flag, file) in [("--cert", cert), ("--key", key), ("--ca", ca)] {
        args.push(flag.into());
        args.push(dir.join(file).into());
    }
    args.extend(extra.iter().map(Into::into));
    iotls(args)
}

/// The trace a `--json` run printed.
fn trace(r: &Run) -> Value {
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON trace ({e})\n{}", r.show()))
}

/// The first handshake event `msg` sent by `side`.
fn handshake<'t>(t: &'t Value, side: &str, msg: &str) -> Option<&'t Value> {
    t["events"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == "handshake" && e["side"] == side && e["msg"] == msg)
}

/// The protocol names under a hello's ALPN extension field, and whether the extension is there.
fn alpn_fields(hello: &Value) -> (bool, Vec<String>) {
    let fields = hello["fields"].as_array().cloned().unwrap_or_default();
    let present = fields
        .iter()
        .any(|f| f["name"] == "extension application_layer_protocol_negotiation");
    let names = fields
        .iter()
        .filter(|f| f["name"] == "protocol" && f["depth"] == 2)
        .map(|f| f["value"].as_str().unwrap_or_default().to_string())
        .collect();
    (present, names)
}

/// Every MQTT packet of the trace as (sender, packet).
fn mqtt_packets(t: &Value) -> Vec<(String, Value)> {
    let mut v = Vec::new();
    for e in t["events"].as_array().into_iter().flatten() {
        for p in e["mqtt"].as_array().into_iter().flatten() {
            v.push((
                e["side"].as_str().unwrap_or_default().to_string(),
                p.clone(),
            ));
        }
    }
    v
}

/// The results of the device's MQTT requests: (action, result).
fn requests(t: &Value) -> Vec<(String, String)> {
    t["outcome"]["mqtt"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["action"].as_str().unwrap_or_default().to_string(),
                m["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `openssl s_server` running for one connection, and its stdout collected after ACCEPT.
struct SServer {
    child: Owned,
    stdout: std::thread::JoinHandle<String>,
}

/// `openssl s_server -tls1_2 -Verify 1 EXTRA…` with the broker of the PKI in `dir`, offering
/// `alpn`, for one connection; returns once it printed ACCEPT, with its port.
fn s_server(dir: &Path, alpn: &str, extra: &[&str]) -> (SServer, u16) {
    let chain = std::fs::read_to_string(dir.join("broker.pem")).unwrap();
    let end = chain.find("-----END CERTIFICATE-----").unwrap() + 26;
    std::fs::write(dir.join("broker-leaf.pem"), &chain[..end]).unwrap();
    std::fs::write(dir.join("broker-ca.pem"), chain[end..].trim_start()).unwrap();
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-tls1_2", "-alpn", alpn, "-Verify", "1"])
        .arg("-accept")
        .arg(port.to_string())
        .arg("-cert")
        .arg(dir.join("broker-leaf.pem"))
        .arg("-cert_chain")
        .arg(dir.join("broker-ca.pem"))
        .arg("-key")
        .arg(dir.join("broker.key"))
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .args(["-naccept", "1"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl s_server");
    let mut server = Owned(child);
    // Wait for "ACCEPT" (a probe connection would use up its one -naccept).
    let out = server.0.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
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
    // Keep reading stdout so s_server never blocks on a full pipe.
    let stdout =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (
        SServer {
            child: server,
            stdout,
        },
        port,
    )
}

/// Everything s_server printed (stdout, then stderr), once it has ended (bounded).
fn s_server_output(server: SServer) -> String {
    let SServer { mut child, stdout } = server;
    drop(child.0.stdin.take());
    let _ = common::peers::wait_bounded(&mut child.0, Duration::from_secs(5));
    let mut err = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    format!("{}\n{err}", stdout.join().unwrap_or_default())
}

/// A registry in `dir` that lets `button.pem` do anything (any client id, any topic).
fn allow_all_registry(dir: &Path) -> std::path::PathBuf {
    let registry = json!({
        "policies": [
            { "name": "AllowAll", "document": { "Version": "2012-10-17",
                "Statement": { "Effect": "Allow", "Action": "iot:*", "Resource": "*" } } }
        ],
        "certificates": [
            { "pem": "button.pem", "status": "ACTIVE", "policies": ["AllowAll"] }
        ]
    });
    let reg = dir.join("registry.json");
    std::fs::write(&reg, registry.to_string()).expect("write registry");
    reg
}

// ---------------------------------------------------------------------------------------------
// The broker address
// ---------------------------------------------------------------------------------------------

#[test]
fn the_address_defaults_to_port_8883_and_port_443_implies_alpn() {
    let t = |s: &str| Target::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let aws = "abcdefgh-ats.iot.us-east-1.amazonaws.com";
    assert_eq!(t(aws).port, 8883);
    assert_eq!(t(aws).host, aws);
    assert_eq!(t(aws).dial(), format!("{aws}:8883"));
    assert_eq!(t(&format!("{aws}:443")).port, 443);
    assert_eq!(t("127.0.0.1:18883").dial(), "127.0.0.1:18883");
    assert_eq!(t("[::1]").dial(), "[::1]:8883");
    assert_eq!(t("[::1]").host, "::1");
    assert_eq!(t("[::1]:443").port, 443);

    // Port 443: x-amzn-mqtt-ca unless --alpn says otherwise; elsewhere nothing unless asked.
    let none: Vec<String> = Vec::new();
    assert_eq!(t(&format!("{aws}:443")).alpn(&none), [AWS_ALPN]);
    assert_eq!(t(&format!("{aws}:443")).alpn(&["mqtt".into()]), ["mqtt"]);
    assert!(t(aws).alpn(&none).is_empty());
    assert_eq!(t(aws).alpn(&[AWS_ALPN.into()]), [AWS_ALPN]);

    // SNI: a DNS name is sent, an IP literal is not (RFC 6066).
    assert_eq!(sni(aws).as_deref(), Some(aws));
    assert_eq!(sni("localhost").as_deref(), Some("localhost"));
    assert_eq!(sni("127.0.0.1"), None);
    assert_eq!(sni("::1"), None);

    // What cannot be an address is a usage error that says what to write.
    for bad in [
        "",
        "host:0",
        "host:99999",
        "host:port",
        ":8883",
        "::1",
        "::1:8883",
        "[::1",
        "[::1]8883",
        "[broker]:8883",
        "mqtts://host:8883",
    ] {
        let e = Target::parse(bad).expect_err(bad).to_string();
        assert!(
            e.contains("HOST or HOST:PORT"),
            "{bad:?} gives a message that says what to write: {e}"
        );
    }
}

#[test]
fn a_bad_address_or_qos_2_is_a_usage_error() {
    let dir = tempdir("connect-usage");
    default_pki(&dir);
    let r = connect(
        &dir,
        "host:port",
        "button.pem",
        "button.key",
        "root.pem",
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.show());
    assert!(r.stderr.contains("\"port\" is not a port"), "{}", r.show());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.show());

    let r = connect(
        &dir,
        "127.0.0.1:8883",
        "button.pem",
        "button.key",
        "root.pem",
        &["--topic", "t", "--qos", "2"],
    );
    assert_eq!(r.code, Some(2), "clap refuses QoS 2\n{}", r.show());
    assert!(r.stderr.contains("--qos"), "{}", r.show());
    assert!(r.stdout.is_empty(), "{}", r.show());
}

// ---------------------------------------------------------------------------------------------
// ALPN against openssl s_server
// ---------------------------------------------------------------------------------------------

#[test]
fn alpn_x_amzn_mqtt_ca_is_offered_and_chosen_by_openssl_s_server() {
    if !peer_available(
        "openssl",
        "alpn_x_amzn_mqtt_ca_is_offered_and_chosen_by_openssl_s_server",
    ) {
        return;
    }
    let dir = tempdir("alpn-s-server");
    default_pki(&dir);
    let (server, port) = s_server(&dir, AWS_ALPN, &[]);
    // No --server-name: the host is an IP literal, so no SNI; the broker's certificate names
    // 127.0.0.1, and the device checks it against that address.
    let r = connect(
        &dir,
        &format!("127.0.0.1:{port}"),
        "button.pem",
        "button.key",
        "root.pem",
        &["--tls-only", "--alpn", AWS_ALPN, "--json"],
    );
    let err = s_server_output(server);
    assert_eq!(r.code, Some(0), "{}\n--- s_server ---\n{err}", r.show());
    let t = trace(&r);
    assert_eq!(t["tls"]["alpn"], AWS_ALPN, "{}", r.show());
    let ch = handshake(&t, "device", "ClientHello").expect("ClientHello");
    assert_eq!(alpn_fields(ch), (true, vec![AWS_ALPN.to_string()]));
    let sh = handshake(&t, "broker", "ServerHello").expect("ServerHello");
    assert_eq!(alpn_fields(sh), (true, vec![AWS_ALPN.to_string()]));
    // openssl's own account of it.
    assert!(
        err.contains(&format!("ALPN protocols selected: {AWS_ALPN}")),
        "s_server:\n{err}"
    );
    // IP literal: no server_name extension on the wire, no SNI in the summary, name check passed.
    assert!(t["tls"]["sni"].is_null());
    assert!(!ch["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "extension server_name"));
    let name_check = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "check" && e["check"] == "server_name")
        .expect("the device's server_name check");
    assert_eq!(name_check["ok"], true, "{name_check}");
    assert_eq!(name_check["side"], "device");
}

#[test]
fn openssl_s_server_refuses_an_alpn_offer_it_does_not_speak() {
    if !peer_available(
        "openssl",
        "openssl_s_server_refuses_an_alpn_offer_it_does_not_speak",
    ) {
        return;
    }
    let dir = tempdir("alpn-s-server-refuses");
    default_pki(&dir);
    let (server, port) = s_server(&dir, AWS_ALPN, &[]);
    let r = connect(
        &dir,
        &format!("127.0.0.1:{port}"),
        "button.pem",
        "button.key",
        "root.pem",
        &["--tls-only", "--alpn", "mqtt", "--json"],
    );
    let err = s_server_output(server);
    // Observed with OpenSSL 3: with -alpn and no protocol in common, s_server sends the fatal
    // alert no_application_protocol rather than ignoring ALPN.
    assert_eq!(r.code, Some(4), "{}\n--- s_server ---\n{err}", r.show());
    let t = trace(&r);
    let f = &t["outcome"]["failure"];
    assert_eq!(f["code"], "no_application_protocol", "{}", r.show());
    assert_eq!(f["side"], "broker");
    assert_eq!(f["alert"], "no_application_protocol");
    assert_eq!(t["outcome"]["tls_completed"], false);
    let ch = handshake(&t, "device", "ClientHello").expect("ClientHello");
    assert_eq!(alpn_fields(ch), (true, vec!["mqtt".to_string()]));
    assert!(
        err.contains("no application protocol"),
        "s_server says why:\n{err}"
    );
    // The summary explains it and names the protocol AWS IoT needs on 443.
    let summary = t["outcome"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("ALPN") && summary.contains(AWS_ALPN),
        "{summary}"
    );
}

// ---------------------------------------------------------------------------------------------
// iotls serve --alpn
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_alpn_refuses_another_protocol_and_accepts_its_own_or_none() {
    let dir = tempdir("serve-alpn");
    default_pki(&dir);
    let mut serve = Serve::start_with(&dir, 3, &["--alpn".as_ref(), AWS_ALPN.as_ref()]);
    let addr = serve.addr.clone();
    let publish = ["--topic", "iotbutton/G030JF055364XVRB", "--json"];
    let run = |extra: &[&str]| {
        let mut args = vec!["--server-name", "localhost"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&publish);
        connect(&dir, &addr, "button.pem", "button.key", "root.pem", &args)
    };

    // 1. A device that offers another protocol: rustls refuses it with no_application_protocol.
    let refused = run(&["--alpn", "mqtt"]);
    assert_eq!(refused.code, Some(4), "{}", refused.show());
    let t = trace(&refused);
    assert_eq!(t["outcome"]["failure"]["code"], "no_application_protocol");
    assert_eq!(t["outcome"]["failure"]["alert"], "no_application_protocol");
    assert_eq!(
        requests(&t),
        [
            ("connect".into(), "not_sent".into()),
            ("publish".into(), "not_sent".into())
        ]
    );
    let broker_side = serve
        .wait_for_trace(SESSION, |_| true)
        .expect("serve's trace of the refused session");
    assert_eq!(
        broker_side["outcome"]["failure"]["code"], "no_application_protocol",
        "{broker_side}"
    );
    assert_eq!(broker_side["outcome"]["failure"]["side"], "broker");

    // 2. A device that offers no ALPN at all: rustls accepts it (it refuses only an offer with
    //    nothing in common), and no protocol is chosen.
    let none = run(&[]);
    assert_eq!(none.code, Some(0), "{}", none.show());
    let t = trace(&none);
    assert!(t["tls"]["alpn"].is_null(), "{}", none.show());
    let ch = handshake(&t, "device", "ClientHello").unwrap();
    assert_eq!(alpn_fields(ch), (false, vec![]));

    // 3. A device that offers x-amzn-mqtt-ca: chosen, and the session runs to the end.
    let ok = run(&["--alpn", "mqtt", "--alpn", AWS_ALPN]);
    assert_eq!(ok.code, Some(0), "{}", ok.show());
    let t = trace(&ok);
    assert_eq!(t["tls"]["alpn"], AWS_ALPN);
    let ch = handshake(&t, "device", "ClientHello").unwrap();
    assert_eq!(
        alpn_fields(ch),
        (true, vec!["mqtt".to_string(), AWS_ALPN.to_string()]),
        "offered in the order given"
    );
    assert_eq!(serve.finish(SESSION), Some(4), "first session not ok: 4");
    let last = serve.traces().pop().expect("three traces");
    assert_eq!(last["tls"]["alpn"], AWS_ALPN);
}

#[test]
fn alpn_is_narrated_in_the_hellos() {
    let dir = tempdir("serve-alpn-plain");
    default_pki(&dir);
    let mut serve = Serve::start_with(&dir, 2, &["--alpn".as_ref(), AWS_ALPN.as_ref()]);
    let ok = connect(
        &dir,
        &serve.addr,
        "button.pem",
        "button.key",
        "root.pem",
        &[
            "--server-name",
            "localhost",
            "--tls-only",
            "--alpn",
            AWS_ALPN,
        ],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.show());
    let text = ok.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains(&format!(
            "It offers the application protocol {AWS_ALPN} (ALPN)"
        )),
        "{text}"
    );
    assert!(text.contains("port 443 needs"), "{text}");
    assert!(
        text.contains(&format!("It chooses the application protocol {AWS_ALPN}")),
        "{text}"
    );
    let refused = connect(
        &dir,
        &serve.addr,
        "button.pem",
        "button.key",
        "root.pem",
        &["--server-name", "localhost", "--tls-only", "--alpn", "mqtt"],
    );
    assert_eq!(refused.code, Some(4), "{}", refused.show());
    assert!(
        refused
            .last_line()
            .starts_with("FAILED: no_application_protocol"),
        "{}",
        refused.show()
    );
    assert!(refused.last_line().contains(AWS_ALPN), "{}", refused.show());
    assert_eq!(serve.finish(SESSION), Some(4));
}

// ---------------------------------------------------------------------------------------------
// QoS, retain, subscribe and listen, keep-alive
// ---------------------------------------------------------------------------------------------

#[test]
fn qos_0_publishes_at_qos_0_and_is_sent_unacknowledged() {
    let dir = tempdir("qos0");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let r = connect(
        &dir,
        &serve.addr,
        "button.pem",
        "button.key",
        "root.pem",
        &[
            "--server-name",
            "localhost",
            "--topic",
            "iotbutton/G030JF055364XVRB",
            "--qos",
            "0",
            "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t = trace(&r);
    let publish: Vec<Value> = mqtt_packets(&t)
        .into_iter()
        .filter(|(s, p)| s == "device" && p["packet"] == "PUBLISH")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(publish.len(), 1, "{}", r.show());
    assert_eq!(publish[0]["qos"], 0);
    assert!(
        !mqtt_packets(&t)
            .iter()
            .any(|(_, p)| p["packet"] == "PUBACK"),
        "nothing answers QoS 0"
    );
    assert_eq!(
        requests(&t),
        [
            ("connect".into(), "carried_out".into()),
            ("publish".into(), "sent_unacknowledged".into())
        ]
    );
    // The broker's side: it allowed and carried out the publish.
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());
}

#[test]
fn subscribe_and_listen_collects_what_another_device_publishes() {
    let dir = tempdir("listen");
    default_pki(&dir);
    let reg = allow_all_registry(&dir);
    let serve = Serve::start_with(&dir, 0, &["--registry".as_ref(), reg.as_os_str()]);
    let addr = serve.addr.clone();
    // The listener: subscribes to `t`, then stays 4 s.
    let mut args: Vec<std::ffi::OsString> = vec!["connect".into(), addr.clone().into()];
    for (flag, file) in [
        ("--cert", "button.pem"),
        ("--key", "button.key"),
        ("--ca", "root.pem"),
    ] {
        args.push(flag.into());
        args.push(dir.join(file).into());
    }
    for a in [
        "--server-name",
        "localhost",
        "--client-id",
        "listener",
        "--subscribe",
        "t",
        "--listen",
        "4",
        "--json",
    ] {
        args.push(a.into());
    }
    let listener = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the listener");
    let listening = std::thread::spawn(move || common::peers::collect(listener, SESSION));
    // Publish every 400 ms while it listens (the first may come before its SUBSCRIBE is in), at
    // most 20 times.
    let mut published = Vec::new();
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(400));
        if listening.is_finished() {
            break;
        }
        let payload = format!("hello-{i}");
        let p = connect(
            &dir,
            &addr,
            "button.pem",
            "button.key",
            "root.pem",
            &[
                "--server-name",
                "localhost",
                "--client-id",
                "publisher",
                "--topic",
                "t",
                "--message",
                &payload,
            ],
        );
        assert_eq!(p.code, Some(0), "{}", p.show());
        published.push(payload);
    }
    let r = listening.join().expect("the listener's output");
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t = trace(&r);
    let delivered: Vec<(String, String)> = mqtt_packets(&t)
        .into_iter()
        .filter(|(s, p)| s == "broker" && p["packet"] == "PUBLISH")
        .map(|(_, p)| {
            (
                p["topic"].as_str().unwrap_or_default().to_string(),
                p["payload"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(!delivered.is_empty(), "nothing delivered\n{}", r.show());
    for (topic, payload) in &delivered {
        assert_eq!(topic, "t");
        assert!(published.contains(payload), "{payload} was published");
    }
    assert_eq!(
        requests(&t),
        [
            ("connect".into(), "carried_out".into()),
            ("subscribe".into(), "carried_out".into())
        ]
    );
    // The plain output of the same session shows each delivery with its topic and payload.
    let parsed: iotls::trace::Trace = serde_json::from_str(r.stdout.trim()).unwrap();
    let plain = iotls::render::plain::render(&parsed);
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    for (_, payload) in &delivered {
        assert!(
            plain.contains(&format!("The broker delivers “{payload}” on t")),
            "{plain}"
        );
    }
}

#[test]
fn listening_longer_than_the_keep_alive_sends_pings_and_retain_is_set() {
    let dir = tempdir("keepalive");
    default_pki(&dir);
    let reg = allow_all_registry(&dir);
    let mut serve = Serve::start_with(&dir, 1, &["--registry".as_ref(), reg.as_os_str()]);
    let r = connect(
        &dir,
        &serve.addr,
        "button.pem",
        "button.key",
        "root.pem",
        &[
            "--server-name",
            "localhost",
            "--keepalive",
            "1",
            "--listen",
            "2",
            "--topic",
            "r",
            "--retain",
            "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t = trace(&r);
    let packets = mqtt_packets(&t);
    let connect_packet = &packets
        .iter()
        .find(|(_, p)| p["packet"] == "CONNECT")
        .unwrap()
        .1;
    let keep_alive = connect_packet["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "keep alive")
        .expect("keep alive field");
    assert_eq!(keep_alive["value"], "1 s");
    let publish = &packets
        .iter()
        .find(|(s, p)| s == "device" && p["packet"] == "PUBLISH")
        .unwrap()
        .1;
    assert_eq!(publish["retain"], true);
    assert_eq!(publish["qos"], 1);
    assert!(
        packets
            .iter()
            .any(|(s, p)| s == "broker" && p["packet"] == "PINGRESP"),
        "a PINGREQ while listening, answered\n{}",
        r.show()
    );
    assert_eq!(
        requests(&t),
        [
            ("connect".into(), "carried_out".into()),
            ("publish".into(), "acknowledged_unverifiable".into()),
            ("ping".into(), "carried_out".into())
        ]
    );
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());
}

// ---------------------------------------------------------------------------------------------
// Pre-flight
// ---------------------------------------------------------------------------------------------

/// The stderr lines that are pre-flight warnings.
fn warnings(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("iotls: warning: "))
        .collect()
}

#[test]
fn an_expired_device_certificate_is_warned_about_and_the_session_still_runs() {
    if !peer_available(
        "openssl",
        "an_expired_device_certificate_is_warned_about_and_the_session_still_runs",
    ) {
        return;
    }
    let dir = tempdir("preflight-expired");
    expired_pki(&dir);
    // -verify_return_error: refuse a certificate that does not verify, as a broker does (without
    // it s_server prints the error and goes on).
    let (server, port) = s_server(&dir, AWS_ALPN, &["-verify_return_error"]);
    let r = connect(
        &dir,
        &format!("127.0.0.1:{port}"),
        "button-expired.pem",
        "button-expired.key",
        "root.pem",
        &["--tls-only", "--alpn", AWS_ALPN, "--json"],
    );
    let err = s_server_output(server);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{}", r.show());
    let file = dir.join("button-expired.pem").display().to_string();
    assert!(w[0].contains(&file), "{}", w[0]);
    assert!(
        w[0].contains(&format!("expired on {EXPIRED_NOT_AFTER}")),
        "{}",
        w[0]
    );
    assert!(w[0].contains("2019-01-01T00:00:00Z"), "{}", w[0]);
    assert!(w[0].contains("Fix:"), "{}", w[0]);
    // The session ran: openssl refused the expired certificate, and the trace says so.
    assert_eq!(r.code, Some(4), "{}\n--- s_server ---\n{err}", r.show());
    let t = trace(&r);
    assert!(handshake(&t, "device", "Certificate").is_some());
    assert_eq!(t["outcome"]["failure"]["code"], "expired", "{}", r.show());
    assert_eq!(t["outcome"]["failure"]["side"], "broker");
}

#[test]
fn an_encrypted_key_is_a_set_up_error_naming_the_file() {
    if !peer_available(
        "openssl",
        "an_encrypted_key_is_a_set_up_error_naming_the_file",
    ) {
        return;
    }
    let dir = tempdir("preflight-encrypted");
    default_pki(&dir);
    let key = dir.join("button.key");
    for (name, args) in [
        // PKCS#8: BEGIN ENCRYPTED PRIVATE KEY.
        ("encrypted.key", vec!["pkey", "-aes256"]),
        // The traditional form: BEGIN EC PRIVATE KEY with Proc-Type: 4,ENCRYPTED.
        ("legacy-encrypted.key", vec!["ec", "-aes256"]),
    ] {
        let out = dir.join(name);
        let st = Command::new("openssl")
            .args(&args)
            .arg("-in")
            .arg(&key)
            .args(["-passout", "pass:x", "-out"])
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(st.success(), "openssl {args:?}");
        // Nothing listens on port 1: the session must stop before dialing.
        let r = connect(&dir, "127.0.0.1:1", "button.pem", name, "root.pem", &[]);
        assert_eq!(r.code, Some(3), "{name}\n{}", r.show());
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line\n{}", r.show());
        assert!(
            lines[0].contains(&out.display().to_string()),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("passphrase"), "{}", lines[0]);
        assert!(
            lines[0].contains("openssl pkey -in"),
            "says how to decrypt: {}",
            lines[0]
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn a_public_key_as_key_is_a_set_up_error() {
    if !peer_available("openssl", "a_public_key_as_key_is_a_set_up_error") {
        return;
    }
    let dir = tempdir("preflight-public");
    default_pki(&dir);
    let st = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.join("button.key"))
        .arg("-out")
        .arg(dir.join("public.key"))
        .status()
        .expect("run openssl");
    assert!(st.success());
    let r = connect(
        &dir,
        "127.0.0.1:1",
        "button.pem",
        "public.key",
        "root.pem",
        &[],
    );
    assert_eq!(r.code, Some(3), "{}", r.show());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.show());
    assert!(lines[0].contains("public.key"), "{}", lines[0]);
    assert!(lines[0].contains("public key"), "{}", lines[0]);
    // A certificate given as the key (swapped flags) is named too.
    let r = connect(
        &dir,
        "127.0.0.1:1",
        "button.pem",
        "button.pem",
        "root.pem",
        &[],
    );
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(r.stderr.contains("swapped"), "{}", r.show());
}

#[test]
fn chain_order_missing_issuer_and_a_non_ca_anchor_are_warnings() {
    let dir = tempdir("preflight-chain");
    default_pki(&dir);
    let leaf = leaf_only(&dir.join("button.pem"));
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let issuing = std::fs::read_to_string(dir.join("issuing-ca.pem")).unwrap();
    std::fs::write(dir.join("leaf.pem"), &leaf).unwrap();
    std::fs::write(dir.join("unordered.pem"), format!("{leaf}{root}{issuing}")).unwrap();
    std::fs::write(dir.join("ca-first.pem"), format!("{issuing}{leaf}")).unwrap();
    std::fs::write(
        dir.join("broker-leaf.pem"),
        leaf_only(&dir.join("broker.pem")),
    )
    .unwrap();
    let mut serve = Serve::start(&dir, 3);
    let addr = serve.addr.clone();
    let run = |cert: &str, ca: &str| {
        connect(
            &dir,
            &addr,
            cert,
            "button.key",
            ca,
            &["--server-name", "localhost", "--tls-only", "--json"],
        )
    };

    // Leaf, root, issuing CA: out of order after the leaf. A warning; the broker's verifier finds
    // the issuing CA anyway and the handshake completes.
    let r = run("unordered.pem", "root.pem");
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{}", r.show());
    assert!(
        w[0].contains("unordered.pem") && w[0].contains("out of order"),
        "{}",
        w[0]
    );
    assert!(w[0].contains("its issuer is certificate #3"), "{}", w[0]);
    assert_eq!(r.code, Some(0), "{}", r.show());

    // The leaf alone: its issuing CA is not in the file. A warning; iotls's broker knows that CA as
    // registered and says the device left it out.
    let r = run("leaf.pem", "root.pem");
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{}", r.show());
    assert!(
        w[0].contains("no issuer certificate for the leaf"),
        "{}",
        w[0]
    );
    assert!(w[0].contains("leaf + issuing CA"), "{}", w[0]);
    assert_eq!(r.code, Some(4), "{}", r.show());
    // The device sees only the broker's alert; the broker's own trace names the missing CA.
    assert_eq!(trace(&r)["outcome"]["failure"]["alert"], "unknown_ca");
    let broker_side = serve
        .wait_for_trace(SESSION, |t| !t["outcome"]["ok"].as_bool().unwrap_or(true))
        .expect("serve's trace of the refused device");
    assert_eq!(
        broker_side["outcome"]["failure"]["code"], "missing_intermediate",
        "{broker_side}"
    );

    // The broker's own certificate given as --ca: not a CA certificate. A warning; the device's
    // chain check then fails.
    let r = run("button.pem", "broker-leaf.pem");
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{}", r.show());
    assert!(
        w[0].contains("broker-leaf.pem") && w[0].contains("not a CA certificate"),
        "{}",
        w[0]
    );
    assert_eq!(r.code, Some(4), "{}", r.show());
    let t = trace(&r);
    assert_eq!(t["outcome"]["failure"]["side"], "device", "{}", r.show());

    // The issuing CA first: the key belongs to certificate #2, and TLS cannot send that chain.
    // A set-up error before dialing (serve sees no fourth session).
    let r = run("ca-first.pem", "root.pem");
    assert_eq!(r.code, Some(3), "{}", r.show());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.show());
    assert!(
        lines[0].contains("ca-first.pem") && lines[0].contains("wrong order"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("certificate #2 (CN=pizza-button-1)"),
        "{}",
        lines[0]
    );

    assert_eq!(serve.finish(SESSION), Some(4), "{}", serve.show());
}
