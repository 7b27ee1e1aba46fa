//! Real peers for integration tests: a Mosquitto broker on a free port, `mosquitto_sub` as an
//! independent witness of what the broker delivered, `mosquitto_sub` / `mosquitto_pub` against any
//! broker with their debug output collected ([`MqttClient`]), `iotls serve` as a child process, a
//! recording TCP relay, and a small PKI with an expired device certificate.
//!
//! Every process a fixture starts is killed by its own PID when the fixture is dropped; nothing here
//! touches a system service or another process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a fixture waits for a peer to come up, or for a session to end.
pub const STARTUP: Duration = Duration::from_secs(5);
pub const SESSION: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// A port that was free a moment ago (the caller binds it; a lost race shows up as a start error).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local_addr")
        .port()
}

/// A new, empty directory of this test's own.
pub fn tempdir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!(
        "iotls-peers-{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The default PKI (`iotls pki init`) written into `dir`.
pub fn default_pki(dir: &Path) {
    iotls::pki::write_default(dir, false).expect("write the default PKI");
}

/// `openssl s_client` over TLS 1.2 (SNI `localhost`) to `addr` as a device of `dir`'s PKI: the
/// certificate `cert` of `dir` with `button.key`, trusting `dir`'s root. `-cert` sends only the
/// leaf, so `with_chain` adds the issuing CA with `-cert_chain`. Standard streams and further
/// options are the caller's.
pub fn s_client(dir: &Path, addr: &str, cert: &str, with_chain: bool) -> std::process::Command {
    let mut c = std::process::Command::new("openssl");
    c.args(["s_client", "-tls1_2", "-connect", addr])
        .args(["-servername", "localhost"])
        .arg("-cert")
        .arg(dir.join(cert));
    if with_chain {
        c.arg("-cert_chain").arg(dir.join("issuing-ca.pem"));
    }
    c.arg("-key")
        .arg(dir.join("button.key"))
        .arg("-CAfile")
        .arg(dir.join("root.pem"));
    c
}

/// The first certificate of a PEM file (the leaf of a chain file), as PEM text.
pub fn leaf_only(chain_pem: &Path) -> String {
    let text = std::fs::read_to_string(chain_pem).expect("read PEM");
    let end = "-----END CERTIFICATE-----";
    let at = text.find(end).expect("a certificate in the PEM file") + end.len();
    format!("{}\n", &text[..at])
}

/// An OpenSSL configuration that pins TLS 1.2 exactly (mosquitto's `tls_version` is a minimum only).
pub const OPENSSL_TLS12_ONLY: &str = "openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.2
MaxProtocol = TLSv1.2
";

/// Wait until `addr` accepts a TCP connection, or `deadline`.
fn wait_for_port(addr: &str, deadline: Instant, mut alive: impl FnMut() -> bool) -> bool {
    let sa: SocketAddr = addr.parse().expect("socket address");
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if !alive() {
            return false;
        }
        std::thread::sleep(POLL);
    }
    false
}

/// A child process killed by its PID when dropped.
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for a child to exit, at most `limit`; kill it (by PID) if it does not.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mosquitto
// ---------------------------------------------------------------------------------------------

/// A Mosquitto broker of the test's own on a free loopback port: mutual TLS 1.2 with the PKI in
/// `dir` (`root.pem` trusted for devices, `broker.pem` + `broker.key` as its identity), the device
/// certificate's CN as MQTT username, and the given ACL.
pub struct Mosquitto {
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl Mosquitto {
    /// Start mosquitto with `acl` (mosquitto's acl_file syntax) and wait until it accepts TCP.
    pub fn start(dir: &Path, acl: &str) -> Mosquitto {
        let ossl = dir.join("openssl-tls12.cnf");
        std::fs::write(&ossl, OPENSSL_TLS12_ONLY).expect("write OPENSSL_CONF");
        let acl_file = dir.join("mosquitto.acl");
        std::fs::write(&acl_file, acl).expect("write ACL");
        let log = dir.join("mosquitto.log");
        let mut last_log = String::new();
        // A free port can be taken between choosing and binding it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.join("mosquitto.conf");
            let p = |f: &str| dir.join(f).display().to_string();
            let text = format!(
                "# written by tests/common/peers.rs
user root
persistence false
per_listener_settings false
log_dest file {log}
log_type all
log_timestamp true
allow_anonymous false
acl_file {acl}
listener {port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
",
                log = log.display(),
                acl = acl_file.display(),
                ca = p("root.pem"),
                cert = p("broker.pem"),
                key = p("broker.key"),
            );
            std::fs::write(&conf, text).expect("write mosquitto.conf");
            let _ = std::fs::remove_file(&log);
            let child = Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .env("OPENSSL_CONF", &ossl)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto");
            let mut m = Mosquitto {
                port,
                dir: dir.to_path_buf(),
                log: log.clone(),
                child,
            };
            let addr = m.addr();
            let up = wait_for_port(&addr, Instant::now() + STARTUP, || {
                matches!(m.child.try_wait(), Ok(None))
            });
            if up {
                return m;
            }
            last_log = m.log();
            // `m` is dropped here: its child is killed by PID.
        }
        panic!("mosquitto did not start; its log:\n{last_log}");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Mosquitto's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Wait until the log contains `needle` (bounded); returns whether it did.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(POLL);
        }
        false
    }

