//! The broker: rustls server (TLS 1.2 only, client certificate required), MQTT 3.1.1, and the
//! authorization of every action, observable like AWS IoT's: an unauthorized CONNECT, PUBLISH or
//! SUBSCRIBE closes the connection; a denied Receive drops the message.

use super::authz::{Connection, MqttAction, Verdict};
use super::mqtt_io::{read_packet, write_packet, ReadError};
use super::observe::{ObservedClientVerifier, Recorder, RecordingKeyLog, Tap};
use super::scenario::BrokerSpec;
use super::EngineError;
use crate::trace::{EventKind, Phase, Side};
use bytes::BytesMut;
use mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
};
use mqttbytes::QoS;
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
    subs: HashMap<u64, (Vec<String>, mpsc::UnboundedSender<Publish>)>,
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
            .map_err(|e| EngineError::Setup(format!("cannot listen on {addr}: {e}")))?;
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
                .map_err(|e| EngineError::Setup(format!("broker trust anchor rejected: {e}")))?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| EngineError::Setup(format!("broker client verifier: {e}")))?;
        let verifier = ObservedClientVerifier {
            inner,
            roots: spec.client_roots.clone(),
            rec: rec.clone(),
        };
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| EngineError::Setup(format!("broker TLS config: {e}")))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(spec.identity.chain.clone(), spec.identity.key.clone_key())
            .map_err(|e| EngineError::Setup(format!("broker certificate and key: {e}")))?;
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
        let (tcp, peer) = self.accept().await?;
        self.serve_tcp(tcp, peer, rec, tap).await;
        Ok(())
    }

    /// Wait for the next TCP connection.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), EngineError> {
        self.listener
            .accept()
            .await
            .map_err(|e| EngineError::Setup(format!("accept: {e}")))
    }

    /// Serve one accepted connection to its end.
    pub async fn serve_tcp(&self, tcp: TcpStream, peer: SocketAddr, rec: Recorder, tap: bool) {
        if tap {
            rec.event(
                Phase::Connect,
                Side::Device,
                EventKind::Tcp {
                    device_addr: peer.to_string(),
                    broker_addr: self.local_addr().to_string(),
                },
            );
            self.serve_stream(Tap::new(tcp, Side::Broker, rec.clone()), peer, rec)
                .await;
        } else {
            self.serve_stream(tcp, peer, rec).await;
        }
    }

    async fn serve_stream<S>(&self, stream: S, peer: SocketAddr, rec: Recorder)
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
                        stage: "broker set-up".into(),
                        message: e.to_string(),
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
                        stage: "TLS handshake".into(),
                        message: "the device stopped answering during the handshake (10 s)".into(),
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
                        reason: format!("handshake failed on the broker: {e}"),
                    },
                );
                return;
            }
            Ok(Ok(t)) => t,
        };
        let cert_der = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            Some(c) => c.to_vec(),
            None => return,
        };
        // 1. Registry: is this certificate known and ACTIVE?
        let v = self.spec.authorizer.admit(&cert_der);
        if !self.enforce(&rec, v) {
            let _ = tls.shutdown().await;
            return;
        }
        let mut conn = Connection {
            cert_der,
            client_id: String::new(),
            source_ip: peer.ip(),
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
        let my_id = {
            let mut s = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            s.next_id += 1;
            s.next_id
        };
        let mut buf = BytesMut::new();
        let mut connected = false;
        let end = loop {
            let packet = tokio::select! {
                p = read_packet(&mut tls, &mut buf, IDLE_TIMEOUT) => p,
                Some(delivery) = rx.recv() => {
                    // iot:Receive is checked for the receiving connection at delivery.
                    let v = self.spec.authorizer.authorize(&conn, MqttAction::Receive, &delivery.topic);
                    if self.enforce(&rec, v) && write_packet(&mut tls, &Packet::Publish(delivery)).await.is_err() {
                        break "the device went away during a delivery".to_string();
                    }
                    continue;
                }
            };
            let packet = match packet {
                Ok(p) => p,
                Err(ReadError::Closed) => break "the device closed the connection".into(),
                Err(e) => break format!("broker stopped reading: {e}"),
            };
            match packet {
                Packet::Connect(c) if !connected => {
                    conn.client_id = c.client_id.clone();
                    let v = self.spec.authorizer.authorize(&conn, MqttAction::Connect, &c.client_id);
                    if !self.enforce(&rec, v) {
                        break format!("CONNECT as {:?} not authorized: connection closed", c.client_id);
                    }
                    connected = true;
                    if write_packet(&mut tls, &Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))).await.is_err() {
                        break "write failed".into();
                    }
                }
                Packet::Connect(_) => break "a second CONNECT on one connection is a protocol violation: connection closed".into(),
                _ if !connected => break "the first packet was not CONNECT: connection closed".into(),
                Packet::Publish(p) => {
                    let mut ok = true;
                    if p.retain {
                        let v = self.spec.authorizer.authorize(&conn, MqttAction::RetainPublish, &p.topic);
                        ok = self.enforce(&rec, v);
                    }
                    if ok {
                        let v = self.spec.authorizer.authorize(&conn, MqttAction::Publish, &p.topic);
                        ok = self.enforce(&rec, v);
                    }
                    if !ok {
                        break format!("PUBLISH to {:?} not authorized: connection closed, nothing delivered", p.topic);
                    }
                    self.deliver(&p);
                    if p.qos != QoS::AtMostOnce && write_packet(&mut tls, &Packet::PubAck(PubAck::new(p.pkid))).await.is_err() {
                        break "write failed".into();
                    }
                }
                Packet::Subscribe(s) => {
                    let mut codes = Vec::new();
                    let mut denied = None;
                    for f in &s.filters {
                        let v = self.spec.authorizer.authorize(&conn, MqttAction::Subscribe, &f.path);
                        if !self.enforce(&rec, v) {
                            denied = Some(f.path.clone());
                            break;
                        }
                        codes.push(SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce }));
                    }
                    if let Some(f) = denied {
                        break format!("SUBSCRIBE to {f:?} not authorized: connection closed");
                    }
                    {
                        let mut st = self.subs.lock().unwrap_or_else(|p| p.into_inner());
                        let e = st.subs.entry(my_id).or_insert_with(|| (Vec::new(), tx.clone()));
                        e.0.extend(s.filters.iter().map(|f| f.path.clone()));
                    }
                    if write_packet(&mut tls, &Packet::SubAck(SubAck::new(s.pkid, codes))).await.is_err() {
                        break "write failed".into();
                    }
                }
                Packet::PingReq => {
                    if write_packet(&mut tls, &Packet::PingResp).await.is_err() {
                        break "write failed".into();
                    }
                }
                Packet::Disconnect => break "the device sent DISCONNECT".into(),
                Packet::PubAck(_) => {}
                other => break format!("unsupported packet {other:?}: connection closed"),
            }
        };
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subs
            .remove(&my_id);
        let _ = tls.shutdown().await;
        rec.event(
            Phase::Close,
            Side::Broker,
            EventKind::Closed {
                by: Some(Side::Broker),
                reason: end,
            },
        );
    }

    /// Record the decision; true if the action may go ahead.
    fn enforce(&self, rec: &Recorder, mut v: Verdict) -> bool {
        if let EventKind::Policy(p) = &mut v.event {
            if p.enforcement.is_empty() {
                p.enforcement = match (v.allowed, p.action.as_str()) {
                    (true, _) => "allowed: the broker carries it out",
                    (false, "iot:Receive") => {
                        "denied: the message is dropped for this subscriber (MQTT 3.1.1)"
                    }
                    (false, _) => {
                        "denied: the broker closes the connection (MQTT 3.1.1 has no way to say no)"
                    }
                }
                .to_string();
            }
        }
        rec.event(Phase::Policy, Side::Broker, v.event);
        v.allowed
    }

    fn deliver(&self, p: &Publish) {
        let st = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        for (filters, tx) in st.subs.values() {
            if filters.iter().any(|f| filter_matches(f, &p.topic)) {
                let _ = tx.send(p.clone());
            }
        }
    }
}
