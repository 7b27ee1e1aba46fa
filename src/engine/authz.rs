//! The broker's authorization hook: the registry check after the handshake and a policy decision
//! for every MQTT action. The real implementation is the AWS-IoT-style policy engine
//! ([`crate::policy`]); the broker only sees this trait.

use crate::trace::EventKind;
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
    pub event: EventKind,
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
