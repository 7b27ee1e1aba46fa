//! The broker under abuse: it never dies and never stalls (the first cases of the abuse suite).

mod common;

use common::peers::{
    default_pki, iotls_connect, s_client, tempdir, wait_bounded, Owned, Serve, SESSION,
};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `iotls serve` with these arguments and the default PKI in `dir`; the address it listens on.
fn serve(dir: &std::path::Path, args: &[&str]) -> (Owned, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .arg("serve")
        .args(["--port", "0", "--pki"])
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotls serve");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    // Keep reading stderr so the broker never blocks on it; hand it over at the end.
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    (Owned(child), addr, rest)
}

#[test]
fn a_closed_stdout_ends_serve_cleanly() {
    let dir = tempdir("hard-epipe");
    default_pki(&dir);
    let (mut s, addr, err) = serve(&dir, &["--json"]);
    let mut out = BufReader::new(s.0.stdout.take().unwrap());
    let first = iotls_connect(&dir, &addr, "button", &["--tls-only"]);
    assert_eq!(first.code, Some(0), "{}", first.show());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with('{'), "a trace line: {line:?}");
    // Like `serve --json | head -1`: the reader goes away.
    drop(out);
    let second = iotls_connect(&dir, &addr, "button", &["--tls-only"]);
    assert_eq!(
        second.code,
        Some(0),
        "the session itself is served: {}",
        second.show()
    );
    let status = wait_bounded(&mut s.0, SESSION).expect("serve ends once it cannot print");
    let err = err.join().unwrap();
    assert!(!err.contains("panicked"), "no panic: {err}");
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
}

/// F3: nobody reads serve's stdout. Each trace line is tens of kilobytes, so the pipe is full
/// after a few sessions; the broker goes on serving (output it cannot write is dropped and
/// counted), every device completes its session.
#[test]
fn an_unread_stdout_does_not_stall_the_broker() {
    let dir = tempdir("hard-unread");
    default_pki(&dir);
    let (mut s, addr, _err) = serve(&dir, &["--json"]);
    let topic = format!("iotbutton/{}", iotls::pki::BUTTON_SERIAL);
    for i in 0..12 {
        let r = iotls_connect(&dir, &addr, "button", &["--topic", &topic]);
        assert_eq!(r.code, Some(0), "session {i}: {}", r.show());
    }
    assert!(
        s.0.try_wait().unwrap().is_none(),
        "serve is still running with its stdout full"
    );
}

#[test]
fn connections_over_the_limit_are_refused_at_accept_and_serving_goes_on() {
    let dir = tempdir("hard-max");
    default_pki(&dir);
    let (mut s, addr, err) = serve(&dir, &["--json", "--max-connections", "2"]);
    let mut out = BufReader::new(s.0.stdout.take().unwrap());
    // Two idle connections hold the two places (no certificate needed for that).
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third is closed at once, before any TLS.
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = third.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert!(t0.elapsed() < Duration::from_secs(2), "refused at once");
    // The idle ones leave; a real device is served again.
    drop(idle);
    let mut good = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let r = iotls_connect(&dir, &addr, "button", &["--tls-only"]);
        if r.code == Some(0) {
            good = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(good.is_some(), "a device is served once places are free");
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    drop(s);
    let err = err.join().unwrap();
    assert!(
        err.contains("refused: --max-connections 2 reached"),
        "the refusal is said once: {err}"
    );
}

/// A client that sends its CONNECT one byte every half second never completes it within a
/// 2-second deadline for the whole packet, though each byte comes well within it: the broker cuts
/// it off, and says so (a `timeout`, the CONNECT never carried out, the session's outcome not ok).
#[test]
fn a_dribbled_connect_is_cut_off_at_the_deadline() {
    if !common::peer_available("openssl", "a_dribbled_connect_is_cut_off_at_the_deadline") {
        return;
    }
    use std::io::Write;
    let dir = tempdir("hard-dribble");
    default_pki(&dir);
    let mut serve = Serve::start_with(&dir, 1, &["--deadline".as_ref(), "2".as_ref()]);
    let mut client = s_client(&dir, &serve.addr, "button.pem", true)
        .arg("-quiet")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_client");
    let mut stdin = client.stdin.take().unwrap();
    // A valid 3.1.1 CONNECT (client id "dr"): 16 bytes, 8 s at this pace.
    let connect = [
        0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, b'd',
        b'r',
    ];
    let writer = std::thread::spawn(move || {
        for b in connect {
            if stdin.write_all(&[b]).and_then(|()| stdin.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        // Keep stdin open: only the broker may end this.
        std::thread::sleep(Duration::from_secs(20));
    });
    let mut client = Owned(client);
    let t = serve
        .wait_for_trace(Duration::from_secs(20), |_| true)
        .unwrap_or_else(|| panic!("no trace\n{}", serve.show_now()));
    assert!(
        wait_bounded(&mut client.0, Duration::from_secs(10)).is_some(),
        "the client was cut off"
    );
    assert!(
        has_event(&t, |e| e["kind"] == "closed"
            && e["by"] == "broker"
            && e["cause"] == "timeout"),
        "the broker closed it at the deadline: {}",
        serde_json::to_string_pretty(&t["events"]).unwrap()
    );
    assert!(
        !has_event(&t, |e| e["mqtt"]
            .as_array()
            .is_some_and(|m| m.iter().any(|p| p["packet"] == "CONNACK"))),
        "no CONNACK: the CONNECT was never complete"
    );
    // The session did not end well, though the handshake did: its outcome says so, and whose
    // silence ended it.
    assert_eq!(t["outcome"]["ok"], false, "{}", t["outcome"]);
    assert_eq!(
        t["outcome"]["failure"]["code"], "timeout",
        "{}",
        t["outcome"]
    );
    assert_eq!(
        t["outcome"]["failure"]["side"], "device",
        "{}",
        t["outcome"]
    );
    drop(writer);
}

fn has_event(t: &serde_json::Value, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
    t["events"].as_array().is_some_and(|e| e.iter().any(pred))
}
