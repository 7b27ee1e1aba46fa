//! End-to-end test of the live tour in a real terminal (tmux, on this test's own socket): the
//! ClientHello waits until → sends it, the PUBLISH leaves on `a` only, quitting mid-session exits
//! 0, restores the terminal and writes the exports with what happened, pauses included.

mod common;

use common::tmux::Tmux;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a screen may take to show what is awaited.
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn the_live_tour_sends_each_flight_on_a_key_and_the_order_on_the_button() {
    if !common::peer_available("tmux", "the_live_tour_sends_each_flight_on_a_key") {
        return;
    }
    let dir = common::peers::tempdir("tui-live");
    let pcap = dir.join("live.pcapng");
    let bin = env!("CARGO_BIN_EXE_iotls");
    let every = dir.join("every.keys");
    let cmd = format!(
        "SSLKEYLOGFILE={} {bin} tour --pcap {}; echo IOTLS-EXITED-$?; sleep 30",
        every.display(),
        pcap.display()
    );
    let t = Tmux::start("live", 120, 35, &cmd);
    let title = || t.screen().lines().next().unwrap_or_default().to_string();

    // The connection is open; the ClientHello is made and held, not on the wire.
    let first = t.wait_for("the first step", WAIT, |s| s.contains("step 1/1"));
    assert!(
        first.contains("ClientHello") && first.contains("not on the wire yet"),
        "the screen says the device holds its ClientHello:\n{first}"
    );
    assert!(first.contains("broker has not received it"), "{first}");

    // → sends it (after a moment's reading): the tour moves onto the ClientHello, and the
    // broker's flight now waits.
    std::thread::sleep(Duration::from_millis(600));
    t.key("Right");
    let s = t.wait_for("the ClientHello step", WAIT, |s| s.contains("step 2/2"));
    assert!(title().contains("ClientHello"), "{s}");
    assert!(
        s.contains("the broker's rustls made its next flight, ServerHello"),
        "{s}"
    );

    // Step until the device waits for its button.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !t.screen().contains("waits for its button") {
        assert!(
            Instant::now() < deadline,
            "never reached the button:\n{}",
            t.screen()
        );
        t.key("Right");
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(!title().contains("PUBLISH"));
    // SSLKEYLOGFILE has the session's key while the learner is still stepping.
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("CLIENT_RANDOM "))
            .count()
    };
    assert_eq!(
        lines(&every),
        1,
        "the key log line is written once it exists"
    );
    // A pause the trace keeps: the learner reads before pressing.
    std::thread::sleep(Duration::from_millis(1000));
    t.key("Right");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!title().contains("PUBLISH"), "→ does not send the order");
    assert!(t.screen().contains("a press the button"), "{}", t.screen());
    t.key("a");
    t.wait_for("the PUBLISH step", WAIT, |_| title().contains("PUBLISH"));

    // Quit mid-session (the broker's PUBACK is still held): exit 0, terminal restored.
    t.key("q");
    let after = t.wait_for("the exit", WAIT, |s| s.contains("IOTLS-EXITED-"));
    assert!(after.contains("IOTLS-EXITED-0"), "{after}");
    assert_eq!(t.alternate_on(), "0");

    assert_eq!(lines(&every), 1, "one session, one line");
    // The pcap holds what happened up to the quit, at the times it happened.
    let out = Command::new(bin)
        .args(["replay", pcap.to_str().unwrap(), "--json"])
        .output()
        .expect("run iotls replay");
    assert!(
        out.status.success() || out.status.code() == Some(5),
        "{out:?}"
    );
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a trace");
    let records = t["records"].as_array().expect("records");
    let times: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap().to_string(),
                r["t_us"].as_u64().unwrap(),
            )
        })
        .collect();
    let packets: Vec<String> = t["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["mqtt"].as_array())
        .flatten()
        .map(|p| p["packet"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        packets,
        ["CONNECT", "CONNACK", "PUBLISH"],
        "up to the PUBLISH; the held PUBACK never left"
    );
    // The connection opened when the tour started, before the learner sent the ClientHello.
    let opened = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "tcp")
        .and_then(|e| e["t_us"].as_u64())
        .expect("the capture's TCP opening");
    assert!(
        times[0].1 >= opened + 500_000,
        "the capture opens the connection at its own time: {opened} µs, first record {:?}",
        times[0]
    );
    // The PUBLISH (the device's last record) came at least the learner's pause after the
    // record before it.
    let n = times.len();
    assert!(n >= 2, "{times:?}");
    assert!(
        times[n - 1].1 - times[n - 2].1 >= 1_000_000,
        "the pause shows in the capture: {times:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
