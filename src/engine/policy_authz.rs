//! The broker's authorizers backed by the AWS-IoT-style registry and policy engine:
//! [`PolicyAuthorizer`] over a registry given in advance, and [`CaModeAuthorizer`] ("register your
//! CA" with automatic registration), which admits any certificate a registered CA issued.

use super::authz::{Authorizer, Connection, Explained, MqttAction, PendingPolicy, Verdict};
use super::EngineError;
use crate::pki::DefaultPki;
use crate::policy::{self, certificate_id, Action, CertStatus, CertificateRecord, Registry, Thing};
use crate::trace::{
    CheckId, Enforcement, EventKind, Fact, Failure, FailureCode, PolicyAction, Side,
};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Registry + policies, as AWS IoT applies them.
#[derive(Debug, Clone)]
pub struct PolicyAuthorizer {
    pub registry: Registry,
}

fn action(a: MqttAction) -> Action {
    match a {
        PolicyAction::Connect => Action::Connect,
        PolicyAction::Publish => Action::Publish,
        PolicyAction::RetainPublish => Action::RetainPublish,
        PolicyAction::Subscribe => Action::Subscribe,
        PolicyAction::Receive => Action::Receive,
    }
}

impl PolicyAuthorizer {
    pub fn new(registry: Registry) -> Self {
        PolicyAuthorizer { registry }
    }

    /// Load a registry file (docs/policy.md).
    pub fn from_file(path: &Path) -> Result<Self, EngineError> {
        Registry::load(path)
            .map(Self::new)
            .map_err(EngineError::from)
    }

    /// The registered CA certificates the registry file gave as PEM (not trust anchors by
    /// themselves): they let the broker recognise a device that left out its intermediate.
    pub fn registered_cas(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.registry
            .cas()
            .filter_map(|c| c.der.clone())
            .map(rustls_pki_types::CertificateDer::from)
            .collect()
    }

    /// The pizza shop: both customers' buttons registered ACTIVE, each attached to its own thing and
    /// to the one least-privilege policy that uses `${iot:Certificate.Subject.SerialNumber}`.
    /// It is the `[broker.registry]` of `walkthroughs/pizza-button.toml`, over these certificates.
    pub fn pizza_default(pki: &DefaultPki) -> Self {
        let lesson = crate::walkthrough::load("pizza-button", &[])
            .expect("the built-in lesson loads (tests/walkthroughs.rs)");
        let r = crate::walkthrough::registry_for(
            &lesson,
            &[
                ("issuing", pki.intermediate.as_ref()),
                ("button", pki.button.leaf().as_ref()),
                ("neighbour", pki.neighbour.leaf().as_ref()),
            ],
        )
        .expect("the built-in lesson's registry (tests/walkthroughs.rs)");
        PolicyAuthorizer { registry: r }
    }

    /// The same, with the first button's certificate deactivated.
    pub fn with_button_inactive(mut self, pki: &DefaultPki) -> Self {
        self.registry
            .set_certificate_status(&certificate_id(pki.button.leaf()), CertStatus::Inactive);
        self
    }
}

impl Authorizer for PolicyAuthorizer {
    fn admit(&self, cert_der: &[u8]) -> Verdict {
        let c = self.registry.check_certificate(cert_der);
        let mut facts = vec![Fact::new("certificate id", c.certificate_id.clone())];
        if let Some(s) = c.status {
            facts.push(Fact::new("status", s.as_str()));
        }
        let failure = (!c.ok).then(|| Failure {
            side: Some(Side::Broker),
            check: Some(CheckId::Registry),
            subject: crate::pki::describe_brief(cert_der).subject.into(),
            detail: Some(c.reason.clone()),
            ..Failure::new(match c.status {
                // Known, but not ACTIVE (INACTIVE, REVOKED, …), or its CA is not.
                Some(_) => FailureCode::InactiveCertificate,
                None => FailureCode::Unregistered,
            })
        });
        Verdict {
            allowed: c.ok,
            event: Explained::Now(EventKind::Check {
                check: CheckId::Registry,
                ok: c.ok,
                reason: if c.ok {
                    c.reason
                } else {
                    format!("{}: the broker closes the connection", c.reason)
                },
                about: None,
                signature: None,
                finished: None,
                facts,
                failure: failure.map(Box::new),
            }),
        }
    }

