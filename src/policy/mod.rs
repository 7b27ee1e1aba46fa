//! AWS-IoT-style authorization: policy documents, policy variables, evaluation, registry, lint.
//!
//! This module answers the question the broker asks after the TLS handshake: *may this certificate
//! do this action on this resource?* — the way AWS IoT Core answers it, and with an explanation a
//! learner can read (ideas 7–10 of `SECURITY-MODEL.md`).
//!
//! # The API in one screen
//!
//! ```no_run
//! use iotls::policy::{self, Action, Registry};
//! # let button_der: Vec<u8> = Vec::new();
//! // A registry: things, certificates (status, thing, policies), CAs, policies by name.
//! let registry = Registry::pizza_default(&button_der, "pizza-button-0042");
//! // 1. Is the certificate known and ACTIVE? (`registry` check)
//! let check = registry.check_certificate(&button_der);
//! // 2. What the broker knows about the connection (idea 7).
//! let ctx = registry.context_for(&button_der, "pizza-button-0042", None);
//! // 3. One decision per MQTT request (ideas 8–10).
//! let arn = policy::resource_arn(policy::DEFAULT_REGION, policy::DEFAULT_ACCOUNT, Action::Publish, "iotbutton/42");
//! let decision = policy::evaluate(&registry.policies_for(&check.certificate_id), Action::Publish, &arn, &ctx);
//! println!("{}", decision.kind.as_str()); // ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY
//! for line in decision.lines() { println!("{line}"); }
//! let _json = decision.detail(); // goes into trace::PolicyEvent::detail
//! ```
//!
//! * [`Policy::parse`] reads a policy document exactly as AWS IoT accepts it (see
//!   `docs/policy.md`); errors name the file and line/column, or the statement.
//! * [`CertVars::from_der`] extracts every certificate policy variable from one certificate.
//! * [`RequestContext`] is everything a request is evaluated against.
//! * [`evaluate`] applies AWS's rules: deny by default, an explicit Deny beats any Allow, all the
//!   policies are evaluated together. The [`Decision`] explains itself ([`Decision::lines`],
//!   [`Decision::detail`]).
//! * [`Registry`] holds things, certificates, CAs and policies ([`Registry::from_json`]).
//! * [`lint()`] runs the Device Defender audit checks on one document.
//! * [`cli`] is `iotls policy test` / `iotls policy lint`.

mod basis;
pub mod cli;
mod document;
mod eval;
mod lint;
mod pattern;
mod registry;
mod vars;

pub use basis::Basis;
pub(crate) use basis::Certificate;
pub use document::{
    ActionSpec, Condition, Effect, Policy, PolicyDocument, PolicyError, ResourceSpec, Statement,
};
pub use eval::{
    evaluate, ConditionTrace, Decision, DecisionKind, ResourceTrace, StatementRef, StatementTrace,
    VarTrace,
};
pub use lint::{lint, Finding};
pub use registry::{
    CaRecord, CaStatus, CertStatus, CertificateCheck, CertificateRecord, Registry, RegistryError,
    Thing, PIZZA_POLICY_JSON, PIZZA_POLICY_NAME,
};
pub use vars::{certificate_id, CertVars, RequestContext, ThingContext};

/// Region used when none is given (the ARNs of AWS's documentation examples use it too).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Account used when none is given (AWS's documentation placeholder account).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The MQTT actions a broker authorizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `iot:Connect`, resource `client/<clientId>`.
    Connect,
    /// `iot:Publish`, resource `topic/<topic>`.
    Publish,
    /// `iot:RetainPublish` (a PUBLISH with RETAIN set; needs `iot:Publish` too), resource `topic/<topic>`.
    RetainPublish,
    /// `iot:Subscribe`, resource `topicfilter/<filter>`.
    Subscribe,
    /// `iot:Receive` (checked on every delivery), resource `topic/<topic>`.
    Receive,
}

impl Action {
    /// All five, in the order a session meets them.
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Publish,
        Action::RetainPublish,
        Action::Subscribe,
        Action::Receive,
    ];

    /// The IAM-style name, e.g. `iot:Publish`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::RetainPublish => "iot:RetainPublish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
        }
    }

    /// The ARN resource type the action is checked on: `client`, `topic` or `topicfilter`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Action::Connect => "client",
            Action::Publish | Action::RetainPublish | Action::Receive => "topic",
            Action::Subscribe => "topicfilter",
        }
    }

    /// Parses `iot:Publish` or `Publish` (any case).
    pub fn parse(s: &str) -> Option<Action> {
        let bare = s
            .strip_prefix("iot:")
            .or_else(|| s.strip_prefix("IOT:"))
            .unwrap_or(s);
        Action::ALL
            .into_iter()
            .find(|a| a.as_str()[4..].eq_ignore_ascii_case(bare))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource ARN a request is checked against:
/// `arn:aws:iot:<region>:<account>:<client|topic|topicfilter>/<bare_value>`.
///
/// A `bare_value` that already is an ARN (starts with `arn:`) is returned unchanged.
pub fn resource_arn(region: &str, account: &str, action: Action, bare_value: &str) -> String {
    if bare_value.starts_with("arn:") {
        return bare_value.to_string();
    }
    format!(
        "arn:aws:iot:{region}:{account}:{}/{bare_value}",
        action.resource_type()
    )
}
