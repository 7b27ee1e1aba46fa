//! The broker's authorizers backed by the AWS-IoT-style registry and policy engine:
//! [`PolicyAuthorizer`] over a registry given in advance, and [`CaModeAuthorizer`] ("register your
//! CA" with automatic registration), which admits any certificate a registered CA issued.

use super::authz::{
    policy_action, Authorizer, Connection, Explained, MqttAction, PendingPolicy, Verdict,
};
use super::EngineError;
use crate::pki::DefaultPki;
use crate::policy::{
    self, certificate_id, Basis, CertStatus, Certificate, CertificateRecord, Registry, Thing,
};
use crate::trace::{CheckId, EventKind, Fact, Failure, FailureCode, Side};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Registry + policies, as AWS IoT applies them.
#[derive(Debug, Clone)]
pub struct PolicyAuthorizer {
    pub registry: Registry,
    shared: Arc<Mutex<Shared>>,
}

/// What the connections' [`Basis`]es share: each registered certificate read once (its
/// variables), the region and account.
#[derive(Debug, Default)]
struct Shared {
    /// By certificate id; only certificates the registry has, so it grows as the registry does.
    certs: HashMap<String, Arc<Certificate>>,
    region: Arc<str>,
    account: Arc<str>,
}

impl Shared {
    fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
        // Each update is one insert or one assignment: a panic elsewhere leaves it usable.
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The certificate `der` (id `id`) read once: kept if `registered`.
    fn certificate(&mut self, id: &str, der: &[u8], registered: bool) -> Arc<Certificate> {
        match self.certs.get(id) {
            Some(c) if c.is(der) => c.clone(),
            _ => {
                let c = Arc::new(Certificate::from_der(der));
                if registered {
                    self.certs.insert(id.to_string(), c.clone());
                }
                c
            }
        }
    }
}

impl PolicyAuthorizer {
    pub fn new(registry: Registry) -> Self {
        PolicyAuthorizer {
            registry,
            shared: Arc::default(),
        }
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
        PolicyAuthorizer::new(r)
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
        decide(&self.registry, &self.shared, conn, a, value)
    }
}

/// The policy decision on one request, with the policies the registry attaches to the connection's
/// certificate, against the connection's [`Basis`].
fn decide(
    registry: &Registry,
    shared: &Mutex<Shared>,
    conn: &Connection,
    a: MqttAction,
    value: &str,
) -> Verdict {
    let basis = basis_for(registry, shared, conn);
    let kind = basis.evaluate(policy_action(a), value).kind;
    Verdict {
        allowed: kind == policy::DecisionKind::Allowed,
        // Recorded as the request and the answer; the explanation is the same evaluation made
        // again when the trace is assembled. The broker says what it did about the decision
        // (`Broker::enforce`).
        event: Explained::Policy(Box::new(PendingPolicy::new(a, kind, value, basis))),
    }
}

/// The connection's basis: the one it keeps while nothing it was built from has changed.
fn basis_for(registry: &Registry, shared: &Mutex<Shared>, conn: &Connection) -> Arc<Basis> {
    conn.basis.get(
        registry.generation(),
        |b| {
            b.cert.is(&conn.cert_der)
                && b.client_id == conn.client_id
                && b.source_ip == Some(conn.source_ip)
                && b.connect_attrs == conn.connect_attrs
                && b.last_will_topic == conn.last_will_topic
                && *b.region == registry.region
                && *b.account == registry.account
        },
        || build_basis(registry, shared, conn),
    )
}

/// What `conn`'s requests are evaluated against now: [`Registry::context_for`], with the
/// certificate read once for all its connections, and the policies shared with the registry.
fn build_basis(registry: &Registry, shared: &Mutex<Shared>, conn: &Connection) -> Basis {
    let id = certificate_id(&conn.cert_der);
    let mut sh = Shared::lock(shared);
    let cert = sh.certificate(&id, &conn.cert_der, registry.certificate(&id).is_some());
    if *sh.region != registry.region {
        sh.region = registry.region.as_str().into();
    }
    if *sh.account != registry.account {
        sh.account = registry.account.as_str().into();
    }
    Basis {
        policies: registry.attached_policies(&id).into_boxed_slice(),
        cert,
        client_id: conn.client_id.clone(),
        thing: registry.thing_context(&id, &conn.client_id).map(Box::new),
        source_ip: Some(conn.source_ip),
        connect_attrs: conn.connect_attrs.clone(),
        last_will_topic: conn.last_will_topic.clone(),
        region: sh.region.clone(),
        account: sh.account.clone(),
    }
}

