//! Witnesses: more devices of a lesson (`[[devices]]`), e.g. the shop's order subscriber. Each one
//! connects to the same broker over its own real TLS connection before the lesson's device starts,
//! subscribes, and listens until the device is done (and a short grace), then disconnects. What
//! it really did and received goes into the device's trace as [`EventKind::Witness`] events, in
//! time order; its own bytes do not (the trace is one connection).

use super::broker::Broker;
use super::device::{self, ANSWER_TIMEOUT};
use super::mqtt_io::{read_msg, write_msg, Msg, ReadError, Version};
use super::observe::{Recorder, TapMode};
use super::scenario::DeviceSpec;
use crate::trace::{EventKind, Phase, Side, WitnessKind};
use bytes::BytesMut;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a witness keeps listening after the lesson's device is done, by default.
pub const GRACE: Duration = Duration::from_millis(300);

/// The longest grace a lesson may ask for (`listen_ms` of a witness).
pub const MAX_GRACE_MS: u64 = 5_000;

/// One more device of a lesson.
#[derive(Clone, Debug)]
pub struct WitnessSpec {
    /// Its name in the lesson (`[[devices]] name`), shown on its events.
    pub name: String,
    /// Its identity, trust, server name, client id and MQTT version; `actions` holds only its
    /// subscriptions (`Subscribe`), in order.
    pub device: DeviceSpec,
    /// How long it keeps listening after the lesson's device is done.
    pub grace: Duration,
}

/// The witnesses of a running session.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Connect every witness to `broker` (each served by the broker un-gated, with its broker-side
/// observations not kept) and wait until each has subscribed or stopped (bounded), so that its
/// subscriptions are in place before the lesson's device starts. Its events go into `rec`.
pub async fn start(broker: &Broker, witnesses: &[WitnessSpec], rec: &Recorder) -> Running {
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let addr = broker.local_addr();
    for w in witnesses {
        let b = broker.clone();
        let serving = tokio::spawn(async move {
            let _ = b.serve_one_mode(Recorder::new(), TapMode::Off).await;
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (w, rec, stopped) = (w.clone(), rec.clone(), stop.subscribe());
        let task = tokio::spawn(async move {
            run(&w, addr, &rec, ready_tx, stopped, serving.abort_handle()).await;
            let _ = tokio::time::timeout(super::broker::IDLE_TIMEOUT, serving).await;
        });
        // Ready (subscribed) or gone; never wait longer than a connect and two answers.
        let _ = tokio::time::timeout(ANSWER_TIMEOUT * 3, ready_rx).await;
        tasks.push(task);
    }
    Running { stop, tasks }
}

impl Running {
    /// The lesson's device is done: each witness listens for its grace, then disconnects.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            // A witness's grace is at most MAX_GRACE_MS, and its DISCONNECT a write.
            let bound =
                Duration::from_millis(MAX_GRACE_MS) + ANSWER_TIMEOUT + super::broker::IDLE_TIMEOUT;
            let _ = tokio::time::timeout(bound, t).await;
        }
    }
}

