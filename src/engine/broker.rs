//! The broker: rustls server (TLS 1.2 only, client certificate required), MQTT 3.1.1, and the
//! authorization of every action, observable like AWS IoT's: an unauthorized CONNECT, PUBLISH or
//! SUBSCRIBE closes the connection; a denied Receive drops the message.

use super::authz::{Connection, MqttAction, Verdict};
use super::device::{finished_verified, handshake_failure, handshake_words, CLOSE_GRACE};
use super::mqtt_io::{read_msg, write_msg, Msg, ReadError, Version, NOT_AUTHORIZED};
use super::observe::{drain, ObservedClientVerifier, Recorder, RecordingKeyLog, Tap, TapMode};
use super::scenario::BrokerSpec;
use super::EngineError;
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
use tokio::sync::mpsc;

/// How long the broker waits for the next packet before giving up on a silent client.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running broker's shared state: who is subscribed to what.
#[derive(Default, Debug)]
struct Subscriptions {
    next_id: u64,
    /// connection id → (filters, delivery channel)
    subs: HashMap<u64, (Vec<String>, mpsc::UnboundedSender<Delivery>)>,
}

/// A message on its way to subscribers.
#[derive(Clone, Debug)]
struct Delivery {
    topic: String,
    payload: Vec<u8>,
    qos: u8,
}

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
    spec: BrokerSpec,
    listener: Arc<TcpListener>,
    subs: Arc<Mutex<Subscriptions>>,
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Broker {
    /// Bind to `addr` (port 0 picks a free port).
    pub async fn bind(spec: BrokerSpec, addr: SocketAddr) -> Result<Broker, EngineError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Listen { addr, source })?;
        Ok(Broker {
            spec,
            listener: Arc::new(listener),
            subs: Arc::default(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The TLS configuration for one connection, observed into `rec`.
    pub fn tls_config(spec: &BrokerSpec, rec: &Recorder) -> Result<Arc<ServerConfig>, EngineError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for r in &spec.client_roots {
            roots
                .add(r.clone())
                .map_err(|e| EngineError::tls("broker trust anchor rejected", e))?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| EngineError::tls("broker client verifier", e))?;
        let verifier = ObservedClientVerifier {
            inner,
            roots: spec.client_roots.clone().into(),
            known_cas: spec.known_cas.clone().into(),
            rec: rec.clone(),
        };
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| EngineError::tls("broker TLS config", e))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(spec.identity.chain.clone(), spec.identity.key.clone_key())
            .map_err(|e| EngineError::tls("broker certificate and key", e))?;
        cfg.key_log = Arc::new(RecordingKeyLog {
            rec: rec.clone(),
            side: Side::Broker,
        });
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(cfg))
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

    /// Wait for the next TCP connection.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), EngineError> {
        self.listener.accept().await.map_err(EngineError::Accept)
    }

    /// Serve one accepted connection to its end.
    pub async fn serve_tcp(&self, tcp: TcpStream, peer: SocketAddr, rec: Recorder, tap: bool) {
        let mode = if tap { TapMode::Both } else { TapMode::Off };
        self.serve_tcp_mode(tcp, peer, rec, mode).await
    }

    /// [`Self::serve_tcp`], choosing which bytes the broker's tap records.
    pub async fn serve_tcp_mode(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        rec: Recorder,
        tap: TapMode,
    ) {
        if tap == TapMode::Both {
            // The device is not iotls's own: the broker records the connection.
            rec.event(
                Phase::Connect,
                Side::Device,
                EventKind::Tcp {
                    device_addr: peer.to_string(),
                    broker_addr: self.local_addr().to_string(),
                },
            );
        }
        let stream = Tap::new(tcp, Side::Broker, rec.clone(), tap);
        self.serve_stream(stream, peer, rec, tap == TapMode::Both)
            .await;
    }

    async fn serve_stream<S>(&self, stream: S, peer: SocketAddr, rec: Recorder, drain_after: bool)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let cfg = match Self::tls_config(&self.spec, &rec) {
            Ok(c) => c,
            Err(e) => {
                rec.event(
                    Phase::Connect,
                    Side::Broker,
                    EventKind::Error {
                        stage: Stage::BrokerSetup,
                        message: e.to_string(),
                        failure: None,
                    },
                );
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let mut tls = match tokio::time::timeout(IDLE_TIMEOUT, acceptor.accept(stream)).await {
            Err(_) => {
                rec.event(
                    Phase::Hello,
                    Side::Broker,
                    EventKind::Error {
                        stage: Stage::TlsHandshake,
                        message: format!(
                            "the device stopped answering during the handshake ({} s)",
                            IDLE_TIMEOUT.as_secs()
                        ),
                        failure: Some(Failure {
                            side: Some(Side::Device),
                            ..Failure::new(FailureCode::Timeout)
                        }),
                    },
                );
                return;
            }
            Ok(Err(e)) => {
                rec.event(
                    Phase::Close,
                    Side::Broker,
                    EventKind::Closed {
                        by: Some(Side::Broker),
                        cause: CloseCause::HandshakeFailed,
                        reason: format!(
                            "the handshake failed on the broker: {}",
                            handshake_words(&e)
                        ),
                        failure: Some(handshake_failure(&e, Side::Device)),
                    },
                );
                return;
            }
            Ok(Ok(t)) => t,
        };
        // rustls finished the handshake: the broker has verified the device's Finished.
        rec.event(
            Phase::Finished,
            Side::Broker,
            finished_verified(Side::Broker),
        );
        let cert_der = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            Some(c) => c.to_vec(),
            None => return,
        };
        // 1. Registry: is this certificate known and ACTIVE?
        let v = self.spec.authorizer.admit(&cert_der);
        if !self.enforce(&rec, v, DENY_V4) {
            let _ = tls.shutdown().await;
            if drain_after {
                drain(&mut tls, CLOSE_GRACE).await;
            }
            rec.event(
                Phase::Close,
                Side::Broker,
                EventKind::Closed {
                    by: Some(Side::Broker),
                    cause: CloseCause::Refused,
                    reason: "the certificate is not active in the registry: connection closed"
                        .into(),
                    failure: None,
                },
            );
            return;
        }
        let mut conn = Connection {
            cert_der,
            client_id: String::new(),
            source_ip: peer.ip(),
            connect_attrs: Vec::new(),
            last_will_topic: None,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let my_id = {
            let mut s = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            s.next_id += 1;
            s.next_id
        };
        let mut buf = BytesMut::new();
        let mut version: Option<Version> = None;
        let mut connected = false;
        let mut next_pkid: u16 = 0;
        let end = loop {
            let msg = tokio::select! {
                m = read_msg(&mut tls, &mut buf, &mut version, IDLE_TIMEOUT) => m,
                Some(d) = rx.recv() => {
                    // iot:Receive is checked for the receiving connection, at delivery.
                    let v = self.spec.authorizer.authorize(&conn, MqttAction::Receive, &d.topic);
                    if !self.enforce(&rec, v, Enforcement::NotDelivered) {
                        continue;
                    }
                    let qos = d.qos.min(1);
                    next_pkid = if qos == 0 { 0 } else { next_pkid % u16::MAX + 1 };
                    let publish = Msg::Publish { topic: d.topic, payload: d.payload, qos, retain: false, pkid: next_pkid };
                    if write_msg(&mut tls, version.unwrap_or(Version::V4), &publish).await.is_err() {
                        break (CloseCause::WriteFailed, "the device went away during a delivery".to_string());
                    }
                    continue;
                }
            };
            let msg = match msg {
                Ok(m) => m,
                Err(ReadError::Closed) => {
                    break (
                        CloseCause::PeerClosed,
                        "the device closed the connection".into(),
                    )
                }
                Err(ReadError::Timeout) => {
                    break (
                        CloseCause::Timeout,
                        format!("the device sent nothing for {} s", IDLE_TIMEOUT.as_secs()),
                    )
                }
                Err(ReadError::Protocol(e)) => {
                    break (
                        CloseCause::ProtocolViolation,
                        format!("the device sent bytes that are not valid MQTT: {e}"),
                    )
                }
                Err(e) => {
                    break (
                        CloseCause::PeerClosed,
                        format!("the connection failed: {e}"),
                    )
                }
            };
            let v = version.unwrap_or(Version::V4);
            let v5 = v == Version::V5;
            match msg {
                Msg::Connect {
                    client_id,
                    clean_session,
                    will_topic,
                } if !connected => {
                    conn.client_id = client_id.clone();
                    conn.connect_attrs = connect_attributes(clean_session, will_topic.is_some());
                    conn.last_will_topic = will_topic;
                    let verdict =
                        self.spec
                            .authorizer
                            .authorize(&conn, MqttAction::Connect, &client_id);
                    let denied = if v5 { DENY_CONNECT_V5 } else { DENY_V4 };
                    if !self.enforce(&rec, verdict, denied) {
                        if v5 {
                            let _ = write_msg(
                                &mut tls,
                                v,
                                &Msg::ConnAck {
                                    code: NOT_AUTHORIZED,
                                },
                            )
                            .await;
                        }
                        break (
                            CloseCause::Refused,
                            format!("CONNECT as {client_id:?} not authorized: connection closed"),
                        );
                    }
                    connected = true;
                    if write_msg(&mut tls, v, &Msg::ConnAck { code: 0 })
                        .await
                        .is_err()
                    {
                        break (
                            CloseCause::WriteFailed,
                            "the device went away: writing failed".to_string(),
                        );
                    }
                }
                Msg::Connect { .. } => break (
                    CloseCause::ProtocolViolation,
                    "a second CONNECT on one connection is a protocol violation: connection closed"
                        .into(),
                ),
                _ if !connected => {
                    break (
                        CloseCause::ProtocolViolation,
                        "the first packet was not CONNECT: connection closed".into(),
                    )
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
                        ok = self.enforce(&rec, verdict, denied);
                    }
                    if ok {
                        let verdict =
                            self.spec
                                .authorizer
                                .authorize(&conn, MqttAction::Publish, &topic);
                        ok = self.enforce(&rec, verdict, denied);
                    }
                    match (ok, v5, qos) {
                        (true, _, _) => {
                            self.deliver(Delivery { topic, payload, qos });
                            if qos > 0 && write_msg(&mut tls, v, &Msg::PubAck { pkid, code: 0 }).await.is_err() {
                                break (CloseCause::WriteFailed, "the device went away: writing failed".to_string());
                            }
                        }
                        (false, true, 1..) => {
                            if write_msg(&mut tls, v, &Msg::PubAck { pkid, code: NOT_AUTHORIZED }).await.is_err() {
                                break (CloseCause::WriteFailed, "the device went away: writing failed".to_string());
                            }
                        }
                        (false, true, 0) => {
                            let _ = write_msg(&mut tls, v, &Msg::Disconnect { code: NOT_AUTHORIZED }).await;
                            break (CloseCause::Refused, format!("PUBLISH (QoS 0) to {topic:?} not authorized: DISCONNECT 0x87, nothing delivered"));
                        }
                        (false, false, _) => {
                            break (CloseCause::Refused, format!("PUBLISH to {topic:?} not authorized: connection closed, nothing delivered"))
                        }
                    }
                }
                Msg::Subscribe { pkid, filters } => {
                    let denied = if v5 { DENY_SUBSCRIBE_V5 } else { DENY_V4 };
                    let mut codes = Vec::new();
                    let mut granted = Vec::new();
                    let mut refused = None;
                    for (filter, qos) in &filters {
                        let verdict =
                            self.spec
                                .authorizer
                                .authorize(&conn, MqttAction::Subscribe, filter);
                        if self.enforce(&rec, verdict, denied) {
                            codes.push((*qos).min(1));
                            granted.push(filter.clone());
                        } else {
                            codes.push(NOT_AUTHORIZED);
                            refused.get_or_insert(filter.clone());
                            if !v5 {
                                break;
                            }
                        }
                    }
                    if let (Some(f), false) = (&refused, v5) {
                        break (
                            CloseCause::Refused,
                            format!("SUBSCRIBE to {f:?} not authorized: connection closed"),
                        );
                    }
                    {
                        let mut st = self.subs.lock().unwrap_or_else(|p| p.into_inner());
                        let e = st
                            .subs
                            .entry(my_id)
                            .or_insert_with(|| (Vec::new(), tx.clone()));
                        e.0.extend(granted);
                    }
                    if write_msg(&mut tls, v, &Msg::SubAck { pkid, codes })
                        .await
                        .is_err()
                    {
                        break (
                            CloseCause::WriteFailed,
                            "the device went away: writing failed".to_string(),
                        );
                    }
                }
                Msg::PingReq => {
                    if write_msg(&mut tls, v, &Msg::PingResp).await.is_err() {
                        break (
                            CloseCause::WriteFailed,
                            "the device went away: writing failed".to_string(),
                        );
                    }
                }
                Msg::Disconnect { .. } => {
                    break (CloseCause::Done, "the device sent DISCONNECT".into())
                }
                Msg::PubAck { .. } => {}
                other => {
                    break (
                        CloseCause::ProtocolViolation,
                        format!("unsupported packet {other:?}: connection closed"),
                    )
                }
            }
        };
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subs
            .remove(&my_id);
        let _ = tls.shutdown().await;
        if drain_after {
            drain(&mut tls, CLOSE_GRACE).await;
        }
        let (cause, reason) = end;
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

    /// Record the decision; true if the action may go ahead.
    fn enforce(&self, rec: &Recorder, mut v: Verdict, denied: Enforcement) -> bool {
        if let EventKind::Policy(p) = &mut v.event {
            p.enforcement = if v.allowed {
                Enforcement::CarriedOut
            } else {
                denied
            };
        }
        rec.event(Phase::Policy, Side::Broker, v.event);
        v.allowed
    }

    fn deliver(&self, d: Delivery) {
        let st = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        for (filters, tx) in st.subs.values() {
            if filters.iter().any(|f| filter_matches(f, &d.topic)) {
                let _ = tx.send(d.clone());
            }
        }
    }
}
