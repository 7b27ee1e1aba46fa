//! The broker's authorization hook: the registry check after the handshake and a policy decision
//! for every MQTT action. The real implementation is the AWS-IoT-style policy engine
//! ([`crate::policy`]); the broker only sees this trait.

use crate::policy::{self, Basis, DecisionKind};
use crate::trace::{Decision, Enforcement, EventKind, PolicyAction, PolicyEvent};
use serde_json::json;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What the broker knows about a connection: the certificate that authenticated it, and, after
/// CONNECT, the client id.
#[derive(Clone, Debug)]
pub struct Connection {
    pub cert_der: Vec<u8>,
    pub client_id: String,
    pub source_ip: IpAddr,
    /// `PersistentConnect` (clean session off) and/or `LastWill`, from the CONNECT.
    pub connect_attrs: Vec<String>,
    /// The will message's topic, if the CONNECT had one.
    pub last_will_topic: Option<String>,
    /// What the authorizer evaluates this connection's requests against, kept between its
    /// requests (`Default::default()` to start with).
    pub basis: BasisCell,
}

/// A connection's [`Basis`]: built by the authorizer at the connection's first request, built
/// again only when something it was built from has changed (the client id, connect attributes
/// and will topic the CONNECT set, the registry), and shared by every decision the connection
/// records.
#[derive(Default)]
pub struct BasisCell(Mutex<Option<(u64, Arc<Basis>)>>);

impl BasisCell {
    /// The basis kept, if `current(generation, basis)` says it still holds; otherwise the one
    /// `build` makes (the one kept if it is equal, so the decisions recorded share it).
    pub(crate) fn get(
        &self,
        generation: u64,
        current: impl FnOnce(&Basis) -> bool,
        build: impl FnOnce() -> Basis,
    ) -> Arc<Basis> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, b)) = &*kept {
            if *g == generation && current(b) {
                return b.clone();
            }
        }
        let new = build();
        let b = match kept.take() {
            Some((_, old)) if *old == new => old,
            _ => Arc::new(new),
        };
        *kept = Some((generation, b.clone()));
        b
    }
}

impl Clone for BasisCell {
    fn clone(&self) -> Self {
        BasisCell(Mutex::new(
            self.0.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        ))
    }
}

impl Debug for BasisCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasisCell")
    }
}

/// The MQTT actions the broker authorizes (the trace's typed policy action).
pub use crate::trace::PolicyAction as MqttAction;

/// A decision: whether the action may go ahead, and the event that explains it (a `registry`
/// check or a policy decision).
pub struct Verdict {
    pub allowed: bool,
    pub event: Explained,
}

/// The event that explains a verdict: ready, or a policy decision whose explanation is worked out
/// when it is needed. A held connection's recorded decisions are then the requests and the
/// policy engine's answers, not their explanations (BENCHMARKS.md).
// A verdict lives only until the broker has recorded it: boxing the ready event would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Explained {
    Now(EventKind),
    Policy(Box<PendingPolicy>),
}

impl From<EventKind> for Explained {
    fn from(e: EventKind) -> Self {
        Explained::Now(e)
    }
}

impl Explained {
    /// The event, explanation included.
    pub fn resolve(self) -> EventKind {
        match self {
            Explained::Now(e) => e,
            Explained::Policy(p) => p.resolve(),
        }
    }
}

/// The policy engine's name for an MQTT action.
pub(crate) fn policy_action(a: MqttAction) -> policy::Action {
    match a {
        PolicyAction::Connect => policy::Action::Connect,
        PolicyAction::Publish => policy::Action::Publish,
        PolicyAction::RetainPublish => policy::Action::RetainPublish,
        PolicyAction::Subscribe => policy::Action::Subscribe,
        PolicyAction::Receive => policy::Action::Receive,
    }
}

