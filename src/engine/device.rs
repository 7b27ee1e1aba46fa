//! The device: rustls client (TLS 1.2 only, trusts its root, sends SNI, presents its chain, no
//! resumption) and an MQTT 3.1.1 session: CONNECT, its actions, DISCONNECT.

use super::live::{Gate, Gated};
use super::mqtt_io::{read_msg, write_msg, Msg, ReadError, Version};
use super::observe::{
    drain, explain_error, failure_of, ObservedServerVerifier, Recorder, RecordingKeyLog, Tap,
    TapMode,
};
use super::scenario::{DeviceAction, DeviceSpec};
use super::EngineError;
use crate::trace::{
    CheckId, CloseCause, EventKind, Failure, FailureCode, HandshakeType, MqttOutcome, MqttRequest,
    MqttResult, Phase, Side, Stage,
};
use bytes::BytesMut;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long the device waits for each answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What the device got done.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeviceReport {
    /// Whether the device was asked to speak MQTT after the handshake.
    pub mqtt: bool,
    pub connected: bool,
    /// Actions that completed (acknowledged), by index.
    pub completed: usize,
    /// Messages delivered to the device on its subscriptions: (topic, payload).
    pub received: Vec<(String, Vec<u8>)>,
    /// What the device meant to ask the broker, in order (results are worked out from the trace).
    pub planned: Vec<MqttOutcome>,
}

/// The device's TLS configuration, observed into `rec`.
pub fn tls_config(spec: &DeviceSpec, rec: &Recorder) -> Result<Arc<ClientConfig>, EngineError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !spec.cipher_suites.is_empty() {
        provider.cipher_suites = spec.cipher_suites.clone();
    }
    let provider = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    for r in &spec.trust {
        roots
            .add(r.clone())
            .map_err(|e| EngineError::tls("device trust anchor rejected", e))?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| EngineError::tls("device server verifier", e))?;
    let verifier = ObservedServerVerifier {
        inner,
        roots: spec.trust.clone().into(),
        rec: rec.clone(),
    };
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| EngineError::tls("device TLS config", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(spec.identity.chain.clone(), spec.identity.key.clone_key())
        .map_err(|e| EngineError::tls("device certificate and key", e))?;
    cfg.resumption = Resumption::disabled();
    cfg.alpn_protocols = spec.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    cfg.key_log = Arc::new(RecordingKeyLog {
        rec: super::observe::Sink::Own(rec.clone()),
        side: Side::Device,
    });
    Ok(Arc::new(cfg))
}

/// How long the device waits for the broker's own close after saying goodbye, so that its last
/// record (close_notify) is on record too.
pub const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Connect to `addr` and run the device's session, recording both directions into `rec`.
/// With `mqtt == false` the device stops after the handshake (for TLS-only peers).
pub async fn run(
    spec: &DeviceSpec,
    addr: SocketAddr,
    rec: &Recorder,
    mqtt: bool,
) -> Result<DeviceReport, EngineError> {
    run_with(spec, addr, rec, mqtt, TapMode::Both).await
}

/// [`run`], choosing which bytes the device's tap records.
pub async fn run_with(
    spec: &DeviceSpec,
    addr: SocketAddr,
    rec: &Recorder,
    mqtt: bool,
    tap: TapMode,
) -> Result<DeviceReport, EngineError> {
    run_paced(spec, addr, rec, mqtt, tap, &Pace::default()).await
}

/// How fast the device goes: at full speed with the real deadlines, or live (a person steps the
/// session: every flight waits at the gate, each action for the button, and the deadlines are a
/// human's).
#[derive(Clone, Debug)]
pub struct Pace {
    /// How long the device waits for the handshake and for each answer.
    pub answer: Duration,
    /// The gate of a live session.
    pub gate: Option<Gate>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            answer: ANSWER_TIMEOUT,
            gate: None,
        }
    }
}

