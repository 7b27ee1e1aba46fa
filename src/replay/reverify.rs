//! Offline re-verification: what the recorded bytes allow iotls to check again, with the same
//! libraries the live sides use. Every check written here is iotls's own (`side: iotls`); what
//! cannot be checked is listed in [`ReplayInfo::not_reverified`] with why, never written as a
//! failed check.
//!
//! - both chains: rustls's `WebPkiServerVerifier` (with the server name from SNI) and
//!   `WebPkiClientVerifier`, against `--ca` or the trust anchors the trace records, at the time the
//!   session started;
//! - the ServerKeyExchange signature (over client_random ‖ server_random ‖ ECDHE parameters) and
//!   the CertificateVerify signature (over every handshake message before it), with the public key
//!   of the signer's certificate: rustls's `verify_tls12_signature`;
//! - both Finished: recomputed by the dissector when a key-log line matches (nothing to add here);
//! - with a registry: the registry check and the policy decision of each CONNECT, PUBLISH and
//!   SUBSCRIBE, as `engine::policy_authz` makes them for the broker.

use crate::engine::authz::{Authorizer, Connection, MqttAction};
use crate::engine::certificate_list;
use crate::engine::policy_authz::PolicyAuthorizer;
use crate::engine::verdict::{Evidence, HandshakeMessage, Pending, Verdict};
use crate::policy::Registry;
use crate::trace::{
    CertRoleKind, CheckId, Enforcement, Event, EventKind, Fact, Failure, FailureCode,
    HandshakeType, MqttPacket, MqttPacketType, NotReverified, Phase, ReplayInfo, Side, Trace,
};
use rustls::client::danger::ServerCertVerifier;
// rustls is pinned to one version (Cargo.toml): its own decoder reads the signature bytes, so
// the scheme and signature are taken exactly as rustls takes them on a live connection.
use rustls::internal::msgs::codec::{Codec, Reader};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Roots given on the command line (`--ca`), with where they came from.
#[derive(Clone, Debug)]
pub struct Roots {
    pub certs: Vec<CertificateDer<'static>>,
    pub from: String,
}

/// What iotls re-verifies with.
#[derive(Clone, Debug, Default)]
pub struct Offline {
    /// `--ca`: roots for both chains. Without it, the trust anchors the trace records.
    pub ca: Option<Roots>,
    /// `--registry`: the registry and the file it came from.
    pub registry: Option<(Registry, String)>,
}

/// A check (or decision) to add: the event it is about, the side that receives that message,
/// and the event.
struct Add {
    about: usize,
    receiver: Side,
    phase: Phase,
    kind: EventKind,
}

/// The name asked for when the device sent no SNI: rustls then checks the chain, and the name
/// check (which fails) is not reported.
const NO_SNI: &str = "no-sni.invalid";

