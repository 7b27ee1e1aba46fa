//! The broker's authorization hook: the registry check after the handshake and a policy decision
//! for every MQTT action. The real implementation is the AWS-IoT-style policy engine
//! ([`crate::policy`]); the broker only sees this trait.

use crate::trace::{Decision, Enforcement, EventKind, PolicyEvent};
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

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
/// when it is needed. A held connection's recorded decisions are then the policy engine's typed
/// answer, not its explanation as a JSON tree (about 9 KiB per decision: BENCHMARKS.md).
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

/// A policy decision as the policy engine returned it, and what the broker did about it.
#[derive(Clone, Debug)]
pub struct PendingPolicy {
    pub action: MqttAction,
    pub decision: crate::policy::Decision,
    pub enforcement: Enforcement,
}

impl PendingPolicy {
    /// The `policy` event: the decision with its explanation (`lines` and `detail`).
    pub fn resolve(self) -> EventKind {
        let d = &self.decision;
        EventKind::Policy(PolicyEvent {
            action: self.action,
            resource: d.resource.clone(),
            decision: match d.kind {
                crate::policy::DecisionKind::Allowed => Decision::Allowed,
                crate::policy::DecisionKind::ExplicitDeny => Decision::ExplicitDeny,
                crate::policy::DecisionKind::ImplicitDeny => Decision::ImplicitDeny,
            },
            enforcement: self.enforcement,
            lines: d.lines(),
            detail: d.detail(),
        })
    }
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
