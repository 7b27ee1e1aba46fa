//! What a connection's requests are evaluated against, kept once per connection: the attached
//! policies (shared with the registry, not copied) and the request context, with the
//! certificate's variables shared by every connection of that certificate.
//!
//! A broker records a decision as its request (action, value, the [`DecisionKind`] it enforced)
//! plus an `Arc` of the connection's [`Basis`], and explains it later by evaluating the request
//! again ([`Basis::evaluate`]). The explanation (every statement traced, the variables) then costs
//! nothing while the connection is held.

use std::net::IpAddr;
use std::sync::Arc;

use super::eval::{evaluate_in, Decision};
use super::vars::{CertVars, ContextRef, RequestContext, ThingContext};
use super::{resource_arn, Action, Policy};

/// A certificate as the policy engine reads it: its DER and its variables, read once.
#[derive(Debug, PartialEq, Eq)]
pub struct Certificate {
    der: Box<[u8]>,
    /// `None` when the DER is not X.509 a parser can read (its variables then do not resolve).
    vars: Option<CertVars>,
}

impl Certificate {
    /// Reads the variables of a DER certificate.
    pub fn from_der(der: &[u8]) -> Certificate {
        Certificate {
            der: der.into(),
            vars: CertVars::from_der(der).ok(),
        }
    }

    /// Whether this is the certificate `der`.
    pub fn is(&self, der: &[u8]) -> bool {
        *self.der == *der
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn vars(&self) -> Option<&CertVars> {
        self.vars.as_ref()
    }
}

/// Everything one connection's requests are evaluated against.
#[derive(Debug, PartialEq)]
pub struct Basis {
    pub(crate) policies: Box<[Arc<Policy>]>,
    pub(crate) cert: Arc<Certificate>,
    pub(crate) client_id: String,
    pub(crate) thing: Option<Box<ThingContext>>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) connect_attrs: Vec<String>,
    pub(crate) last_will_topic: Option<String>,
    pub(crate) region: Arc<str>,
    pub(crate) account: Arc<str>,
}

impl Basis {
    /// The policies `policies` and the context `ctx` (its certificate variables without a DER).
    pub fn new(policies: Vec<Arc<Policy>>, ctx: &RequestContext) -> Basis {
        Basis {
            policies: policies.into_boxed_slice(),
            cert: Arc::new(Certificate {
                der: Box::default(),
                vars: ctx.cert.clone(),
            }),
            client_id: ctx.client_id.clone(),
            thing: ctx.thing.clone().map(Box::new),
            source_ip: ctx.source_ip,
            connect_attrs: ctx.connect_attrs.clone(),
            last_will_topic: ctx.last_will_topic.clone(),
            region: ctx.region.as_str().into(),
            account: ctx.account.as_str().into(),
        }
    }

    pub(crate) fn context(&self) -> ContextRef<'_> {
        ContextRef {
            client_id: &self.client_id,
            cert: self.cert.vars(),
            thing: self.thing.as_deref(),
            source_ip: self.source_ip,
            connect_attrs: &self.connect_attrs,
            last_will_topic: self.last_will_topic.as_deref(),
            region: &self.region,
            account: &self.account,
        }
    }

    /// The resource ARN of `action` on `value` (a client id, topic or topic filter) in this
    /// basis's region and account.
    pub fn arn(&self, action: Action, value: &str) -> String {
        resource_arn(&self.region, &self.account, action, value)
    }

    /// The decision on `action` on `value`, with its explanation ([`super::evaluate`]).
    pub fn evaluate(&self, action: Action, value: &str) -> Decision {
        evaluate_in(
            &self.policies,
            action,
            &self.arn(action, value),
            self.context(),
        )
    }

    /// The MQTT client id the context was built for.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}