/// Re-verifies `trace` offline: adds iotls's checks next to the messages they are about, and
/// lists in `info` what could not be checked.
pub fn reverify(trace: &mut Trace, with: &Offline, info: &mut ReplayInfo) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(trace.started_unix));
    let checked_at = crate::pki::rfc3339(trace.started_unix as i64);
    let mut adds: Vec<Add> = Vec::new();
    let mut not = |check: &str, reason: String| {
        info.not_reverified.push(NotReverified {
            check: check.to_string(),
            reason,
        })
    };
    let hs = handshakes(trace);
    // What a check's evidence is rebuilt from, as for a live check (`Pending::resolve`).
    let messages: Vec<HandshakeMessage> = hs.iter().map(|(_, s, _, m)| (*s, m.clone())).collect();
    let first = |side: Side, t: HandshakeType| {
        hs.iter()
            .find(|(_, s, ty, _)| *s == side && *ty == t)
            .map(|(i, _, _, m)| (*i, m.as_slice()))
    };
    let chain_of = |side: Side| -> Option<(usize, Vec<Vec<u8>>)> {
        let (i, m) = first(side, HandshakeType::CERTIFICATE)?;
        Some((
            i,
            certificate_list(m)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect(),
        ))
    };
    let randoms = match (
        first(Side::Device, HandshakeType::CLIENT_HELLO),
        first(Side::Broker, HandshakeType::SERVER_HELLO),
    ) {
        (Some((_, ch)), Some((_, sh))) if ch.len() >= 38 && sh.len() >= 38 => {
            Some([&ch[6..38], &sh[6..38]].concat())
        }
        _ => None,
    };
    let mut roots_used: Vec<String> = Vec::new();

    // The broker's chain and name, as the device's rustls checks them.
    match (chain_of(Side::Broker), roots_for(trace, with, Side::Device)) {
        (None, _) => not(
            "server_chain",
            "the broker's Certificate message is not in the record".into(),
        ),
        (Some((_, chain)), _) if chain.is_empty() => not(
            "server_chain",
            "the broker sent an empty certificate list".into(),
        ),
        (Some(_), None) => {
            let why = "no --ca given, and the trace records no trust anchor of the device";
            not("server_chain", why.into());
            not("server_name", why.into());
        }
        (Some((at, chain)), Some((roots, from))) => {
            let sni = trace.tls.as_ref().and_then(|t| t.sni.clone());
            match server_chain(&provider, &chain, &roots, sni.as_deref(), now) {
                Err(why) => not("server_chain", format!("{why} ({from})")),
                Ok(verdicts) => {
                    roots_used.push(from.clone());
                    for (kind, error) in verdicts {
                        let ok_reason = match &kind {
                            Verdict::ServerChain { .. } => Some(format!(
                                "the broker's chain leads to a root in {from}; every signature, \
                                 validity period (at {checked_at}) and the serverAuth EKU check out"
                            )),
                            _ => None,
                        };
                        let ev = Evidence::chain_of(&chain, roots.clone().into());
                        let (phase, _) = kind.at();
                        let checked = iotls_check(
                            &messages,
                            Pending {
                                kind,
                                error,
                                evidence: ev,
                            },
                            ok_reason,
                            vec![
                                Fact::new(
                                    "verified by",
                                    "iotls, offline: rustls's WebPkiServerVerifier",
                                ),
                                Fact::new("roots", from.clone()),
                                Fact::new("checked at", checked_at.clone()),
                            ],
                        );
                        adds.push(Add {
                            about: at,
                            receiver: Side::Device,
                            phase,
                            kind: checked,
                        });
                    }
                    if sni.is_none() {
                        not(
                            "server_name",
                            "the device sent no server name (SNI), so there is no name to check \
                             the certificate against"
                                .into(),
                        );
                    }
                }
            }
        }
    }

    // The ServerKeyExchange signature.
    match (
        first(Side::Broker, HandshakeType::SERVER_KEY_EXCHANGE),
        chain_of(Side::Broker).and_then(|(_, c)| c.into_iter().next()),
        &randoms,
    ) {
        (None, _, _) => {
            if first(Side::Broker, HandshakeType::SERVER_HELLO).is_some() {
                not(
                    "server_kx_signature",
                    "the broker's ServerKeyExchange message is not in the record".into(),
                )
            }
        }
        (_, None, _) => not(
            "server_kx_signature",
            "the broker's certificate is not in the record, so its public key is unknown".into(),
        ),
        (_, _, None) => not(
            "server_kx_signature",
            "the hellos (and so the randoms the signature covers) are not both in the record"
                .into(),
        ),
        (Some((at, ske)), Some(leaf), Some(randoms)) => match ske_parts(ske) {
            None => not(
                "server_kx_signature",
                "the ServerKeyExchange is not a named-curve ECDHE key exchange iotls can read"
                    .into(),
            ),
            Some((params, dss)) => {
                let message = [randoms.as_slice(), params].concat();
                adds.push(Add {
                    about: at,
                    receiver: Side::Device,
                    phase: Phase::ServerAuth,
                    kind: signature(
                        &provider,
                        &messages,
                        Verdict::ServerKxSignature,
                        &message,
                        &leaf,
                        &dss,
                    ),
                });
            }
        },
    }

    // The device's chain, as the broker's rustls checks it.
    match (chain_of(Side::Device), roots_for(trace, with, Side::Broker)) {
        (None, _) => {
            if first(Side::Broker, HandshakeType::CERTIFICATE_REQUEST).is_some() {
                not(
                    "client_chain",
                    "the device's Certificate message is not in the record".into(),
                )
            }
        }
        (Some((_, chain)), _) if chain.is_empty() => not(
            "client_chain",
            "the device sent an empty certificate list".into(),
        ),
        (Some(_), None) => not(
            "client_chain",
            "no --ca given, and the trace records no trust anchor of the broker".into(),
        ),
        (Some((at, chain)), Some((roots, from))) => {
            match client_chain(&provider, &chain, &roots, now) {
                Err(why) => not("client_chain", format!("{why} ({from})")),
                Ok(error) => {
                    if !roots_used.contains(&from) {
                        roots_used.push(from.clone());
                    }
                    let ev = Evidence::chain_of(&chain, roots.into());
                    let ok_reason = format!(
                        "the device's chain leads to a root in {from}; every signature, validity \
                         period (at {checked_at}) and the clientAuth EKU check out"
                    );
                    let checked = iotls_check(
                        &messages,
                        Pending {
                            kind: Verdict::ClientChain,
                            error,
                            evidence: ev,
                        },
                        Some(ok_reason),
                        vec![
                            Fact::new(
                                "verified by",
                                "iotls, offline: rustls's WebPkiClientVerifier",
                            ),
                            Fact::new("roots", from),
                            Fact::new("checked at", checked_at.clone()),
                        ],
                    );
                    adds.push(Add {
                        about: at,
                        receiver: Side::Broker,
                        phase: Phase::ClientAuth,
                        kind: checked,
                    });
                }
            }
        }
    }

    // The CertificateVerify signature: over every handshake message before it.
    if let Some((at, cv)) = first(Side::Device, HandshakeType::CERTIFICATE_VERIFY) {
        let leaf = chain_of(Side::Device).and_then(|(_, c)| c.into_iter().next());
        let dss = cv
            .get(4..)
            .and_then(|b| DigitallySignedStruct::read(&mut Reader::init(b)).ok());
        match (leaf, dss) {
            (None, _) => not(
                "certificate_verify",
                "the device's certificate is not in the record, so its public key is unknown"
                    .into(),
            ),
            (_, None) => not(
                "certificate_verify",
                "the CertificateVerify message cannot be read".into(),
            ),
            (Some(leaf), Some(dss)) => {
                let message: Vec<u8> = hs
                    .iter()
                    .take_while(|(i, ..)| *i < at)
                    .flat_map(|(_, _, _, m)| m.iter().copied())
                    .collect();
                adds.push(Add {
                    about: at,
                    receiver: Side::Broker,
                    phase: Phase::HandshakeSignature,
                    kind: signature(
                        &provider,
                        &messages,
                        Verdict::CertificateVerify,
                        &message,
                        &leaf,
                        &dss,
                    ),
                });
            }
        }
    }

    // Both Finished: the dissector recomputed them if it had the key.
    for (check, sender) in [
        (CheckId::ClientFinished, Side::Device),
        (CheckId::ServerFinished, Side::Broker),
    ] {
        let done = trace.check_by(Side::Iotls, check).is_some();
        let sent = trace
            .events
            .iter()
            .any(|e| e.side == sender && matches!(e.kind, EventKind::ChangeCipherSpec { .. }));
        if !done && sent {
            not(check.as_str(), undecrypted(trace, sender));
        }
    }

    // MQTT: decoded by the dissector when the records could be decrypted.
    let hidden = trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::AppData {
                    plaintext: None,
                    ..
                }
            )
        })
        .count();
    if hidden > 0 {
        let sender = trace
            .events
            .iter()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::AppData {
                        plaintext: None,
                        ..
                    }
                )
            })
            .map(|e| e.side)
            .unwrap_or(Side::Device);
        not(
            "mqtt",
            format!(
                "{hidden} application-data record(s) could not be decrypted, so the MQTT inside is \
                 not shown: {}",
                undecrypted(trace, sender)
            ),
        );
    }

    // Policies.
    let requests = trace
        .mqtt_packets()
        .filter(|(e, p)| e.side == Side::Device && is_request(p))
        .count();
    match &with.registry {
        Some((registry, from)) => {
            match chain_of(Side::Device).and_then(|(_, c)| c.into_iter().next()) {
                None => not(
                    "policy",
                    "the device's certificate is not in the record, so the registry cannot be \
                     asked about it"
                        .into(),
                ),
                Some(leaf) => {
                    let before = adds.len();
                    policies(trace, registry, &leaf, &mut adds);
                    if adds.len() == before && requests == 0 {
                        not(
                            "policy",
                            format!("no CONNECT, PUBLISH or SUBSCRIBE is in the record to evaluate ({from})"),
                        );
                    }
                }
            }
        }
        None => {
            let broker_decided = trace
                .events
                .iter()
                .any(|e| e.side == Side::Broker && matches!(e.kind, EventKind::Policy(_)));
            if requests > 0 && !broker_decided {
                not("policy", "no --registry given".into());
            }
        }
    }

    if !roots_used.is_empty() {
        info.roots = Some(roots_used.join("; "));
    }
    insert(&mut trace.events, adds);
}