/// [`run_with`] at a given pace. With a gate, the device's writes wait at it (above its tap, so
/// the tap records them when they leave) and its actions wait for the button.
pub async fn run_paced(
    spec: &DeviceSpec,
    addr: SocketAddr,
    rec: &Recorder,
    mqtt: bool,
    tap: TapMode,
    pace: &Pace,
) -> Result<DeviceReport, EngineError> {
    let cfg = tls_config(spec, rec)?;
    let name = ServerName::try_from(spec.server_name.clone())
        .map_err(|_| EngineError::ServerName(spec.server_name.clone()))?;
    let report = DeviceReport {
        mqtt,
        planned: if mqtt { planned(spec) } else { Vec::new() },
        ..DeviceReport::default()
    };
    let tcp = match tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(source)) => return Err(EngineError::Connect { addr, source }),
        Err(_) => return Err(EngineError::ConnectTimeout { addr }),
    };
    let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
    rec.event(
        Phase::Connect,
        Side::Device,
        EventKind::Tcp {
            device_addr: local,
            broker_addr: addr.to_string(),
        },
    );
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let stream = Tap::new(tcp, Side::Device, rec.clone(), tap);
    match &pace.gate {
        Some(gate) => {
            let gated = Gated::new(stream, Side::Device, gate.clone());
            over(gated, connector, name, spec, rec, tap, pace, report).await
        }
        None => over(stream, connector, name, spec, rec, tap, pace, report).await,
    }
}

/// The device's session over its (tapped) TCP stream: the handshake, then MQTT.
#[allow(clippy::too_many_arguments)]
async fn over<S>(
    stream: S,
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    spec: &DeviceSpec,
    rec: &Recorder,
    tap: TapMode,
    pace: &Pace,
    mut report: DeviceReport,
) -> Result<DeviceReport, EngineError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mqtt = report.mqtt;
    let connect = connector.connect(name, stream).into_fallible();
    let mut tls = match tokio::time::timeout(pace.answer, connect).await {
        Err(_) => {
            rec.event(
                Phase::Hello,
                Side::Device,
                EventKind::Error {
                    stage: Stage::TlsHandshake,
                    message: format!(
                        "the broker stopped answering during the handshake ({} s)",
                        pace.answer.as_secs()
                    ),
                    failure: Some(Box::new(Failure {
                        side: Some(Side::Broker),
                        ..Failure::new(FailureCode::Timeout)
                    })),
                },
            );
            return Ok(report);
        }
        Ok(Err((e, mut io))) => {
            // The alert rustls wrote leaves before the connection closes (a live tour holds it
            // until the learner steps).
            let _ = tokio::time::timeout(pace.answer, io.flush()).await;
            drop(io);
            let failure = handshake_failure(&e, Side::Broker);
            rec.event(
                Phase::Close,
                Side::Device,
                EventKind::Closed {
                    by: Some(Side::Device),
                    cause: CloseCause::HandshakeFailed,
                    reason: format!(
                        "the handshake failed on the device: {}",
                        handshake_words(&e)
                    ),
                    failure: Some(Box::new(failure)),
                },
            );
            return Ok(report);
        }
        Ok(Ok(t)) => t,
    };
    // rustls finished the handshake: the device has verified the broker's Finished.
    rec.event(
        Phase::Finished,
        Side::Device,
        finished_verified(Side::Device),
    );
    if !mqtt {
        let _ = tls.shutdown().await;
        drain(&mut tls, CLOSE_GRACE).await;
        rec.event(
            Phase::Close,
            Side::Device,
            EventKind::Closed {
                by: Some(Side::Device),
                cause: CloseCause::Done,
                reason: "handshake complete; the device closed (TLS only)".into(),
                failure: None,
            },
        );
        return Ok(report);
    }
    let mut buf = BytesMut::new();
    let v = spec.mqtt_version;
    let outcome = session(&mut tls, &mut buf, spec, v, &mut report, pace).await;
    let _ = tls.shutdown().await;
    if tap == TapMode::Both {
        drain(&mut tls, CLOSE_GRACE).await;
    }
    let (cause, reason) = match outcome {
        Ok(()) => (
            CloseCause::Done,
            "the device sent DISCONNECT and close_notify".to_string(),
        ),
        Err(e) => e,
    };
    rec.event(
        Phase::Close,
        Side::Device,
        EventKind::Closed {
            by: Some(Side::Device),
            cause,
            reason,
            failure: None,
        },
    );
    Ok(report)
}

