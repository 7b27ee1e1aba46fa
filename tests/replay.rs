//! `iotls replay`: saved traces shown as they were recorded, and captures taken with dumpcap of a
//! real `iotls connect` against `iotls serve`, dissected and re-verified offline.

mod common;

use common::peers::{
    collect, default_pki, iotls, iotls_connect, tempdir, wait_bounded, Owned, Run, Serve, SESSION,
    STARTUP,
};
use common::{handshake_sequence, peer_available};
use iotls::trace::{EventKind, Side, Trace};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The button's own topic: the default registry allows its publish there.
const TOPIC: &str = "iotbutton/G030JF055364XVRB";

fn parse(r: &Run) -> Trace {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one trace ({e})\n{}", r.show()))
}

/// The steps of a plain narration: phase titles and step headlines, with every number masked
/// (lengths, ports and sequence numbers differ from one real session to the next).
fn headlines(plain: &str) -> Vec<String> {
    plain
        .lines()
        .filter(|l| l.starts_with('[') || l.starts_with("== "))
        .map(|l| {
            l.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Asserts a run failed on its input the way `replay` promises: exit 3, one line on stderr that
/// names the file, nothing on stdout.
fn one_clear_line(r: &Run, file: &Path, says: &str) {
    assert_eq!(r.code, Some(3), "exit code\n{}", r.show());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", r.show());
    let name = file.display().to_string();
    assert!(
        lines[0].contains(&name) && lines[0].contains(says),
        "the line should name {name} and say {says:?}\n{}",
        r.show()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.show());
    assert!(r.stdout.is_empty(), "nothing on stdout\n{}", r.show());
}

// ---------------------------------------------------------------------------------------------
// Saved traces
// ---------------------------------------------------------------------------------------------

#[test]
fn a_saved_tour_replays_as_the_same_steps_and_the_same_trace() {
    let dir = tempdir("replay-tour");
    let saved = iotls(["tour", "--json"]);
    assert_eq!(saved.code, Some(0), "{}", saved.show());
    let file = dir.join("t.json");
    std::fs::write(&file, &saved.stdout).expect("write t.json");

    // --json gives back the trace byte for byte.
    let json = iotls(["replay".as_ref(), file.as_os_str(), "--json".as_ref()]);
    assert_eq!(json.code, Some(0), "{}", json.show());
    assert_eq!(
        json.stdout, saved.stdout,
        "replay --json reproduces the trace"
    );

    // --plain tells the steps `tour --plain` tells.
    let replayed = iotls(["replay".as_ref(), file.as_os_str(), "--plain".as_ref()]);
    assert_eq!(replayed.code, Some(0), "{}", replayed.show());
    let live = iotls(["tour", "--plain"]);
    assert_eq!(live.code, Some(0), "{}", live.show());
    let (r, l) = (headlines(&replayed.stdout), headlines(&live.stdout));
    assert!(r.len() > 20, "a whole session's steps: {r:#?}");
    assert_eq!(r, l, "the replay's steps against a live tour's");
    // Re-verified offline with the trust anchors the trace records: iotls's checks, all passing.
    let again = iotls([
        "replay".as_ref(),
        file.as_os_str(),
        "--reverify".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(again.code, Some(0), "{}", again.show());
    let t = parse(&again);
    let mine: Vec<(String, bool)> = t
        .checks()
        .filter(|(e, _, _)| e.side == Side::Iotls)
        .map(|(_, c, ok)| (c.as_str().to_string(), ok))
        .collect();
    for want in [
        "server_chain",
        "client_chain",
        "server_kx_signature",
        "certificate_verify",
    ] {
        assert!(mine.contains(&(want.to_string(), true)), "{want}: {mine:?}");
    }
    assert_eq!(
        t.outcome,
        parse(&saved).outcome,
        "the recorded outcome stays"
    );
    // And exactly the narration of the saved trace itself.
    assert_eq!(
        replayed.stdout,
        iotls::render::plain::render(&parse(&saved)),
        "replay --plain renders the saved trace"
    );
}

#[test]
fn serve_json_lines_with_two_sessions_session_2_picks_the_second() {
    let dir = tempdir("replay-jsonl");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 2);
    let first = iotls_connect(&dir, &serve.addr, "button", &["--topic", TOPIC]);
    // The neighbour's button publishing to the first button's topic: refused.
    let second = iotls_connect(
        &dir,
        &serve.addr,
        "neighbour",
        &["--client-id", "pizza-button-2", "--topic", TOPIC],
    );
    let code = serve.finish(SESSION);
    let shown = format!("{}\n{}\n{}", first.show(), second.show(), serve.show());
    assert_eq!(
        code,
        Some(5),
        "serve exits with the refused session's code\n{shown}"
    );
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 2, "{shown}");
    let file = dir.join("sessions.jsonl");
    std::fs::write(&file, format!("{}\n{}\n", lines[0], lines[1])).expect("write JSON Lines");

    let r = iotls([
        "replay".as_ref(),
        file.as_os_str(),
        "--session".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let got: Value = serde_json::from_str(&r.stdout).expect("one trace");
    let want: Value = serde_json::from_str(&lines[1]).expect("serve's second line");
    assert_eq!(got, want, "--session 2 is serve's second trace");
    assert_eq!(got["outcome"]["ok"], false, "the refused one");

    // Without --session: the sessions are listed, and --plain prints them all.
    let all = iotls(["replay".as_ref(), file.as_os_str(), "--plain".as_ref()]);
    assert_eq!(all.code, Some(0), "{}", all.show());
    let t1: Trace = serde_json::from_str(&lines[0]).expect("trace 1");
    let t2: Trace = serde_json::from_str(&lines[1]).expect("trace 2");
    assert!(
        all.stderr.contains("2 sessions")
            && all.stderr.contains(&format!("1  {}", t1.scenario))
            && all.stderr.contains(&format!("2  {}", t2.scenario)),
        "the list names each session\n{}",
        all.show()
    );
    assert!(
        all.stderr.contains("OK:") && all.stderr.contains("FAILED:"),
        "the list gives each session's outcome\n{}",
        all.show()
    );
    assert_eq!(
        all.stdout.matches("iotls — session serve").count(),
        2,
        "{}",
        all.show()
    );

    let none = iotls([
        "replay".as_ref(),
        file.as_os_str(),
        "--session".as_ref(),
        "3".as_ref(),
    ]);
    assert_eq!(
        none.code,
        Some(2),
        "a session that is not there is a usage error\n{}",
        none.show()
    );
    assert!(none.stderr.contains("2 session(s)"), "{}", none.show());
}

#[test]
fn unreadable_traces_are_one_clear_line_each() {
    let dir = tempdir("replay-bad-traces");
    let saved = iotls(["tour", "--json"]);
    assert_eq!(saved.code, Some(0), "{}", saved.show());

    let old = dir.join("old.json");
    let text = saved
        .stdout
        .replacen("\"iotls-trace/2\"", "\"iotls-trace/1\"", 1);
    std::fs::write(&old, text).expect("write");
    let r = iotls(["replay".as_ref(), old.as_os_str(), "--plain".as_ref()]);
    one_clear_line(&r, &old, "iotls-trace/1");
    assert!(
        r.stderr.contains("iotls-trace/2"),
        "which format this iotls reads\n{}",
        r.show()
    );

    let cut = dir.join("cut.json");
    std::fs::write(&cut, &saved.stdout[..saved.stdout.len() / 2]).expect("write");
    one_clear_line(
        &iotls(["replay".as_ref(), cut.as_os_str(), "--plain".as_ref()]),
        &cut,
        "truncated",
    );

    let text = dir.join("notes.txt");
    std::fs::write(&text, "these are my notes, not a trace\n").expect("write");
    one_clear_line(
        &iotls(["replay".as_ref(), text.as_os_str(), "--plain".as_ref()]),
        &text,
        "neither a trace (JSON) nor a capture (pcap, pcapng)",
    );

    let missing = dir.join("missing.pcapng");
    one_clear_line(
        &iotls(["replay".as_ref(), missing.as_os_str()]),
        &missing,
        "cannot read",
    );
}

// ---------------------------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------------------------

/// `dumpcap -i lo -f "tcp port PORT" -w FILE` (pcapng; with `-P`, pcap), stopped by its PID
/// (SIGTERM, so it writes out what it captured).
struct Dumpcap {
    child: Owned,
    file: PathBuf,
}

impl Dumpcap {
    fn start(port: u16, file: &Path) -> Dumpcap {
        Self::start_with(port, file, &[])
    }

    fn start_with(port: u16, file: &Path, extra: &[&str]) -> Dumpcap {
        let mut child = Command::new("dumpcap")
            .args(extra)
            .args(["-q", "-i", "lo", "-f"])
            .arg(format!("tcp port {port}"))
            .arg("-w")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dumpcap");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut d = Dumpcap {
            child: Owned(child),
            file: file.to_path_buf(),
        };
        // dumpcap says "Capturing on 'Loopback: lo'" once it captures.
        let deadline = Instant::now() + STARTUP * 2;
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("Capturing on") => break,
                Ok(l) => said.push(l),
                Err(_) => {
                    let st = d.child.0.try_wait();
                    panic!("dumpcap did not start capturing ({st:?}): {said:?}");
                }
            }
        }
        // The capture file exists once dumpcap has written its header.
        while !d.file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// Lets the last packets reach dumpcap, then stops it (SIGTERM to its PID) and waits.
    fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.child.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let st = wait_bounded(&mut self.child.0, STARTUP);
        assert!(st.is_some(), "dumpcap did not stop on SIGTERM");
        self.file.clone()
    }
}

/// `iotls replay FILE --session 1 ARGS --json`, parsed.
fn replay_json(file: &Path, args: &[&std::ffi::OsStr]) -> (Run, Trace) {
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "replay".as_ref(),
        file.as_os_str(),
        "--session".as_ref(),
        "1".as_ref(),
    ];
    all.extend_from_slice(args);
    all.push("--json".as_ref());
    let r = iotls(all);
    assert_eq!(
        r.code,
        Some(0),
        "replay exits 0 whatever the verdicts\n{}",
        r.show()
    );
    let t = parse(&r);
    (r, t)
}

fn checks(t: &Trace) -> Vec<(Side, String, bool)> {
    t.checks()
        .map(|(e, c, ok)| (e.side, c.as_str().to_string(), ok))
        .collect()
}

fn not_reverified(t: &Trace) -> Vec<String> {
    t.replay
        .as_ref()
        .map(|r| r.not_reverified.iter().map(|n| n.check.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_capture_of_connect_against_serve_replays_and_reverifies_offline() {
    let test = "a_capture_of_connect_against_serve_replays_and_reverifies_offline";
    if !peer_available("dumpcap", test) {
        return;
    }
    let dir = tempdir("replay-capture");
    default_pki(&dir);
    // A second PKI: its root has the same name as the first's, another key, and signed neither
    // chain.
    let other = dir.join("other");
    default_pki(&other);
    let mut serve = Serve::start(&dir, 2);
    let port: u16 = serve
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("serve's port");
    let cap = Dumpcap::start(port, &dir.join("cap.pcapng"));
    let legacy = Dumpcap::start_with(port, &dir.join("cap.pcap"), &["-P"]);
    let live = iotls_connect(&dir, &serve.addr, "button", &["--topic", TOPIC, "--json"]);
    // A second session in the same capture: TLS only.
    let second = iotls_connect(&dir, &serve.addr, "button", &["--tls-only", "--json"]);
    let code = serve.finish(SESSION);
    let cap = cap.stop();
    let legacy = legacy.stop();
    let shown = format!(
        "--- connect ---\n{}\n{}\n{}",
        live.show(),
        second.show(),
        serve.show()
    );
    assert_eq!(live.code, Some(0), "{shown}");
    assert_eq!(second.code, Some(0), "{shown}");
    assert_eq!(code, Some(0), "{shown}");
    let live = parse(&live);
    let second = parse(&second);
    let device_addr = |t: &Trace| {
        t.events.iter().find_map(|e| match &e.kind {
            EventKind::Tcp { device_addr, .. } => Some(device_addr.clone()),
            _ => None,
        })
    };

    // Two TLS sessions: listed by endpoints and server name; --session 2 is the second.
    let listed = iotls(["replay".as_ref(), cap.as_os_str(), "--plain".as_ref()]);
    assert_eq!(listed.code, Some(0), "{}", listed.show());
    for (n, t) in [(1, &live), (2, &second)] {
        let line = format!(
            "{n}  device {} → broker {}, SNI localhost",
            device_addr(t).unwrap_or_default(),
            serve.addr
        );
        assert!(listed.stderr.contains(&line), "{line:?}\n{}", listed.show());
    }
    let r = iotls([
        "replay".as_ref(),
        cap.as_os_str(),
        "--session".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert_eq!(device_addr(&parse(&r)), device_addr(&second), "--session 2");

    // The key log, in NSS format, from what the device's rustls exported.
    let keylog: String = live
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Secret {
                label,
                client_random,
                secret,
            } if label == "CLIENT_RANDOM" => Some(format!(
                "CLIENT_RANDOM {} {}\n",
                iotls::trace::hex(client_random),
                iotls::trace::hex(secret)
            )),
            _ => None,
        })
        .collect();
    assert!(!keylog.is_empty(), "the live trace has its key-log line");
    let keys = dir.join("keys.log");
    std::fs::write(&keys, keylog).expect("write key log");
    let root = dir.join("root.pem");

    // With the key log and the root: everything re-verified, by iotls, and it all passes.
    let (_, t) = replay_json(
        &cap,
        &[
            "--keylog".as_ref(),
            keys.as_os_str(),
            "--ca".as_ref(),
            root.as_os_str(),
        ],
    );
    assert_eq!(
        handshake_sequence(&t),
        handshake_sequence(&live),
        "the capture's handshake is the live session's"
    );
    let publish = t
        .mqtt_packets()
        .find(|(e, p)| e.side == Side::Device && p.packet.name() == "PUBLISH")
        .map(|(_, p)| p.topic.clone());
    assert_eq!(
        publish,
        Some(Some(TOPIC.to_string())),
        "the decrypted PUBLISH"
    );
    let got = checks(&t);
    for (side, name, ok) in &got {
        assert_eq!(
            *side,
            Side::Iotls,
            "{name}: every check of a capture is iotls's own"
        );
        assert!(*ok, "{name} passes: {got:?}");
    }
    for want in [
        "server_chain",
        "server_name",
        "server_kx_signature",
        "client_chain",
        "certificate_verify",
        "client_finished",
        "server_finished",
    ] {
        assert!(
            got.iter().any(|(_, n, _)| n == want),
            "{want} re-verified: {got:?}"
        );
    }
    assert!(t.outcome.ok && t.outcome.tls_completed, "{:?}", t.outcome);
    // The same session captured as pcap instead of pcapng.
    let (_, old) = replay_json(
        &legacy,
        &[
            "--keylog".as_ref(),
            keys.as_os_str(),
            "--ca".as_ref(),
            root.as_os_str(),
        ],
    );
    assert_eq!(
        checks(&old),
        checks(&t),
        "pcap and pcapng give the same checks"
    );
    assert_eq!(old.mqtt_packets().count(), t.mqtt_packets().count());
    let device = t.events.iter().find_map(|e| match &e.kind {
        EventKind::Tcp { broker_addr, .. } => Some(broker_addr.clone()),
        _ => None,
    });
    assert_eq!(
        device,
        Some(serve.addr.clone()),
        "the broker end is serve's"
    );

    // The key log inside the capture (a pcapng Decryption Secrets Block, written by editcap from
    // the same package as dumpcap) decrypts it without --keylog.
    if peer_available("editcap", test) {
        let with_keys = dir.join("with-keys.pcapng");
        let st = Command::new("editcap")
            .arg("--inject-secrets")
            .arg(format!("tls,{}", keys.display()))
            .arg(&cap)
            .arg(&with_keys)
            .status()
            .expect("run editcap");
        assert!(st.success(), "editcap --inject-secrets");
        let (_, inside) = replay_json(&with_keys, &["--ca".as_ref(), root.as_os_str()]);
        assert_eq!(
            checks(&inside),
            checks(&t),
            "decrypted with the capture's own key log"
        );
    }

    // Without the key log: the handshake is still there, the MQTT is not, and says why.
    let (_, t) = replay_json(&cap, &["--ca".as_ref(), root.as_os_str()]);
    let clear: Vec<_> = handshake_sequence(&live)
        .into_iter()
        .filter(|(_, m)| m != "Finished")
        .collect();
    assert_eq!(handshake_sequence(&t), clear, "the handshake in the clear");
    assert_eq!(t.mqtt_packets().count(), 0, "no MQTT without the key");
    let not = not_reverified(&t);
    for want in ["mqtt", "client_finished", "server_finished"] {
        assert!(
            not.contains(&want.to_string()),
            "{want} not re-verified: {not:?}"
        );
    }
    let why = t
        .replay
        .as_ref()
        .and_then(|r| r.not_reverified.iter().find(|n| n.check == "mqtt"))
        .map(|n| n.reason.clone())
        .unwrap_or_default();
    assert!(why.contains("no key-log line"), "why: {why:?}");
    let plain = iotls(["replay".as_ref(), cap.as_os_str(), "--plain".as_ref()]);
    assert_eq!(plain.code, Some(0), "{}", plain.show());
    assert!(
        plain.stdout.contains("not re-verified: mqtt") && plain.stdout.contains("no key-log line"),
        "the plain view says the MQTT was not decrypted, and why\n{}",
        plain.show()
    );
    assert!(
        plain
            .stdout
            .contains("not re-verified: server_chain: no --ca given"),
        "{}",
        plain.show()
    );

    // A key log of another session: one clear line naming it, exit 3 (nothing it could decrypt).
    let wrong = dir.join("wrong.keylog");
    std::fs::write(
        &wrong,
        format!("CLIENT_RANDOM {} {}\n", "00".repeat(32), "11".repeat(48)),
    )
    .unwrap();
    let r = iotls([
        "replay".as_ref(),
        cap.as_os_str(),
        "--keylog".as_ref(),
        wrong.as_os_str(),
        "--plain".as_ref(),
    ]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(
        r.stderr.contains("wrong.keylog") && r.stderr.contains("no key-log line matches"),
        "{}",
        r.show()
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.show());

    // Another root: both chain checks fail — a finding, not an error. rustls finds the issuer by
    // its name, and the issuing CA's signature does not verify with that root's key.
    let other_root = other.join("root.pem");
    let (_, t) = replay_json(
        &cap,
        &[
            "--keylog".as_ref(),
            keys.as_os_str(),
            "--ca".as_ref(),
            other_root.as_os_str(),
        ],
    );
    for name in ["server_chain", "client_chain"] {
        let e = t
            .events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::Check { check, .. } if check.as_str() == name))
            .unwrap_or_else(|| panic!("{name} re-verified"));
        assert_eq!(e.side, Side::Iotls);
        match &e.kind {
            EventKind::Check { ok, failure, .. } => {
                assert!(!ok, "{name} fails against another root");
                let f = failure.as_ref().expect("a failure");
                assert_eq!(f.code.as_str(), "bad_signature", "{name}");
                assert_eq!(f.side, Some(Side::Iotls), "{name}");
            }
            _ => unreachable!(),
        }
    }
    assert!(
        t.outcome.ok,
        "iotls's findings do not rewrite what happened on the wire"
    );

    // A registry that allows no publish there: iotls's re-evaluation denies it, enforces nothing.
    let registry = dir.join("registry.json");
    std::fs::write(
        &registry,
        serde_json::json!({
            "policies": [{ "name": "ConnectOnly", "document": { "Version": "2012-10-17",
                "Statement": { "Effect": "Allow", "Action": "iot:Connect", "Resource": "*" } } }],
            "certificates": [{ "pem": "button.pem", "status": "ACTIVE", "policies": ["ConnectOnly"] }]
        })
        .to_string(),
    )
    .expect("write registry");
    let (_, t) = replay_json(
        &cap,
        &[
            "--keylog".as_ref(),
            keys.as_os_str(),
            "--registry".as_ref(),
            registry.as_os_str(),
        ],
    );
    let decisions: Vec<(Side, String, String, String)> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Policy(p) => Some((
                e.side,
                p.action.iot_name().to_string(),
                p.decision.as_str().to_string(),
                serde_json::to_value(p.enforcement)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            )),
            _ => None,
        })
        .collect();
    let d = |a: &str, dec: &str| {
        (
            Side::Iotls,
            a.to_string(),
            dec.to_string(),
            "not_enforced".to_string(),
        )
    };
    assert_eq!(
        decisions,
        [
            d("iot:Connect", "ALLOWED"),
            d("iot:Publish", "IMPLICIT_DENY")
        ],
        "iotls's decisions"
    );
    assert!(
        checks(&t).contains(&(Side::Iotls, "registry".into(), true)),
        "the registry check, re-made: {:?}",
        checks(&t)
    );
    assert!(t.outcome.ok, "a re-evaluation decides no outcome");
}

#[test]
fn captures_that_cannot_be_read_are_one_clear_line_each() {
    let test = "captures_that_cannot_be_read_are_one_clear_line_each";
    if !peer_available("dumpcap", test) {
        return;
    }
    let dir = tempdir("replay-bad-captures");
    // An HTTP-looking exchange of the test's own, over loopback.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cap = Dumpcap::start(port, &dir.join("http.pcapng"));
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    server.join().expect("server thread");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    let http = cap.stop();

    let r = iotls(["replay".as_ref(), http.as_os_str(), "--plain".as_ref()]);
    one_clear_line(&r, &http, "no TLS");
    assert!(
        r.stderr.contains("GET / HTTP/1.1"),
        "what it holds instead\n{}",
        r.show()
    );

    let bytes = std::fs::read(&http).expect("read capture");
    let cut = dir.join("cut.pcapng");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
    one_clear_line(
        &iotls(["replay".as_ref(), cut.as_os_str(), "--plain".as_ref()]),
        &cut,
        "truncated",
    );

    // A key log that is not one.
    let pem = dir.join("not-a-keylog.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("write");
    let r = iotls([
        "replay".as_ref(),
        http.as_os_str(),
        "--keylog".as_ref(),
        pem.as_os_str(),
    ]);
    one_clear_line(&r, &pem, "line 1");
}

#[test]
fn replay_help_names_its_options() {
    let r = collect(
        Command::new(env!("CARGO_BIN_EXE_iotls"))
            .args(["replay", "--help"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iotls"),
        SESSION,
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    for flag in [
        "--session",
        "--keylog",
        "--ca",
        "--registry",
        "--reverify",
        "--plain",
        "--json",
    ] {
        assert!(r.stdout.contains(flag), "{flag}\n{}", r.show());
    }
}

/// The pcapng iotls exports (`connect --pcap`), opened by `iotls replay`: the checks the live
/// session made are re-made offline from the capture alone (the key log travels inside it), each
/// as iotls's own, with the same verdicts.
#[test]
fn replaying_an_exported_capture_reproduces_the_live_checks() {
    let dir = tempdir("replay-export");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let cap = dir.join("device.pcapng");
    let r = iotls_connect(
        &dir,
        &serve.addr,
        "button",
        &[
            "--topic",
            "iotbutton/G030JF055364XVRB",
            "--json",
            "--pcap",
            cap.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    let _ = serve.finish(SESSION);
    let live = parse(&r);
    let root = dir.join("root.pem");
    let (_, t) = replay_json(&cap, &["--ca".as_ref(), root.as_os_str()]);
    assert_eq!(
        handshake_sequence(&t),
        handshake_sequence(&live),
        "the same handshake"
    );
    let replayed = checks(&t);
    assert!(
        replayed.iter().all(|(side, _, _)| *side == Side::Iotls),
        "every re-made check is iotls's own: {replayed:?}"
    );
    for (_, id, ok) in checks(&live) {
        assert!(
            replayed.iter().any(|(_, c, o)| *c == id && *o == ok),
            "{id} (ok = {ok}) re-made from the capture: {replayed:?}"
        );
    }
    assert!(
        t.mqtt_packets()
            .any(|(_, p)| p.topic.as_deref() == Some("iotbutton/G030JF055364XVRB")),
        "the PUBLISH decrypted with the key log inside the capture"
    );
}
