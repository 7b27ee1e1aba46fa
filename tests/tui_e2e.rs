//! End-to-end test of the real binary in a real terminal (tmux): the first screen shows the
//! handshake beginning, `w` shows the glossary, stepping reaches the policy decision, `q` exits
//! and leaves the terminal usable.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// The test's tmux server, by its socket name; stopped when dropped.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        // The test's own tmux server (its own socket): stopping it touches nothing else.
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .status();
    }
}

/// This test's tmux socket (`tmux -L`), so it never meets another tmux server.
fn socket() -> String {
    format!("iotls-e2e-{}", std::process::id())
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", &socket()])
        .args(args)
        .output()
        .expect("run tmux");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn screen(name: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", name])
}

/// Wait until the screen contains `text`, returning the screen.
fn wait_for(name: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = screen(name);
        if s.contains(text) {
            return s;
        }
        if Instant::now() > deadline {
            panic!("screen never showed {text:?}; it shows:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_tour_in_a_real_terminal_steps_to_the_policy_decision_and_quits_cleanly() {
    if !common::peer_available("tmux", "the_tour_in_a_real_terminal") {
        return;
    }
    let name = format!("iotls-e2e-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_iotls");
    // After iotls exits, the shell prints a marker with its exit code and waits: we read both.
    let cmd = format!("{bin} tour; echo IOTLS-EXITED-$?; sleep 30");
    let ok = Command::new("tmux")
        .args([
            "-L",
            &socket(),
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "35",
            &cmd,
        ])
        .env_remove("NO_COLOR")
        .status()
        .expect("start tmux");
    assert!(ok.success());
    let _s = Session(socket());

    let first = wait_for(&name, "step 1/");
    assert!(
        first.contains("ClientHello"),
        "the first screen shows the handshake beginning:\n{first}"
    );
    assert!(
        first.contains("Device") && first.contains("Broker"),
        "{first}"
    );
    assert!(
        first.contains("q quit"),
        "the footer lists the keys:\n{first}"
    );
    assert_eq!(
        tmux(&["display", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "1",
        "the UI uses the alternate screen"
    );

    // `w` opens the glossary; Esc closes it and the tour is where it was.
    tmux(&["send-keys", "-t", &name, "w"]);
    // Wait for the entry itself, not the title: the screen may be captured mid-draw.
    // (An entry on its first page: the list is alphabetical.)
    let glossary = wait_for(&name, "extended key usage");
    assert!(
        glossary.contains("EKU")
            && glossary.contains("extended key usage: serverAuth (broker), clientAuth (device)"),
        "the glossary explains the abbreviations on screen:\n{glossary}"
    );
    tmux(&["send-keys", "-t", &name, "Escape"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while screen(&name).contains("Glossary") {
        assert!(Instant::now() < deadline, "Esc closes the glossary");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(screen(&name).contains("step 1/"), "still on the first step");

    // Step forward until the policy decision for the publish is the current step.
    let mut found = None;
    for _ in 0..60 {
        tmux(&["send-keys", "-t", &name, "Right"]);
        std::thread::sleep(Duration::from_millis(60));
        let s = screen(&name);
        let title = s.lines().next().unwrap_or_default().to_string();
        if title.contains("Policy") && title.contains("iot:Publish") {
            found = Some(s);
            break;
        }
    }
    let policy = found.expect("stepping forward reaches the iot:Publish policy decision");
    assert!(policy.contains("ALLOWED"), "{policy}");
    assert!(
        policy.contains("G030JF055364XVRB"),
        "the decision shows the serial from the certificate:\n{policy}"
    );

    // Back one step, then quit.
    tmux(&["send-keys", "-t", &name, "Left"]);
    tmux(&["send-keys", "-t", &name, "q"]);
    let after = wait_for(&name, "IOTLS-EXITED-");
    assert!(
        after.contains("IOTLS-EXITED-0"),
        "iotls exits with 0:\n{after}"
    );
    assert_eq!(
        tmux(&["display", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "0",
        "the alternate screen was left"
    );
    assert!(
        !after.contains("Device ↔ Broker"),
        "the UI was cleared from the terminal:\n{after}"
    );
}
