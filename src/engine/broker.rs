//! The broker: rustls server (TLS 1.2 only, client certificate required), MQTT 3.1.1, and the
//! authorization of every action, observable like AWS IoT's: an unauthorized CONNECT, PUBLISH or
//! SUBSCRIBE closes the connection; a denied Receive drops the message.

use super::authz::{Connection, Explained, MqttAction, Verdict};
use super::device::{finished_verified, handshake_failure, handshake_words, CLOSE_GRACE};
use super::mqtt_io::{read_msg, write_msg, Msg, ReadError, Version, NOT_AUTHORIZED};
use super::observe::{
    drain, ObservedClientVerifier, Recorder, RecordingKeyLog, Scoped, Sink, Tap, TapMode,
};
use super::scenario::BrokerSpec;
use super::sessions::{Delivery, Outbox, State, ToConn};
use super::EngineError;
use crate::narrate::echo;
use crate::trace::{CloseCause, Enforcement, EventKind, Failure, FailureCode, Phase, Side, Stage};
use bytes::BytesMut;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// How long the broker waits for a TLS handshake and for the CONNECT that follows it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A keep-alive of 0 turns the keep-alive mechanism off (MQTT 3.1.1 §3.1.2.10).
const NO_KEEP_ALIVE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a delivery may wait for the device to read before it is disconnected as a slow
/// consumer.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// AWS IoT's longest client id, bytes.
const MAX_CLIENT_ID: usize = 128;

/// MQTT 5 reason codes the broker sends.
const SESSION_TAKEN_OVER: u8 = 0x8e;
const QOS_NOT_SUPPORTED: u8 = 0x9b;
const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
const PACKET_ID_NOT_FOUND: u8 = 0x92;
const DISCONNECT_WITH_WILL: u8 = 0x04;

/// What the broker does when an action is denied — like AWS IoT: on MQTT 3.1.1 the connection
/// closes (3.1.1's PUBACK and SUBACK have no failure code for a publish, and AWS IoT answers a
/// denied CONNECT by closing too); MQTT 5 says 0x87 Not authorized in the acknowledgement.
const DENY_V4: Enforcement = Enforcement::ConnectionClosed;
const DENY_CONNECT_V5: Enforcement = Enforcement::ConnackRefused;
const DENY_PUBLISH_V5: Enforcement = Enforcement::PubackRefused;
const DENY_PUBLISH_V5_QOS0: Enforcement = Enforcement::Disconnected;
const DENY_SUBSCRIBE_V5: Enforcement = Enforcement::SubackRefused;

/// `iot:ConnectAttributes` of a CONNECT, as AWS IoT names them.
fn connect_attributes(clean_session: bool, will: bool) -> Vec<String> {
    let mut v = Vec::new();
    if !clean_session {
        v.push("PersistentConnect".to_string());
    }
    if will {
        v.push("LastWill".to_string());
    }
    v
}

/// A broker bound to a local port.
#[derive(Clone)]
pub struct Broker {
    /// Shared by every connection's clone of the broker (a clone per connection used to copy the
    /// broker's identity, roots and CAs into each held connection).
    spec: Arc<BrokerSpec>,
    /// The parts of the TLS configuration every connection shares (or why they could not be
    /// built: each connection then records it as a broker set-up error).
    tls: Arc<Result<SharedTls, String>>,
    listener: Arc<TcpListener>,
    state: Arc<Mutex<State>>,
    /// The handshake and CONNECT deadline ([`IDLE_TIMEOUT`] unless `serve --deadline` or a live
    /// tour says otherwise).
    deadline: Duration,
    /// How long a delivery may wait for the device to read ([`WRITE_DEADLINE`], or the same
    /// `--deadline`).
    write_deadline: Duration,
    /// A live tour's gate: time the device's packet waits there is not the device's silence.
    gate: Option<super::live::Gate>,
}