    /// Common TLS arguments of mosquitto_sub / mosquitto_pub with the identity `name` of `dir`.
    fn client_args(&self, name: &str, client_id: &str) -> Vec<String> {
        let p = |f: String| self.dir.join(f).display().to_string();
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "--cafile".into(),
            p("root.pem".into()),
            "--cert".into(),
            p(format!("{name}.pem")),
            "--key".into(),
            p(format!("{name}.key")),
            "-i".into(),
            client_id.into(),
            "-q".into(),
            "1".into(),
        ]
    }

    /// Publish one message with `mosquitto_pub` as identity `name` (e.g. `neighbour`).
    pub fn publish(&self, name: &str, client_id: &str, topic: &str, message: &str) {
        let mut c = Command::new("mosquitto_pub")
            .args(self.client_args(name, client_id))
            .args(["-t", topic, "-m", message])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_pub");
        let st = wait_bounded(&mut c, STARTUP);
        let mut err = String::new();
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(
            st.is_some_and(|s| s.success()),
            "mosquitto_pub {topic} failed ({st:?}): {err}\nmosquitto log:\n{}",
            self.log()
        );
    }

    /// Subscribe with `mosquitto_sub` as identity `name` to `filter`, and wait until mosquitto has
    /// sent the SUBACK (so every later publish is delivered to it).
    pub fn subscribe(&self, name: &str, client_id: &str, filter: &str) -> Subscriber {
        let mut child = Command::new("mosquitto_sub")
            .args(self.client_args(name, client_id))
            .args(["-v", "-t", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_sub");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = Subscriber {
            client_id: client_id.to_string(),
            child: Owned(child),
            lines: rx,
        };
        assert!(
            self.wait_for_log(&format!("Sending SUBACK to {client_id}"), STARTUP),
            "mosquitto_sub {client_id} did not subscribe; mosquitto log:\n{}",
            self.log()
        );
        sub
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `mosquitto_sub -v` witness: every line is `TOPIC PAYLOAD` of a message the broker delivered.
pub struct Subscriber {
    pub client_id: String,
    child: Owned,
    lines: Receiver<String>,
}

impl Subscriber {
    /// Publish a sentinel with `mosquitto_pub` (identity `name`, to `topic`, which it may write) and
    /// return every line received before the sentinel arrived. Mosquitto handles clients one at a
    /// time and delivers in order, so a message it accepted before the sentinel is in this list.
    pub fn received_before_sentinel(&self, m: &Mosquitto, name: &str, topic: &str) -> Vec<String> {
        let token = format!("sentinel-{}", self.client_id);
        m.publish(name, &format!("{}-sentinel", self.client_id), topic, &token);
        let deadline = Instant::now() + STARTUP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.ends_with(&token) => return seen,
                Ok(l) => seen.push(l),
                Err(_) => panic!(
                    "mosquitto_sub {} never received the sentinel; lines: {seen:?}\nmosquitto log:\n{}",
                    self.client_id,
                    m.log()
                ),
            }
        }
    }

    /// Stop the subscriber (by PID).
    pub fn stop(self) {
        drop(self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// mosquitto_sub / mosquitto_pub against any broker, with their debug output
// ---------------------------------------------------------------------------------------------

/// The prefix of a delivered message in [`MqttClient`] output: `mosquitto_sub -F` with
/// [`MESSAGE_FORMAT`] prints `MSG q=QOS r=RETAIN t=TOPIC p=PAYLOAD` for every message.
pub const MESSAGE_PREFIX: &str = "MSG ";
/// mosquitto_sub's `-F` format for [`MESSAGE_PREFIX`] lines: the QoS and retain flag it was
/// delivered with, the topic and the payload.
pub const MESSAGE_FORMAT: &str = "MSG q=%q r=%r t=%t p=%p";

/// Whether `stdbuf` (coreutils) is there to make a C program's stdout line-buffered.
fn have_stdbuf() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new("sh")
            .args(["-c", "command -v stdbuf"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// A running `mosquitto_sub` or `mosquitto_pub` whose stdout and stderr lines are collected, in
/// order of arrival, as they come. With `-d` that is every packet it sent and received (`Client X
/// sending CONNECT`, `Client X received CONNACK (0)`, `Received DISCONNECT (142)`, …). Its stdout
/// is made line-buffered with `stdbuf -oL` (libmosquitto's debug lines are plain `printf`s, which
/// a pipe would otherwise hold back until a message is printed). Killed by its PID when dropped.
pub struct MqttClient {
    /// How it was started, for assertion messages.
    pub label: String,
    child: Owned,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl MqttClient {
    /// Start `program` (`mosquitto_sub` / `mosquitto_pub`) with `args`.
    pub fn spawn(program: &str, args: &[String]) -> MqttClient {
        let mut cmd = if have_stdbuf() {
            let mut c = Command::new("stdbuf");
            c.args(["-oL", program]);
            c
        } else {
            Command::new(program)
        };
        // stdbuf execs the program: the child's PID is the client's own.
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let label = format!("{program} {}", args.join(" "));
        MqttClient {
            label,
            child: Owned(child),
            lines,
        }
    }

    /// Its process id (to read /proc, or to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Wait (bounded) until a line contains `needle`; returns whether one did.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        self.wait_for_count(needle, 1, limit)
    }

    /// Wait (bounded) until `n` lines contain `needle`; returns whether they did.
    pub fn wait_for_count(&self, needle: &str, n: usize, limit: Duration) -> bool {
        self.wait_until(limit, |lines| {
            lines.iter().filter(|l| l.contains(needle)).count() >= n
        })
    }

    /// Wait (bounded) until `pred` holds for the lines so far; returns whether it did.
    pub fn wait_until(&self, limit: Duration, pred: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if pred(&self.lines()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// The delivered messages so far ([`MESSAGE_PREFIX`] lines, prefix removed):
    /// `q=QOS r=RETAIN t=TOPIC p=PAYLOAD`.
    pub fn messages(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(MESSAGE_PREFIX).map(str::to_string))
            .collect()
    }

    /// Wait (bounded) for a message whose payload is `payload`; returns the messages that came
    /// before it, or None if it did not come.
    pub fn messages_before(&self, payload: &str, limit: Duration) -> Option<Vec<String>> {
        let end = format!(" p={payload}");
        let deadline = Instant::now() + limit;
        loop {
            let msgs = self.messages();
            if let Some(at) = msgs.iter().position(|m| m.ends_with(&end)) {
                return Some(msgs[..at].to_vec());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().ok().flatten()
    }

    /// Wait for it to exit, at most `limit`; killed (by PID) at the limit, then None.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let st = wait_bounded(&mut self.child.0, limit);
        // Let the reader threads take the last lines.
        std::thread::sleep(POLL);
        st
    }

    /// SIGKILL by PID: the process gets no chance to say DISCONNECT.
    pub fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        std::thread::sleep(POLL);
    }

    /// Everything it printed so far, for assertion messages.
    pub fn show(&self) -> String {
        format!("--- {} ---\n{}", self.label, self.lines().join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// Running iotls
// ---------------------------------------------------------------------------------------------

/// The result of one bounded run of the iotls binary.
pub struct Run {
    /// The exit code; None if it was killed (signal or timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What it printed, for assertion messages: a JSON trace in brief (see [`brief`]), plain text
    /// by its last lines, and all of stderr.
    pub fn show(&self) -> String {
        let out = match serde_json::from_str::<serde_json::Value>(self.stdout.trim()) {
            Ok(t) => brief(&t),
            Err(_) => {
                let lines: Vec<&str> = self.stdout.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            }
        };
        format!(
            "exit code {:?}\n--- stdout ---\n{out}\n--- stderr ---\n{}",
            self.code, self.stderr
        )
    }

    /// The last non-empty line of stdout (the verdict of plain output).
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

/// A JSON trace in brief, for assertion messages: its format, outcome, one line per event (side,
/// kind, message / check / alert) and how many records it holds.
pub fn brief(t: &serde_json::Value) -> String {
    let mut s = format!(
        "format {}\noutcome {}\n",
        t["format"],
        serde_json::to_string_pretty(&t["outcome"]).unwrap_or_default()
    );
    for e in t["events"].as_array().into_iter().flatten() {
        let what = [
            "msg",
            "check",
            "description",
            "packet",
            "action",
            "cause",
            "reason",
            "message",
        ]
        .iter()
        .filter_map(|k| {
            e.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| format!("{k}={v}"))
        })
        .collect::<Vec<_>>()
        .join(" ");
        let ok = e.get("ok").map(|v| format!(" ok={v}")).unwrap_or_default();
        let mqtt = e
            .get("mqtt")
            .and_then(|m| m.as_array())
            .map(|m| {
                m.iter()
                    .map(|p| format!(" mqtt:{}", p["packet"]))
                    .collect::<String>()
            })
            .unwrap_or_default();
        s += &format!(
            "  #{} {} {} {what}{ok}{mqtt}\n",
            e["seq"], e["side"], e["kind"]
        );
    }
    match t["records"].as_array() {
        Some(r) => s += &format!("records: {}\n", r.len()),
        None => s += "records: (none)\n",
    }
    s
}

/// Run a child to completion (bounded by `limit`), collecting stdout and stderr.
pub fn collect(mut child: Child, limit: Duration) -> Run {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let st = wait_bounded(&mut child, limit);
    Run {
        code: st.and_then(|s| s.code()),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Run `iotls ARGS` (bounded).
pub fn iotls<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let child = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotls");
    collect(child, SESSION)
}

/// `iotls connect ADDR` as identity `name` of `dir` (`name.pem`, `name.key`, trusting `root.pem`,
/// asking for `localhost`), followed by `extra` arguments.
pub fn iotls_connect(dir: &Path, addr: &str, name: &str, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["connect".into(), addr.into()];
    for (flag, file) in [
        ("--cert", format!("{name}.pem")),
        ("--key", format!("{name}.key")),
        ("--ca", "root.pem".to_string()),
    ] {
        args.push(flag.into());
        args.push(dir.join(file).into());
    }
    args.push("--server-name".into());
    args.push("localhost".into());
    args.extend(extra.iter().map(Into::into));
    iotls(args)
}

/// Which output stream of `iotls serve` a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `iotls serve --port 0 --json --pki DIR --sessions N`, running as a child of the test.
pub struct Serve {
    /// The address from its `listening on ADDR` line.
    pub addr: String,
    /// Where the `listening on` line appeared (the contract: stderr).
    pub listening_on: Stream,
    /// Every line so far, in order of arrival per stream.
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    lines: Receiver<(Stream, Option<String>)>,
    open_streams: u8,
    child: Owned,
}

impl Serve {
    /// Start serve with the default PKI in `pki_dir` (created if missing) for `sessions` sessions.
    pub fn start(pki_dir: &Path, sessions: u32) -> Serve {
        Self::start_with(pki_dir, sessions, &[])
    }

    /// [`Self::start`] with more arguments (e.g. `--cert … --registry …`).
    pub fn start_with(pki_dir: &Path, sessions: u32, extra: &[&std::ffi::OsStr]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iotls"))
            .args(["serve", "--port", "0", "--json", "--sessions"])
            .arg(sessions.to_string())
            .arg("--pki")
            .arg(pki_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iotls serve");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for (stream, pipe) in [
            (Stream::Stdout, Box::new(out) as Box<dyn Read + Send>),
            (Stream::Stderr, Box::new(err)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((stream, Some(line))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((stream, None));
            });
        }
        let mut s = Serve {
            addr: String::new(),
            listening_on: Stream::Stderr,
            stdout: Vec::new(),
            stderr: Vec::new(),
            lines: rx,
            open_streams: 2,
            child: Owned(child),
        };
        let deadline = Instant::now() + STARTUP;
        while s.addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.next_line(left) {
                Some((stream, line)) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        s.addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        s.listening_on = stream;
                    }
                }
                None => panic!("iotls serve printed no `listening on ADDR`\n{}", s.show()),
            }
        }
        s
    }

    /// The next line from either stream (stored in `stdout`/`stderr` too), or None at the deadline
    /// or when both streams have ended.
    fn next_line(&mut self, limit: Duration) -> Option<(Stream, String)> {
        let deadline = Instant::now() + limit;
        while self.open_streams > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((stream, Some(line))) => {
                    match stream {
                        Stream::Stdout => self.stdout.push(line.clone()),
                        Stream::Stderr => self.stderr.push(line.clone()),
                    }
                    return Some((stream, line));
                }
                Ok((_, None)) => self.open_streams -= 1,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => self.open_streams = 0,
            }
        }
        None
    }

    /// Its process id (to read /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Wait (bounded) for the process to exit and both streams to end; returns its exit code
    /// (None if it had to be killed).
    pub fn finish(&mut self, limit: Duration) -> Option<i32> {
        let st = wait_bounded(&mut self.child.0, limit);
        while self.next_line(STARTUP).is_some() {}
        st.and_then(|s| s.code())
    }

    /// The stdout lines after the `listening on` line (when it was on stdout): the traces.
    pub fn trace_lines(&self) -> Vec<String> {
        self.stdout
            .iter()
            .filter(|l| !(self.listening_on == Stream::Stdout && l.starts_with("listening on ")))
            .cloned()
            .collect()
    }

    /// Every trace printed so far, parsed (lines that are not JSON are left out).
    pub fn traces(&mut self) -> Vec<serde_json::Value> {
        while self.next_line(Duration::ZERO).is_some() {}
        self.trace_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait (bounded) until serve has printed a trace (one ended session) for which `pred` holds;
    /// returns the first such trace, in the order serve printed them.
    pub fn wait_for_trace(
        &mut self,
        limit: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.traces().into_iter().find(|t| pred(t)) {
                return Some(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.next_line(left)?;
        }
    }

    /// [`Self::show`] after taking in whatever serve has printed by now.
    pub fn show_now(&mut self) -> String {
        while self.next_line(Duration::ZERO).is_some() {}
        self.show()
    }

    /// Everything it printed so far, for assertion messages.
    pub fn show(&self) -> String {
        let out: Vec<String> = self
            .stdout
            .iter()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(t) => brief(&t),
                Err(_) => l.clone(),
            })
            .collect();
        format!(
            "--- serve stdout ---\n{}\n--- serve stderr ---\n{}",
            out.join("\n"),
            self.stderr.join("\n")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// A recording relay
// ---------------------------------------------------------------------------------------------

/// What a relay recorded: (device→broker, broker→device).
pub type Recorded = (Vec<u8>, Vec<u8>);

/// A TCP relay of the test's own: accepts one connection on `addr`, connects to the target and
/// forwards both directions, recording each. A shut-down write half is passed on as a shut-down
/// write half, and the other direction keeps flowing until its own end.
pub struct Relay {
    pub addr: String,
    done: Receiver<Result<Recorded, String>>,
    _thread: JoinHandle<()>,
}

impl Relay {
    pub fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay bind");
        let addr = listener.local_addr().expect("relay addr").to_string();
        let target = target.to_string();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(relay_one(listener, &target));
        });
        Relay {
            addr,
            done: rx,
            _thread: thread,
        }
    }

    /// Wait (bounded) until both directions have ended; returns (device→broker, broker→device).
    pub fn finish(self) -> Recorded {
        match self.done.recv_timeout(SESSION) {
            Ok(Ok(both)) => both,
            Ok(Err(e)) => panic!("relay: {e}"),
            Err(_) => panic!("relay: the connection did not end within {SESSION:?}"),
        }
    }
}

fn relay_one(listener: TcpListener, target: &str) -> Result<Recorded, String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let deadline = Instant::now() + SESSION;
    let device = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("nobody connected".into());
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    device
        .set_nonblocking(false)
        .map_err(|e| format!("blocking: {e}"))?;
    let broker = TcpStream::connect(target).map_err(|e| format!("connect {target}: {e}"))?;
    let _ = device.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let pump =
        |from: &TcpStream, to: &TcpStream| -> std::io::Result<std::thread::JoinHandle<Vec<u8>>> {
            let (mut from, mut to) = (from.try_clone()?, to.try_clone()?);
            Ok(std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 16384];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            seen.extend_from_slice(&buf[..n]);
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                // Pass the end on: the other side sees EOF, and can still send its own bytes back.
                let _ = to.shutdown(Shutdown::Write);
                seen
            }))
        };
    let up = pump(&device, &broker).map_err(|e| format!("clone: {e}"))?;
    let down = pump(&broker, &device).map_err(|e| format!("clone: {e}"))?;
    let up = up.join().map_err(|_| "device→broker pump panicked")?;
    let down = down.join().map_err(|_| "broker→device pump panicked")?;
    Ok((up, down))
}

// ---------------------------------------------------------------------------------------------
// A PKI with an expired device certificate
// ---------------------------------------------------------------------------------------------

/// The not_after of [`expired_pki`]'s device certificate.
pub const EXPIRED_NOT_AFTER: &str = "2020-01-01T00:00:00Z";

/// Write a small PKI of the test's own into `dir`, like the default one but with its CA keys in
/// hand (`write_default` does not write CA keys): `root.pem`, `issuing-ca.pem`, `broker.pem` (leaf
/// and issuing CA; SAN localhost, 127.0.0.1) with `broker.key`, `button.pem` (a valid
/// pizza-button-1) with `button.key`, and `button-expired.pem` (CN pizza-button-1, valid
/// 2019-01-01 … 2020-01-01) with `button-expired.key`.
pub fn expired_pki(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
    };
    let now = time::OffsetDateTime::now_utc();
    let key = || KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let dn = |o: &str, cn: &str| {
        let mut d = DistinguishedName::new();
        d.push(DnType::OrganizationName, DnValue::Utf8String(o.into()));
        d.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
        d
    };
    let ca = |cn: &str, constraint: BasicConstraints| {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn("Pizza Shop", cn);
        p.is_ca = IsCa::Ca(constraint);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        // Valid from before the expired leaf, so only the leaf's dates are wrong.
        p.not_before = rcgen::date_time_ymd(2018, 1, 1);
        p.not_after = now + time::Duration::days(3650);
        p
    };
    let root = CertifiedIssuer::self_signed(
        ca("Pizza Shop Root CA", BasicConstraints::Unconstrained),
        key(),
    )
    .expect("root");
    let inter = CertifiedIssuer::signed_by(
        ca("Pizza Shop Issuing CA 1", BasicConstraints::Constrained(0)),
        key(),
        &root,
    )
    .expect("issuing CA");
    let leaf = |mut p: CertificateParams, name: &str| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let k = key();
        let cert = p.signed_by(&k, &inter).expect("leaf");
        std::fs::write(
            dir.join(format!("{name}.pem")),
            format!("{}{}", cert.pem(), inter.pem()),
        )
        .expect("write leaf");
        std::fs::write(dir.join(format!("{name}.key")), k.serialize_pem()).expect("write key");
    };
    let mut broker = CertificateParams::default();
    broker.distinguished_name = dn("Pizza Shop", "broker.pizza.example");
    broker.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().expect("dns")),
        SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    ];
    broker.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    broker.not_before = now - time::Duration::days(1);
    broker.not_after = now + time::Duration::days(365);
    leaf(broker, "broker");
    let button = |not_before, not_after| {
        let mut p = CertificateParams::default();
        let mut d = dn("Pizza Shop customers", "pizza-button-1");
        d.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnValue::PrintableString("G030JF055364XVRB".try_into().expect("printable")),
        );
        p.distinguished_name = d;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = not_before;
        p.not_after = not_after;
        p
    };
    leaf(
        button(
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        ),
        "button",
    );
    leaf(
        button(
            rcgen::date_time_ymd(2019, 1, 1),
            rcgen::date_time_ymd(2020, 1, 1),
        ),
        "button-expired",
    );
    std::fs::write(dir.join("root.pem"), root.pem()).expect("write root");
    std::fs::write(dir.join("issuing-ca.pem"), inter.pem()).expect("write issuing CA");
}
