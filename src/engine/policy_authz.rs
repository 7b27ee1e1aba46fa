//! The broker's authorizer backed by the AWS-IoT-style registry and policy engine.

use super::authz::{Authorizer, Connection, MqttAction, Verdict};
use super::EngineError;
use crate::pki::{DefaultPki, BUTTON_THING, NEIGHBOUR_THING};
use crate::policy::{
    self, certificate_id, Action, CertStatus, CertificateRecord, Registry, Thing, PIZZA_POLICY_NAME,
};
use crate::trace::{
    CheckId, Decision, Enforcement, EventKind, Fact, Failure, FailureCode, PolicyAction,
    PolicyEvent, Side,
};
use std::collections::BTreeMap;
use std::path::Path;

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
    pub fn pizza_default(pki: &DefaultPki) -> Self {
        let mut r = Registry::pizza_default(pki.button.leaf(), BUTTON_THING);
        r.add_thing(Thing {
            name: NEIGHBOUR_THING.to_string(),
            type_name: Some("IoTButton".to_string()),
            attributes: BTreeMap::from([("shop".to_string(), "pizza".to_string())]),
        });
        r.add_certificate(CertificateRecord {
            id: certificate_id(pki.neighbour.leaf()),
            status: CertStatus::Active,
            things: vec![NEIGHBOUR_THING.to_string()],
            policies: vec![PIZZA_POLICY_NAME.to_string()],
            ca: None,
        });
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
            event: EventKind::Check {
                check: CheckId::Registry,
                ok: c.ok,
                reason: if c.ok {
                    c.reason
                } else {
                    format!("{}: the broker closes the connection", c.reason)
                },
                about: None,
                facts,
                failure,
            },
        }
    }

    fn authorize(&self, conn: &Connection, a: MqttAction, value: &str) -> Verdict {
        let mut ctx =
            self.registry
                .context_for(&conn.cert_der, &conn.client_id, Some(conn.source_ip));
        ctx.connect_attrs = conn.connect_attrs.clone();
        ctx.last_will_topic = conn.last_will_topic.clone();
        let id = certificate_id(&conn.cert_der);
        let policies = self.registry.policies_for(&id);
        let arn = policy::resource_arn(
            &self.registry.region,
            &self.registry.account,
            action(a),
            value,
        );
        let d = policy::evaluate(&policies, action(a), &arn, &ctx);
        Verdict {
            allowed: d.kind == policy::DecisionKind::Allowed,
            event: EventKind::Policy(PolicyEvent {
                action: a,
                resource: arn,
                decision: match d.kind {
                    policy::DecisionKind::Allowed => Decision::Allowed,
                    policy::DecisionKind::ExplicitDeny => Decision::ExplicitDeny,
                    policy::DecisionKind::ImplicitDeny => Decision::ImplicitDeny,
                },
                // The broker says what it did about it (`Broker::enforce`).
                enforcement: Enforcement::CarriedOut,
                lines: d.lines(),
                detail: d.detail(),
            }),
        }
    }
}
