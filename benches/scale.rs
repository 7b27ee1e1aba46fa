//! Scale: N concurrent mutual-TLS MQTT sessions held against `iotls serve` and against Mosquitto,
//! same PKI, same load generator, same run. Prints sessions/s, p50/p99 latency and the broker's
//! memory per held connection, and the ratios iotls / Mosquitto.
//!
//! Run: `cargo bench --bench scale` (1,000 and 10,000 sessions, each broker twice), or
//! `cargo bench --bench scale -- 1000 10000 --runs 2 --inflight 64 --brokers iotls,mosquitto`.
//!
//! The load generator (this process) runs on one thread pinned to core 1; each broker is started
//! with `taskset -c 0`. Each session: TCP connect, TLS 1.2 handshake with the device's ECDSA P-256
//! certificate (no resumption), CONNECT with its own client id, CONNACK, PUBLISH QoS 1, PUBACK;
//! then the connection is held until every session of the run has been established and the
//! broker's RSS measured. At most `--inflight` sessions are being established at once (the rest
//! are held or not started), so the listen backlog never overflows. The generator shows it is
//! not the bottleneck by its CPU time over the run's wall time (on its own core), and by a run at
//! half the in-flight concurrency (`--half`). The generator pins the broker's certificate instead
//! of walking its chain and does not check the ServerKeyExchange signature (`PinnedBroker`), so its
//! handshakes cost it less than the brokers' cost them; `--verify-broker` restores rustls's full
//! verification.
//!
//! Identities: one device certificate (the default PKI's button, CN `pizza-button-1`) and distinct
//! client ids `pizza-button-1-<i>`. `iotls serve` runs in CA mode with `policies/room-device.json`,
//! which allows `iot:Connect` on `client/${iot:Certificate.Subject.CommonName}-*` and publishing
//! under `room/${iot:Certificate.Subject.SerialNumber}/`. Mosquitto gets `require_certificate
//! true` with the same root and broker identity, and no ACL (`user root`, as tests/common/peers.rs:
//! run as root, Mosquitto would otherwise drop to its own user and could not read the key).
//!
//! The open-file limit is raised to its hard limit inside this process (the brokers inherit it).

use iotls::mqtt::{frame, Connect, Packet, Publish, QoS, Version, MAX_PACKET};
use iotls::pki::{DefaultPki, BUTTON_SERIAL, BUTTON_THING, ROOM_POLICY_JSON};
use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Iotls,
    /// Another build of `iotls serve` (`IOTLS_SCALE_BASELINE=path`), to measure a change in the
    /// same run.
    Baseline,
    Mosquitto,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Iotls => "iotls serve",
            Kind::Baseline => "baseline",
            Kind::Mosquitto => "mosquitto",
        }
    }
}

/// A broker process of this benchmark's own, stopped by its PID when dropped.
struct BrokerProc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BrokerProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(addr: SocketAddr) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}");
}

fn start_iotls(dir: &Path, bin: &str) -> BrokerProc {
    let mut child = Command::new("taskset")
        .args(["-c", "0", bin, "serve", "--port", "0", "--pki"])
        .arg(dir.join("pki"))
        .arg("--ca-mode")
        .arg("--policy")
        .arg(dir.join("room-policy.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskset and iotls serve start");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("iotls serve ended before listening");
        }
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            break a.parse().expect("an address");
        }
    };
    // Keep reading stderr so the broker never blocks on it.
    std::thread::spawn(move || for _ in err.lines() {});
    BrokerProc { child, addr }
}

fn start_mosquitto(dir: &Path) -> BrokerProc {
    let port = free_port();
    let pki = dir.join("pki");
    let conf = dir.join(format!("mosquitto-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "user root\nper_listener_settings false\nallow_anonymous true\nmax_connections -1\n\
             persistence false\nlog_dest file {log}\nlog_type error\n\
             listener {port} 127.0.0.1\ncafile {root}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\ntls_version tlsv1.2\n",
            log = dir.join("mosquitto.log").display(),
            root = pki.join("root.pem").display(),
            cert = pki.join("broker.pem").display(),
            key = pki.join("broker.key").display(),
        ),
    )
    .expect("write mosquitto.conf");
    let child = Command::new("taskset")
        .args(["-c", "0", "mosquitto", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("taskset and mosquitto start");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let b = BrokerProc { child, addr };
    wait_listening(addr);
    b
}

/// Pins this process to `core` and raises its open-file limit to the hard limit.
fn pin_and_raise(core: usize) {
    // SAFETY: plain system calls on this process with initialised arguments.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("warning: could not pin the generator to core {core}");
        }
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        eprintln!("open-file limit: {} (hard {})", lim.rlim_cur, lim.rlim_max);
    }
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(u.ru_utime) + tv(u.ru_stime)
    }
}

