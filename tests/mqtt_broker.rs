//! iotls's broker (`iotls serve`) behaves like AWS IoT Core's message broker, proven with
//! mosquitto's own clients (`mosquitto_sub`, `mosquitto_pub`; 2.0.11 on Debian) and, where those
//! cannot send what a test needs, with raw MQTT bytes over a TLS connection of the test's own
//! (rustls used directly, not iotls's device).
//!
//! Every test starts its own `iotls serve --port 0 --json` (serving until the test ends; stopped by
//! its PID) with the default PKI and a registry it writes: `button.pem` (CN `pizza-button-1`) may
//! do anything (`AllowAll`); `neighbour.pem` (CN `pizza-button-2`) may connect, subscribe and
//! receive anywhere but publish only under `allowed/`. The evidence is what the clients printed
//! with `-d` (every packet they sent and received), the messages `mosquitto_sub` delivered (printed
//! as `MSG q=QOS r=RETAIN t=TOPIC p=PAYLOAD`), and serve's JSON trace of each session
//! (`iotls-trace/2`, docs/trace-format.md), which serve prints when that session ends.
//!
//! The contract, one or more tests each:
//!
//! 1. Session takeover: a second connection with the same client id is accepted and the older one
//!    is closed (MQTT 3.1.1 §3.1.4; MQTT 5: DISCONNECT 0x8E Session taken over); the older
//!    session's trace has a `closed` event with cause `taken_over`.
//! 2. Last Will: published when the device dies, not after a clean DISCONNECT; a will on a topic
//!    the device may not publish to refuses the CONNECT (denied `iot:Publish` in the trace).
//! 3. QoS 2 is not supported (AWS IoT): a 3.1.1 PUBLISH or SUBSCRIBE at QoS 2 gets no
//!    acknowledgement and nothing is delivered; MQTT 5's CONNACK says Maximum QoS 1 and a v5
//!    SUBSCRIBE at QoS 2 is granted QoS 1.
//! 4. Retained messages reach later subscribers (with the retain flag); an empty retained payload
//!    clears them.
//! 5. UNSUBSCRIBE gets an UNSUBACK, the connection stays open, and delivery stops.
//! 6. Persistent sessions (clean session off) keep subscriptions and queue QoS 1 messages while
//!    the client is away; CONNACK says session present.
//! 7. Topics starting with `$` are not matched by `#` (MQTT 3.1.1 §4.7.2), but by `$aws/#`.
//! 8. A message is delivered at min(published QoS, granted QoS) (§3.8.4).
//! 9. An empty client id with clean session off gets CONNACK 0x02 Identifier rejected (§3.1.3.1).
//! 10. Keep-alive: the broker honours the client's keep-alive (1.5 × keep-alive, §3.1.2.10), no
//!     fixed idle limit.
//!
//! Waiting is bounded everywhere: [`QUICK`] for what should happen at once, [`QUIET`] for how long
//! "no answer" is given, and the two keep-alive tests wait as long as their behaviour needs.
//!
//! What mosquitto 2.0.11's clients do, observed (and relied on here):
//! - `-i ""` is refused by the clients themselves (`Error: Invalid id`), so test 9 writes its
//!   CONNECT by hand.
//! - A 3.1.1 client whose connection the broker closes prints nothing about it with `-d`;
//!   `mosquitto_sub` reconnects about a second later (`sending CONNECT` again), `mosquitto_pub`
//!   exits. An MQTT 5 DISCONNECT from the broker prints `Received DISCONNECT (<reason>)` and
//!   `mosquitto_sub` exits without reconnecting.
//! - After an MQTT 5 CONNACK with Maximum QoS 1 (seen against a Mosquitto with `max_qos 1`),
//!   `mosquitto_pub -q 2` sends no PUBLISH: it prints `Error: Message QoS not supported on broker,
//!   try a lower QoS.`, sends DISCONNECT and exits 0. On 3.1.1 it sends the QoS 2 PUBLISH anyway.
//! - `mosquitto_sub -W` (its timeout) ends an MQTT 5 connection with DISCONNECT 0x04 Disconnect
//!   with Will Message, after which a broker publishes the will; this file does not use `-W`.
//! - `mosquitto_sub -t A -t B` sends one SUBSCRIBE with both filters (`-d` prints a line per
//!   filter); with `-U` it sends its UNSUBSCRIBE right after, without waiting for the SUBACK.

mod common;