/// Every handshake message: (event index, sender, type, bytes with header).
fn handshakes(trace: &Trace) -> Vec<(usize, Side, HandshakeType, Vec<u8>)> {
    trace
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            EventKind::Handshake { msg, hex, .. } => Some((i, e.side, *msg, hex.clone())),
            _ => None,
        })
        .collect()
}

/// The roots to check `side`'s view with: `--ca`, else the trust anchors of that side the trace
/// records.
fn roots_for(
    trace: &Trace,
    with: &Offline,
    side: Side,
) -> Option<(Vec<CertificateDer<'static>>, String)> {
    if let Some(r) = &with.ca {
        return Some((r.certs.clone(), r.from.clone()));
    }
    let anchors: Vec<CertificateDer<'static>> = trace
        .certificates
        .iter()
        .filter(|c| {
            c.roles
                .iter()
                .any(|r| r.side == side && r.kind == CertRoleKind::TrustAnchor)
        })
        .map(|c| CertificateDer::from(c.der.clone()))
        .collect();
    (!anchors.is_empty()).then(|| {
        (
            anchors,
            format!("the {}'s trust anchors recorded in the trace", side.name()),
        )
    })
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err("none of the roots can be used as a trust anchor".into());
    }
    Ok(Arc::new(store))
}

/// rustls's verdicts on the broker's chain and name: the chain check, then (if the chain passed
/// and there is a name) the name check.
fn server_chain(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    chain: &[Vec<u8>],
    roots: &[CertificateDer<'static>],
    sni: Option<&str>,
    now: UnixTime,
) -> Result<Vec<(Verdict, Option<rustls::Error>)>, String> {
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        root_store(roots)?,
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("rustls cannot build a verifier: {e}"))?;
    let asked = sni.unwrap_or(NO_SNI);
    let name = ServerName::try_from(asked.to_string())
        .or_else(|_| ServerName::try_from(NO_SNI.to_string()))
        .map_err(|e| format!("no server name to check with: {e}"))?;
    let leaf = CertificateDer::from(chain[0].clone());
    let rest: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let r = verifier.verify_server_cert(&leaf, &rest, &name, &[], now);
    // webpki checks the chain first, the name second: a name error means the chain was good.
    let name_err = matches!(
        &r,
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    );
    let error = r.err();
    Ok(if name_err || error.is_none() {
        let mut v = vec![(
            Verdict::ServerChain {
                name_failed: name_err,
            },
            None,
        )];
        if sni.is_some() {
            v.push((
                Verdict::ServerName {
                    asked: asked.to_string(),
                },
                error,
            ));
        }
        v
    } else {
        vec![(Verdict::ServerChain { name_failed: false }, error)]
    })
}