/// What every connection's TLS configuration shares, built once per broker: the provider, the
/// WebPKI verifier with its root store, the certificate and its loaded signing key, the ALPN
/// list. Only what records into a connection's [`Recorder`] (the verifier wrapper, the key log)
/// is made per connection — building the rest per connection cost a private-key load and a root
/// store per session, and kept a copy of each alive as long as the connection (BENCHMARKS.md).
pub struct SharedTls {
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    roots: Arc<[rustls_pki_types::CertificateDer<'static>]>,
    known_cas: Arc<[rustls_pki_types::CertificateDer<'static>]>,
    cert: Arc<dyn rustls::server::ResolvesServerCert>,
    alpn: Vec<Vec<u8>>,
    /// One configuration for every `serve` connection: its hooks record into the connection whose
    /// handshake is being polled ([`Sink::Current`], [`super::observe::Scoped`]).
    scoped: Option<Arc<ServerConfig>>,
}

impl SharedTls {
    pub fn new(spec: &BrokerSpec) -> Result<SharedTls, EngineError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for r in &spec.client_roots {
            roots
                .add(r.clone())
                .map_err(|e| EngineError::tls("broker trust anchor rejected", e))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| EngineError::tls("broker client verifier", e))?;
        let key = rustls::sign::CertifiedKey::from_der(
            spec.identity.chain.clone(),
            spec.identity.key.clone_key(),
            &provider,
        )
        .map_err(|e| EngineError::tls("broker certificate and key", e))?;
        let mut shared = SharedTls {
            provider,
            verifier,
            roots: spec.client_roots.clone().into(),
            known_cas: spec.known_cas.clone().into(),
            cert: Arc::new(rustls::sign::SingleCertAndKey::from(key)),
            alpn: spec.alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
            scoped: None,
        };
        shared.scoped = Some(shared.build(Sink::Current)?);
        Ok(shared)
    }

    /// The TLS configuration for one connection, observed into `rec`.
    pub fn config(&self, rec: &Recorder) -> Result<Arc<ServerConfig>, EngineError> {
        self.build(Sink::Own(rec.clone()))
    }

    /// The configuration every `serve` connection shares; its handshake must be polled inside a
    /// [`super::observe::Scoped`] with the connection's recording.
    pub fn scoped(&self) -> Option<Arc<ServerConfig>> {
        self.scoped.clone()
    }

    fn build(&self, rec: Sink) -> Result<Arc<ServerConfig>, EngineError> {
        let verifier = ObservedClientVerifier {
            inner: self.verifier.clone(),
            roots: self.roots.clone(),
            known_cas: self.known_cas.clone(),
            rec: rec.clone(),
        };
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| EngineError::tls("broker TLS config", e))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(self.cert.clone());
        cfg.key_log = Arc::new(RecordingKeyLog {
            rec,
            side: Side::Broker,
        });
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(cfg))
    }
}

/// The sentence of a connection's end (`words/closes.toml`), filled with `values`.
fn close(id: &str, values: &[(&str, &str)]) -> String {
    crate::narrate::words::close(id, values)
}

/// Why reading stopped, as the end of a connection (`what`: what the broker was waiting for).
fn ended(e: ReadError, what: &str) -> (CloseCause, String) {
    match e {
        ReadError::Closed => (CloseCause::PeerClosed, close("peer_closed", &[])),
        ReadError::Timeout => (CloseCause::Timeout, close("silent", &[("what", what)])),
        ReadError::Protocol(e) => (
            CloseCause::ProtocolViolation,
            close("not_mqtt", &[("error", &e.to_string())]),
        ),
        ReadError::Io(e) => (
            CloseCause::PeerClosed,
            close("connection_failed", &[("error", &e.to_string())]),
        ),
    }
}

