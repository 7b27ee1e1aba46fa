//! The engine: runs a real session and records its trace.
//!
//! A session runs the broker and the device in one process, on one current-thread tokio runtime, so
//! the order in which the tap, the verifiers, the key log and the policy engine record is causal.
//! Afterwards [`assemble`] turns the raw record into a [`Trace`]: the bytes go through the pure
//! dissector ([`crate::tls::dissect`]), which decodes and decrypts them with the key-log secrets.

mod assemble;
pub mod authz;
pub mod broker;
pub mod connect;
pub mod device;
pub mod lessons;
pub mod mqtt_io;
pub mod observe;
pub mod policy_authz;
pub mod scenario;
pub mod serve;
pub mod verdict;

pub use assemble::{assemble, certificate_list};
pub use broker::Broker;
pub use device::DeviceReport;
pub use observe::Recorder;
pub use scenario::{BrokerSpec, DeviceAction, DeviceSpec, Scenario};

use crate::trace::Trace;
use std::fmt;
use std::net::SocketAddr;

/// A session could not even start (bad configuration, port in use, …). A session that starts and
/// fails (a rejected certificate, a denied publish) is not an error: it is a trace with that outcome.
#[derive(Debug)]
pub enum EngineError {
    Setup(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Setup(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<crate::pki::PkiError> for EngineError {
    fn from(e: crate::pki::PkiError) -> Self {
        EngineError::Setup(e.to_string())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Setup(format!("cannot start the async runtime: {e}")))
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
    started_unix: u64,
    raws: Vec<observe::Raw>,
    anchors: Vec<(String, Vec<u8>)>,
    report: DeviceReport,
}

impl Recording {
    /// Decode the bytes and build the trace.
    pub fn assemble(self) -> Trace {
        assemble(
            &self.scenario,
            self.started_unix,
            self.raws,
            &self.anchors,
            Some(&self.report),
        )
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
    let serving = tokio::spawn(async move { b.serve_one(brec, false).await });
    let device = device::run(&scenario.device, addr, &rec, true).await;
    // The broker finishes on its own once the device is gone; don't wait forever for it.
    let _ = tokio::time::timeout(broker::IDLE_TIMEOUT, serving).await;
    let report = device?;
    Ok(Recording {
        scenario: scenario.name.clone(),
        started_unix,
        raws: rec.take(),
        anchors: anchors(scenario),
        report,
    })
}

/// The trust anchors of a scenario, with the role to describe them under.
pub fn anchors(scenario: &Scenario) -> Vec<(String, Vec<u8>)> {
    let mut v = roles("device trust anchor", &scenario.device.trust);
    v.extend(roles("broker trust anchor", &scenario.broker.client_roots));
    v
}

/// Trust anchors named `{what}[i]`, for [`assemble`].
pub fn roles(what: &str, roots: &[rustls_pki_types::CertificateDer<'_>]) -> Vec<(String, Vec<u8>)> {
    roots
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{what}[{i}]"), r.to_vec()))
        .collect()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