/// The requests a device spec will make: CONNECT, then its actions.
pub(crate) fn planned(spec: &DeviceSpec) -> Vec<MqttOutcome> {
    let base = |action| MqttOutcome::new(action, MqttResult::NotSent);
    let mut v = vec![MqttOutcome {
        client_id: Some(spec.client_id.clone()),
        ..base(MqttRequest::Connect)
    }];
    for a in &spec.actions {
        v.push(match a {
            DeviceAction::Publish { topic, qos, .. } => MqttOutcome {
                topic: Some(topic.clone()),
                qos: Some((*qos).min(1)),
                ..base(MqttRequest::Publish)
            },
            DeviceAction::Subscribe { filter } => MqttOutcome {
                filter: Some(filter.clone()),
                ..base(MqttRequest::Subscribe)
            },
            DeviceAction::Ping => base(MqttRequest::Ping),
            DeviceAction::Listen { .. } => continue,
        });
    }
    v
}

/// The check a side makes when rustls completes its handshake: it verified its peer's Finished.
pub fn finished_verified(side: Side) -> EventKind {
    let (check, peer) = match side {
        Side::Broker => (CheckId::ClientFinished, "device"),
        _ => (CheckId::ServerFinished, "broker"),
    };
    EventKind::Check {
        check,
        ok: true,
        reason: format!(
            "rustls completed the handshake, so the {} verified the {peer}'s Finished: both derived \
             the same keys over the same conversation",
            side.name()
        ),
        about: Some(HandshakeType::FINISHED),
        signature: None,
        finished: None,
        facts: Vec::new(),
        failure: None,
    }
}

/// A failed handshake in words: rustls's error explained (names and dates as people write them),
/// or the I/O error.
pub fn handshake_words(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => explain_error(tls),
        None => e.to_string(),
    }
}

/// The typed failure of a handshake that failed with `e`; `peer` is the other side (the one whose
/// alert or silence ended it).
pub fn handshake_failure(e: &std::io::Error, peer: Side) -> Failure {
    let me = peer.peer();
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let mut f = failure_of(tls);
        f.side = Some(match tls {
            rustls::Error::AlertReceived(_) => peer,
            _ => me,
        });
        return f;
    }
    use std::io::ErrorKind as K;
    let code = match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            FailureCode::ClosedByPeer
        }
        K::TimedOut => FailureCode::Timeout,
        _ => FailureCode::Other,
    };
    Failure {
        side: Some(peer),
        detail: Some(e.to_string()),
        ..Failure::new(code)
    }
}