use common::peer_available;
use common::peers::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a test waits for something the broker should do at once (an answer, a delivery, the
/// end of a session it closed). On loopback these take milliseconds.
const QUICK: Duration = Duration::from_secs(3);
/// How long a test gives the broker to answer before taking silence as "no answer".
const QUIET: Duration = Duration::from_millis(700);

/// Both mosquitto clients are installed (or the test says it skipped).
fn mosquitto_clients(test: &str) -> bool {
    peer_available("mosquitto_sub", test) && peer_available("mosquitto_pub", test)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mqtt {
    V311,
    V5,
}

impl Mqtt {
    /// mosquitto's `-V` value.
    fn arg(self) -> &'static str {
        match self {
            Mqtt::V311 => "mqttv311",
            Mqtt::V5 => "mqttv5",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The broker under test and its clients
// ---------------------------------------------------------------------------------------------

/// `iotls serve` with the default PKI in a directory of the test's own and the registry described
/// at the top of this file; it serves until the test ends (killed by its PID).
struct Broker {
    dir: PathBuf,
    port: String,
    serve: Serve,
}

impl Broker {
    fn start(name: &str) -> Broker {
        let dir = tempdir(name);
        default_pki(&dir);
        let registry = json!({
            "policies": [
                { "name": "AllowAll", "document": { "Version": "2012-10-17",
                    "Statement": { "Effect": "Allow", "Action": "iot:*", "Resource": "*" } } },
                { "name": "PublishOnlyAllowed", "document": { "Version": "2012-10-17",
                    "Statement": [
                        { "Effect": "Allow",
                          "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive"],
                          "Resource": "*" },
                        { "Effect": "Allow", "Action": "iot:Publish",
                          "Resource": "arn:aws:iot:*:*:topic/allowed/*" }
                    ] } }
            ],
            "certificates": [
                { "pem": "button.pem", "status": "ACTIVE", "policies": ["AllowAll"] },
                { "pem": "neighbour.pem", "status": "ACTIVE", "policies": ["PublishOnlyAllowed"] }
            ]
        });
        let reg = dir.join("registry.json");
        std::fs::write(&reg, registry.to_string()).expect("write registry");
        let serve = Serve::start_with(&dir, 0, &["--registry".as_ref(), reg.as_os_str()]);
        let port = serve
            .addr
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        Broker { dir, port, serve }
    }

    /// The arguments every client gets: TLS 1.2 with identity `identity` (`button`, `neighbour`),
    /// the protocol version, the client id, and `-d`.
    fn client_args(&self, identity: &str, v: Mqtt, client_id: &str, extra: &[&str]) -> Vec<String> {
        let p = |f: String| self.dir.join(f).display().to_string();
        let mut args: Vec<String> = vec![
            "-h".into(),
            "localhost".into(),
            "-p".into(),
            self.port.clone(),
            "--cafile".into(),
            p("root.pem".into()),
            "--cert".into(),
            p(format!("{identity}.pem")),
            "--key".into(),
            p(format!("{identity}.key")),
            "-V".into(),
            v.arg().into(),
            "-i".into(),
            client_id.into(),
            "-d".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `mosquitto_sub` as the button, printing each message as `MSG q=… r=… t=… p=…`.
    fn spawn_sub(&self, v: Mqtt, client_id: &str, extra: &[&str]) -> MqttClient {
        let mut args = self.client_args("button", v, client_id, &["-F", MESSAGE_FORMAT]);
        args.extend(extra.iter().map(|s| s.to_string()));
        MqttClient::spawn("mosquitto_sub", &args)
    }

    /// [`Self::spawn_sub`], waiting (bounded) until the broker has sent its SUBACK.
    fn subscribed(&mut self, v: Mqtt, client_id: &str, extra: &[&str]) -> MqttClient {
        let s = self.spawn_sub(v, client_id, extra);
        if !s.wait_for("received SUBACK", QUICK) {
            panic!(
                "fixture: mosquitto_sub {client_id} got no SUBACK within {QUICK:?}\n{}",
                self.show(&[&s])
            );
        }
        s
    }

    /// `mosquitto_pub` as `identity`, left running (e.g. to watch it wait for an answer).
    fn spawn_pub(&self, identity: &str, v: Mqtt, client_id: &str, extra: &[&str]) -> MqttClient {
        MqttClient::spawn(
            "mosquitto_pub",
            &self.client_args(identity, v, client_id, extra),
        )
    }

    /// `mosquitto_pub` as `identity`, run to its end (bounded; killed at the limit).
    fn run_pub(&self, identity: &str, v: Mqtt, client_id: &str, extra: &[&str]) -> MqttClient {
        let mut p = self.spawn_pub(identity, v, client_id, extra);
        p.wait_exit(STARTUP);
        p
    }

    /// Publish one QoS 1 message as the button (MQTT 3.1.1) and insist that it was acknowledged.
    fn publish(&mut self, client_id: &str, topic: &str, message: &str) {
        let mut p = self.spawn_pub(
            "button",
            Mqtt::V311,
            client_id,
            &["-q", "1", "-t", topic, "-m", message],
        );
        let st = p.wait_exit(STARTUP);
        if !(st.is_some_and(|s| s.success()) && p.count("received PUBACK") > 0) {
            panic!(
                "fixture: mosquitto_pub {topic} {message:?} was not acknowledged ({st:?})\n{}",
                self.show(&[&p])
            );
        }
    }

    /// Publish a payload of its own to `topic` and return the messages `sub` received before it.
    /// A message the broker delivers to `sub` in order before the sentinel's is in this list.
    fn sentinel(&mut self, sub: &MqttClient, topic: &str) -> Vec<String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let token = format!("sentinel-{n}");
        self.publish(&format!("sentinel-pub-{n}"), topic, &token);
        match sub.messages_before(&token, QUICK) {
            Some(before) => before,
            None => panic!(
                "the subscriber never received the sentinel {token:?} on {topic} \
                 (its connection is gone or the broker stopped delivering)\n{}",
                self.show(&[sub])
            ),
        }
    }

    /// The first trace serve printed (the session ended) of a session with this client id for
    /// which `pred` holds; None after [`QUICK`].
    fn session(&mut self, client_id: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.serve.wait_for_trace(QUICK, |t| {
            connect_client_id(t).as_deref() == Some(client_id) && pred(t)
        })
    }

    /// The clients' output and serve's, for assertion messages.
    fn show(&mut self, clients: &[&MqttClient]) -> String {
        let mut s: Vec<String> = clients.iter().map(|c| c.show()).collect();
        s.push(self.serve.show_now());
        s.join("\n")
    }
}

/// Whether a message `q=… r=… t=TOPIC p=PAYLOAD` is on `topic` with `payload`.
fn is_message(m: &str, topic: &str, payload: &str) -> bool {
    m.ends_with(&format!(" t={topic} p={payload}"))
}

/// Wait (bounded by [`QUICK`]) until `client` has received `payload` on `topic`.
fn delivered(client: &MqttClient, topic: &str, payload: &str) -> bool {
    client.wait_until(QUICK, |lines| {
        lines.iter().any(|l| {
            l.strip_prefix(MESSAGE_PREFIX)
                .is_some_and(|m| is_message(m, topic, payload))
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Reading serve's traces (iotls-trace/2)
// ---------------------------------------------------------------------------------------------

/// Every MQTT packet `side` sent, in order.
fn packets<'a>(t: &'a Value, side: &str) -> Vec<&'a Value> {
    t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "app_data" && e["side"] == side)
        .flat_map(|e| e["mqtt"].as_array().into_iter().flatten())
        .collect()
}

/// The packet names `side` sent, in order.
fn packet_names(t: &Value, side: &str) -> Vec<String> {
    packets(t, side)
        .iter()
        .map(|p| p["packet"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The client id of the device's CONNECT.
fn connect_client_id(t: &Value) -> Option<String> {
    packets(t, "device")
        .iter()
        .find(|p| p["packet"] == "CONNECT")
        .and_then(|p| p["client_id"].as_str().map(str::to_string))
}

/// Whether the device subscribed to `filter` in this session.
fn subscribes_to(t: &Value, filter: &str) -> bool {
    packets(t, "device")
        .iter()
        .filter(|p| p["packet"] == "SUBSCRIBE")
        .any(|p| match p["filters"].as_array() {
            Some(f) => f.iter().any(|x| x == filter),
            None => p["topic"]
                .as_str()
                .is_some_and(|s| s.split(", ").any(|x| x == filter)),
        })
}

/// The causes of the session's `closed` events.
fn close_causes(t: &Value) -> Vec<String> {
    t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "closed")
        .map(|e| e["cause"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The bytes of a packet.
fn packet_bytes(p: &Value) -> Vec<u8> {
    iotls::trace::unhex(p["hex"].as_str().unwrap_or("")).expect("packet hex")
}

/// The broker's first CONNACK, as bytes.
fn connack_bytes(t: &Value) -> Option<Vec<u8>> {
    packets(t, "broker")
        .into_iter()
        .find(|p| p["packet"] == "CONNACK")
        .map(packet_bytes)
}

/// A Variable Byte Integer at `b[at..]`: (value, bytes used).
fn varint(b: &[u8], at: usize) -> Result<(usize, usize), String> {
    let mut v = 0usize;
    for i in 0..4 {
        let byte = *b.get(at + i).ok_or("variable byte integer cut short")?;
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("variable byte integer longer than 4 bytes".into())
}

/// A CONNACK's Session Present flag.
fn session_present(connack: &[u8]) -> Option<bool> {
    let (_, n) = varint(connack, 1).ok()?;
    connack.get(1 + n).map(|flags| flags & 1 == 1)
}

/// An MQTT 5 CONNACK's Maximum QoS: the property 0x24, or 2 when it is absent (MQTT 5 §3.2.2.3.4).
fn maximum_qos(connack: &[u8]) -> Result<u8, String> {
    let (_, n) = varint(connack, 1)?;
    let props_at = 1 + n + 2;
    let (len, m) = varint(connack, props_at)?;
    let mut at = props_at + m;
    let end = at + len;
    let u16_at = |i: usize| -> Result<usize, String> {
        Ok(usize::from(u16::from_be_bytes([
            *connack.get(i).ok_or("cut short")?,
            *connack.get(i + 1).ok_or("cut short")?,
        ])))
    };
    while at < end {
        let id = connack[at];
        at += 1;
        at += match id {
            0x24 => {
                return connack
                    .get(at)
                    .copied()
                    .ok_or("Maximum QoS cut short".into())
            }
            0x01 | 0x17 | 0x19 | 0x25 | 0x28 | 0x29 | 0x2a => 1,
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0b => varint(connack, at)?.1,
            0x03 | 0x08 | 0x12 | 0x15 | 0x1a | 0x1c | 0x1f | 0x09 | 0x16 => 2 + u16_at(at)?,
            0x26 => {
                let k = 2 + u16_at(at)?;
                k + 2 + u16_at(at + k)?
            }
            other => return Err(format!("unknown CONNACK property 0x{other:02x}")),
        };
    }
    Ok(2)
}

// ---------------------------------------------------------------------------------------------
// Raw MQTT over a TLS connection of the test's own
// ---------------------------------------------------------------------------------------------

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A mutual-TLS 1.2 connection to `addr` as the button (trusting `root.pem`, asking for
/// `localhost`), handshake completed.
fn raw_tls(dir: &Path, addr: &str) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for c in iotls::pki::load_certs(&dir.join("root.pem")).expect("root.pem") {
        roots.add(c).expect("trust root.pem");
    }
    let chain = iotls::pki::load_certs(&dir.join("button.pem")).expect("button.pem");
    let key = iotls::pki::load_key(&dir.join("button.key")).expect("button.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client identity");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("TLS client");
    let tcp = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(QUICK)).expect("read timeout");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .unwrap_or_else(|e| panic!("fixture: TLS handshake with iotls serve failed: {e}"));
    }
    s
}

/// How reading a packet ended, when it did not give one.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The broker closed the connection (close_notify, EOF or reset).
    Closed,
    /// Nothing came before the deadline.
    Deadline,
    Error(String),
}

/// Read bytes into `buf`, waiting at most until `deadline`.
fn read_some(s: &mut Tls, buf: &mut [u8], deadline: Instant) -> Result<usize, End> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::Deadline);
        }
        s.sock.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(buf) {
            Ok(0) => return Err(End::Closed),
            Ok(n) => return Ok(n),
            Err(e) => match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => continue,
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => return Err(End::Closed),
                _ => return Err(End::Error(e.to_string())),
            },
        }
    }
}

/// Read exactly `n` bytes, waiting at most until `deadline`.
fn read_exact(s: &mut Tls, n: usize, deadline: Instant) -> Result<Vec<u8>, End> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        got += read_some(s, &mut out[got..], deadline)?;
    }
    Ok(out)
}

/// Read one whole MQTT packet (fixed header included), waiting at most until `deadline`.
fn read_packet(s: &mut Tls, deadline: Instant) -> Result<Vec<u8>, End> {
    let mut p = read_exact(s, 1, deadline)?;
    let mut len = 0usize;
    for i in 0..4 {
        let b = read_exact(s, 1, deadline)?[0];
        p.push(b);
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    p.extend(read_exact(s, len, deadline)?);
    Ok(p)
}

/// A 3.1.1 CONNECT (protocol level 4) with these flags, keep-alive and client id.
fn connect_311(flags: u8, keep_alive: u16, client_id: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags];
    body.extend(keep_alive.to_be_bytes());
    body.extend((client_id.len() as u16).to_be_bytes());
    body.extend(client_id.as_bytes());
    let mut p = vec![0x10, body.len() as u8];
    p.extend(body);
    p
}

// ---------------------------------------------------------------------------------------------
// The fixtures work today: mosquitto's clients talk to iotls serve over mutual TLS 1.2
// ---------------------------------------------------------------------------------------------

fn round_trip(v: Mqtt, test: &str) {
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-round-trip");
    let sub = b.subscribed(v, "rt-sub", &["-q", "1", "-t", "rt/t"]);
    let mut p = b.run_pub(
        "button",
        v,
        "rt-pub",
        &["-q", "1", "-t", "rt/t", "-m", "hello"],
    );
    let got = delivered(&sub, "rt/t", "hello");
    let st = p.wait_exit(QUICK);
    let shown = b.show(&[&sub, &p]);
    assert!(
        st.is_some_and(|s| s.success()) && p.count("received PUBACK") == 1,
        "mosquitto_pub ({}) should connect over TLS 1.2, publish at QoS 1 and get its PUBACK \
         ({st:?})\n{shown}",
        v.arg()
    );
    assert!(
        got,
        "mosquitto_sub ({}) should receive `hello` on rt/t\n{shown}",
        v.arg()
    );
    let t = b
        .session("rt-pub", |_| true)
        .unwrap_or_else(|| panic!("serve printed no trace for rt-pub\n{shown}"));
    assert_eq!(t["tls"]["version"], "TLSv1.2", "{shown}");
    assert_eq!(
        packet_names(&t, "device"),
        ["CONNECT", "PUBLISH", "DISCONNECT"],
        "{shown}"
    );
}

/// Fixture check: mosquitto_sub and mosquitto_pub (MQTT 3.1.1) reach iotls serve over mutual
/// TLS 1.2 and a QoS 1 message goes round.
#[test]
fn fixture_mosquitto_clients_round_trip_through_serve_v311() {
    round_trip(
        Mqtt::V311,
        "fixture_mosquitto_clients_round_trip_through_serve_v311",
    );
}

/// Fixture check, on MQTT 5.
#[test]
fn fixture_mosquitto_clients_round_trip_through_serve_v5() {
    round_trip(
        Mqtt::V5,
        "fixture_mosquitto_clients_round_trip_through_serve_v5",
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Session takeover
// ---------------------------------------------------------------------------------------------

fn session_takeover(v: Mqtt, test: &str) {
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-takeover");
    let mut older = b.subscribed(v, "dup", &["-t", "take/a"]);
    let newer = b.subscribed(v, "dup", &["-t", "take/b"]);
    // The older connection's session ends when the broker closes it; its trace says why.
    let taken = b
        .serve
        .wait_for_trace(QUICK, |t| subscribes_to(t, "take/a"));
    if v == Mqtt::V5 && taken.is_some() {
        older.wait_for("Received DISCONNECT", QUIET);
    }
    // A 3.1.1 mosquitto_sub reconnects about a second after losing its connection, which would
    // take the session back from the newer one: stop it now (by PID).
    older.kill();
    let shown = b.show(&[&older, &newer]);
    assert!(
        newer.count("received CONNACK (0)") == 1,
        "the newer connection with client id `dup` should be accepted\n{shown}"
    );
    let t = taken.unwrap_or_else(|| {
        panic!(
            "the older connection with client id `dup` was still open {QUICK:?} after a newer \
             one connected with the same id: AWS IoT (and MQTT 3.1.1 §3.1.4) close the older \
             one\n{shown}"
        )
    });
    let causes = close_causes(&t);
    assert!(
        causes.iter().any(|c| c == "taken_over"),
        "the older session's trace should have a `closed` event with cause `taken_over`; \
         causes: {causes:?}\n{}\n{shown}",
        brief(&t)
    );
    if v == Mqtt::V5 {
        assert!(
            older.count("Received DISCONNECT (142)") == 1,
            "on MQTT 5 the older client should receive DISCONNECT 0x8E (142) Session taken \
             over before the connection closes\n{shown}"
        );
        let disconnects: Vec<u8> = packets(&t, "broker")
            .iter()
            .filter(|p| p["packet"] == "DISCONNECT")
            .filter_map(|p| p["reason_code"].as_u64().map(|c| c as u8))
            .collect();
        assert_eq!(
            disconnects,
            [0x8e],
            "serve's trace: the broker's DISCONNECT reason codes to the older client\n{shown}"
        );
    }
    // The newer connection is the one that stays, and is served.
    b.publish("take-pub", "take/b", "still-here");
    let served = delivered(&newer, "take/b", "still-here");
    assert!(
        served,
        "the newer connection should stay open and receive take/b\n{}",
        b.show(&[&older, &newer])
    );
}

/// A second MQTT 3.1.1 connection with the same client id takes the session over: the older
/// connection is closed, its trace says `taken_over`, and the newer one is served.
#[test]
fn session_takeover_closes_the_older_connection_v311() {
    session_takeover(
        Mqtt::V311,
        "session_takeover_closes_the_older_connection_v311",
    );
}

/// The same on MQTT 5: the older client is told why, DISCONNECT 0x8E Session taken over.
#[test]
fn session_takeover_closes_the_older_connection_v5() {
    session_takeover(Mqtt::V5, "session_takeover_closes_the_older_connection_v5");
}

// ---------------------------------------------------------------------------------------------
// 2. Last Will
// ---------------------------------------------------------------------------------------------

/// A device that dies (SIGKILL: no DISCONNECT) has its will published to the subscribers.
#[test]
fn last_will_is_published_when_the_device_dies() {
    let test = "last_will_is_published_when_the_device_dies";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-will-kill");
    let watcher = b.subscribed(Mqtt::V311, "will-watch", &["-q", "1", "-t", "wills/#"]);
    let mut device = b.subscribed(
        Mqtt::V311,
        "dev1",
        &[
            "-t",
            "dev1/cmd",
            "--will-topic",
            "wills/dev1",
            "--will-payload",
            "bye",
        ],
    );
    device.kill();
    let got = delivered(&watcher, "wills/dev1", "bye");
    let shown = b.show(&[&watcher, &device]);
    assert!(
        got,
        "dev1 was killed (no DISCONNECT): its will `bye` on wills/dev1 should reach the \
         subscriber on wills/# within {QUICK:?}\n{shown}"
    );
}

/// A device that says DISCONNECT has its will discarded (MQTT 3.1.1 §3.14.4).
#[test]
fn last_will_is_not_published_after_a_clean_disconnect() {
    let test = "last_will_is_not_published_after_a_clean_disconnect";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-will-clean");
    let watcher = b.subscribed(Mqtt::V311, "will-watch", &["-q", "1", "-t", "wills/#"]);
    let mut device = b.run_pub(
        "button",
        Mqtt::V311,
        "dev2",
        &[
            "-q",
            "1",
            "-t",
            "dev2/status",
            "-m",
            "fine",
            "--will-topic",
            "wills/dev2",
            "--will-payload",
            "bye",
        ],
    );
    let st = device.wait_exit(QUICK);
    // Its session has ended on the broker's side before the sentinel is sent.
    let ended = b.session("dev2", |_| true);
    let before = b.sentinel(&watcher, "wills/sentinel");
    let shown = b.show(&[&watcher, &device]);
    assert!(
        st.is_some_and(|s| s.success()) && device.count("sending DISCONNECT") == 1,
        "fixture: mosquitto_pub should publish and disconnect cleanly ({st:?})\n{shown}"
    );
    assert!(ended.is_some(), "serve printed no trace for dev2\n{shown}");
    assert!(
        !before.iter().any(|m| m.contains("p=bye")),
        "dev2 disconnected cleanly: its will must not be published; the subscriber got \
         {before:?}\n{shown}"
    );
}

fn will_on_a_forbidden_topic(v: Mqtt, test: &str) {
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-will-deny");
    // Control: the neighbour may connect with a will under allowed/.
    let control = b.run_pub(
        "neighbour",
        v,
        "will-ok",
        &[
            "-q",
            "1",
            "-t",
            "allowed/t",
            "-m",
            "hi",
            "--will-topic",
            "allowed/will",
            "--will-payload",
            "w",
        ],
    );
    let denied = b.run_pub(
        "neighbour",
        v,
        "will-deny",
        &[
            "-q",
            "1",
            "-t",
            "allowed/t",
            "-m",
            "hi",
            "--will-topic",
            "forbidden/x",
            "--will-payload",
            "w",
        ],
    );
    let t = b.session("will-deny", |_| true);
    let shown = b.show(&[&control, &denied]);
    assert!(
        control.count("received CONNACK (0)") == 1 && control.count("received PUBACK") == 1,
        "control: the neighbour with a will on allowed/will should be accepted and publish to \
         allowed/t\n{shown}"
    );
    assert_eq!(
        denied.count("received CONNACK (0)"),
        0,
        "a will on forbidden/x, which the neighbour's policy does not let it publish to, must \
         refuse the CONNECT\n{shown}"
    );
    assert_eq!(
        denied.count("sending PUBLISH"),
        0,
        "the refused client must not get as far as publishing\n{shown}"
    );
    if v == Mqtt::V5 {
        assert_eq!(
            denied.count("received CONNACK (135)"),
            1,
            "MQTT 5: the refusal is CONNACK 0x87 (135) Not authorized\n{shown}"
        );
    }
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for will-deny\n{shown}"));
    let denial = t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "policy" && e["action"] == "iot:Publish")
        .find(|e| {
            e["resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(":topic/forbidden/x"))
        });
    match denial {
        Some(e) => assert_ne!(
            e["decision"], "ALLOWED",
            "the will's iot:Publish on topic/forbidden/x must be denied\n{shown}"
        ),
        None => panic!(
            "serve's trace should hold the policy decision on the will: a denied iot:Publish \
             for topic/forbidden/x\n{}\n{shown}",
            brief(&t)
        ),
    }
    let codes: Vec<u64> = packets(&t, "broker")
        .iter()
        .filter(|p| p["packet"] == "CONNACK")
        .filter_map(|p| p["reason_code"].as_u64())
        .collect();
    match v {
        Mqtt::V5 => assert_eq!(codes, [0x87], "serve's trace: CONNACK codes\n{shown}"),
        Mqtt::V311 => assert!(
            codes.iter().all(|c| *c != 0),
            "serve's trace: the broker must not accept the CONNECT (CONNACK codes {codes:?})\n\
             {shown}"
        ),
    }
}

/// MQTT 3.1.1: a will on a topic the policy forbids refuses the CONNECT (connection closed or a
/// CONNACK refusal) and the trace holds the denied iot:Publish on the will topic.
#[test]
fn will_on_a_forbidden_topic_refuses_the_connect_v311() {
    will_on_a_forbidden_topic(
        Mqtt::V311,
        "will_on_a_forbidden_topic_refuses_the_connect_v311",
    );
}

/// MQTT 5: the refusal is CONNACK 0x87 Not authorized.
#[test]
fn will_on_a_forbidden_topic_refuses_the_connect_v5() {
    will_on_a_forbidden_topic(Mqtt::V5, "will_on_a_forbidden_topic_refuses_the_connect_v5");
}

// ---------------------------------------------------------------------------------------------
// 3. QoS 2 is not supported
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1: a QoS 2 PUBLISH gets neither PUBREC nor PUBACK, and is not delivered.
#[test]
fn qos2_publish_is_not_acknowledged_nor_delivered_v311() {
    let test = "qos2_publish_is_not_acknowledged_nor_delivered_v311";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-qos2-pub");
    let sub = b.subscribed(Mqtt::V311, "q2-sub", &["-q", "1", "-t", "q2/t"]);
    let mut p = b.spawn_pub(
        "button",
        Mqtt::V311,
        "q2-pub",
        &["-q", "2", "-t", "q2/t", "-m", "two"],
    );
    let sent = p.wait_for("sending PUBLISH", QUICK);
    let answered = p.wait_until(QUIET, |lines| {
        lines
            .iter()
            .any(|l| l.contains("received PUBREC") || l.contains("received PUBACK"))
    });
    // mosquitto_pub waits for an answer that does not come (or has lost its connection).
    p.kill();
    let t = b.session("q2-pub", |_| true);
    let before = b.sentinel(&sub, "q2/t");
    let shown = b.show(&[&sub, &p]);
    assert!(
        sent,
        "fixture: mosquitto_pub should send its QoS 2 PUBLISH\n{shown}"
    );
    assert!(
        !answered,
        "AWS IoT does not support QoS 2: a 3.1.1 QoS 2 PUBLISH gets no PUBREC (nor PUBACK)\n{shown}"
    );
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for q2-pub\n{shown}"));
    let acks: Vec<String> = packet_names(&t, "broker")
        .into_iter()
        .filter(|n| n == "PUBREC" || n == "PUBACK")
        .collect();
    assert!(
        acks.is_empty(),
        "serve's trace: the broker answered the QoS 2 PUBLISH with {acks:?}\n{shown}"
    );
    assert!(
        !before.iter().any(|m| m.contains("p=two")),
        "the QoS 2 message must not be delivered; the subscriber got {before:?}\n{shown}"
    );
}

/// MQTT 5: the CONNACK says Maximum QoS 1, and no QoS 2 message is accepted (mosquitto_pub
/// 2.0.11 then refuses to publish at QoS 2 itself).
#[test]
fn qos2_v5_connack_says_maximum_qos_1_and_no_qos2_is_accepted() {
    let test = "qos2_v5_connack_says_maximum_qos_1_and_no_qos2_is_accepted";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-qos2-v5");
    let sub = b.subscribed(Mqtt::V311, "q2v5-sub", &["-q", "1", "-t", "q2v5/t"]);
    let mut p = b.spawn_pub(
        "button",
        Mqtt::V5,
        "q2v5-pub",
        &["-q", "2", "-t", "q2v5/t", "-m", "two"],
    );
    // Either mosquitto_pub gives up by itself, or it waits for a PUBREC that must not come.
    let st = p.wait_exit(QUICK);
    let t = b.session("q2v5-pub", |_| true);
    let before = b.sentinel(&sub, "q2v5/t");
    let shown = b.show(&[&sub, &p]);
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for q2v5-pub\n{shown}"));
    let connack = connack_bytes(&t)
        .unwrap_or_else(|| panic!("serve's trace holds no CONNACK for q2v5-pub\n{shown}"));
    assert_eq!(
        maximum_qos(&connack),
        Ok(1),
        "the MQTT 5 CONNACK ({connack:02x?}) should carry Maximum QoS = 1 (property 0x24); \
         absent means 2\nmosquitto_pub exited {st:?}\n{shown}"
    );
    let pubrecs = packet_names(&t, "broker")
        .into_iter()
        .filter(|n| n == "PUBREC")
        .count();
    assert_eq!(
        pubrecs, 0,
        "serve's trace: the broker accepted a QoS 2 PUBLISH (PUBREC)\n{shown}"
    );
    assert!(
        !before.iter().any(|m| m.contains("p=two")),
        "no QoS 2 message may be accepted; the subscriber got {before:?}\n{shown}"
    );
}

/// MQTT 3.1.1: a SUBSCRIBE at QoS 2 gets no SUBACK (AWS IoT).
#[test]
fn qos2_subscribe_gets_no_suback_v311() {
    let test = "qos2_subscribe_gets_no_suback_v311";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-qos2-sub");
    let mut s = b.spawn_sub(Mqtt::V311, "q2s", &["-q", "2", "-t", "q2s/t"]);
    let sent = s.wait_for("sending SUBSCRIBE", QUICK);
    let acked = s.wait_for("received SUBACK", QUIET);
    s.kill();
    let t = b.session("q2s", |_| true);
    let shown = b.show(&[&s]);
    assert!(
        sent,
        "fixture: mosquitto_sub should send its SUBSCRIBE\n{shown}"
    );
    assert!(
        !acked,
        "AWS IoT does not support QoS 2: a 3.1.1 SUBSCRIBE at QoS 2 gets no SUBACK\n{shown}"
    );
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for q2s\n{shown}"));
    assert!(
        !packet_names(&t, "broker").iter().any(|n| n == "SUBACK"),
        "serve's trace: the broker sent a SUBACK\n{shown}"
    );
}

/// MQTT 5: a SUBSCRIBE at QoS 2 is granted QoS 1 (SUBACK reason code 1).
#[test]
fn qos2_subscribe_is_granted_qos1_v5() {
    let test = "qos2_subscribe_is_granted_qos1_v5";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-qos2-sub-v5");
    let mut s = b.subscribed(Mqtt::V5, "q2s5", &["-q", "2", "-t", "q2s/t"]);
    s.kill();
    let t = b.session("q2s5", |_| true);
    let shown = b.show(&[&s]);
    assert_eq!(
        s.count("Subscribed (mid: 1): 1"),
        1,
        "mosquitto_sub should be granted QoS 1 for its QoS 2 subscription\n{shown}"
    );
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for q2s5\n{shown}"));
    let codes: Vec<&Value> = packets(&t, "broker")
        .into_iter()
        .filter(|p| p["packet"] == "SUBACK")
        .collect();
    assert_eq!(codes.len(), 1, "one SUBACK\n{shown}");
    assert_eq!(
        codes[0]["reason_codes"],
        json!([1]),
        "serve's trace: SUBACK reason codes\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Retained messages
// ---------------------------------------------------------------------------------------------

/// A retained message reaches a later subscriber with the retain flag; an empty retained
/// payload clears it.
#[test]
fn retained_message_reaches_a_later_subscriber_and_an_empty_one_clears_it() {
    let test = "retained_message_reaches_a_later_subscriber_and_an_empty_one_clears_it";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-retained");
    let keep = b.run_pub(
        "button",
        Mqtt::V311,
        "r-pub",
        &["-r", "-q", "1", "-t", "r/t", "-m", "kept"],
    );
    let mut later = b.spawn_sub(Mqtt::V311, "r-sub1", &["-q", "1", "-t", "r/t", "-C", "1"]);
    let st = later.wait_exit(QUICK);
    let shown = b.show(&[&keep, &later]);
    assert_eq!(
        keep.count("received PUBACK"),
        1,
        "the retained publish should be acknowledged\n{shown}"
    );
    let msgs = later.messages();
    assert!(
        msgs.iter().any(|m| is_message(m, "r/t", "kept")),
        "a subscriber arriving after the retained publish should receive `kept` on r/t \
         (mosquitto_sub -C 1 exited {st:?})\n{shown}"
    );
    assert!(
        msgs.iter()
            .any(|m| is_message(m, "r/t", "kept") && m.contains(" r=1 ")),
        "the retained message should arrive with the retain flag set: {msgs:?}\n{shown}"
    );
    let clear = b.run_pub(
        "button",
        Mqtt::V311,
        "r-clear",
        &["-r", "-n", "-q", "1", "-t", "r/t"],
    );
    let after = b.subscribed(Mqtt::V311, "r-sub2", &["-q", "1", "-t", "r/t"]);
    let before = b.sentinel(&after, "r/t");
    let shown = b.show(&[&clear, &after]);
    assert_eq!(
        clear.count("received PUBACK"),
        1,
        "the empty retained publish should be acknowledged\n{shown}"
    );
    assert!(
        before.is_empty(),
        "an empty retained payload clears the retained message: a later subscriber should \
         get nothing before the sentinel, got {before:?}\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Unsubscribe
// ---------------------------------------------------------------------------------------------

fn unsubscribe(v: Mqtt, test: &str) {
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-unsubscribe");
    // mosquitto_sub subscribes to both filters, then unsubscribes from u/t.
    let s = b.spawn_sub(
        v,
        "u-sub",
        &["-q", "1", "-t", "u/t", "-t", "u/sentinel", "-U", "u/t"],
    );
    let unsubacked = s.wait_for("received UNSUBACK", QUICK);
    if !unsubacked {
        panic!(
            "UNSUBSCRIBE should be answered with UNSUBACK ({})\n{}",
            v.arg(),
            b.show(&[&s])
        );
    }
    b.publish("u-pub", "u/t", "gone");
    let before = b.sentinel(&s, "u/sentinel");
    let shown = b.show(&[&s]);
    assert_eq!(
        s.count("sending CONNECT"),
        1,
        "the connection should stay open after UNSUBSCRIBE (mosquitto_sub reconnected)\n{shown}"
    );
    assert!(
        !before.iter().any(|m| m.contains(" t=u/t ")),
        "after UNSUBACK, nothing on u/t may be delivered; got {before:?}\n{shown}"
    );
}

/// MQTT 3.1.1: UNSUBSCRIBE gets an UNSUBACK, the connection stays open, delivery stops.
#[test]
fn unsubscribe_gets_unsuback_and_stops_delivery_v311() {
    unsubscribe(
        Mqtt::V311,
        "unsubscribe_gets_unsuback_and_stops_delivery_v311",
    );
}

/// The same on MQTT 5.
#[test]
fn unsubscribe_gets_unsuback_and_stops_delivery_v5() {
    unsubscribe(Mqtt::V5, "unsubscribe_gets_unsuback_and_stops_delivery_v5");
}

// ---------------------------------------------------------------------------------------------
// 6. Persistent sessions
// ---------------------------------------------------------------------------------------------

/// Clean session off: the broker keeps the subscription while the client is away, queues the
/// QoS 1 message, delivers it when the client comes back (subscribing only to another topic),
/// and its CONNACK says session present.
#[test]
fn persistent_session_keeps_subscriptions_and_queues_qos1_while_away() {
    let test = "persistent_session_keeps_subscriptions_and_queues_qos1_while_away";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-persistent");
    // -E: exit (with DISCONNECT) once the subscription is acknowledged.
    let mut first = b.spawn_sub(Mqtt::V311, "p1", &["-c", "-q", "1", "-t", "p/t", "-E"]);
    let st = first.wait_exit(QUICK);
    let gone = b.session("p1", |t| subscribes_to(t, "p/t"));
    if !(st.is_some_and(|s| s.success()) && gone.is_some()) {
        panic!(
            "fixture: the first p1 should subscribe and disconnect cleanly ({st:?})\n{}",
            b.show(&[&first])
        );
    }
    b.publish("p-pub", "p/t", "while-away");
    let mut back = b.spawn_sub(
        Mqtt::V311,
        "p1",
        &["-c", "-q", "1", "-t", "p/dummy", "-C", "1"],
    );
    let got = delivered(&back, "p/t", "while-away");
    back.wait_exit(QUIET);
    let t = b.session("p1", |t| subscribes_to(t, "p/dummy"));
    let shown = b.show(&[&first, &back]);
    assert!(
        got,
        "p1 came back with clean session off: the QoS 1 message published to p/t while it was \
         away should be delivered, though it subscribed only to p/dummy this time\n{shown}"
    );
    let t = t.unwrap_or_else(|| panic!("serve printed no trace for p1's return\n{shown}"));
    let connack = connack_bytes(&t)
        .unwrap_or_else(|| panic!("serve's trace holds no CONNACK for p1's return\n{shown}"));
    assert_eq!(
        session_present(&connack),
        Some(true),
        "the CONNACK ({connack:02x?}) of p1's return should say session present\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. `$` topics
// ---------------------------------------------------------------------------------------------

/// `#` does not match a topic starting with `$` (MQTT 3.1.1 §4.7.2); `$aws/#` does.
#[test]
fn dollar_topics_are_matched_by_dollar_filters_only() {
    let test = "dollar_topics_are_matched_by_dollar_filters_only";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-dollar");
    let all = b.subscribed(Mqtt::V311, "d-all", &["-q", "1", "-t", "#"]);
    let aws = b.subscribed(Mqtt::V311, "d-aws", &["-q", "1", "-t", "$aws/#"]);
    b.publish("d-pub", "$aws/things/x", "shadow");
    let before = b.sentinel(&all, "sentinel/d");
    let got = delivered(&aws, "$aws/things/x", "shadow");
    let shown = b.show(&[&all, &aws]);
    assert!(
        got,
        "the subscriber on $aws/# should receive $aws/things/x\n{shown}"
    );
    assert!(
        !before.iter().any(|m| m.contains(" t=$")),
        "a subscriber on # must not receive topics starting with $ (MQTT 3.1.1 §4.7.2); got \
         {before:?}\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Delivery QoS
// ---------------------------------------------------------------------------------------------

/// A QoS 0 subscription receives a QoS 1 publication at QoS 0 (MQTT 3.1.1 §3.8.4).
#[test]
fn delivery_qos_is_the_minimum_of_published_and_granted() {
    let test = "delivery_qos_is_the_minimum_of_published_and_granted";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-qos-min");
    let s = b.subscribed(Mqtt::V311, "qm-sub", &["-q", "0", "-t", "qm/t"]);
    b.publish("qm-pub", "qm/t", "one");
    let got = delivered(&s, "qm/t", "one");
    let shown = b.show(&[&s]);
    assert!(got, "the QoS 0 subscriber should receive `one`\n{shown}");
    let msgs = s.messages();
    assert!(
        msgs.iter()
            .any(|m| is_message(m, "qm/t", "one") && m.starts_with("q=0 ")),
        "a QoS 1 publication to a QoS 0 subscription is delivered at QoS 0 (`-d`: q0); \
         got {msgs:?}\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Client-id rules
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1 §3.1.3.1: an empty client id with clean session off gets CONNACK return code 0x02
/// Identifier rejected, and the connection closes. mosquitto's clients refuse to send such a
/// CONNECT (`Error: Invalid id`), so the test writes it itself.
#[test]
fn empty_client_id_without_clean_session_is_rejected() {
    let mut b = Broker::start("mqttb-empty-id");
    let mut s = raw_tls(&b.dir, &b.serve.addr);
    // Flags 0x00: clean session off; keep-alive 60; client id "".
    let connect = connect_311(0x00, 60, "");
    assert_eq!(
        connect,
        [0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 60, 0, 0]
    );
    s.write_all(&connect).expect("write CONNECT");
    s.flush().expect("flush");
    let answer = read_packet(&mut s, Instant::now() + QUICK);
    let then = read_packet(&mut s, Instant::now() + QUICK);
    drop(s);
    // The session's trace, once serve has printed it.
    b.serve.wait_for_trace(QUICK, |_| true);
    let shown = b.show(&[]);
    assert_eq!(
        answer,
        Ok(vec![0x20, 0x02, 0x00, 0x02]),
        "CONNACK return code 0x02 Identifier rejected expected\n{shown}"
    );
    assert_eq!(
        then,
        Err(End::Closed),
        "after a refusing CONNACK the broker closes the connection\n{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Keep-alive
// ---------------------------------------------------------------------------------------------

/// A client that asked for keep-alive 20 s is not dropped after 12 s of silence (the broker
/// honours the keep-alive instead of a fixed idle limit).
#[test]
fn keep_alive_20_survives_12_s_of_silence() {
    let test = "keep_alive_20_survives_12_s_of_silence";
    if !mosquitto_clients(test) {
        return;
    }
    let mut b = Broker::start("mqttb-keepalive-20");
    let mut s = b.subscribed(Mqtt::V311, "ka20", &["-k", "20", "-q", "1", "-t", "ka/t"]);
    let silence = Duration::from_secs(12);
    let start = Instant::now();
    let mut dropped = None;
    while start.elapsed() < silence {
        // A session serve has ended, or mosquitto_sub reconnecting or exiting, is a drop.
        let ended = b
            .serve
            .wait_for_trace(Duration::from_millis(200), |t| {
                connect_client_id(t).as_deref() == Some("ka20")
            })
            .is_some();
        if ended || s.count("sending CONNECT") > 1 || s.exited().is_some() {
            dropped = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent_ping = s.count("sending PINGREQ");
    if dropped.is_none() {
        b.publish("ka-pub", "ka/t", "awake");
    }
    let got = dropped.is_none() && delivered(&s, "ka/t", "awake");
    let shown = b.show(&[&s]);
    assert_eq!(
        dropped, None,
        "keep-alive 20 s: the connection must survive 12 s of silence (1.5 × 20 = 30 s)\n{shown}"
    );
    assert_eq!(
        sent_ping, 0,
        "fixture: mosquitto_sub -k 20 should have stayed silent\n{shown}"
    );
    assert!(
        got,
        "after 12 s of silence the same connection should still be served\n{shown}"
    );
}

/// A client that asked for keep-alive 2 s and then says nothing is disconnected after about
/// 1.5 × 2 = 3 s (MQTT 3.1.1 §3.1.2.10). Raw bytes: a client library would send PINGREQ.
#[test]
fn keep_alive_2_silent_client_is_disconnected_after_about_3_s() {
    let mut b = Broker::start("mqttb-keepalive-2");
    let mut s = raw_tls(&b.dir, &b.serve.addr);
    let connect = connect_311(0x02, 2, "ka");
    assert_eq!(
        connect,
        [0x10, 0x0e, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 2, 0, 2, 0x6b, 0x61]
    );
    s.write_all(&connect).expect("write CONNECT");
    s.flush().expect("flush");
    let sent = Instant::now();
    let connack = read_packet(&mut s, sent + QUICK);
    let limit = Duration::from_millis(6500);
    let mut extra = Vec::new();
    let end = loop {
        match read_packet(&mut s, sent + limit) {
            Ok(p) => extra.push(p),
            Err(e) => break e,
        }
    };
    let after = sent.elapsed();
    drop(s);
    // The session's trace, once serve has printed it.
    b.serve.wait_for_trace(QUICK, |_| true);
    let shown = b.show(&[]);
    assert_eq!(
        connack,
        Ok(vec![0x20, 0x02, 0x00, 0x00]),
        "the CONNACK (accepted) should come first\n{shown}"
    );
    assert_eq!(
        end,
        End::Closed,
        "a client silent for 1.5 × its keep-alive of 2 s should be disconnected; the \
         connection was still open {after:?} after CONNECT (packets after CONNACK: \
         {extra:02x?})\n{shown}"
    );
    assert!(
        after >= Duration::from_millis(2500) && after <= Duration::from_secs(6),
        "keep-alive 2 s: the broker should close about 3 s (1.5 × 2) after the last packet, \
         between 2.5 s and 6 s; it closed after {after:?}\n{shown}"
    );
}
