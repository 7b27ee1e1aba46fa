//! The engine: runs a real session and records its trace.
//!
//! A session runs the broker and the device in one process, on one current-thread tokio runtime, so
//! the order in which the tap, the verifiers, the key log and the policy engine record is causal.
//! Afterwards [`assemble`] turns the raw record into a [`Trace`]: the bytes go through the pure
//! dissector ([`crate::tls::dissect`]), which decodes and decrypts them with the key-log secrets.

mod assemble;
pub mod authz;
pub mod bound;
pub mod broker;
pub mod connect;
pub mod device;
pub mod lessons;
pub mod live;
pub mod mqtt_io;
pub mod observe;
pub mod operations;
pub mod outcome;
pub mod policy_authz;
pub mod preflight;
pub mod scenario;
pub mod serve;
pub mod sessions;
pub mod unbuffered;
pub mod verdict;
pub mod witness;

pub use assemble::{assemble, certificate_list, Observer};
pub use broker::Broker;
pub use device::DeviceReport;
pub use observe::Recorder;
pub use scenario::{BrokerSpec, DeviceAction, DeviceSpec, Scenario};

use crate::trace::{CertRole, CertRoleKind, Side, Trace};
use std::fmt;
use std::net::SocketAddr;

/// A session could not even start (bad configuration, port in use, …). A session that starts and
/// fails (a rejected certificate, a denied publish) is not an error: it is a trace with that outcome.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A certificate or key file that cannot be read or used (the error names the file).
    #[error(transparent)]
    File(#[from] crate::pki::LoadError),
    /// The registry file (or a policy it names) cannot be read or is invalid.
    #[error(transparent)]
    Registry(#[from] crate::policy::RegistryError),
    /// The in-memory PKI could not be generated, or a PKI directory could not be used.
    #[error("{0}")]
    Pki(String),
    /// A TLS configuration rustls refused (which side, which part, and why).
    #[error("{what}: {message}")]
    TlsConfig { what: &'static str, message: String },
    /// Options that do not go together, or a value that cannot be used as given.
    #[error("{0}")]
    Usage(String),
    /// A lesson file that cannot be used, or a `--set` that is not KEY=VALUE.
    #[error(transparent)]
    Lesson(crate::walkthrough::WalkError),
    #[error("unknown lesson {name:?}; the lessons are: {known} (iotls tour --list)")]
    UnknownLesson { name: String, known: String },
    #[error("{0:?} is not a valid server name (SNI)")]
    ServerName(String),
    #[error("{addr}: cannot resolve the broker address (HOST:PORT): {source}")]
    Resolve {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: no address found")]
    NoAddress { addr: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("accept: {0}")]
    Accept(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl EngineError {
    /// A TLS configuration error of `what` (e.g. "device certificate and key").
    pub fn tls(what: &'static str, e: impl fmt::Display) -> Self {
        EngineError::TlsConfig {
            what,
            message: e.to_string(),
        }
    }
}

impl From<crate::pki::PkiError> for EngineError {
    fn from(e: crate::pki::PkiError) -> Self {
        EngineError::Pki(e.to_string())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)
}

/// Run the scenario for real — broker on 127.0.0.1 (a free port), device connecting to it — and
/// return its trace. Blocking; a few milliseconds.
pub fn run(scenario: &Scenario) -> Result<Trace, EngineError> {
    runtime()?.block_on(run_async(scenario))
}

/// [`run`] inside an existing current-thread runtime.
pub async fn run_async(scenario: &Scenario) -> Result<Trace, EngineError> {
    Ok(record_async(scenario).await?.assemble())
}

/// A session recorded but not yet decoded: the raw observations in causal order.
pub struct Recording {
    scenario: String,
    words: crate::trace::LessonWords,
    started_unix: u64,
    raws: Vec<observe::Raw>,
    anchors: Vec<(CertRole, Vec<u8>)>,
    report: DeviceReport,
}

impl Recording {
    /// Decode the bytes and build the trace.
    pub fn assemble(self) -> Trace {
        let mut trace = assemble(
            &self.scenario,
            self.started_unix,
            self.raws,
            &self.anchors,
            Some(&self.report),
            Observer::BOTH,
        );
        trace.words = self.words;
        trace
    }
}

/// Run the session and record it, without decoding (the part that happens at session speed).
pub async fn record_async(scenario: &Scenario) -> Result<Recording, EngineError> {
    let started_unix = unix_now();
    let broker = Broker::bind(
        scenario.broker.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let addr = broker.local_addr();
    let rec = Recorder::new();
    let b = broker.clone();
    let brec = rec.clone();
    // Each end records what it writes: every byte on the wire exactly once, when it was sent.
    // The witnesses first: their subscriptions are in place before the device connects.
    let witnesses = witness::start(&broker, &scenario.witnesses, &rec).await;
    let serving =
        tokio::spawn(async move { b.serve_one_mode(brec, observe::TapMode::WritesOnly).await });
    let device = device::run_with(
        &scenario.device,
        addr,
        &rec,
        true,
        observe::TapMode::WritesOnly,
    )
    .await;
    // The broker finishes on its own once the device is gone; don't wait forever for it.
    let _ = tokio::time::timeout(broker::IDLE_TIMEOUT, serving).await;
    witnesses.finish().await;
    let report = device?;
    Ok(Recording {
        scenario: scenario.name.clone(),
        words: scenario.words.clone(),
        started_unix,
        raws: rec.take(),
        anchors: anchors(scenario),
        report,
    })
}

/// The trust anchors (and registered CAs) of a scenario, with the role to describe them under.
pub fn anchors(scenario: &Scenario) -> Vec<(CertRole, Vec<u8>)> {
    let mut v = roles(
        Side::Device,
        CertRoleKind::TrustAnchor,
        &scenario.device.trust,
    );
    v.extend(roles(
        Side::Broker,
        CertRoleKind::TrustAnchor,
        &scenario.broker.client_roots,
    ));
    v.extend(roles(
        Side::Broker,
        CertRoleKind::RegisteredCa,
        &scenario.broker.known_cas,
    ));
    v
}

/// Certificates in a role, numbered from 0, for [`assemble`].
pub fn roles(
    side: Side,
    kind: CertRoleKind,
    certs: &[rustls_pki_types::CertificateDer<'_>],
) -> Vec<(CertRole, Vec<u8>)> {
    certs
        .iter()
        .enumerate()
        .map(|(index, r)| (CertRole { side, kind, index }, r.to_vec()))
        .collect()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
