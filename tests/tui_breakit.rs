//! End-to-end test of break-it in a real terminal (tmux, on this test's own socket): in the live
//! tour, `b` lists the swaps, a digit runs the lesson with the expired certificate for real, the
//! comparison names the check that changed and both outcomes, and quitting exits 0 with the
//! terminal restored and the exports of the run on screen.

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

fn socket() -> String {
    format!("iotls-breakit-{}", std::process::id())
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", &socket()])
        .args(args)
        .output()
        .expect("run tmux");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn screen() -> String {
    tmux(&["capture-pane", "-p", "-t", "brk"])
}

fn wait_for(what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = screen();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "never showed {what}; it shows:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key(k: &str) {
    tmux(&["send-keys", "-t", "brk", k]);
}

#[test]
fn b_breaks_the_live_tour_with_an_expired_certificate_and_shows_what_changed() {
    if !common::peer_available("tmux", "b_breaks_the_live_tour") {
        return;
    }
    let dir = common::peers::tempdir("tui-breakit");
    let page = dir.join("page.md");
    let bin = env!("CARGO_BIN_EXE_iotls");
    let cmd = format!(
        "{bin} tour pizza-button --export md {}; echo IOTLS-EXITED-$?; sleep 30",
        page.display()
    );
    let ok = Command::new("tmux")
        .args([
            "-L",
            &socket(),
            "new-session",
            "-d",
            "-s",
            "brk",
            "-x",
            "120",
            "-y",
            "35",
            &cmd,
        ])
        .status()
        .expect("start tmux");
    assert!(ok.success());
    let _s = Session(socket());

    // The live tour, held at its first flight.
    wait_for("the live tour", |s| s.contains("not on the wire yet"));
    key("b");
    let menu = wait_for("the break-it menu", |s| s.contains("Break it"));
    assert!(
        menu.contains("--set pki.button.not_after=-1d"),
        "the menu shows each swap's --set:\n{menu}"
    );
    let digit = menu
        .lines()
        .find(|l| l.contains("expired yesterday"))
        .and_then(|l| l.split(')').next())
        .and_then(|l| l.trim_start_matches(['│', ' ']).chars().last())
        .filter(char::is_ascii_digit)
        .unwrap_or_else(|| panic!("a numbered expired swap:\n{menu}"));
    key(&digit.to_string());

    let shown = wait_for("the comparison", |s| s.contains("What changed"));
    assert!(shown.contains("client_chain ✘"), "{shown}");
    assert!(shown.contains("client_chain ✔"), "{shown}");
    assert!(shown.contains("Outcome now"), "{shown}");
    // The live session was ended at its first flight: the comparison is with the lesson run to
    // the end without the swap, and says so; that run was ok.
    assert!(shown.contains("ended before it finished"), "{shown}");
    assert!(shown.contains("✔ Both sides authenticated"), "{shown}");
    assert!(shown.contains("expired"), "{shown}");

    // Any key browses the new run; q quits: exit 0, terminal restored.
    key("Enter");
    wait_for("the new run", |s| !s.contains("What changed"));
    key("q");
    let after = wait_for("the exit", |s| s.contains("IOTLS-EXITED-"));
    assert!(after.contains("IOTLS-EXITED-0"), "{after}");
    assert_eq!(
        tmux(&["display", "-p", "-t", "brk", "#{alternate_on}"]).trim(),
        "0"
    );
    // The export is of the run on screen at quit: the broken one.
    let md = std::fs::read_to_string(&page).expect("the page was written");
    assert!(md.contains("expired"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}
