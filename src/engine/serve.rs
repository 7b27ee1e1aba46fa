//! `iotls serve`: iotls's broker for real devices (or `openssl s_client`); each session is recorded
//! with the broker's transport tapped and handed to the caller as a trace.

use super::authz::Authorizer;
use super::broker::Broker;
use super::observe::Recorder;
use super::policy_authz::{CaModeAuthorizer, PolicyAuthorizer};
use super::scenario::BrokerSpec;
use super::{assemble, unix_now, EngineError, Observer};
use crate::pki::{load_certs, load_identity, DefaultPki};
use crate::trace::Trace;
use crate::trace::{CertRoleKind, Side};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What `iotls serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub bind: String,
    pub port: u16,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub registry: Option<PathBuf>,
    /// Stop after this many sessions (0 = never).
    pub sessions: u32,
    /// Directory of `iotls pki init` files to use (created if missing) when no --cert is given.
    pub pki_dir: Option<PathBuf>,
    /// The most connections served at once (0 = [`default_max_connections`]); more are refused at
    /// accept.
    pub max_connections: u32,
    /// Seconds a device may take for its TLS handshake, then for its whole CONNECT, and a
    /// subscriber for reading a delivery (0 = the default, [`super::broker::IDLE_TIMEOUT`]).
    pub deadline_secs: u32,
    /// Application protocols the broker accepts (ALPN), like AWS IoT's port 443
    /// (`x-amzn-mqtt-ca`); empty: ALPN is ignored.
    pub alpn: Vec<String>,
    /// CA mode: admit any certificate issued by a registered CA (the certificates in `ca`, or
    /// the PKI's issuing CA), attached to the thing named by its CN and to `policy`.
    pub ca_mode: bool,
    /// CA mode: the policy document every admitted certificate is attached to.
    pub policy: Option<PathBuf>,
}

fn usage(e: impl Into<String>) -> EngineError {
    EngineError::Usage(e.into())
}

/// ALPN protocol names as given on the command line (`--alpn`), checked: each must be 1 to 255
/// bytes (RFC 7301), or it is a usage error naming the command.
pub fn alpn_list(names: &[String], command: &str) -> Result<Vec<String>, EngineError> {
    for n in names {
        if n.is_empty() || n.len() > 255 {
            return Err(usage(format!(
                "{command} --alpn {n:?}: a protocol name must be 1 to 255 bytes (e.g. x-amzn-mqtt-ca)"
            )));
        }
    }
    Ok(names.to_vec())
}

/// How long `serve` waits before accepting again after `accept` failed (e.g. out of file
/// descriptors).
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Build the broker's spec from the options.
pub fn broker_spec(o: &ServeOptions) -> Result<BrokerSpec, EngineError> {
    if o.ca_mode && o.registry.is_some() {
        return Err(usage("--ca-mode and --registry do not go together: in CA mode the registered CAs (--ca) admit certificates and --policy authorizes them"));
    }
    if o.policy.is_some() && !o.ca_mode {
        return Err(usage(
            "--policy is for --ca-mode; without it, policies come from the registry (--registry)",
        ));
    }
    let ca_mode = |cas: &[rustls_pki_types::CertificateDer<'static>]| {
        let policy = o.policy.as_ref().ok_or_else(|| {
            usage("--ca-mode needs --policy FILE: the policy document every admitted certificate is attached to")
        })?;
        CaModeAuthorizer::from_policy_file(cas, policy)
    };
    let mut known_cas = Vec::new();
    let (identity, mut roots, authorizer): (_, _, Arc<dyn Authorizer>) = match (&o.cert, &o.key) {
        (Some(c), Some(k)) => {
            let identity = load_identity(c, k)?;
            let ca = o.ca.as_ref().ok_or_else(|| usage("--ca is needed with --cert: which CA's device certificates should the broker accept?"))?;
            let roots = load_certs(ca)?;
            if o.ca_mode {
                let authz = ca_mode(&roots)?;
                known_cas.extend(authz.registered_cas());
                (identity, roots, Arc::new(authz) as Arc<dyn Authorizer>)
            } else {
                let reg = o
                    .registry
                    .as_ref()
                    .ok_or_else(|| usage("--registry is needed with --cert: which certificates are registered, and with which policies? (docs/policy.md)"))?;
                let authz = PolicyAuthorizer::from_file(reg)?;
                known_cas.extend(authz.registered_cas());
                (identity, roots, Arc::new(authz) as Arc<dyn Authorizer>)
            }
        }
        _ => {
            let dir = o
                .pki_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("iotls-pki"));
            let pki = DefaultPki::load_or_init(&dir).map_err(EngineError::Pki)?;
            let authz: Arc<dyn Authorizer> = if o.ca_mode {
                let cas = match &o.ca {
                    Some(ca) => load_certs(ca)?,
                    None => vec![pki.intermediate.clone()],
                };
                let authz = ca_mode(&cas)?;
                known_cas.extend(authz.registered_cas());
                Arc::new(authz)
            } else {
                let authz = match &o.registry {
                    Some(r) => PolicyAuthorizer::from_file(r)?,
                    None => PolicyAuthorizer::pizza_default(&pki),
                };
                known_cas.push(pki.intermediate.clone());
                known_cas.extend(authz.registered_cas());
                Arc::new(authz)
            };
            (pki.broker.clone(), vec![pki.root.clone()], authz)
        }
    };
    if o.cert.is_none() {
        if let Some(ca) = &o.ca {
            roots = load_certs(ca)?;
        }
    }
    known_cas.dedup();
    Ok(BrokerSpec {
        identity,
        client_roots: roots,
        known_cas,
        authorizer,
        alpn: alpn_list(&o.alpn, "serve")?,
    })
}

/// Serve until `sessions` sessions have ended (or forever), calling `each` with every trace.
/// Prints `listening on ADDR` to stderr first.
pub fn run(o: &ServeOptions, each: impl FnMut(&Trace) -> bool) -> Result<(), EngineError> {
    // Status goes to stderr: stdout carries only sessions (JSON Lines with --json).
    run_with(o, |addr| eprintln!("listening on {addr}"), each)
}

/// The default for `--max-connections`: the process's open-file limit less room for the files
/// iotls itself opens (listener, exports, standard streams), or 1024 where the limit is unknown.
pub fn default_max_connections() -> u32 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|soft| soft.parse::<u64>().ok())
        .map(|n| n.saturating_sub(64).clamp(16, u64::from(u32::MAX)) as u32)
        .unwrap_or(1024)
}

/// [`run`], telling `listening` the address once the broker listens (instead of printing it).
/// `each` gets every session's trace as it ends and returns whether to go on serving.
pub fn run_with(
    o: &ServeOptions,
    listening: impl FnOnce(SocketAddr),
    mut each: impl FnMut(&Trace) -> bool,
) -> Result<(), EngineError> {
    let spec = broker_spec(o)?;
    let ip: std::net::IpAddr = o
        .bind
        .parse()
        .map_err(|_| usage(format!("--bind {:?} is not an IP address", o.bind)))?;
    let mut anchors = super::roles(Side::Broker, CertRoleKind::TrustAnchor, &spec.client_roots);
    anchors.extend(super::roles(
        Side::Broker,
        CertRoleKind::RegisteredCa,
        &spec.known_cas,
    ));
    // Shared by every connection's task (cloning the descriptions per connection kept a copy
    // alive for as long as each connection was held).
    let anchors = Arc::new(anchors);
    let rt = super::runtime()?;
    rt.block_on(async {
        let mut broker = Broker::bind(spec, SocketAddr::new(ip, o.port)).await?;
        if o.deadline_secs > 0 {
            broker.set_deadline(std::time::Duration::from_secs(u64::from(o.deadline_secs)));
        }
        listening(broker.local_addr());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Trace>();
        let mut served = 0u32;
        let mut running = 0u32;
        let max = if o.max_connections == 0 { default_max_connections() } else { o.max_connections };
        let mut refused_over_max = 0u64;
        let mut accept_failing = false;
        loop {
            tokio::select! {
                conn = broker.accept(), if o.sessions == 0 || served + running < o.sessions => {
                    let (tcp, peer) = match conn {
                        Ok(c) => {
                            accept_failing = false;
                            c
                        }
                        Err(e) => {
                            // E.g. out of file descriptors: say it once, back off, keep serving
                            // the connections that are open.
                            if !accept_failing {
                                eprintln!("iotls: {e}; backing off and retrying (raise the open-file limit or lower --max-connections)");
                                accept_failing = true;
                            }
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    if running >= max {
                        // Refused at accept: the connection is closed before any TLS.
                        drop(tcp);
                        refused_over_max += 1;
                        if refused_over_max == 1 || refused_over_max % 1000 == 0 {
                            eprintln!("iotls: {refused_over_max} connection(s) refused: --max-connections {max} reached");
                        }
                        continue;
                    }
                    running += 1;
                    let b = broker.clone();
                    let tx = tx.clone();
                    let anchors = Arc::clone(&anchors);
                    tokio::spawn(async move {
                        let started = unix_now();
                        // Bounded: a long session keeps its start and its end (engine::bound).
                        let rec = Recorder::bounded();
                        b.serve_tcp(tcp, peer, rec.clone(), true).await;
                        let _ = tx.send(assemble(&format!("serve {peer}"), started, rec.take(), anchors.as_slice(), None, Observer::BROKER));
                    });
                }
                Some(trace) = rx.recv() => {
                    running -= 1;
                    served += 1;
                    if !each(&trace) || (o.sessions != 0 && served >= o.sessions) {
                        return Ok(());
                    }
                }
            }
        }
    })
}
