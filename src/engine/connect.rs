//! `iotls connect`: iotls's device against a real broker (or `openssl s_server`).

use super::device;
use super::mqtt_io::Version;
use super::observe::Recorder;
use super::scenario::{click_payload, DeviceAction, DeviceSpec};
use super::{assemble, unix_now, EngineError, Observer};
use crate::pki::{load_certs, load_identity, subject_cn};
use crate::trace::Trace;
use crate::trace::{CertRoleKind, Side};
use std::path::PathBuf;

/// What `iotls connect` was asked to do.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub addr: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub server_name: Option<String>,
    pub client_id: Option<String>,
    pub topic: Option<String>,
    pub message: Option<String>,
    pub tls_only: bool,
    /// Speak MQTT 5 instead of MQTT 3.1.1.
    pub mqtt5: bool,
}

/// Connect, run the session, and return its trace. Setup problems (files, address) are errors;
/// anything that goes wrong on the wire is in the trace.
pub fn run(o: &ConnectOptions) -> Result<Trace, EngineError> {
    let identity = load_identity(&o.cert, &o.key)?;
    let trust = load_certs(&o.ca)?;
    let host = o
        .addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or(&o.addr)
        .to_string();
    let client_id = o
        .client_id
        .clone()
        .unwrap_or_else(|| subject_cn(identity.leaf()));
    let actions = match &o.topic {
        Some(t) => vec![DeviceAction::Publish {
            topic: t.clone(),
            payload: o
                .message
                .clone()
                .map(String::into_bytes)
                .unwrap_or_else(|| click_payload(&client_id, "SINGLE")),
            qos: 1,
            retain: false,
        }],
        None => Vec::new(),
    };
    let mqtt_version = if o.mqtt5 { Version::V5 } else { Version::V4 };
    let spec = DeviceSpec {
        mqtt_version,
        persistent: false,
        keep_alive: super::scenario::DEFAULT_KEEP_ALIVE,
        will: None,
        identity,
        trust,
        server_name: o.server_name.clone().unwrap_or(host),
        client_id,
        actions,
    };
    let rt = super::runtime()?;
    rt.block_on(async {
        let addr = tokio::net::lookup_host(&o.addr)
            .await
            .map_err(|source| EngineError::Resolve {
                addr: o.addr.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| EngineError::NoAddress {
                addr: o.addr.clone(),
            })?;
        let started = unix_now();
        let rec = Recorder::new();
        let report = device::run(&spec, addr, &rec, !o.tls_only).await?;
        let anchors = super::roles(Side::Device, CertRoleKind::TrustAnchor, &spec.trust);
        Ok(assemble(
            "connect",
            started,
            rec.take(),
            &anchors,
            Some(&report),
            Observer::DEVICE,
        ))
    })
}
