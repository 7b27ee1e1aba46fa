//! End-to-end test of break-it in a real terminal (tmux, on this test's own socket): in the live
//! tour, `b` lists the swaps, a digit runs the lesson with the expired certificate for real, the
//! comparison names the check that changed and both outcomes, and quitting exits 0 with the
//! terminal restored and the exports of the run on screen.

mod common;

use common::tmux::Tmux;
use std::time::Duration;

/// How long a screen may take to show what is awaited.
const WAIT: Duration = Duration::from_secs(30);

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
    let t = Tmux::start("brk", 120, 35, &cmd);

    // The live tour, held at its first flight.
    t.wait_for("the live tour", WAIT, |s| s.contains("not on the wire yet"));
    t.key("b");
    let menu = t.wait_for("the break-it menu", WAIT, |s| s.contains("Break it"));
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
    t.key(&digit.to_string());

    let shown = t.wait_for("the comparison", WAIT, |s| s.contains("What changed"));
    assert!(shown.contains("client_chain ✘"), "{shown}");
    assert!(shown.contains("client_chain ✔"), "{shown}");
    assert!(shown.contains("Outcome now"), "{shown}");
    // The live session was ended at its first flight: the comparison is with the lesson run to
    // the end without the swap, and says so; that run was ok.
    assert!(shown.contains("ended before it finished"), "{shown}");
    assert!(shown.contains("✔ Both sides authenticated"), "{shown}");
    assert!(shown.contains("expired"), "{shown}");

    // Any key browses the new run; q quits: exit 0, terminal restored.
    t.key("Enter");
    t.wait_for("the new run", WAIT, |s| !s.contains("What changed"));
    t.key("q");
    let after = t.wait_for("the exit", WAIT, |s| s.contains("IOTLS-EXITED-"));
    assert!(after.contains("IOTLS-EXITED-0"), "{after}");
    assert_eq!(t.alternate_on(), "0");
    // The export is of the run on screen at quit: the broken one.
    let md = std::fs::read_to_string(&page).expect("the page was written");
    assert!(md.contains("expired"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}