impl Broker {
    /// Bind to `addr` (port 0 picks a free port).
    pub async fn bind(spec: BrokerSpec, addr: SocketAddr) -> Result<Broker, EngineError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Listen { addr, source })?;
        let tls = SharedTls::new(&spec).map_err(|e| e.to_string());
        Ok(Broker {
            tls: Arc::new(tls),
            spec: Arc::new(spec),
            listener: Arc::new(listener),
            state: Arc::default(),
            deadline: IDLE_TIMEOUT,
            write_deadline: WRITE_DEADLINE,
            gate: None,
        })
    }

    /// Sets the deadlines for the TLS handshake, for the whole CONNECT and for a delivery to a
    /// slow reader (`serve --deadline`).
    pub fn set_deadline(&mut self, d: Duration) {
        self.deadline = d;
        self.write_deadline = d;
    }

    /// The same broker with deadlines for a human pace (a live tour, where each flight waits for
    /// the learner): `d` for the handshake, the CONNECT and a delivery. The keep-alive rule stays.
    pub fn with_deadline(mut self, d: Duration) -> Broker {
        self.deadline = d;
        self.write_deadline = d;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Accept one connection and serve it to the end, recording into `rec`. With `tap`, the
    /// broker's transport is tapped too (used when the device is not iotls's own).
    pub async fn serve_one(&self, rec: Recorder, tap: bool) -> Result<(), EngineError> {
        let mode = if tap { TapMode::Both } else { TapMode::Off };
        self.serve_one_mode(rec, mode).await
    }

    /// [`Self::serve_one`], choosing which bytes the broker's tap records.
    pub async fn serve_one_mode(&self, rec: Recorder, tap: TapMode) -> Result<(), EngineError> {
        let (tcp, peer) = self.accept().await?;
        self.serve_tcp_mode(tcp, peer, rec, tap).await;
        Ok(())
    }

    /// Accept one connection and serve it with the broker's writes held at `gate` (a live tour):
    /// its tap records what it writes, when the gate lets it go.
    pub async fn serve_one_gated(
        &self,
        rec: Recorder,
        gate: super::live::Gate,
    ) -> Result<(), EngineError> {
        let (tcp, peer) = self.accept().await?;
        let tap = Tap::new(tcp, Side::Broker, rec.clone(), TapMode::WritesOnly);
        let stream = super::live::Gated::new(tap, Side::Broker, gate.clone());
        let gated = Broker {
            gate: Some(gate),
            ..self.clone()
        };
        gated.serve_stream(stream, peer, rec, false).await;
        Ok(())
    }

    /// Read the client's next packet within its keep-alive (`silence`). In a live tour, a
    /// keep-alive that ran out while the learner held the device's packet at the gate is not the
    /// device's silence: the broker waits on.
    async fn read_within_keep_alive<S>(
        &self,
        tls: &mut S,
        buf: &mut BytesMut,
        version: &mut Option<Version>,
        silence: Duration,
    ) -> Result<Msg, ReadError>
    where
        S: tokio::io::AsyncRead + Unpin,
    {
        loop {
            match read_msg(tls, buf, version, silence).await {
                Err(ReadError::Timeout)
                    if self.gate.as_ref().is_some_and(|g| g.holds(Side::Device)) => {}
                other => return other,
            }
        }
    }

    /// Wait for the next TCP connection.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), EngineError> {
        self.listener.accept().await.map_err(EngineError::Accept)
    }

    /// Serve one accepted connection to its end (`iotls serve`). Its TLS runs on rustls's
    /// unbuffered API ([`super::unbuffered`]): a held, idle connection keeps no TLS buffers.
    pub async fn serve_tcp(&self, tcp: TcpStream, peer: SocketAddr, rec: Recorder, tap: bool) {
        let mode = if tap { TapMode::Both } else { TapMode::Off };
        let stream = self.tapped(tcp, peer, &rec, mode);
        self.serve_stream_unbuffered(stream, peer, rec, tap).await
    }

    /// [`Self::serve_tcp`], choosing which bytes the broker's tap records (TLS by tokio-rustls).
    pub async fn serve_tcp_mode(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        rec: Recorder,
        tap: TapMode,
    ) {
        let stream = self.tapped(tcp, peer, &rec, tap);
        self.serve_stream(stream, peer, rec, tap == TapMode::Both)
            .await;
    }

    /// The accepted connection, tapped; with both directions tapped (the device is not iotls's
    /// own), the broker records the connection itself.
    fn tapped(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        rec: &Recorder,
        tap: TapMode,
    ) -> Tap<TcpStream> {
        if tap == TapMode::Both {
            rec.event(
                Phase::Connect,
                Side::Device,
                EventKind::Tcp {
                    device_addr: peer.to_string(),
                    broker_addr: self.local_addr().to_string(),
                },
            );
        }
        Tap::new(tcp, Side::Broker, rec.clone(), tap)
    }

    /// One connection's TLS configuration, observed into `rec`; `None` (recorded as a broker
    /// set-up error) if it cannot be built.
    fn connection_config(&self, rec: &Recorder, scoped: bool) -> Option<Arc<ServerConfig>> {
        let cfg = match self.tls.as_ref() {
            Ok(shared) if scoped => shared
                .scoped()
                .ok_or_else(|| "the shared TLS configuration is missing".to_string()),
            Ok(shared) => shared.config(rec).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        match cfg {
            Ok(c) => Some(c),
            Err(e) => {
                rec.event(
                    Phase::Connect,
                    Side::Broker,
                    EventKind::Error {
                        stage: Stage::BrokerSetup,
                        message: e,
                        failure: None,
                    },
                );
                None
            }
        }
    }

    // Each session future below is made in a block of its own: the TLS stream moves into it, and
    // a binding still in scope at the `.await` would keep a second copy of the stream in the
    // caller's future for as long as the connection is held. The stream (≈ 1.3 KB) and the
    // connection's request context go into the session boxed: an async fn keeps its arguments
    // twice in its future (as it received them and as its body's bindings), so a large argument
    // costs every held connection its size again.

    /// A connection on tokio-rustls (the tour, witnesses, live tours).
    async fn serve_stream<S>(&self, stream: S, peer: SocketAddr, rec: Recorder, drain_after: bool)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let session = {
            let Some(cfg) = self.connection_config(&rec, false) else {
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            // Boxed: the handshake's state is needed only until it ends, not while the
            // connection is held.
            let accept = Box::pin(acceptor.accept(stream).into_fallible());
            let Some(tls) = self.handshake(accept, &rec).await else {
                return;
            };
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let cert_der = cert.map(|c| c.to_vec());
            self.serve_session(Box::new(tls), cert_der, peer, rec, drain_after)
        };
        session.await
    }

    /// A connection on rustls's unbuffered API (`iotls serve`).
    async fn serve_stream_unbuffered<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        rec: Recorder,
        drain_after: bool,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let session = {
            let Some(cfg) = self.connection_config(&rec, true) else {
                return;
            };
            // The shared configuration's verifier and key log record into this connection's
            // recording while its handshake is polled.
            let accept = Scoped {
                rec: rec.clone(),
                fut: Box::pin(super::unbuffered::accept(cfg, stream)),
            };
            let Some(tls) = self.handshake(accept, &rec).await else {
                return;
            };
            let cert = tls.conn().peer_certificates().and_then(|c| c.first());
            let cert_der = cert.map(|c| c.to_vec());
            self.serve_session(Box::new(tls), cert_der, peer, rec, drain_after)
        };
        session.await
    }

    /// The TLS handshake within the deadline; `None` (recorded) if it failed or timed out.
    async fn handshake<F, T, S>(&self, accept: F, rec: &Recorder) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, (std::io::Error, S)>>,
        S: tokio::io::AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.deadline, accept).await {
            Err(_) => {
                rec.event(
                    Phase::Hello,
                    Side::Broker,
                    EventKind::Error {
                        stage: Stage::TlsHandshake,
                        message: close(
                            "handshake_silent",
                            &[("secs", &self.deadline.as_secs_f32().to_string())],
                        ),
                        failure: Some(Box::new(Failure {
                            side: Some(Side::Device),
                            ..Failure::new(FailureCode::Timeout)
                        })),
                    },
                );
                None
            }
            Ok(Err((e, mut io))) => {
                // The alert rustls wrote leaves before the connection closes (a live tour holds
                // it until the learner steps).
                let _ = tokio::time::timeout(self.deadline, io.flush()).await;
                drop(io);
                rec.event(
                    Phase::Close,
                    Side::Broker,
                    EventKind::Closed {
                        by: Some(Side::Broker),
                        cause: CloseCause::HandshakeFailed,
                        reason: close("handshake_failed", &[("error", &handshake_words(&e))]),
                        failure: Some(Box::new(handshake_failure(&e, Side::Device))),
                    },
                );
                None
            }
            Ok(Ok(t)) => Some(t),
        }
    }

    /// A connection after its handshake: the registry, MQTT to its end, close_notify.
    async fn serve_session<T>(
        &self,
        mut tls: T,
        cert_der: Option<Vec<u8>>,
        peer: SocketAddr,
        rec: Recorder,
        drain_after: bool,
    ) where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        // rustls finished the handshake: the broker has verified the device's Finished.
        rec.event(
            Phase::Finished,
            Side::Broker,
            finished_verified(Side::Broker),
        );
        let Some(cert_der) = cert_der else {
            return;
        };
        // 1. Registry: is this certificate known and ACTIVE? Then 2. MQTT, to its end.
        let v = self.spec.authorizer.admit(&cert_der);
        let (cause, reason) = if self.enforce(&rec, v, DENY_V4) {
            let conn = Box::new(Connection {
                cert_der,
                client_id: String::new(),
                source_ip: peer.ip(),
                connect_attrs: Vec::new(),
                last_will_topic: None,
                basis: Default::default(),
            });
            self.mqtt(&mut tls, conn, &rec).await
        } else {
            (CloseCause::Refused, close("registry_refused", &[]))
        };
        // Bounded: a peer that stopped reading (a slow consumer) would otherwise hold the
        // close_notify, and this connection, forever.
        let _ = tokio::time::timeout(CLOSE_GRACE, tls.shutdown()).await;
        if drain_after {
            drain(&mut tls, CLOSE_GRACE).await;
        }
        rec.event(
            Phase::Close,
            Side::Broker,
            EventKind::Closed {
                by: Some(Side::Broker),
                cause,
                reason,
                failure: None,
            },
        );
    }

    /// The MQTT part of a connection, to its end: CONNECT, then packets until the client leaves,
    /// breaks a rule, is refused or is taken over. Returns why it ended.
    async fn mqtt<S>(
        &self,
        tls: &mut S,
        mut conn: Box<Connection>,
        rec: &Recorder,
    ) -> (CloseCause, String)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::new();
        let mut version: Option<Version> = None;
        // 1. CONNECT, whole, within the broker's deadline (a client that dribbles a byte at a
        // time does not extend it: the deadline is for the packet, not for each read).
        let connect = tokio::time::timeout(
            self.deadline,
            read_msg(tls, &mut buf, &mut version, self.deadline),
        )
        .await
        .unwrap_or(Err(ReadError::Timeout));
        let (client_id, clean, keep_alive, will) = match connect {
            Ok(Msg::Connect {
                client_id,
                clean_session,
                keep_alive,
                will,
            }) => (client_id, clean_session, keep_alive, will),
            Ok(_) => {
                return (
                    CloseCause::ProtocolViolation,
                    close("first_not_connect", &[]),
                )
            }
            Err(e) => return ended(e, "CONNECT"),
        };
        let v = version.unwrap_or(Version::V4);
        let v5 = v == Version::V5;
        // Client identifier rules: MQTT 3.1.1 §3.1.3.1 (an empty id needs a clean session) and
        // AWS IoT's 128-byte limit. MQTT 3.1.1 says 0x02 "identifier rejected", MQTT 5 0x85.
        let id_problem = if client_id.is_empty() && !clean {
            Some("an empty client id needs clean session 1")
        } else if client_id.len() > MAX_CLIENT_ID {
            Some("the client id is longer than 128 bytes")
        } else {
            None
        };
        if let Some(why) = id_problem {
            let code = if v5 { 0x85 } else { 0x02 };
            let _ = write_msg(
                tls,
                v,
                &Msg::ConnAck {
                    code,
                    session_present: false,
                },
            )
            .await;
            return (
                CloseCause::ProtocolViolation,
                format!("{why}: CONNACK 0x{code:02x}"),
            );
        }
        let client_id = if client_id.is_empty() {
            format!("iotls-{}", self.state().next_conn())
        } else {
            client_id
        };
        conn.client_id = client_id.clone();
        conn.connect_attrs = connect_attributes(clean, will.is_some());
        conn.last_will_topic = will.as_ref().map(|w| w.topic.clone());
        let denied = if v5 { DENY_CONNECT_V5 } else { DENY_V4 };
        let refuse = |what: String| (CloseCause::Refused, close("refused", &[("request", &what)]));
        // 2. iot:Connect, and the will: AWS IoT checks iot:Publish (and iot:RetainPublish for a
        // retained will) on the will topic at CONNECT and refuses the connection if denied.
        let mut allowed = self.enforce(
            rec,
            self.spec
                .authorizer
                .authorize(&conn, MqttAction::Connect, &client_id),
            denied,
        );
        if let (true, Some(w)) = (allowed, &will) {
            if w.retain {
                allowed = self.enforce(
                    rec,
                    self.spec
                        .authorizer
                        .authorize(&conn, MqttAction::RetainPublish, &w.topic),
                    denied,
                );
            }
            if allowed {
                allowed = self.enforce(
                    rec,
                    self.spec
                        .authorizer
                        .authorize(&conn, MqttAction::Publish, &w.topic),
                    denied,
                );
            }
        }
        if !allowed {
            if v5 {
                let _ = write_msg(
                    tls,
                    v,
                    &Msg::ConnAck {
                        code: NOT_AUTHORIZED,
                        session_present: false,
                    },
                )
                .await;
            }
            return refuse(format!("CONNECT as {:?}", echo(&client_id)));
        }
        // 3. The session: take over, resume or start.
        let (tx, mut rx) = super::sessions::channel();
        let outbox = Outbox::new(tx);
        let attached = self.state().attach(&client_id, clean, &outbox);
        if write_msg(
            tls,
            v,
            &Msg::ConnAck {
                code: 0,
                session_present: attached.session_present,
            },
        )
        .await
        .is_err()
        {
            self.state()
                .detach(&client_id, attached.conn, attached.queued);
            return (CloseCause::WriteFailed, close("gone_before_connack", &[]));
        }
        for d in attached.queued {
            outbox.deliver(d);
        }
        // Keep-alive: the client must send something within 1.5 × its keep-alive (MQTT 3.1.1
        // §3.1.2.10); 0 means no limit.
        let silence = match keep_alive {
            0 => NO_KEEP_ALIVE,
            k => Duration::from_millis(u64::from(k) * 1500),
        };
        let mut granted: Vec<(String, u8)> = Vec::new();
        let mut inflight: HashMap<u16, Delivery> = HashMap::new();
        let mut next_pkid: u16 = 0;
        // A DISCONNECT with reason 0x00 ends the session without its will (MQTT 5 §3.14.2.1: 0x04
        // asks for the will).
        let mut graceful = false;
        let end = loop {
            let msg = tokio::select! {
                m = self.read_within_keep_alive(tls, &mut buf, &mut version, silence) => m,
                Some(c) = rx.recv() => match c {
                    ToConn::TakenOver => {
                        if v5 {
                            let _ = write_msg(tls, v, &Msg::Disconnect { code: SESSION_TAKEN_OVER }).await;
                        }
                        break (CloseCause::TakenOver, close("taken_over", &[("client_id", &format!("{:?}", echo(&client_id)))]));
                    }
                    ToConn::Deliver(d) => {
                        let d = *d;
                        outbox.took(&d);
                        // iot:Receive is checked for the receiving connection, at delivery.
                        let verdict = self.spec.authorizer.authorize(&conn, MqttAction::Receive, &d.topic);
                        if !self.enforce(rec, verdict, Enforcement::NotDelivered) {
                            continue;
                        }
                        let pkid = if d.qos == 0 { 0 } else {
                            next_pkid = next_pkid % u16::MAX + 1;
                            inflight.insert(next_pkid, d.clone());
                            next_pkid
                        };
                        let publish = Msg::Publish { topic: d.topic, payload: d.payload, qos: d.qos, retain: d.retain, pkid };
                        // A subscriber that stops reading would block this write forever: past the
                        // deadline it is disconnected (a slow consumer).
                        match tokio::time::timeout(self.write_deadline, write_msg(tls, v, &publish)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break (CloseCause::WriteFailed, close("delivery_failed", &[])),
                            Err(_) => break (CloseCause::Timeout, close("slow_consumer", &[("secs", &self.write_deadline.as_secs_f32().to_string())])),
                        }
                        continue;
                    }
                }
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => break ended(e, "a packet"),
            };
            let write_failed = || (CloseCause::WriteFailed, close("write_failed", &[]));
            match msg {
                Msg::Connect { .. } => {
                    break (CloseCause::ProtocolViolation, close("second_connect", &[]))
                }
                Msg::Publish { qos: 2, topic, .. } => {
                    // AWS IoT does not support QoS 2: on MQTT 3.1.1 it sends no PUBACK (nor
                    // PUBREC) and does not deliver; MQTT 5 clients were told Maximum QoS 1 in
                    // CONNACK, so a QoS 2 PUBLISH is a protocol error (MQTT 5 §3.3.1.2): 0x9B.
                    if v5 {
                        let _ = write_msg(
                            tls,
                            v,
                            &Msg::Disconnect {
                                code: QOS_NOT_SUPPORTED,
                            },
                        )
                        .await;
                        break (
                            CloseCause::ProtocolViolation,
                            close("qos2", &[("topic", &format!("{:?}", echo(&topic)))]),
                        );
                    }
                }
                Msg::Publish {
                    topic,
                    payload,
                    qos,
                    retain,
                    pkid,
                } => {
                    let denied = match (v5, qos) {
                        (false, _) => DENY_V4,
                        (true, 0) => DENY_PUBLISH_V5_QOS0,
                        (true, _) => DENY_PUBLISH_V5,
                    };
                    // A retained message needs iot:RetainPublish as well as iot:Publish.
                    let mut ok = true;
                    if retain {
                        let verdict = self.spec.authorizer.authorize(
                            &conn,
                            MqttAction::RetainPublish,
                            &topic,
                        );
                        ok = self.enforce(rec, verdict, denied);
                    }
                    if ok {
                        let verdict =
                            self.spec
                                .authorizer
                                .authorize(&conn, MqttAction::Publish, &topic);
                        ok = self.enforce(rec, verdict, denied);
                    }
                    match (ok, v5, qos) {
                        (true, _, _) => {
                            self.publish(&Delivery {
                                topic,
                                payload,
                                qos,
                                retain,
                            });
                            if qos > 0
                                && write_msg(tls, v, &Msg::PubAck { pkid, code: 0 })
                                    .await
                                    .is_err()
                            {
                                break write_failed();
                            }
                        }
                        (false, true, 1..) => {
                            if write_msg(
                                tls,
                                v,
                                &Msg::PubAck {
                                    pkid,
                                    code: NOT_AUTHORIZED,
                                },
                            )
                            .await
                            .is_err()
                            {
                                break write_failed();
                            }
                        }
                        (false, true, 0) => {
                            let _ = write_msg(
                                tls,
                                v,
                                &Msg::Disconnect {
                                    code: NOT_AUTHORIZED,
                                },
                            )
                            .await;
                            break refuse(format!("PUBLISH (QoS 0) to {:?}", echo(&topic)));
                        }
                        (false, false, _) => {
                            break refuse(format!("PUBLISH to {:?}", echo(&topic)))
                        }
                    }
                }
                Msg::Subscribe { pkid, filters } => {
                    // AWS IoT does not support QoS 2: on MQTT 3.1.1 it sends no SUBACK for such a
                    // SUBSCRIBE. MQTT 5 grants QoS 1 instead (a server may grant less, §3.9.3).
                    if !v5 && filters.iter().any(|(_, q)| *q >= 2) {
                        continue;
                    }
                    let denied = if v5 { DENY_SUBSCRIBE_V5 } else { DENY_V4 };
                    let mut codes = Vec::new();
                    let mut refused = None;
                    let mut new = Vec::new();
                    for (filter, q) in &filters {
                        let verdict =
                            self.spec
                                .authorizer
                                .authorize(&conn, MqttAction::Subscribe, filter);
                        if self.enforce(rec, verdict, denied) {
                            let g = (*q).min(1);
                            codes.push(g);
                            new.push((filter.clone(), g));
                        } else {
                            codes.push(NOT_AUTHORIZED);
                            refused.get_or_insert(filter.clone());
                            if !v5 {
                                break;
                            }
                        }
                    }
                    if let (Some(f), false) = (&refused, v5) {
                        break refuse(format!("SUBSCRIBE to {:?}", echo(f)));
                    }
                    let retained: Vec<Delivery> = {
                        let mut st = self.state();
                        new.iter()
                            .flat_map(|(f, g)| {
                                st.subscribe(&client_id, f, *g);
                                st.retained_for(f, *g)
                            })
                            .collect()
                    };
                    granted.extend(new);
                    if write_msg(tls, v, &Msg::SubAck { pkid, codes })
                        .await
                        .is_err()
                    {
                        break write_failed();
                    }
                    // Retained messages follow the SUBACK (MQTT 3.1.1 §3.3.1.3).
                    for d in retained {
                        outbox.deliver(d);
                    }
                }
                Msg::Unsubscribe { pkid, filters } => {
                    let codes = {
                        let mut st = self.state();
                        filters
                            .iter()
                            .map(|f| {
                                if st.unsubscribe(&client_id, f) {
                                    0x00
                                } else {
                                    NO_SUBSCRIPTION_EXISTED
                                }
                            })
                            .collect()
                    };
                    granted.retain(|(f, _)| !filters.contains(f));
                    if write_msg(tls, v, &Msg::UnsubAck { pkid, codes })
                        .await
                        .is_err()
                    {
                        break write_failed();
                    }
                }
                Msg::PubAck { pkid, .. } => {
                    inflight.remove(&pkid);
                }
                // The broker never starts a QoS 2 flow; a stray PUBREL still gets its PUBCOMP
                // (MQTT 5: 0x92 "Packet Identifier not found").
                Msg::PubRel { pkid } => {
                    if write_msg(
                        tls,
                        v,
                        &Msg::PubComp {
                            pkid,
                            code: PACKET_ID_NOT_FOUND,
                        },
                    )
                    .await
                    .is_err()
                    {
                        break write_failed();
                    }
                }
                Msg::PingReq => {
                    if write_msg(tls, v, &Msg::PingResp).await.is_err() {
                        break write_failed();
                    }
                }
                Msg::Disconnect { code } => {
                    graceful = code != DISCONNECT_WITH_WILL;
                    break (CloseCause::Done, close("disconnect", &[]));
                }
                other => {
                    break (
                        CloseCause::ProtocolViolation,
                        close("not_from_client", &[("packet", &format!("{other:?}"))]),
                    )
                }
            }
        };
        self.state()
            .detach(&client_id, attached.conn, inflight.into_values().collect());
        let end = match outbox.dropped() {
            0 => end,
            n => (
                end.0,
                format!(
                    "{} ({n} message(s) for it were dropped: it read too slowly)",
                    end.1
                ),
            ),
        };
        // The will: published when the connection ends without a DISCONNECT (MQTT 3.1.1
        // §3.1.2.5), delivered like any publication (iot:Receive is checked per subscriber).
        if let (false, Some(w)) = (graceful, will) {
            self.publish(&Delivery {
                topic: w.topic,
                payload: w.payload,
                qos: w.qos.min(1),
                retain: w.retain,
            });
        }
        end
    }

    /// Record the decision; true if the action may go ahead.
    fn enforce(&self, rec: &Recorder, v: Verdict, denied: Enforcement) -> bool {
        let enforcement = if v.allowed {
            Enforcement::CarriedOut
        } else {
            denied
        };
        match v.event {
            Explained::Now(mut kind) => {
                if let EventKind::Policy(p) = &mut kind {
                    p.enforcement = enforcement;
                }
                rec.event(Phase::Policy, Side::Broker, kind);
            }
            Explained::Policy(mut p) => {
                p.enforcement = enforcement;
                rec.policy(p);
            }
        }
        v.allowed
    }

    /// An authorized publication: kept if retained, sent to every matching subscription.
    fn publish(&self, d: &Delivery) {
        let mut st = self.state();
        if d.retain {
            st.retain(d);
        }
        st.route(d);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another connection's task panicked; the state is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