/// An authorization the broker recorded, to be explained when the trace is assembled: a policy
/// decision, as the request (action and value), the answer the policy engine returned and the
/// broker enforced, what the broker did about it, and the connection's [`Basis`] the request was
/// evaluated against (shared, not copied), explained by the same evaluation made again
/// ([`PendingPolicy::resolve`]); or, in CA mode, a certificate admitted (the `registry` check).
#[derive(Clone, Debug)]
pub struct PendingPolicy {
    /// The answer, as enforced (`Allowed` for an admitted certificate).
    pub kind: DecisionKind,
    pub enforcement: Enforcement,
    what: What,
}

#[derive(Clone, Debug)]
enum What {
    Request {
        action: MqttAction,
        /// The client id, topic or topic filter asked about.
        value: Box<str>,
        basis: Arc<Basis>,
    },
    Admitted(super::policy_authz::Admission),
}

impl PendingPolicy {
    /// `action` on `value`, answered `kind` by evaluating it against `basis`; carried out until
    /// the broker says otherwise.
    pub fn new(action: MqttAction, kind: DecisionKind, value: &str, basis: Arc<Basis>) -> Self {
        PendingPolicy {
            kind,
            enforcement: Enforcement::CarriedOut,
            what: What::Request {
                action,
                value: value.into(),
                basis,
            },
        }
    }

    pub(crate) fn admitted(a: super::policy_authz::Admission) -> Self {
        PendingPolicy {
            kind: DecisionKind::Allowed,
            enforcement: Enforcement::CarriedOut,
            what: What::Admitted(a),
        }
    }

    /// What the request was evaluated against (`None` for an admission).
    pub fn basis(&self) -> Option<&Arc<Basis>> {
        match &self.what {
            What::Request { basis, .. } => Some(basis),
            What::Admitted(_) => None,
        }
    }

    /// The `policy` event: the decision with its explanation (`lines` and `detail`), from
    /// evaluating the request again against what it was evaluated against. Should that give
    /// another answer, the event keeps the recorded one (the one enforced) and its explanation
    /// says that the re-evaluation disagreed.
    pub fn resolve(self) -> EventKind {
        let (action, value, basis) = match self.what {
            What::Request {
                action,
                value,
                basis,
            } => (action, value, basis),
            What::Admitted(a) => return a.resolve(),
        };
        let d = basis.evaluate(policy_action(action), &value);
        let (lines, detail) = if d.kind == self.kind {
            (d.lines(), d.detail())
        } else {
            disagreement(self.kind, &d)
        };
        EventKind::Policy(PolicyEvent {
            action,
            resource: d.resource,
            decision: match self.kind {
                DecisionKind::Allowed => Decision::Allowed,
                DecisionKind::ExplicitDeny => Decision::ExplicitDeny,
                DecisionKind::ImplicitDeny => Decision::ImplicitDeny,
            },
            enforcement: self.enforcement,
            lines,
            detail,
        })
    }
}

/// The explanation of a decision whose re-evaluation gave `again.kind` instead of the `enforced`
/// answer: says so, then explains the re-evaluation (the only explanation there is).
fn disagreement(
    enforced: DecisionKind,
    again: &policy::Decision,
) -> (Vec<String>, serde_json::Value) {
    let why = format!(
        "The broker enforced {}, the policy engine's answer when it decided; evaluating the same request again for this explanation gave {}, so what follows explains the re-evaluation, not the decision enforced.",
        enforced.as_str(),
        again.kind.as_str()
    );
    let mut lines = vec![
        format!(
            "{} on {} → {}",
            again.action,
            again.resource,
            enforced.as_str()
        ),
        why.clone(),
    ];
    lines.extend(again.lines());
    let mut detail = again.detail();
    if let Some(o) = detail.as_object_mut() {
        o.insert("decision".into(), json!(enforced.as_str()));
        o.insert(
            "reevaluation".into(),
            json!({ "decision": again.kind.as_str(), "agrees": false, "note": why }),
        );
    }
    (lines, detail)
}

