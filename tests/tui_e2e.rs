//! End-to-end test of the real binary in a real terminal (tmux): the first screen shows the
//! handshake beginning, `w` shows the glossary, stepping reaches the policy decision, `q` exits
//! and leaves the terminal usable.

mod common;

use common::tmux::Tmux;
use std::time::{Duration, Instant};

/// How long a screen may take to show what is awaited.
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn the_tour_in_a_real_terminal_steps_to_the_policy_decision_and_quits_cleanly() {
    if !common::peer_available("tmux", "the_tour_in_a_real_terminal") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_iotls");
    // After iotls exits, the shell prints a marker with its exit code and waits: we read both.
    // The recorded tour: the whole session first, then stepping through it (tui_live.rs steps a
    // live one).
    let cmd = format!("{bin} tour --recorded; echo IOTLS-EXITED-$?; sleep 30");
    let t = Tmux::start("e2e", 120, 35, &cmd);

    let first = t.wait_for("step 1/", WAIT, |s| s.contains("step 1/"));
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
    assert_eq!(t.alternate_on(), "1", "the UI uses the alternate screen");

    // `w` opens the glossary; Esc closes it and the tour is where it was.
    t.key("w");
    // Wait for the entry itself, not the title: the screen may be captured mid-draw.
    // (An entry on its first page: the list is alphabetical.)
    let glossary = t.wait_for("extended key usage", WAIT, |s| {
        s.contains("extended key usage")
    });
    assert!(
        glossary.contains("EKU")
            && glossary.contains("extended key usage: serverAuth (broker), clientAuth (device)"),
        "the glossary explains the abbreviations on screen:\n{glossary}"
    );
    t.key("Escape");
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.screen().contains("Glossary") {
        assert!(Instant::now() < deadline, "Esc closes the glossary");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.screen().contains("step 1/"), "still on the first step");

    // Step forward until the policy decision for the publish is the current step.
    let mut found = None;
    for _ in 0..60 {
        t.key("Right");
        std::thread::sleep(Duration::from_millis(60));
        let s = t.screen();
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
    t.key("Left");
    t.key("q");
    let after = t.wait_for("IOTLS-EXITED-", WAIT, |s| s.contains("IOTLS-EXITED-"));
    assert!(
        after.contains("IOTLS-EXITED-0"),
        "iotls exits with 0:\n{after}"
    );
    assert_eq!(t.alternate_on(), "0", "the alternate screen was left");
    assert!(
        !after.contains("Device ↔ Broker"),
        "the UI was cleared from the terminal:\n{after}"
    );
}
