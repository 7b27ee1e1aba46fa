//! `iotls connect`: iotls's device against a real broker (or `openssl s_server`).

use super::device;
use super::mqtt_io::Version;
use super::observe::Recorder;
use super::preflight::{self, Finding};
use super::scenario::{click_payload, DeviceAction, DeviceSpec};
use super::{assemble, unix_now, EngineError, Observer};
use crate::narrate::AWS_MQTT_ALPN;
use crate::pki::{load_certs, load_identity, subject_cn};
use crate::trace::Trace;
use crate::trace::{CertRoleKind, Side};
use rustls_pki_types::ServerName;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// The port `connect` dials when the address names none: MQTT over TLS (AWS IoT's 8883).
pub const DEFAULT_PORT: u16 = 8883;

/// The port on which AWS IoT takes MQTT with a client certificate only when the ClientHello
/// offers the ALPN protocol `x-amzn-mqtt-ca`; `connect` offers it there unless told otherwise.
pub const ALPN_PORT: u16 = 443;

/// What `iotls connect` was asked to do.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT` (see [`Target::parse`]).
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
    /// ALPN protocols to offer; empty: none, or `x-amzn-mqtt-ca` on port 443.
    pub alpn: Vec<String>,
    /// QoS of the publish to `topic` (0 or 1).
    pub qos: u8,
    /// Publish with the retain flag.
    pub retain: bool,
    /// Filters to subscribe to (QoS 1) before publishing.
    pub subscribe: Vec<String>,
    /// Seconds to stay connected at the end, collecting deliveries (0: none).
    pub listen: u64,
    /// Keep-alive asked for in CONNECT, seconds.
    pub keep_alive: u16,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            addr: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            ca: PathBuf::new(),
            server_name: None,
            client_id: None,
            topic: None,
            message: None,
            tls_only: false,
            mqtt5: false,
            alpn: Vec::new(),
            qos: 1,
            retain: false,
            subscribe: Vec::new(),
            listen: 0,
            keep_alive: super::scenario::DEFAULT_KEEP_ALIVE,
        }
    }
}