/// Decides what a connection may do.
pub trait Authorizer: Send + Sync + Debug {
    /// After the handshake: is this certificate registered and ACTIVE (and its CA)?
    fn admit(&self, cert_der: &[u8]) -> Verdict;
    /// May this connection do `action` on `value` (client id, topic or topic filter)?
    fn authorize(&self, conn: &Connection, action: MqttAction, value: &str) -> Verdict;
}

pub(crate) fn pizza_authorizer(pki: &crate::pki::DefaultPki) -> Arc<dyn Authorizer> {
    Arc::new(super::policy_authz::PolicyAuthorizer::pizza_default(pki))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, RequestContext};

    const ALLOW_BUTTONS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/iotbutton/*"}]}"#;

    fn basis() -> Arc<Basis> {
        let p = Policy::parse("AllowButtons", "test", ALLOW_BUTTONS).unwrap();
        Arc::new(Basis::new(
            vec![Arc::new(p)],
            &RequestContext::new("pizza-button-1"),
        ))
    }

    fn policy_event(e: EventKind) -> PolicyEvent {
        match e {
            EventKind::Policy(p) => p,
            other => panic!("not a policy event: {other:?}"),
        }
    }

    #[test]
    fn a_re_evaluation_that_disagrees_keeps_the_enforced_answer_and_says_so() {
        let b = basis();
        // What the policy engine says about this request now: ALLOWED.
        let now = b.evaluate(policy::Action::Publish, "iotbutton/42");
        assert_eq!(now.kind, DecisionKind::Allowed);
        // A decision recorded as EXPLICIT_DENY on the same request (as if the engine had answered
        // otherwise when the broker asked).
        let mut p = PendingPolicy::new(
            PolicyAction::Publish,
            DecisionKind::ExplicitDeny,
            "iotbutton/42",
            b,
        );
        p.enforcement = Enforcement::ConnectionClosed;
        let e = policy_event(p.resolve());
        assert_eq!(
            e.decision,
            Decision::ExplicitDeny,
            "the enforced answer stays"
        );
        assert_eq!(e.enforcement, Enforcement::ConnectionClosed);
        assert_eq!(
            e.resource,
            "arn:aws:iot:us-east-1:123456789012:topic/iotbutton/42"
        );
        assert!(e.lines[0].ends_with("→ EXPLICIT_DENY"), "{:?}", e.lines);
        assert!(
            e.lines[1].contains("enforced EXPLICIT_DENY") && e.lines[1].contains("gave ALLOWED"),
            "{:?}",
            e.lines
        );
        // Then the re-evaluation's own explanation, which names the Allow that applied.
        assert_eq!(e.lines[2..], now.lines()[..]);
        assert!(e
            .lines
            .iter()
            .any(|l| l.starts_with("Allowed by policy AllowButtons")));
        assert_eq!(e.detail["decision"], "EXPLICIT_DENY");
        assert_eq!(e.detail["reevaluation"]["decision"], "ALLOWED");
        assert_eq!(e.detail["reevaluation"]["agrees"], false);
        assert_eq!(e.detail["statements"], now.detail()["statements"]);
    }

    #[test]
    fn a_re_evaluation_that_agrees_is_the_explanation_as_it_was() {
        let b = basis();
        for (topic, kind) in [
            ("iotbutton/42", DecisionKind::Allowed),
            ("other/42", DecisionKind::ImplicitDeny),
        ] {
            let at_decision = b.evaluate(policy::Action::Publish, topic);
            assert_eq!(at_decision.kind, kind);
            let e = policy_event(
                PendingPolicy::new(PolicyAction::Publish, kind, topic, b.clone()).resolve(),
            );
            assert_eq!(e.lines, at_decision.lines());
            assert_eq!(e.detail, at_decision.detail());
            assert!(e.detail.get("reevaluation").is_none());
        }
    }
}