/// A CA registered in CA mode, with rustls's verifier that has it as its only trust anchor.
#[derive(Debug)]
pub(crate) struct RegisteredCa {
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
    cas: Vec<Arc<RegisteredCa>>,
    policy_name: Arc<str>,
    /// The CAs, the policy, and every certificate admitted so far with its thing.
    registry: Mutex<Registry>,
    shared: Mutex<Shared>,
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
    /// The admission of a certificate issued by `ca`, recorded as what was decided; its words are
    /// written when the trace is assembled.
    fn admitted(
        &self,
        id: &str,
        cert_der: &[u8],
        ca: &Arc<RegisteredCa>,
        first: bool,
        verified_now: bool,
    ) -> Verdict {
        let cert = Shared::lock(&self.shared).certificate(id, cert_der, true);
        Verdict {
            allowed: true,
            event: Explained::Policy(Box::new(PendingPolicy::admitted(Admission {
                cert,
                ca: ca.clone(),
                policy: self.policy_name.clone(),
                first,
                verified_now,
            }))),
        }
    }

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
            registered.push(Arc::new(RegisteredCa {
                der: der.clone(),
                id,
                name: names(der).0,
                verifier,
            }));
        }
        let policy_name = policy.name.as_str().into();
        registry.add_policy(policy);
        Ok(CaModeAuthorizer {
            cas: registered,
            policy_name,
            registry: Mutex::new(registry),
            shared: Mutex::default(),
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

/// A certificate admitted in CA mode, as recorded: the certificate (read once, shared with its
/// connections' bases), the registered CA that issued it by rustls's verdict, the policy it was
/// attached to, and whether it was registered at this connection.
#[derive(Clone, Debug)]
pub(crate) struct Admission {
    cert: Arc<Certificate>,
    ca: Arc<RegisteredCa>,
    policy: Arc<str>,
    first: bool,
    /// rustls verified the certificate against its CA at this connection (always at the first;
    /// later connections of the same certificate rely on that first verification).
    verified_now: bool,
}

impl Admission {
    /// The `registry` check.
    pub(crate) fn resolve(&self) -> EventKind {
        let der = self.cert.der();
        let id = certificate_id(der);
        // The thing is the CN: admitted certificates have one.
        let thing = common_name(der).unwrap_or_default();
        let ca = &self.ca;
        let registered = if self.first {
            "registered ACTIVE automatically now, at its first connection"
        } else {
            "registered ACTIVE automatically at its first connection"
        };
        EventKind::Check {
            check: CheckId::Registry,
            ok: true,
            reason: format!(
                "certificate {id} was issued by the registered CA {} (ACTIVE; rustls verified it against that CA alone{}); {registered}; attached to thing {thing} (its CN) and policy {}",
                ca.name,
                if self.verified_now { "" } else { " when it was first admitted" },
                self.policy
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
                Fact::new("policy", self.policy.to_string()),
            ],
            failure: None,
        }
    }
}

impl Authorizer for CaModeAuthorizer {
    fn admit(&self, cert_der: &[u8]) -> Verdict {
        let id = certificate_id(cert_der);
        // A certificate this broker has admitted before: these very bytes (the id is their
        // SHA-256) were verified against their CA then, and this connection's handshake has
        // verified the chain and its validity again, so the CA check (an ECDSA verification) is
        // not made again at every connection. The registry check says which it was.
        let known = {
            let registry = self.registry();
            registry
                .certificate(&id)
                .filter(|r| r.status == CertStatus::Active)
                .and_then(|r| r.ca.clone())
        };
        if let Some(ca) = known.and_then(|ca_id| self.cas.iter().find(|c| c.id == ca_id)) {
            return self.admitted(&id, cert_der, ca, false, false);
        }
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
                things: vec![thing],
                policies: vec![self.policy_name.to_string()],
                ca: Some(ca.id.clone()),
            });
        }
        drop(registry);
        self.admitted(&id, cert_der, ca, first, true)
    }

    fn authorize(&self, conn: &Connection, a: MqttAction, value: &str) -> Verdict {
        decide(&self.registry(), &self.shared, conn, a, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{BUTTON_SERIAL, BUTTON_THING, ROOM_POLICY_JSON};
    use crate::trace::PolicyAction;
    use std::net::{IpAddr, Ipv4Addr};

    fn connection(der: &[u8], client_id: &str) -> Connection {
        Connection {
            cert_der: der.to_vec(),
            client_id: client_id.into(),
            source_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            connect_attrs: Vec::new(),
            last_will_topic: None,
            basis: Default::default(),
        }
    }

    fn pending(v: Verdict) -> PendingPolicy {
        match v.event {
            Explained::Policy(p) => *p,
            Explained::Now(e) => panic!("not a policy decision: {e:?}"),
        }
    }

    /// The explanation the broker computed when it decided, before decisions were recorded
    /// compactly: the registry's context for the connection, evaluated there and then.
    fn explained_at_decision(
        registry: &Registry,
        conn: &Connection,
        a: MqttAction,
        value: &str,
    ) -> policy::Decision {
        let mut ctx = registry.context_for(&conn.cert_der, &conn.client_id, Some(conn.source_ip));
        ctx.connect_attrs = conn.connect_attrs.clone();
        ctx.last_will_topic = conn.last_will_topic.clone();
        let arn =
            policy::resource_arn(&registry.region, &registry.account, policy_action(a), value);
        let policies = registry.policies_for(&certificate_id(&conn.cert_der));
        policy::evaluate(&policies, policy_action(a), &arn, &ctx)
    }

    #[test]
    fn decisions_explained_at_assembly_are_the_ones_explained_when_decided() {
        let pki = DefaultPki::generate().unwrap();
        let authz = PolicyAuthorizer::pizza_default(&pki);
        let mut conn = connection(pki.button.leaf(), BUTTON_THING);
        let topic = format!("iotbutton/{BUTTON_SERIAL}");
        let requests = [
            (PolicyAction::Connect, BUTTON_THING.to_string()),
            (PolicyAction::Publish, topic.clone()),
            (PolicyAction::RetainPublish, topic.clone()),
            (PolicyAction::Publish, "iotbutton/someone-else".to_string()),
            (PolicyAction::Subscribe, "iotbutton/#".to_string()),
            (PolicyAction::Receive, topic.clone()),
        ];
        let mut kinds = Vec::new();
        for (round, attrs) in [vec![], vec!["PersistentConnect", "LastWill"]]
            .into_iter()
            .enumerate()
        {
            conn.connect_attrs = attrs.iter().map(|s| s.to_string()).collect();
            conn.last_will_topic = (round == 1).then(|| topic.clone());
            for (a, value) in &requests {
                let at_decision = explained_at_decision(&authz.registry, &conn, *a, value);
                let v = authz.authorize(&conn, *a, value);
                assert_eq!(v.allowed, at_decision.kind == policy::DecisionKind::Allowed);
                let crate::trace::EventKind::Policy(e) = pending(v).resolve() else {
                    panic!("a policy event")
                };
                assert_eq!(e.resource, at_decision.resource);
                assert_eq!(e.lines, at_decision.lines(), "{a:?} {value}");
                assert_eq!(e.detail, at_decision.detail(), "{a:?} {value}");
                kinds.push(at_decision.kind);
            }
        }
        // The requests are allowed and denied, so both kinds of explanation are compared.
        for k in [
            policy::DecisionKind::Allowed,
            policy::DecisionKind::ImplicitDeny,
        ] {
            assert!(kinds.contains(&k), "{kinds:?}");
        }
    }

    #[test]
    fn a_connection_keeps_its_basis_until_the_connect_changes_what_it_was_built_from() {
        let pki = DefaultPki::generate().unwrap();
        let authz = PolicyAuthorizer::pizza_default(&pki);
        let mut conn = connection(pki.button.leaf(), "");
        let topic = format!("iotbutton/{BUTTON_SERIAL}");
        let before = pending(authz.authorize(&conn, PolicyAction::Connect, BUTTON_THING));
        conn.client_id = BUTTON_THING.into();
        conn.connect_attrs = vec!["LastWill".into()];
        conn.last_will_topic = Some(topic.clone());
        let connect = pending(authz.authorize(&conn, PolicyAction::Connect, BUTTON_THING));
        let publish = pending(authz.authorize(&conn, PolicyAction::Publish, &topic));
        assert!(!Arc::ptr_eq(
            before.basis().unwrap(),
            connect.basis().unwrap()
        ));
        assert_eq!(connect.basis().unwrap().client_id(), BUTTON_THING);
        assert!(Arc::ptr_eq(
            connect.basis().unwrap(),
            publish.basis().unwrap()
        ));
        // The certificate was read once, for both bases.
        assert!(Arc::ptr_eq(
            &before.basis().unwrap().cert,
            &connect.basis().unwrap().cert
        ));
        // A registry changed in what the connection does not use gives an equal basis: the one
        // kept. One changed in what it uses gives a new one.
        let mut same = authz.clone();
        same.registry
            .add_policy(policy::Policy::parse("Unattached", "test", ROOM_POLICY_JSON).unwrap());
        assert_ne!(same.registry.generation(), authz.registry.generation());
        let kept = pending(same.authorize(&conn, PolicyAction::Publish, &topic));
        assert!(Arc::ptr_eq(connect.basis().unwrap(), kept.basis().unwrap()));
        let mut changed = authz.clone();
        changed
            .registry
            .detach_thing(&certificate_id(pki.button.leaf()), BUTTON_THING);
        let after = pending(changed.authorize(&conn, PolicyAction::Publish, &topic));
        assert!(!Arc::ptr_eq(
            connect.basis().unwrap(),
            after.basis().unwrap()
        ));
        assert!(!after.basis().unwrap().thing.as_ref().unwrap().is_attached);
    }

    #[test]
    fn ten_thousand_connections_of_one_certificate_add_nothing_to_the_ca_mode_registry() {
        let pki = DefaultPki::generate().unwrap();
        let room = policy::Policy::parse("room-policy", "test", ROOM_POLICY_JSON).unwrap();
        let authz = CaModeAuthorizer::new(std::slice::from_ref(&pki.intermediate), room).unwrap();
        let der = pki.button.leaf();
        let topic = format!("room/{BUTTON_SERIAL}/status");
        let mut held = Vec::new();
        let mut after_first = None;
        let mut admissions = Vec::new();
        for i in 0..10_000 {
            let admitted = authz.admit(der);
            assert!(admitted.allowed, "connection {i}");
            if i < 2 {
                admissions.push(admitted.event.resolve());
            }
            let conn = connection(der, &format!("{BUTTON_THING}-{i}"));
            let connect = pending(authz.authorize(&conn, PolicyAction::Connect, &conn.client_id));
            let publish = pending(authz.authorize(&conn, PolicyAction::Publish, &topic));
            assert_eq!(
                connect.kind,
                policy::DecisionKind::Allowed,
                "connection {i}"
            );
            assert_eq!(
                publish.kind,
                policy::DecisionKind::Allowed,
                "connection {i}"
            );
            // One basis per connection, shared by its decisions.
            assert!(Arc::ptr_eq(
                connect.basis().unwrap(),
                publish.basis().unwrap()
            ));
            held.push((connect, publish));
            let r = authz.registry();
            match &after_first {
                None => after_first = Some((r.clone(), r.generation())),
                Some((first, generation)) => {
                    assert_eq!(*r, *first, "connection {i} changed the registry");
                    assert_eq!(r.generation(), *generation, "connection {i}");
                }
            }
        }
        // The registry check, written at assembly: the first connection registered the
        // certificate, the second found it registered.
        let ca_id = certificate_id(&pki.intermediate);
        for (i, e) in admissions.into_iter().enumerate() {
            let crate::trace::EventKind::Check {
                check,
                ok,
                reason,
                facts,
                ..
            } = e
            else {
                panic!("a check: {e:?}")
            };
            assert_eq!((check, ok), (CheckId::Registry, true));
            let fact = |n: &str| facts.iter().find(|f| f.name == n).map(|f| f.value.clone());
            assert_eq!(fact("certificate id"), Some(certificate_id(der)));
            assert_eq!(fact("thing").as_deref(), Some(BUTTON_THING));
            assert_eq!(fact("CA id"), Some(ca_id.clone()));
            assert_eq!(fact("policy").as_deref(), Some("room-policy"));
            assert_eq!(
                reason.contains("registered ACTIVE automatically now"),
                i == 0,
                "{reason}"
            );
            // The first connection's admission verified the certificate against its CA; the
            // second relied on that and says so.
            assert_eq!(
                reason.contains("against that CA alone when it was first admitted"),
                i == 1,
                "{reason}"
            );
        }
        let r = authz.registry();
        assert_eq!(r.certificates().count(), 1);
        assert_eq!(r.things().count(), 1);
        assert_eq!(r.policies().count(), 1);
        assert_eq!(Shared::lock(&authz.shared).certs.len(), 1);
        // Every held decision shares the one reading of the certificate and the one policy.
        let (c0, _) = &held[0];
        for (c, _) in &held {
            assert!(Arc::ptr_eq(
                &c.basis().unwrap().cert,
                &c0.basis().unwrap().cert
            ));
            assert!(Arc::ptr_eq(
                &c.basis().unwrap().policies[0],
                &c0.basis().unwrap().policies[0]
            ));
        }
    }
}