/// rustls's verdict on the device's chain (None = passed).
fn client_chain(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    chain: &[Vec<u8>],
    roots: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<Option<rustls::Error>, String> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        root_store(roots)?,
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("rustls cannot build a verifier: {e}"))?;
    let leaf = CertificateDer::from(chain[0].clone());
    let rest: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    Ok(verifier.verify_client_cert(&leaf, &rest, now).err())
}

/// ECDHE parameters (curve type 3 = named curve, group, point) and the signature that follows.
fn ske_parts(msg: &[u8]) -> Option<(&[u8], DigitallySignedStruct)> {
    let body = msg.get(4..)?;
    if body.first() != Some(&3) {
        return None;
    }
    let plen = 4 + *body.get(3)? as usize;
    let params = body.get(..plen)?;
    let dss = DigitallySignedStruct::read(&mut Reader::init(body.get(plen..)?)).ok()?;
    Some((params, dss))
}

/// A handshake signature checked with the public key of `cert`, as rustls checks it.
fn signature(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    messages: &[HandshakeMessage],
    kind: Verdict,
    message: &[u8],
    cert: &[u8],
    dss: &DigitallySignedStruct,
) -> EventKind {
    let cert = CertificateDer::from(cert);
    let r = rustls::crypto::verify_tls12_signature(
        message,
        &cert,
        dss,
        &provider.signature_verification_algorithms,
    );
    iotls_check(
        messages,
        Pending {
            kind,
            error: r.err(),
            evidence: Evidence::signature(message, &cert, dss),
        },
        None,
        vec![Fact::new(
            "verified by",
            "iotls, offline: rustls's verify_tls12_signature with the certificate's public key",
        )],
    )
}