/// The generator's check of the broker, cheap so the generator is not what limits the rate: the
/// broker's certificate must be byte for byte the one the benchmark issued it (a pin, as a device
/// with a pinned certificate does), and the ServerKeyExchange signature is not checked. That
/// saves the generator three ECDSA verifications per session (the chain walk's two and the
/// signature), the most expensive part of a client handshake. The broker's side — what is
/// measured — is unchanged: it verifies the device's chain and CertificateVerify in full.
/// `--verify-broker` puts rustls's full WebPKI verification back.
#[derive(Debug)]
struct PinnedBroker {
    leaf: Vec<u8>,
    schemes: Vec<rustls::SignatureScheme>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedBroker {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.3 is not used here".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.schemes.clone()
    }
}

fn client_config(pki: &DefaultPki, verify_broker: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2");
    let builder = if verify_broker {
        let mut roots = RootCertStore::empty();
        roots.add(pki.root.clone()).expect("root");
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedBroker {
                leaf: pki.broker.chain[0].to_vec(),
                schemes: provider
                    .signature_verification_algorithms
                    .supported_schemes(),
            }))
    };
    let mut cfg = builder
        .with_client_auth_cert(pki.button.chain.clone(), pki.button.key.clone_key())
        .expect("device identity");
    cfg.resumption = Resumption::disabled();
    Arc::new(cfg)
}

/// Reads until one whole MQTT packet is buffered; returns it.
async fn read_packet(tls: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> Result<Packet, String> {
    loop {
        if let Some(n) = frame(buf, MAX_PACKET).map_err(|e| e.to_string())? {
            let bytes: Vec<u8> = buf.drain(..n).collect();
            return Packet::decode(&bytes, Version::V4)
                .map(|(p, _)| p)
                .map_err(|e| e.to_string());
        }
        let mut chunk = [0u8; 256];
        let n = tls.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the broker closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One session: connect, handshake, CONNECT/CONNACK, PUBLISH QoS 1/PUBACK. Returns the open
/// connection and how long it took.
async fn session(
    i: usize,
    addr: SocketAddr,
    connector: TlsConnector,
) -> Result<(TlsStream<TcpStream>, Duration), String> {
    let t0 = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("a name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut out = Vec::new();
    Packet::Connect(Connect {
        client_id: format!("{BUTTON_THING}-{i}"),
        keep_alive: 0,
        clean_start: true,
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    })
    .encode(Version::V4, &mut out)
    .map_err(|e| format!("{e:?}"))?;
    tls.write_all(&out).await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match read_packet(&mut tls, &mut buf).await? {
        Packet::ConnAck(c) if c.code == 0 => {}
        other => return Err(format!("CONNECT refused: {other:?}")),
    }
    out.clear();
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: format!("room/{BUTTON_SERIAL}/load"),
        pkid: 1,
        properties: Default::default(),
        payload: b"hello".to_vec(),
    })
    .encode(Version::V4, &mut out)
    .map_err(|e| format!("{e:?}"))?;
    tls.write_all(&out).await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    match read_packet(&mut tls, &mut buf).await? {
        Packet::PubAck(_) => {}
        other => return Err(format!("PUBLISH not acknowledged: {other:?}")),
    }
    Ok((tls, t0.elapsed()))
}

struct Outcome {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    wall: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
    held: Vec<TlsStream<TcpStream>>,
}

/// Opens `n` sessions, at most `inflight` being established at once, and keeps them open.
async fn generate(n: usize, inflight: usize, addr: SocketAddr, connector: TlsConnector) -> Outcome {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    let mut o = Outcome {
        ok: 0,
        failed: 0,
        first_error: None,
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        latencies: Vec::with_capacity(n),
        held: Vec::with_capacity(n),
    };
    while next < n || !set.is_empty() {
        while next < n && set.len() < inflight {
            let c = connector.clone();
            let i = next;
            set.spawn(async move {
                tokio::time::timeout(SESSION_TIMEOUT, session(i, addr, c))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()))
            });
            next += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok((tls, took)))) => {
                o.ok += 1;
                o.latencies.push(took);
                o.held.push(tls);
            }
            Some(Ok(Err(e))) => {
                o.failed += 1;
                o.first_error.get_or_insert(e);
            }
            Some(Err(e)) => {
                o.failed += 1;
                o.first_error.get_or_insert(e.to_string());
            }
            None => {}
        }
    }
    o.wall = t0.elapsed();
    o.cpu = cpu_time() - cpu0;
    o.latencies.sort();
    o
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[derive(Clone, Debug)]
struct Row {
    kind: Kind,
    n: usize,
    inflight: usize,
    ok: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    idle_kib: u64,
    held_kib: u64,
    per_conn_kib: f64,
    gen_cpu: f64,
}