/// One witness's session; every step it reaches is an event in `rec`.
async fn run(
    w: &WitnessSpec,
    addr: SocketAddr,
    rec: &Recorder,
    ready: tokio::sync::oneshot::Sender<()>,
    stop: watch::Receiver<bool>,
    serving: tokio::task::AbortHandle,
) {
    let note = |phase: Phase, what: WitnessKind| {
        rec.event(
            phase,
            Side::Device,
            EventKind::Witness {
                device: w.name.clone(),
                what,
            },
        )
    };
    let refused = |reason: String| note(Phase::Connect, WitnessKind::Refused { reason });
    // Until its TCP connection is accepted, the broker's task for it must not take another
    // device's connection: a witness that never connects ends it.
    let never_connected = |reason: String| {
        serving.abort();
        refused(reason)
    };
    let spec = &w.device;
    // Its own TLS observations (verifiers, key log) are recorded apart and not kept.
    let own = Recorder::new();
    let cfg = match device::tls_config(spec, &own) {
        Ok(c) => c,
        Err(e) => return never_connected(format!("its TLS configuration: {e}")),
    };
    let Ok(name) = ServerName::try_from(spec.server_name.clone()) else {
        return never_connected(format!("{:?} is not a valid server name", spec.server_name));
    };
    let tcp = match tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return never_connected(format!("cannot connect to the broker: {e}")),
        Err(_) => return never_connected("connecting to the broker timed out".into()),
    };
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let mut tls = match tokio::time::timeout(ANSWER_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return refused(format!(
                "its TLS handshake failed: {}",
                device::handshake_words(&e)
            ))
        }
        Err(_) => return refused("the broker stopped answering during its handshake".into()),
    };
    let v = spec.mqtt_version;
    let mut buf = BytesMut::new();
    let connect = Msg::Connect {
        client_id: spec.client_id.clone(),
        clean_session: true,
        keep_alive: spec.keep_alive,
        will: None,
    };
    if let Err(e) = write_msg(&mut tls, v, &connect).await {
        return refused(format!("could not send CONNECT: {e}"));
    }
    match read_msg(&mut tls, &mut buf, &mut Some(v), ANSWER_TIMEOUT).await {
        Ok(Msg::ConnAck { code: 0, .. }) => note(
            Phase::Connect,
            WitnessKind::Connected {
                client_id: spec.client_id.clone(),
            },
        ),
        Ok(Msg::ConnAck { code, .. }) => {
            return refused(format!(
                "the broker refused its CONNECT: CONNACK {}",
                device::reason_code(code)
            ))
        }
        Ok(other) => return refused(format!("expected CONNACK, got {other:?}")),
        Err(e) => return refused(format!("no CONNACK: {}", read_words(&e))),
    }
    let mut pkid = 0u16;
    for a in &spec.actions {
        let super::DeviceAction::Subscribe { filter } = a else {
            continue;
        };
        pkid += 1;
        let sub = Msg::Subscribe {
            pkid,
            filters: vec![(filter.clone(), 1)],
        };
        if let Err(e) = write_msg(&mut tls, v, &sub).await {
            return refused(format!("could not send SUBSCRIBE: {e}"));
        }
        let until = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match read_msg(&mut tls, &mut buf, &mut Some(v), left).await {
                Ok(Msg::SubAck { pkid: p, codes }) if p == pkid => {
                    let code = codes.first().copied().unwrap_or(0x80);
                    note(
                        Phase::Connect,
                        WitnessKind::Subscribed {
                            filter: filter.clone(),
                            code,
                        },
                    );
                    break;
                }
                Ok(m) => {
                    if let Err(reason) = delivery(&mut tls, v, m, &note).await {
                        return refused(reason);
                    }
                }
                Err(e) => return refused(format!("no SUBACK for {filter}: {}", read_words(&e))),
            }
        }
    }
    let _ = ready.send(());
    // Listen until the lesson's device is done, then for the grace. A live tour can last minutes:
    // the witness keeps its session alive as MQTT intends, with a PINGREQ every half keep-alive.
    let ping_every = Duration::from_secs(u64::from(spec.keep_alive.max(2)) / 2);
    let mut pinged = tokio::time::Instant::now();
    let mut until: Option<tokio::time::Instant> = None;
    loop {
        if pinged.elapsed() >= ping_every {
            if let Err(e) = write_msg(&mut tls, v, &Msg::PingReq).await {
                return note(
                    Phase::Close,
                    WitnessKind::Refused {
                        reason: format!("could not send PINGREQ: {e}"),
                    },
                );
            }
            pinged = tokio::time::Instant::now();
        }
        if until.is_none() && *stop.borrow() {
            until = Some(tokio::time::Instant::now() + w.grace);
        }
        let wait = match until {
            Some(u) => u.saturating_duration_since(tokio::time::Instant::now()),
            None => Duration::from_millis(50),
        };
        if until.is_some() && wait.is_zero() {
            break;
        }
        match read_msg(&mut tls, &mut buf, &mut Some(v), wait).await {
            Ok(m) => {
                if let Err(reason) = delivery(&mut tls, v, m, &note).await {
                    return note(Phase::Close, WitnessKind::Refused { reason });
                }
            }
            Err(ReadError::Timeout) => {}
            Err(e) => {
                return note(
                    Phase::Close,
                    WitnessKind::Refused {
                        reason: format!("its connection ended: {}", read_words(&e)),
                    },
                )
            }
        }
    }
    let _ = write_msg(&mut tls, v, &Msg::Disconnect { code: 0 }).await;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
    note(Phase::Close, WitnessKind::Disconnected);
}

/// A packet the witness did not ask for: a delivery (noted, and acknowledged at QoS 1), or the
/// broker's DISCONNECT (`Err`: why it stopped).
async fn delivery<S>(
    s: &mut S,
    v: Version,
    m: Msg,
    note: &impl Fn(Phase, WitnessKind),
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
            note(Phase::Mqtt, WitnessKind::Received { topic, payload });
            if qos > 0 {
                write_msg(s, v, &Msg::PubAck { pkid, code: 0 })
                    .await
                    .map_err(|e| format!("could not acknowledge a delivery: {e}"))?;
            }
            Ok(())
        }
        Msg::Disconnect { code } => Err(format!(
            "the broker sent DISCONNECT {}",
            device::reason_code(code)
        )),
        _ => Ok(()),
    }
}

fn read_words(e: &ReadError) -> String {
    match e {
        ReadError::Closed => "the broker closed the connection".into(),
        ReadError::Timeout => format!(
            "the broker did not answer within {} s",
            ANSWER_TIMEOUT.as_secs()
        ),
        ReadError::Protocol(p) => format!("the broker sent bytes that are not valid MQTT: {p}"),
        ReadError::Io(e) => format!("the connection failed: {e}"),
    }
}