/// A verdict worked out as the live checks are (reason, facts, failure), relabelled as iotls's.
fn iotls_check(
    messages: &[HandshakeMessage],
    p: Pending,
    ok_reason: Option<String>,
    extra: Vec<Fact>,
) -> EventKind {
    match p.resolve(messages) {
        EventKind::Check {
            check,
            ok,
            reason,
            about,
            mut facts,
            failure,
            signature,
            finished,
        } => {
            facts.extend(extra);
            EventKind::Check {
                signature,
                finished,
                check,
                ok,
                reason: match (ok, ok_reason) {
                    (true, Some(r)) => r,
                    _ => reason,
                },
                about,
                facts,
                failure: failure.map(|f| {
                    Box::new(Failure {
                        side: Some(Side::Iotls),
                        ..*f
                    })
                }),
            }
        }
        other => other,
    }
}

/// Why `sender`'s encrypted records were not decrypted, in the dissector's words.
fn undecrypted(trace: &Trace, sender: Side) -> String {
    trace
        .events
        .iter()
        .filter(|e| e.side == sender)
        .find_map(|e| match &e.kind {
            EventKind::Undecodable { reason, .. } if reason.contains("decrypt") => Some(
                reason
                    .split_once(": ")
                    .map(|(_, r)| r)
                    .unwrap_or(reason)
                    .to_string(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| "its encrypted records were not decrypted".to_string())
}

fn is_request(p: &MqttPacket) -> bool {
    matches!(
        p.packet,
        MqttPacketType::Connect | MqttPacketType::Publish | MqttPacketType::Subscribe
    )
}

/// The registry check and the policy decisions the broker would make for the device's CONNECT,
/// PUBLISH and SUBSCRIBE packets, with `registry`.
fn policies(trace: &Trace, registry: &Registry, leaf: &[u8], adds: &mut Vec<Add>) {
    let authz = PolicyAuthorizer::new(registry.clone());
    let source_ip = trace
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Tcp { device_addr, .. } => device_addr
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.ip()),
            _ => None,
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut conn = Connection {
        cert_der: leaf.to_vec(),
        client_id: String::new(),
        source_ip,
        connect_attrs: Vec::new(),
        last_will_topic: None,
        basis: Default::default(),
    };
    let mut admitted = None;
    for (at, e) in trace.events.iter().enumerate() {
        let EventKind::AppData { mqtt, .. } = &e.kind else {
            continue;
        };
        if e.side != Side::Device {
            continue;
        }
        for p in mqtt {
            let decide =
                |adds: &mut Vec<Add>, action: MqttAction, value: &str, conn: &Connection| {
                    let v = authz.authorize(conn, action, value);
                    if let EventKind::Policy(mut pe) = v.event.resolve() {
                        pe.enforcement = Enforcement::NotEnforced;
                        adds.push(Add {
                            about: at,
                            receiver: Side::Broker,
                            phase: Phase::Policy,
                            kind: EventKind::Policy(pe),
                        });
                    }
                };
            match p.packet {
                MqttPacketType::Connect => {
                    let ok = registry_check(registry, leaf, at, adds);
                    admitted = Some(ok);
                    if !ok {
                        continue;
                    }
                    conn.client_id = p.client_id.clone().unwrap_or_default();
                    let version = crate::mqtt::connect::protocol_version(&p.hex).ok();
                    let connect =
                        version.and_then(|v| crate::mqtt::Connect::decode(&p.hex, v).ok());
                    if let Some((c, _)) = &connect {
                        conn.connect_attrs.clear();
                        if !c.clean_start {
                            conn.connect_attrs.push("PersistentConnect".into());
                        }
                        if c.will.is_some() {
                            conn.connect_attrs.push("LastWill".into());
                        }
                        conn.last_will_topic = c.will.as_ref().map(|w| w.topic.clone());
                    }
                    decide(adds, MqttAction::Connect, &conn.client_id.clone(), &conn);
                    if let Some((c, _)) = &connect {
                        if let Some(w) = &c.will {
                            if w.retain {
                                decide(adds, MqttAction::RetainPublish, &w.topic, &conn);
                            }
                            decide(adds, MqttAction::Publish, &w.topic, &conn);
                        }
                    }
                }
                _ if admitted == Some(false) => {}
                MqttPacketType::Publish => {
                    let topic = p.topic.clone().unwrap_or_default();
                    if p.retain == Some(true) {
                        decide(adds, MqttAction::RetainPublish, &topic, &conn);
                    }
                    decide(adds, MqttAction::Publish, &topic, &conn);
                }
                MqttPacketType::Subscribe => {
                    for f in &p.filters {
                        decide(adds, MqttAction::Subscribe, f, &conn);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The registry check the broker makes before any policy; true when the certificate passes.
fn registry_check(registry: &Registry, leaf: &[u8], at: usize, adds: &mut Vec<Add>) -> bool {
    let c = registry.check_certificate(leaf);
    let mut facts = vec![Fact::new("certificate id", c.certificate_id.clone())];
    if let Some(s) = c.status {
        facts.push(Fact::new("status", s.as_str()));
    }
    let failure = (!c.ok).then(|| Failure {
        side: Some(Side::Iotls),
        check: Some(CheckId::Registry),
        subject: Some(crate::pki::describe_brief(leaf).subject),
        detail: Some(c.reason.clone()),
        ..Failure::new(match c.status {
            Some(_) => FailureCode::InactiveCertificate,
            None => FailureCode::Unregistered,
        })
    });
    adds.push(Add {
        about: at,
        receiver: Side::Broker,
        phase: Phase::Policy,
        kind: EventKind::Check {
            check: CheckId::Registry,
            ok: c.ok,
            reason: c.reason,
            about: None,
            signature: None,
            finished: None,
            facts,
            failure: failure.map(Box::new),
        },
    });
    c.ok
}

/// Whether an event is bytes on the wire.
fn on_wire(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::Handshake { .. }
            | EventKind::ChangeCipherSpec { .. }
            | EventKind::Alert { .. }
            | EventKind::AppData { .. }
            | EventKind::Undecodable { .. }
    )
}

/// Puts each added check where the receiver of the message it is about had that message in hand:
/// before the receiver's next bytes (or iotls's recomputation of the receiver's Finished check),
/// like the Finished recomputations; then numbers the events again.
fn insert(events: &mut Vec<Event>, adds: Vec<Add>) {
    let mut placed: Vec<(usize, usize, Add)> = adds
        .into_iter()
        .enumerate()
        .map(|(n, a)| {
            let finished = match a.receiver {
                Side::Broker => CheckId::ClientFinished,
                _ => CheckId::ServerFinished,
            };
            let pos = events
                .iter()
                .enumerate()
                .skip(a.about + 1)
                .find(|(_, e)| {
                    (e.side == a.receiver && on_wire(&e.kind))
                        || (e.side == Side::Iotls
                            && matches!(&e.kind, EventKind::Check { check, .. } if *check == finished))
                })
                .map(|(i, _)| i)
                .unwrap_or(events.len());
            (pos, n, a)
        })
        .collect();
    placed.sort_by_key(|(pos, n, _)| (*pos, *n));
    let old = std::mem::take(events);
    let mut adds = placed.into_iter().peekable();
    let mut last_t = 0;
    for (i, e) in old.into_iter().enumerate() {
        while let Some((_, _, a)) = adds.next_if(|(pos, _, _)| *pos == i) {
            events.push(Event {
                seq: 0,
                t_us: last_t,
                phase: a.phase,
                side: Side::Iotls,
                kind: a.kind,
            });
        }
        last_t = e.t_us;
        events.push(e);
    }
    for (_, _, a) in adds {
        events.push(Event {
            seq: 0,
            t_us: last_t,
            phase: a.phase,
            side: Side::Iotls,
            kind: a.kind,
        });
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.seq = i as u32;
    }
}
