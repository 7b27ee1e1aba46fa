//! The terminal UI under signals, in a real terminal (tmux on its own socket): SIGTERM and SIGINT
//! restore the terminal and exit with the codes shells expect; a terminal that goes away ends iotls
//! within a second.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of this test's own (`tmux -L NAME`), killed when dropped.
struct Tmux(String);

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let t = Tmux(format!("iotls-{name}-{}", std::process::id()));
        let ok = Command::new("tmux")
            .args([
                "-L",
                &t.0,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "35",
                cmd,
            ])
            .status()
            .expect("run tmux")
            .success();
        assert!(ok, "tmux started");
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.run(&["capture-pane", "-p"]);
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < deadline, "never showed {text:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The PID of the iotls process: the pane's process itself (a lone command is exec'd by the
    /// shell) or its child.
    fn iotls_pid(&self) -> u32 {
        let pane = self.run(&["list-panes", "-F", "#{pane_pid}"]);
        let pane = pane.trim().to_string();
        let is_iotls = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "iotls")
        };
        if is_iotls(&pane) {
            return pane.parse().unwrap();
        }
        let out = Command::new("ps")
            .args(["-o", "pid=", "--ppid", &pane])
            .output()
            .expect("run ps");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|p| is_iotls(p))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no iotls process in the pane ({pane})"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .status();
    }
}

fn signal_ends_the_tour(sig: &str, code: u8) {
    let name = format!("sig{sig}");
    if !common::peer_available("tmux", &name) {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_iotls");
    let t = Tmux::start(
        &name,
        &format!("{bin} tour; echo IOTLS-EXITED-$?; sleep 30"),
    );
    t.wait_for("ClientHello");
    let pid = t.iotls_pid();
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
    let s = t.wait_for("IOTLS-EXITED-");
    assert!(
        s.contains(&format!("IOTLS-EXITED-{code}")),
        "exit code {code} after SIG{sig}:\n{s}"
    );
    // The alternate screen was left: the tour's frame is gone from the pane.
    assert!(
        !s.contains("ClientHello"),
        "the terminal was restored:\n{s}"
    );
    let mode = t.run(&["display-message", "-p", "#{alternate_on} #{mouse_any_flag}"]);
    assert_eq!(
        mode.trim(),
        "0 0",
        "alternate screen and mouse reporting off"
    );
}

#[test]
fn sigterm_restores_the_terminal_and_exits_143() {
    signal_ends_the_tour("TERM", 143);
}

#[test]
fn sigint_restores_the_terminal_and_exits_130() {
    signal_ends_the_tour("INT", 130);
}

#[test]
fn a_terminal_that_goes_away_ends_the_tour_within_a_second() {
    if !common::peer_available("tmux", "terminal_goes_away") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_iotls");
    let t = Tmux::start("gone", &format!("{bin} tour"));
    t.wait_for("ClientHello");
    let pid = t.iotls_pid();
    t.run(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(1);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie has exited; only a live process counts.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "iotls ({pid}) still runs a second after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