fn run_one(
    rt: &tokio::runtime::Runtime,
    kind: Kind,
    n: usize,
    inflight: usize,
    dir: &Path,
    connector: &TlsConnector,
) -> Row {
    let broker = match kind {
        Kind::Iotls => start_iotls(dir, env!("CARGO_BIN_EXE_iotls")),
        Kind::Baseline => start_iotls(
            dir,
            &std::env::var("IOTLS_SCALE_BASELINE").expect("IOTLS_SCALE_BASELINE"),
        ),
        Kind::Mosquitto => start_mosquitto(dir),
    };
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(broker.pid());
    let o = rt.block_on(generate(n, inflight, broker.addr, connector.clone()));
    // Let the broker settle (its last writes, deferred frees) before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let held = rss_kib(broker.pid());
    // IOTLS_SCALE_HOLD=S keeps the sessions open S seconds longer, to profile a held broker.
    if let Some(s) = std::env::var("IOTLS_SCALE_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        eprintln!(
            "  holding {held_n} sessions for {s} s",
            held_n = o.held.len()
        );
        std::thread::sleep(Duration::from_secs(s));
    }
    if let Some(e) = &o.first_error {
        eprintln!(
            "  {}: {} of {n} sessions failed; first: {e}",
            kind.name(),
            o.failed
        );
    }
    let held_n = o.held.len();
    // The broker goes first (killed by its PID while every session is held), so it never spends
    // time on 10,000 sessions ending at once.
    drop(broker);
    drop(o.held);
    Row {
        kind,
        n,
        inflight,
        ok: o.ok,
        rate: o.ok as f64 / o.wall.as_secs_f64(),
        p50_ms: percentile(&o.latencies, 0.50),
        p99_ms: percentile(&o.latencies, 0.99),
        idle_kib: idle,
        held_kib: held,
        per_conn_kib: held.saturating_sub(idle) as f64 / held_n.max(1) as f64,
        gen_cpu: o.cpu.as_secs_f64() / o.wall.as_secs_f64(),
    }
}

fn print_row(r: &Row) {
    println!(
        "| {:<11} | {:>6} | {:>4} | {:>6} | {:>8.0} | {:>7.1} | {:>7.1} | {:>8} | {:>8} | {:>7.1} | {:>5.0} % |",
        r.kind.name(),
        r.n,
        r.inflight,
        r.ok,
        r.rate,
        r.p50_ms,
        r.p99_ms,
        r.idle_kib,
        r.held_kib,
        r.per_conn_kib,
        r.gen_cpu * 100.0
    );
}

fn main() {
    let mut sizes = Vec::new();
    let mut runs = 2;
    let mut inflight = 64;
    let mut half = false;
    let mut verify_broker = false;
    let mut kinds = vec![Kind::Iotls, Kind::Mosquitto];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--inflight" => {
                inflight = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--inflight N")
            }
            "--half" => half = true,
            "--verify-broker" => verify_broker = true,
            "--brokers" => {
                kinds = args
                    .next()
                    .expect("--brokers iotls,mosquitto")
                    .split(',')
                    .map(|b| match b {
                        "iotls" => Kind::Iotls,
                        "mosquitto" => Kind::Mosquitto,
                        "baseline" => Kind::Baseline,
                        other => panic!("unknown broker {other}"),
                    })
                    .collect()
            }
            "--bench" => {}
            n => sizes.push(n.parse::<usize>().expect("a number of sessions")),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1000, 10_000];
    }
    for program in ["taskset", "mosquitto"] {
        if kinds.contains(&Kind::Mosquitto) || program == "taskset" {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                found,
                "{program} is not installed (apt-get install mosquitto util-linux)"
            );
        }
    }
    pin_and_raise(1);
    let dir = std::env::temp_dir().join(format!("iotls-test-scale-{}", std::process::id()));
    let pki = DefaultPki::generate().expect("PKI");
    pki.write(&dir.join("pki"), false).expect("write the PKI");
    std::fs::write(dir.join("room-policy.json"), ROOM_POLICY_JSON).expect("policy");
    let connector = TlsConnector::from(client_config(&pki, verify_broker));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    println!(
        "| broker      | N      | inf. | ok     | sess/s   | p50 ms  | p99 ms  | idle KiB | held KiB | KiB/conn | gen CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<Row> = Vec::new();
    for &n in &sizes {
        for _ in 0..runs {
            for &k in &kinds {
                let r = run_one(&rt, k, n, inflight, &dir, &connector);
                print_row(&r);
                rows.push(r);
                if half {
                    let r = run_one(&rt, k, n, (inflight / 2).max(1), &dir, &connector);
                    print_row(&r);
                    rows.push(r);
                }
            }
        }
    }
    println!();
    for &n in &sizes {
        let pick = |k: Kind| -> Vec<&Row> {
            rows.iter()
                .filter(|r| r.kind == k && r.n == n && r.inflight == inflight)
                .collect()
        };
        for other in [Kind::Mosquitto, Kind::Baseline] {
            let (a, b) = (pick(Kind::Iotls), pick(other));
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                println!(
                    "N={n} run {}: iotls / {}  sessions/s {:.2}  p50 {:.2}  p99 {:.2}  KiB/conn {:.2}",
                    i + 1,
                    other.name(),
                    x.rate / y.rate,
                    x.p50_ms / y.p50_ms,
                    x.p99_ms / y.p99_ms,
                    x.per_conn_kib / y.per_conn_kib
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