/// Where to connect: a host (DNS name or IP literal, without brackets) and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `HOST` (port 8883), `HOST:PORT`, `[IPv6]` (port 8883) or `[IPv6]:PORT`. Anything else is a
    /// usage error that says what to write.
    pub fn parse(addr: &str) -> Result<Target, EngineError> {
        let bad = |why: &str| {
            EngineError::Usage(format!(
                "broker address {addr:?}: {why}; write HOST or HOST:PORT (e.g. \
                 abcdefgh-ats.iot.us-east-1.amazonaws.com or 127.0.0.1:8883; IPv6 as [::1]:8883)"
            ))
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(&format!("{p:?} is not a port (1 to 65535)"))),
        };
        if addr.is_empty() {
            return Err(bad("it is empty"));
        }
        if addr.contains("://") || addr.contains('/') {
            return Err(bad("give the host name alone, without a scheme or path"));
        }
        if let Some(rest) = addr.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("a `[` without its `]`"))?;
            if ip.parse::<Ipv6Addr>().is_err() {
                return Err(bad(&format!("{ip:?} in brackets is not an IPv6 address")));
            }
            let port = match after {
                "" => DEFAULT_PORT,
                p => port(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected `:PORT` after `]`"))?,
                )?,
            };
            return Ok(Target {
                host: ip.to_string(),
                port,
            });
        }
        if addr.parse::<Ipv6Addr>().is_ok() {
            // `::1:8883` is itself an IPv6 address: only brackets say where the port starts.
            return Err(bad(
                "an IPv6 address goes in brackets, with or without a port",
            ));
        }
        match addr.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => Err(bad("an IPv6 address goes in brackets")),
            Some(("", _)) => Err(bad("the host is missing")),
            Some((h, p)) => Ok(Target {
                host: h.to_string(),
                port: port(p)?,
            }),
            None => Ok(Target {
                host: addr.to_string(),
                port: DEFAULT_PORT,
            }),
        }
    }

    /// `host:port`, with an IPv6 literal in brackets: what the resolver takes.
    pub fn dial(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The ALPN protocols to offer: those asked for, else `x-amzn-mqtt-ca` on port 443 (AWS IoT's
    /// MQTT with a client certificate there), else none.
    pub fn alpn(&self, asked: &[String]) -> Vec<String> {
        if asked.is_empty() && self.port == ALPN_PORT {
            vec![AWS_MQTT_ALPN.to_string()]
        } else {
            asked.to_vec()
        }
    }
}

/// The SNI a device asking for `name` sends: the name when it is a DNS name, none when it is an
/// IP literal (RFC 6066 allows only host names in SNI; rustls then sends no server_name extension
/// and still checks the broker's certificate against the IP address).
pub fn sni(name: &str) -> Option<String> {
    match ServerName::try_from(name) {
        Ok(ServerName::IpAddress(_)) => None,
        _ => Some(name.to_string()),
    }
}

/// The device's actions: subscribe to each filter, publish once, then listen — with a PINGREQ
/// every keep-alive interval while listening, so the broker does not close an idle connection.
fn actions(o: &ConnectOptions, client_id: &str) -> Vec<DeviceAction> {
    let mut v: Vec<DeviceAction> = o
        .subscribe
        .iter()
        .map(|f| DeviceAction::Subscribe { filter: f.clone() })
        .collect();
    if let Some(t) = &o.topic {
        v.push(DeviceAction::Publish {
            topic: t.clone(),
            payload: o
                .message
                .clone()
                .map(String::into_bytes)
                .unwrap_or_else(|| click_payload(client_id, "SINGLE")),
            qos: o.qos,
            retain: o.retain,
        });
    }
    let mut left = o.listen.saturating_mul(1000);
    let chunk = match o.keep_alive {
        0 => left,
        k => u64::from(k) * 1000,
    };
    while left > 0 {
        let take = left.min(chunk);
        v.push(DeviceAction::Listen { millis: take });
        left -= take;
        if left > 0 {
            v.push(DeviceAction::Ping);
        }
    }
    v
}

/// Connect, run the session, and return its trace. Setup problems (files, address) are errors;
/// anything that goes wrong on the wire is in the trace. Pre-flight warnings are dropped; see
/// [`run_with`].
pub fn run(o: &ConnectOptions) -> Result<Trace, EngineError> {
    run_with(o, |_| {})
}

/// [`run`], handing each pre-flight warning to `warn` before dialing.
pub fn run_with(o: &ConnectOptions, mut warn: impl FnMut(&Finding)) -> Result<Trace, EngineError> {
    let target = Target::parse(&o.addr)?;
    if o.qos > 1 {
        return Err(EngineError::Usage(format!(
            "--qos {}: iotls's device publishes at QoS 0 or 1 (AWS IoT has no QoS 2)",
            o.qos
        )));
    }
    let alpn = super::serve::alpn_list(&target.alpn(&o.alpn), "connect")?;
    let files = preflight::Files {
        cert: &o.cert,
        key: &o.key,
        ca: &o.ca,
    };
    for f in preflight::check(&files, unix_now() as i64)? {
        warn(&f);
    }
    let identity = load_identity(&o.cert, &o.key)?;
    let trust = load_certs(&o.ca)?;
    let client_id = o
        .client_id
        .clone()
        .unwrap_or_else(|| subject_cn(identity.leaf()));
    let actions = actions(o, &client_id);
    let mqtt_version = if o.mqtt5 { Version::V5 } else { Version::V4 };
    let spec = DeviceSpec {
        mqtt_version,
        persistent: false,
        keep_alive: o.keep_alive,
        will: None,
        identity,
        trust,
        server_name: o.server_name.clone().unwrap_or(target.host.clone()),
        client_id,
        actions,
        alpn,
        cipher_suites: Vec::new(),
    };
    let dial = target.dial();
    let rt = super::runtime()?;
    rt.block_on(async {
        let addr = tokio::net::lookup_host(&dial)
            .await
            .map_err(|source| EngineError::Resolve {
                addr: dial.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| EngineError::NoAddress { addr: dial.clone() })?;
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