    fn authorize(&self, conn: &Connection, a: MqttAction, value: &str) -> Verdict {
        decide(&self.registry, conn, a, value)
    }
}

/// The policy decision on one request, with the policies the registry attaches to the connection's
/// certificate.
fn decide(registry: &Registry, conn: &Connection, a: MqttAction, value: &str) -> Verdict {
    let mut ctx = registry.context_for(&conn.cert_der, &conn.client_id, Some(conn.source_ip));
    ctx.connect_attrs = conn.connect_attrs.clone();
    ctx.last_will_topic = conn.last_will_topic.clone();
    let id = certificate_id(&conn.cert_der);
    let policies = registry.policies_for(&id);
    let arn = policy::resource_arn(&registry.region, &registry.account, action(a), value);
    let d = policy::evaluate(&policies, action(a), &arn, &ctx);
    Verdict {
        allowed: d.kind == policy::DecisionKind::Allowed,
        // The explanation is worked out when the trace is assembled; the broker says what it did
        // about the decision (`Broker::enforce`).
        event: Explained::Policy(Box::new(PendingPolicy {
            action: a,
            decision: d,
            enforcement: Enforcement::CarriedOut,
        })),
    }
}

/// A CA registered in CA mode, with rustls's verifier that has it as its only trust anchor.
#[derive(Debug)]
struct RegisteredCa {
    der: CertificateDer<'static>,
    id: String,
    /// Its subject, for people.
    name: String,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// CA mode, like AWS IoT's "register your CA" with automatic registration (or mosquitto's
/// `require_certificate` + `use_identity_as_username`): a certificate issued by a registered CA is
/// admitted without being registered in advance. At its first connection it is registered ACTIVE,
/// attached to the thing named by its CN and to the one policy given; from then on, authorization
/// is the registry's and the policy engine's, as with [`PolicyAuthorizer`].
///
/// "Issued by" is rustls's verdict: the certificate is verified against each registered CA alone
/// (as the only trust anchor, no intermediates), so the CA that signed it must be registered.
#[derive(Debug)]
pub struct CaModeAuthorizer {
    cas: Vec<RegisteredCa>,
    policy_name: String,
    /// The CAs, the policy, and every certificate admitted so far with its thing.
    registry: Mutex<Registry>,
}

/// The subject's CN, if the certificate has one.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// The subject and issuer of a certificate, for people.
fn names(der: &[u8]) -> (String, String) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => (c.subject().to_string(), c.issuer().to_string()),
        Err(e) => (format!("(not valid X.509: {e})"), String::new()),
    }
}

