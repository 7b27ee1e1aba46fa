//! The device: rustls client (TLS 1.2 only, trusts its root, sends SNI, presents its chain, no
//! resumption) and an MQTT 3.1.1 session: CONNECT, its actions, DISCONNECT.

use super::mqtt_io::{read_msg, write_msg, Msg, ReadError, Version};
use super::observe::{ObservedServerVerifier, Recorder, RecordingKeyLog, Tap};
use super::scenario::{DeviceAction, DeviceSpec};
use super::EngineError;
use crate::trace::{EventKind, Phase, Side};
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
    pub handshake_ok: bool,
    /// Whether the device was asked to speak MQTT after the handshake.
    pub mqtt: bool,
    pub connected: bool,
    /// Actions that completed (acknowledged), by index.
    pub completed: usize,
    /// Messages delivered to the device on its subscriptions: (topic, payload).
    pub received: Vec<(String, Vec<u8>)>,
    /// Refusals the broker sent in acknowledgements (MQTT 5), e.g. `PUBACK 0x87 Not authorized`.
    pub refused: Vec<String>,
}

/// The device's TLS configuration, observed into `rec`.
pub fn tls_config(spec: &DeviceSpec, rec: &Recorder) -> Result<Arc<ClientConfig>, EngineError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for r in &spec.trust {
        roots
            .add(r.clone())
            .map_err(|e| EngineError::Setup(format!("device trust anchor rejected: {e}")))?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| EngineError::Setup(format!("device server verifier: {e}")))?;
    let verifier = ObservedServerVerifier {
        inner,
        roots: spec.trust.clone().into(),
        rec: rec.clone(),
    };
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| EngineError::Setup(format!("device TLS config: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(spec.identity.chain.clone(), spec.identity.key.clone_key())
        .map_err(|e| EngineError::Setup(format!("device certificate and key: {e}")))?;
    cfg.resumption = Resumption::disabled();
    cfg.key_log = Arc::new(RecordingKeyLog {
        rec: rec.clone(),
        side: Side::Device,
    });
    Ok(Arc::new(cfg))
}

/// Connect to `addr` and run the device's session, recording into `rec` (transport tapped).
/// With `mqtt == false` the device stops after the handshake (for TLS-only peers).
pub async fn run(
    spec: &DeviceSpec,
    addr: SocketAddr,
    rec: &Recorder,
    mqtt: bool,
) -> Result<DeviceReport, EngineError> {
    let cfg = tls_config(spec, rec)?;
    let name = ServerName::try_from(spec.server_name.clone()).map_err(|_| {
        EngineError::Setup(format!(
            "{:?} is not a valid server name (SNI)",
            spec.server_name
        ))
    })?;
    let mut report = DeviceReport {
        mqtt,
        ..DeviceReport::default()
    };
    let tcp = match tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(EngineError::Setup(format!("cannot connect to {addr}: {e}"))),
        Err(_) => {
            return Err(EngineError::Setup(format!(
                "connecting to {addr} timed out"
            )))
        }
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
    let mut tls = match tokio::time::timeout(
        ANSWER_TIMEOUT,
        connector.connect(name, Tap::new(tcp, Side::Device, rec.clone())),
    )
    .await
    {
        Err(_) => {
            rec.event(
                Phase::Hello,
                Side::Device,
                EventKind::Error {
                    stage: "TLS handshake".into(),
                    message: "the broker stopped answering during the handshake (5 s)".into(),
                },
            );
            return Ok(report);
        }
        Ok(Err(e)) => {
            rec.event(
                Phase::Close,
                Side::Device,
                EventKind::Closed {
                    by: Some(Side::Device),
                    reason: format!("handshake failed on the device: {e}"),
                },
            );
            return Ok(report);
        }
        Ok(Ok(t)) => t,
    };
    report.handshake_ok = true;
    if !mqtt {
        let _ = tls.shutdown().await;
        rec.event(
            Phase::Close,
            Side::Device,
            EventKind::Closed {
                by: Some(Side::Device),
                reason: "handshake complete; the device closed (TLS only)".into(),
            },
        );
        return Ok(report);
    }
    let mut buf = BytesMut::new();
    let v = spec.mqtt_version;
    let outcome = session(&mut tls, &mut buf, spec, v, &mut report).await;
    let _ = tls.shutdown().await;
    let reason = match outcome {
        Ok(()) => "the device sent DISCONNECT and close_notify".to_string(),
        Err(e) => e,
    };
    rec.event(
        Phase::Close,
        Side::Device,
        EventKind::Closed {
            by: Some(Side::Device),
            reason,
        },
    );
    Ok(report)
}

/// CONNECT, the actions, DISCONNECT. An error is the reason the device stopped.
async fn session<S>(
    tls: &mut S,
    buf: &mut BytesMut,
    spec: &DeviceSpec,
    v: Version,
    report: &mut DeviceReport,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connect = Msg::Connect {
        client_id: spec.client_id.clone(),
        clean_session: !spec.persistent,
        will_topic: None,
    };
    write_msg(tls, v, &connect)
        .await
        .map_err(|e| e.to_string())?;
    match read_msg(tls, buf, &mut Some(v), ANSWER_TIMEOUT).await {
        Ok(Msg::ConnAck { code: 0 }) => report.connected = true,
        Ok(Msg::ConnAck { code }) => {
            return Err(format!(
                "the broker refused CONNECT: CONNACK {}",
                reason_code(code)
            ))
        }
        Ok(other) => return Err(format!("expected CONNACK, got {other:?}")),
        Err(e) => return Err(describe_end(e)),
    }
    for (i, action) in spec.actions.iter().enumerate() {
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
                write_msg(tls, v, &publish)
                    .await
                    .map_err(|e| e.to_string())?;
                if qos == 0 {
                    report.completed += 1;
                    continue;
                }
                let code = wait_for(tls, buf, v, report, |m| match m {
                    Msg::PubAck { pkid: p, code } if *p == pkid => Some(*code),
                    _ => None,
                })
                .await?;
                if code != 0 {
                    report.refused.push(format!("PUBACK {}", reason_code(code)));
                    continue;
                }
            }
            DeviceAction::Subscribe { filter } => {
                let subscribe = Msg::Subscribe {
                    pkid,
                    filters: vec![(filter.clone(), 1)],
                };
                write_msg(tls, v, &subscribe)
                    .await
                    .map_err(|e| e.to_string())?;
                let codes = wait_for(tls, buf, v, report, |m| match m {
                    Msg::SubAck { pkid: p, codes } if *p == pkid => Some(codes.clone()),
                    _ => None,
                })
                .await?;
                if let Some(c) = codes.iter().find(|c| **c >= 0x80) {
                    report.refused.push(format!("SUBACK {}", reason_code(*c)));
                    continue;
                }
            }
            DeviceAction::Ping => {
                write_msg(tls, v, &Msg::PingReq)
                    .await
                    .map_err(|e| e.to_string())?;
                wait_for(tls, buf, v, report, |m| {
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
                        Err(e) => return Err(describe_end(e)),
                    }
                }
            }
        }
        report.completed += 1;
    }
    write_msg(tls, v, &Msg::Disconnect { code: 0 })
        .await
        .map_err(|e| e.to_string())
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

fn describe_end(e: ReadError) -> String {
    match e {
        ReadError::Closed => "the broker closed the connection".to_string(),
        other => format!("device stopped: {other}"),
    }
}

/// Read until `done` picks a packet, collecting (and acknowledging) deliveries on the way.
async fn wait_for<S, T>(
    s: &mut S,
    buf: &mut BytesMut,
    v: Version,
    report: &mut DeviceReport,
    done: impl Fn(&Msg) -> Option<T>,
) -> Result<T, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = read_msg(s, buf, &mut Some(v), ANSWER_TIMEOUT)
            .await
            .map_err(describe_end)?;
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
) -> Result<(), String>
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
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Msg::Disconnect { code } => {
            Err(format!("the broker sent DISCONNECT {}", reason_code(code)))
        }
        _ => Ok(()),
    }
}
