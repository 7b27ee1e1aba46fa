//! The device: rustls client (TLS 1.2 only, trusts its root, sends SNI, presents its chain, no
//! resumption) and an MQTT 3.1.1 session: CONNECT, its actions, DISCONNECT.

use super::mqtt_io::{read_packet, write_packet, ReadError};
use super::observe::{ObservedServerVerifier, Recorder, RecordingKeyLog, Tap};
use super::scenario::{DeviceAction, DeviceSpec};
use super::EngineError;
use crate::trace::{EventKind, Phase, Side};
use bytes::BytesMut;
use mqttbytes::v4::{Connect, Packet, Publish, Subscribe};
use mqttbytes::QoS;
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
        roots: spec.trust.clone(),
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
    let outcome = async {
        let mut connect = Connect::new(spec.client_id.clone());
        connect.keep_alive = 30;
        write_packet(&mut tls, &Packet::Connect(connect))
            .await
            .map_err(|e| e.to_string())?;
        match read_packet(&mut tls, &mut buf, ANSWER_TIMEOUT).await {
            Ok(Packet::ConnAck(_)) => report.connected = true,
            Ok(other) => return Err(format!("expected CONNACK, got {other:?}")),
            Err(e) => return Err(describe_end(e)),
        }
        let mut pkid = 0u16;
        for action in &spec.actions {
            pkid += 1;
            match action {
                DeviceAction::Publish {
                    topic,
                    payload,
                    qos,
                    retain,
                } => {
                    let mut p = Publish::new(
                        topic.clone(),
                        if *qos == 0 {
                            QoS::AtMostOnce
                        } else {
                            QoS::AtLeastOnce
                        },
                        payload.clone(),
                    );
                    p.retain = *retain;
                    if *qos > 0 {
                        p.pkid = pkid;
                    }
                    write_packet(&mut tls, &Packet::Publish(p))
                        .await
                        .map_err(|e| e.to_string())?;
                    if *qos == 0 {
                        report.completed += 1;
                        continue;
                    }
                    wait_for(
                        &mut tls,
                        &mut buf,
                        &mut report,
                        |p| matches!(p, Packet::PubAck(a) if a.pkid == pkid),
                    )
                    .await?;
                }
                DeviceAction::Subscribe { filter } => {
                    let mut s = Subscribe::new(filter.clone(), QoS::AtLeastOnce);
                    s.pkid = pkid;
                    write_packet(&mut tls, &Packet::Subscribe(s))
                        .await
                        .map_err(|e| e.to_string())?;
                    wait_for(
                        &mut tls,
                        &mut buf,
                        &mut report,
                        |p| matches!(p, Packet::SubAck(a) if a.pkid == pkid),
                    )
                    .await?;
                }
                DeviceAction::Listen { millis } => {
                    let until = tokio::time::Instant::now() + Duration::from_millis(*millis);
                    loop {
                        let left = until.saturating_duration_since(tokio::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match read_packet(&mut tls, &mut buf, left).await {
                            Ok(Packet::Publish(p)) => {
                                report.received.push((p.topic.clone(), p.payload.to_vec()))
                            }
                            Ok(_) => {}
                            Err(ReadError::Timeout) => break,
                            Err(e) => return Err(describe_end(e)),
                        }
                    }
                }
                DeviceAction::Ping => {
                    write_packet(&mut tls, &Packet::PingReq)
                        .await
                        .map_err(|e| e.to_string())?;
                    wait_for(&mut tls, &mut buf, &mut report, |p| {
                        matches!(p, Packet::PingResp)
                    })
                    .await?;
                }
            }
            report.completed += 1;
        }
        write_packet(&mut tls, &Packet::Disconnect)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
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

fn describe_end(e: ReadError) -> String {
    match e {
        ReadError::Closed => "the broker closed the connection".to_string(),
        other => format!("device stopped: {other}"),
    }
}

/// Read until `done` matches, collecting deliveries on the way.
async fn wait_for<S>(
    s: &mut S,
    buf: &mut BytesMut,
    report: &mut DeviceReport,
    done: impl Fn(&Packet) -> bool,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let p = read_packet(s, buf, ANSWER_TIMEOUT)
            .await
            .map_err(describe_end)?;
        if done(&p) {
            return Ok(());
        }
        if let Packet::Publish(p) = p {
            report.received.push((p.topic.clone(), p.payload.to_vec()));
        }
    }
}