impl CaModeAuthorizer {
    /// Register `cas` (ACTIVE) and the policy every admitted certificate is attached to.
    pub fn new(
        cas: &[CertificateDer<'static>],
        policy: policy::Policy,
    ) -> Result<Self, EngineError> {
        if cas.is_empty() {
            return Err(EngineError::Usage(
                "CA mode needs at least one CA certificate to register (--ca FILE)".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut registry = Registry::new();
        let mut registered = Vec::with_capacity(cas.len());
        for der in cas {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(der.clone())
                .map_err(|e| EngineError::tls("registered CA rejected", e))?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| EngineError::tls("registered CA verifier", e))?;
            let id = certificate_id(der);
            registry.add_ca(policy::CaRecord {
                id: id.clone(),
                status: policy::CaStatus::Active,
                der: Some(der.to_vec()),
            });
            registered.push(RegisteredCa {
                der: der.clone(),
                id,
                name: names(der).0,
                verifier,
            });
        }
        let policy_name = policy.name.clone();
        registry.add_policy(policy);
        Ok(CaModeAuthorizer {
            cas: registered,
            policy_name,
            registry: Mutex::new(registry),
        })
    }

    /// [`Self::new`] with the policy read from a policy document; the policy is named after the
    /// file (`room-policy.json` → `room-policy`).
    pub fn from_policy_file(
        cas: &[CertificateDer<'static>],
        path: &Path,
    ) -> Result<Self, EngineError> {
        let json = std::fs::read_to_string(path).map_err(|e| {
            EngineError::Registry(policy::RegistryError::Io {
                path: path.display().to_string(),
                message: format!("cannot read the policy document: {e}"),
            })
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policy".into());
        let p = policy::Policy::parse(&name, &path.display().to_string(), &json)
            .map_err(|e| EngineError::Registry(policy::RegistryError::Policy(e)))?;
        Self::new(cas, p)
    }

    /// The registered CA certificates.
    pub fn registered_cas(&self) -> Vec<CertificateDer<'static>> {
        self.cas.iter().map(|c| c.der.clone()).collect()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic elsewhere cannot leave the registry half-updated: each update is one insert.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn refused(cert_der: &[u8], id: &str, reason: String) -> Verdict {
    Verdict {
        allowed: false,
        event: Explained::Now(EventKind::Check {
            check: CheckId::Registry,
            ok: false,
            reason: format!("{reason}: the broker closes the connection"),
            about: None,
            signature: None,
            finished: None,
            facts: vec![Fact::new("certificate id", id)],
            failure: Some(Box::new(Failure {
                side: Some(Side::Broker),
                check: Some(CheckId::Registry),
                subject: Some(names(cert_der).0),
                detail: Some(reason),
                ..Failure::new(FailureCode::Unregistered)
            })),
        }),
    }
}

impl Authorizer for CaModeAuthorizer {
    fn admit(&self, cert_der: &[u8]) -> Verdict {
        let id = certificate_id(cert_der);
        let end = CertificateDer::from(cert_der.to_vec());
        let now = UnixTime::now();
        let mut rejections = Vec::new();
        let mut admitted_by = None;
        for ca in &self.cas {
            match ca.verifier.verify_client_cert(&end, &[], now) {
                Ok(_) => {
                    admitted_by = Some(ca);
                    break;
                }
                Err(e) => rejections.push(format!(
                    "{}: {}",
                    ca.name,
                    super::observe::explain_error(&e)
                )),
            }
        }
        let Some(ca) = admitted_by else {
            let issuer = names(cert_der).1;
            return refused(
                cert_der,
                &id,
                format!(
                    "certificate {id} (issuer {issuer}) was not issued by a registered CA; rustls against each registered CA alone: {}",
                    rejections.join("; ")
                ),
            );
        };
        let Some(thing) = common_name(cert_der) else {
            return refused(
                cert_der,
                &id,
                format!(
                    "certificate {id} was issued by the registered CA {} but has no CN, and in CA mode the CN names the thing",
                    ca.name
                ),
            );
        };
        let mut registry = self.registry();
        let first = registry.certificate(&id).is_none();
        if first {
            if registry.thing(&thing).is_none() {
                registry.add_thing(Thing {
                    name: thing.clone(),
                    ..Thing::default()
                });
            }
            registry.add_certificate(CertificateRecord {
                id: id.clone(),
                status: CertStatus::Active,
                things: vec![thing.clone()],
                policies: vec![self.policy_name.clone()],
                ca: Some(ca.id.clone()),
            });
        }
        let registered = if first {
            "registered ACTIVE automatically now, at its first connection"
        } else {
            "registered ACTIVE automatically at its first connection"
        };
        Verdict {
            allowed: true,
            event: Explained::Now(EventKind::Check {
                check: CheckId::Registry,
                ok: true,
                reason: format!(
                    "certificate {id} was issued by the registered CA {} (ACTIVE; rustls verified it against that CA alone); {registered}; attached to thing {thing} (its CN) and policy {}",
                    ca.name, self.policy_name
                ),
                about: None,
                signature: None,
                finished: None,
                facts: vec![
                    Fact::new("certificate id", id),
                    Fact::new("status", CertStatus::Active.as_str()),
                    Fact::new("registered CA", ca.name.clone()),
                    Fact::new("CA id", ca.id.clone()),
                    Fact::new("thing", thing),
                    Fact::new("policy", self.policy_name.clone()),
                ],
                failure: None,
            }),
        }
    }

    fn authorize(&self, conn: &Connection, a: MqttAction, value: &str) -> Verdict {
        decide(&self.registry(), conn, a, value)
    }
}