/// CONNECT, the actions, DISCONNECT. An error is the reason the device stopped.
async fn session<S>(
    tls: &mut S,
    buf: &mut BytesMut,
    spec: &DeviceSpec,
    v: Version,
    report: &mut DeviceReport,
    pace: &Pace,
) -> Result<(), (CloseCause, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connect = Msg::Connect {
        client_id: spec.client_id.clone(),
        clean_session: !spec.persistent,
        keep_alive: spec.keep_alive,
        will: spec.will.clone(),
    };
    write_msg(tls, v, &connect).await.map_err(write_err)?;
    match read_answer(tls, buf, v, spec.keep_alive, pace).await {
        Ok(Msg::ConnAck { code: 0, .. }) => {}
        Ok(Msg::ConnAck { code, .. }) => {
            return Err((
                CloseCause::RefusedByPeer,
                format!("the broker refused CONNECT: CONNACK {}", reason_code(code)),
            ))
        }
        Ok(other) => {
            return Err((
                CloseCause::ProtocolViolation,
                format!("expected CONNACK, got {other:?}"),
            ))
        }
        Err(e) => return Err(describe_end(e, pace)),
    }
    for (i, action) in spec.actions.iter().enumerate() {
        if let Some(gate) = &pace.gate {
            if let Some(what) = button_action(action) {
                wait_button(tls, buf, v, spec.keep_alive, report, gate, pace, &what).await?;
            }
        }
        // Packet ids start at 1 (0 is not a valid id).
        let pkid = (i % usize::from(u16::MAX)) as u16 + 1;
        match action {
            DeviceAction::Publish {
                topic,
                payload,
                qos,
                retain,
            } => {
                let qos = (*qos).min(1);
                let publish = Msg::Publish {
                    topic: topic.clone(),
                    payload: payload.clone(),
                    qos,
                    retain: *retain,
                    pkid: if qos == 0 { 0 } else { pkid },
                };
                write_msg(tls, v, &publish).await.map_err(write_err)?;
                if qos == 0 {
                    report.completed += 1;
                    continue;
                }
                let code = wait_for(tls, buf, v, report, pace, spec.keep_alive, |m| match m {
                    Msg::PubAck { pkid: p, code } if *p == pkid => Some(*code),
                    _ => None,
                })
                .await?;
                if code != 0 {
                    continue;
                }
            }
            DeviceAction::Subscribe { filter } => {
                let subscribe = Msg::Subscribe {
                    pkid,
                    filters: vec![(filter.clone(), 1)],
                };
                write_msg(tls, v, &subscribe).await.map_err(write_err)?;
                let codes = wait_for(tls, buf, v, report, pace, spec.keep_alive, |m| match m {
                    Msg::SubAck { pkid: p, codes } if *p == pkid => Some(codes.clone()),
                    _ => None,
                })
                .await?;
                if codes.iter().any(|c| *c >= 0x80) {
                    continue;
                }
            }
            DeviceAction::Ping => {
                write_msg(tls, v, &Msg::PingReq).await.map_err(write_err)?;
                wait_for(tls, buf, v, report, pace, spec.keep_alive, |m| {
                    matches!(m, Msg::PingResp).then_some(())
                })
                .await?;
            }
            DeviceAction::Listen { millis } => {
                let until = tokio::time::Instant::now() + Duration::from_millis(*millis);
                loop {
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match read_msg(tls, buf, &mut Some(v), left).await {
                        Ok(m) => unsolicited(tls, v, report, m).await?,
                        Err(ReadError::Timeout) => break,
                        Err(e) => return Err(describe_end(e, pace)),
                    }
                }
            }
        }
        report.completed += 1;
    }
    write_msg(tls, v, &Msg::Disconnect { code: 0 })
        .await
        .map_err(write_err)
}

/// An MQTT reason code in words.
pub fn reason_code(code: u8) -> String {
    let name = match code {
        0x00 => "Success",
        0x05 => "Not authorized (3.1.1)",
        0x80 => "Unspecified error",
        0x87 => "Not authorized",
        _ => "refused",
    };
    format!("0x{code:02x} {name}")
}

fn describe_end(e: ReadError, pace: &Pace) -> (CloseCause, String) {
    match e {
        ReadError::Closed => (
            CloseCause::PeerClosed,
            "the broker closed the connection".to_string(),
        ),
        ReadError::Timeout => (
            CloseCause::Timeout,
            format!(
                "the broker did not answer within {} s",
                pace.answer.as_secs()
            ),
        ),
        ReadError::Protocol(e) => (
            CloseCause::ProtocolViolation,
            format!("the broker sent bytes that are not valid MQTT: {e}"),
        ),
        ReadError::Io(e) => (
            CloseCause::PeerClosed,
            format!("the connection failed: {e}"),
        ),
    }
}

fn write_err(e: std::io::Error) -> (CloseCause, String) {
    (
        CloseCause::WriteFailed,
        format!("the device could not send: {e}"),
    )
}

/// Read until `done` picks a packet, collecting (and acknowledging) deliveries on the way.
async fn wait_for<S, T>(
    s: &mut S,
    buf: &mut BytesMut,
    v: Version,
    report: &mut DeviceReport,
    pace: &Pace,
    keep_alive: u16,
    done: impl Fn(&Msg) -> Option<T>,
) -> Result<T, (CloseCause, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = read_answer(s, buf, v, keep_alive, pace)
            .await
            .map_err(|e| describe_end(e, pace))?;
        if let Some(t) = done(&m) {
            return Ok(t);
        }
        unsolicited(s, v, report, m).await?;
    }
}

