//! A terminal for end-to-end tests: one tmux session on a tmux server of the test's own
//! (`tmux -L iotls-<tag>-<pid>`, no user configuration), stopped with `kill-server` on that socket
//! when dropped — it never meets another tmux server and stops nothing else.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Run `cmd` (a shell command line) in a detached `width`×`height` session named `tag`.
    pub fn start(tag: &str, width: u16, height: u16, cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("iotls-{tag}-{}", std::process::id()),
            session: tag.to_string(),
        };
        let ok = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-s", &t.session])
            .args(["-x", &width.to_string(), "-y", &height.to_string(), cmd])
            .env_remove("NO_COLOR")
            .status()
            .expect("start tmux");
        assert!(ok.success(), "tmux could not start {cmd:?}");
        t
    }

    /// A tmux command on this server; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// What the session's screen shows now.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Press a key (tmux's key names: `Right`, `Enter`, `q`, …).
    pub fn key(&self, k: &str) {
        self.run(&["send-keys", "-t", &self.session, k]);
    }

    /// Whether the program on screen uses the alternate screen (`1`) or not (`0`).
    pub fn alternate_on(&self) -> String {
        self.run(&["display", "-p", "-t", &self.session, "#{alternate_on}"])
            .trim()
            .to_string()
    }

    /// Wait up to `within` until `ok` holds for the screen; the screen. Fails naming `what` and
    /// showing the screen when it never does.
    pub fn wait_for(&self, what: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let s = self.screen();
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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