/// A packet the device did not ask for: a delivery (kept, and acknowledged at QoS 1), or the
/// broker's DISCONNECT.
async fn unsolicited<S>(
    s: &mut S,
    v: Version,
    report: &mut DeviceReport,
    m: Msg,
) -> Result<(), (CloseCause, String)>
where
    S: tokio::io::AsyncWrite + Unpin,
{
    match m {
        Msg::Publish {
            topic,
            payload,
            qos,
            pkid,
            ..
        } => {
            report.received.push((topic, payload));
            if qos > 0 {
                write_msg(s, v, &Msg::PubAck { pkid, code: 0 })
                    .await
                    .map_err(write_err)?;
            }
            Ok(())
        }
        Msg::Disconnect { code } => Err((
            CloseCause::PeerDisconnect,
            format!("the broker sent DISCONNECT {}", reason_code(code)),
        )),
        _ => Ok(()),
    }
}

/// Read the broker's next packet within the pace's deadline. Live, the wait may be long (the
/// learner reads): the device keeps its MQTT session alive as MQTT intends, with a PINGREQ once
/// `keep_alive` seconds pass with nothing sent (MQTT 3.1.1 §3.1.2.10).
async fn read_answer<S>(
    s: &mut S,
    buf: &mut BytesMut,
    v: Version,
    keep_alive: u16,
    pace: &Pace,
) -> Result<Msg, ReadError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(gate) = &pace.gate else {
        return read_msg(s, buf, &mut Some(v), pace.answer).await;
    };
    let until = tokio::time::Instant::now() + pace.answer;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        let tick = match keep_alive {
            0 => left,
            k => left.min(Duration::from_secs(u64::from(k))),
        };
        match read_msg(s, buf, &mut Some(v), tick).await {
            Err(ReadError::Timeout) if keep_alive > 0 => keep_alive_ping(s, v, gate).await?,
            Ok(Msg::PingResp) => continue,
            other => return other,
        }
    }
}

/// Send a keep-alive PINGREQ through the gate (it passes without the learner).
async fn keep_alive_ping<S>(s: &mut S, v: Version, gate: &Gate) -> Result<(), ReadError>
where
    S: tokio::io::AsyncWrite + Unpin,
{
    if gate.ping_pass() {
        write_msg(s, v, &Msg::PingReq)
            .await
            .map_err(ReadError::Io)?;
    }
    Ok(())
}

/// What pressing the button makes the device do, in words; `None` for what needs no button
/// (listening).
fn button_action(a: &DeviceAction) -> Option<String> {
    match a {
        DeviceAction::Publish { topic, .. } => Some(format!("PUBLISH to {topic}")),
        DeviceAction::Subscribe { filter } => Some(format!("SUBSCRIBE to {filter}")),
        DeviceAction::Ping => Some("PINGREQ".to_string()),
        DeviceAction::Listen { .. } => None,
    }
}

/// Live: wait for the learner to press the button before `what`, reading what the broker sends
/// meanwhile and pinging within the keep-alive.
#[allow(clippy::too_many_arguments)]
async fn wait_button<S>(
    s: &mut S,
    buf: &mut BytesMut,
    v: Version,
    keep_alive: u16,
    report: &mut DeviceReport,
    gate: &Gate,
    pace: &Pace,
    what: &str,
) -> Result<(), (CloseCause, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let pressed = gate.button(what);
    tokio::pin!(pressed);
    let tick = match keep_alive {
        0 => pace.answer,
        k => Duration::from_secs(u64::from(k)),
    };
    let mut version = Some(v);
    loop {
        tokio::select! {
            () = &mut pressed => return Ok(()),
            r = read_msg(s, buf, &mut version, tick) => match r {
                Ok(Msg::PingResp) => {}
                Ok(m) => unsolicited(s, v, report, m).await?,
                Err(ReadError::Timeout) if keep_alive > 0 => keep_alive_ping(s, v, gate)
                    .await
                    .map_err(|e| describe_end(e, pace))?,
                Err(ReadError::Timeout) => {}
                Err(e) => return Err(describe_end(e, pace)),
            },
        }
    }
}
