//! Evaluation as AWS IoT does it, with the explanation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::document::{
    parse_cidr, Condition, Effect, Op, Policy, Qualifier, ResourceSpec, Seg, Statement, Template,
};
use super::pattern::{Pattern, Tok};
use super::vars::{ContextRef, RequestContext, Value, Var};
use super::Action;

/// The three answers of AWS IoT's TestAuthorization API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DecisionKind {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl DecisionKind {
    /// `ALLOWED`, `EXPLICIT_DENY`, `IMPLICIT_DENY`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allowed => "ALLOWED",
            DecisionKind::ExplicitDeny => "EXPLICIT_DENY",
            DecisionKind::ImplicitDeny => "IMPLICIT_DENY",
        }
    }
}

/// Names one statement of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub policy: String,
    /// From 1.
    pub statement: usize,
    pub sid: Option<String>,
    pub effect: &'static str,
}

impl StatementRef {
    fn describe(&self) -> String {
        format!(
            "policy {} {}",
            self.policy,
            super::document::statement_label(self.statement, self.sid.as_deref())
        )
    }
}

/// What one variable resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VarTrace {
    /// As written in the policy, e.g. `iot:Certificate.Subject.SerialNumber`.
    pub name: String,
    /// Its value(s); empty when it did not resolve.
    pub values: Vec<String>,
    /// Whether it resolved.
    pub resolved: bool,
    /// Why not, when it did not.
    pub problem: Option<String>,
    /// Where the value comes from.
    pub source: &'static str,
}

/// One resource pattern of a statement, after substitution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceTrace {
    /// As written.
    pub pattern: String,
    /// After substitution; `None` when a variable did not resolve (the pattern then matches nothing).
    pub substituted: Option<String>,
    /// Whether it matches the requested resource.
    pub matched: bool,
    /// Why it could not be substituted.
    pub unresolved: Vec<String>,
}

/// One condition, evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConditionTrace {
    pub operator: String,
    pub key: String,
    /// The request's value(s) of the key (empty when absent).
    pub request_values: Vec<String>,
    /// The policy's values, after substitution.
    pub policy_values: Vec<String>,
    pub holds: bool,
    /// In words: why it holds or not.
    pub note: String,
}

/// One statement, evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementTrace {
    #[serde(flatten)]
    pub at: StatementRef,
    /// Whether Action/NotAction covers the requested action.
    pub covers_action: bool,
    /// `Resource` or `NotResource`.
    pub resource_element: &'static str,
    pub resources: Vec<ResourceTrace>,
    /// Whether the Resource/NotResource element lets the statement apply.
    pub resource_ok: bool,
    pub conditions: Vec<ConditionTrace>,
    /// Whether the statement applies to the request (action, resource and every condition).
    pub applies: bool,
}

/// The answer to one request, with its explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub kind: DecisionKind,
    pub action: Action,
    /// The resource ARN asked for.
    pub resource: String,
    /// Names of the policies evaluated.
    pub policies: Vec<String>,
    /// The statements that decided: every applying Deny for EXPLICIT_DENY, every applying Allow for
    /// ALLOWED, none for IMPLICIT_DENY.
    pub deciding: Vec<StatementRef>,
    /// Every statement of every policy.
    pub statements: Vec<StatementTrace>,
    /// Every variable met while evaluating, in the order met.
    pub variables: Vec<VarTrace>,
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Variables met, in order.
#[derive(Default)]
struct VarLog {
    order: Vec<String>,
    map: BTreeMap<String, VarTrace>,
}

impl VarLog {
    fn record(&mut self, name: &str, var: &Var, value: &Value) {
        if self.map.contains_key(name) {
            return;
        }
        let (values, problem) = match value {
            Value::One(v) => (vec![v.clone()], None),
            Value::Many(v) => (v.clone(), None),
            Value::Absent(p) | Value::Unusable(p) => (Vec::new(), Some(p.clone())),
        };
        self.order.push(name.to_string());
        self.map.insert(
            name.to_string(),
            VarTrace {
                name: name.to_string(),
                resolved: problem.is_none(),
                values,
                problem,
                source: var.source(),
            },
        );
    }
}

/// Evaluates one request against all the policies together, as AWS IoT does: deny by default, an
/// explicit Deny in any statement of any policy overrides every Allow.
///
/// For a retained PUBLISH the broker asks twice — `iot:Publish` and `iot:RetainPublish` — and needs
/// both allowed.
pub fn evaluate<P: std::borrow::Borrow<Policy>>(
    policies: &[P],
    action: Action,
    resource_arn: &str,
    ctx: &RequestContext,
) -> Decision {
    evaluate_in(policies, action, resource_arn, ctx.into())
}

/// [`evaluate`] over a borrowed context.
pub(crate) fn evaluate_in<P: std::borrow::Borrow<Policy>>(
    policies: &[P],
    action: Action,
    resource_arn: &str,
    ctx: ContextRef<'_>,
) -> Decision {
    let mut log = VarLog::default();
    let mut statements = Vec::new();
    for p in policies {
        let p = p.borrow();
        let substitute = p.document.substitutes_variables();
        for s in &p.document.statements {
            statements.push(eval_statement(
                p,
                s,
                substitute,
                action,
                resource_arn,
                ctx,
                &mut log,
            ));
        }
    }
    let denies: Vec<StatementRef> = statements
        .iter()
        .filter(|t| t.applies && t.at.effect == "Deny")
        .map(|t| t.at.clone())
        .collect();
    let allows: Vec<StatementRef> = statements
        .iter()
        .filter(|t| t.applies && t.at.effect == "Allow")
        .map(|t| t.at.clone())
        .collect();
    let (kind, deciding) = if !denies.is_empty() {
        (DecisionKind::ExplicitDeny, denies)
    } else if !allows.is_empty() {
        (DecisionKind::Allowed, allows)
    } else {
        (DecisionKind::ImplicitDeny, Vec::new())
    };
    let variables = log.order.iter().map(|n| log.map[n].clone()).collect();
    Decision {
        kind,
        action,
        resource: resource_arn.to_string(),
        policies: policies.iter().map(|p| p.borrow().name.clone()).collect(),
        deciding,
        statements,
        variables,
    }
}

fn eval_statement(
    p: &Policy,
    s: &Statement,
    substitute: bool,
    action: Action,
    arn: &str,
    ctx: ContextRef<'_>,
    log: &mut VarLog,
) -> StatementTrace {
    let at = StatementRef {
        policy: p.name.clone(),
        statement: s.index,
        sid: s.sid.clone(),
        effect: s.effect.as_str(),
    };
    let (resource_element, not) = match &s.resource {
        ResourceSpec::Resource(_) => ("Resource", false),
        ResourceSpec::NotResource(_) => ("NotResource", true),
    };
    let covers_action = s.covers_action(action.as_str());
    let mut trace = StatementTrace {
        at,
        covers_action,
        resource_element,
        resources: Vec::new(),
        resource_ok: false,
        conditions: Vec::new(),
        applies: false,
    };
    if !covers_action {
        return trace;
    }
    let _ = substitute; // templates were split at parse time according to the Version
    for t in s.resource.templates() {
        trace
            .resources
            .push(match substitute_template(t, ctx, log, true) {
                Ok(pat) => ResourceTrace {
                    pattern: t.raw.clone(),
                    substituted: Some(pat.display()),
                    matched: pat.matches_arn(arn),
                    unresolved: Vec::new(),
                },
                Err(why) => ResourceTrace {
                    pattern: t.raw.clone(),
                    substituted: None,
                    matched: false,
                    unresolved: why,
                },
            });
    }
    let any_match = trace.resources.iter().any(|r| r.matched);
    trace.resource_ok = if not {
        // An unresolved NotResource pattern cannot be shown not to match: the Allow does not apply
        // and the Deny does (the reading that cannot widen access).
        let unresolved = trace.resources.iter().any(|r| r.substituted.is_none());
        if unresolved {
            s.effect == Effect::Deny
        } else {
            !any_match
        }
    } else {
        any_match
    };
    if !trace.resource_ok {
        return trace;
    }
    let mut all = true;
    for c in &s.conditions {
        let ct = eval_condition(c, s.effect, ctx, log);
        all &= ct.holds;
        trace.conditions.push(ct);
    }
    trace.applies = all;
    trace
}

/// Substitutes variables. `wildcards`: whether `*`/`?` of the policy text are wildcards.
fn substitute_template(
    t: &Template,
    ctx: ContextRef<'_>,
    log: &mut VarLog,
    wildcards: bool,
) -> Result<Pattern, Vec<String>> {
    let mut pat = Pattern::default();
    let mut problems = Vec::new();
    for seg in &t.segs {
        match seg {
            Seg::Text(s) if wildcards => pat.push_policy_text(s),
            Seg::Text(s) => pat.push_literal(s),
            Seg::Lit(c) => pat.0.push(Tok::Lit(*c)),
            Seg::Var(v, name) => {
                let value = v.resolve(ctx);
                log.record(name, v, &value);
                match value {
                    Value::One(s) => pat.push_literal(&s),
                    Value::Many(_) => problems.push(format!(
                        "${{{name}}} is a list; a list cannot be substituted into a string"
                    )),
                    Value::Absent(why) | Value::Unusable(why) => {
                        problems.push(format!("${{{name}}} did not resolve: {why}"))
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(pat)
    } else {
        Err(problems)
    }
}

fn literal_text(p: &Pattern) -> String {
    p.0.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::Qm => '?',
        })
        .collect()
}

fn eval_condition(
    c: &Condition,
    effect: Effect,
    ctx: ContextRef<'_>,
    log: &mut VarLog,
) -> ConditionTrace {
    let value = c.key_var.resolve(ctx);
    log.record(&c.key, &c.key_var, &value);
    let mut t = ConditionTrace {
        operator: c.operator.clone(),
        key: c.key.clone(),
        request_values: Vec::new(),
        policy_values: c.values.iter().map(|v| v.raw.clone()).collect(),
        holds: false,
        note: String::new(),
    };
    // Fail closed: when the condition cannot be evaluated, an Allow does not apply and a Deny does.
    let fail_closed = |t: &mut ConditionTrace, why: String| {
        t.holds = effect == Effect::Deny;
        t.note = format!(
            "{why}; cannot be evaluated, so it counts as {} for this {} statement",
            if t.holds { "holding" } else { "not holding" },
            effect.as_str()
        );
    };
    if c.op == Op::Null {
        let present = match &value {
            Value::One(_) => true,
            Value::Many(v) => !v.is_empty(),
            Value::Absent(_) => false,
            Value::Unusable(why) => {
                fail_closed(&mut t, format!("key {} is unusable: {why}", c.key));
                return t;
            }
        };
        if let Value::One(v) = &value {
            t.request_values = vec![v.clone()];
        }
        let want_absent: Vec<bool> = c
            .values
            .iter()
            .map(|v| v.raw.eq_ignore_ascii_case("true"))
            .collect();
        t.holds = want_absent.iter().any(|w| *w != present);
        t.note = format!(
            "key {} is {}",
            c.key,
            if present { "present" } else { "absent" }
        );
        return t;
    }
    let (req, single) = match &value {
        Value::One(v) => (vec![v.clone()], true),
        Value::Many(v) => (v.clone(), false),
        Value::Absent(why) => {
            if c.if_exists {
                t.holds = true;
                t.note = format!(
                    "key {} is absent ({why}), and …IfExists holds when the key is absent",
                    c.key
                );
            } else {
                fail_closed(&mut t, format!("key {} is absent: {why}", c.key));
            }
            return t;
        }
        Value::Unusable(why) => {
            fail_closed(&mut t, format!("key {} did not resolve: {why}", c.key));
            return t;
        }
    };
    t.request_values = req.clone();
    let wildcards = matches!(
        c.op,
        Op::StringLike
            | Op::StringNotLike
            | Op::ArnEquals
            | Op::ArnLike
            | Op::ArnNotEquals
            | Op::ArnNotLike
    );
    let mut pats = Vec::new();
    for v in &c.values {
        match substitute_template(v, ctx, log, wildcards) {
            Ok(p) => pats.push(p),
            Err(why) => {
                fail_closed(&mut t, why.join("; "));
                return t;
            }
        }
    }
    t.policy_values = pats
        .iter()
        .map(|p| {
            if wildcards {
                p.display()
            } else {
                literal_text(p)
            }
        })
        .collect();
    let positive = |v: &str| pats.iter().any(|p| op_match(c.op, v, p));
    let holds_for = |v: &str| {
        if c.op.negated() {
            !positive(v)
        } else {
            positive(v)
        }
    };
    let (holds, how) = match c.qualifier {
        Some(Qualifier::ForAllValues) => (
            req.iter().all(|v| holds_for(v)),
            "every request value must match (true for none)",
        ),
        Some(Qualifier::ForAnyValue) => (
            req.iter().any(|v| holds_for(v)),
            "at least one request value must match",
        ),
        None if single => (holds_for(&req[0]), ""),
        None => {
            // A list key without a set qualifier: read so that it cannot widen access.
            if effect == Effect::Allow {
                (
                    !req.is_empty() && req.iter().all(|v| holds_for(v)),
                    "list key without ForAllValues/ForAnyValue: every value must match",
                )
            } else {
                (req.iter().any(|v| holds_for(v)), "list key without ForAllValues/ForAnyValue: any value matching is enough for a Deny")
            }
        }
    };
    t.holds = holds;
    t.note = if how.is_empty() {
        (if holds { "holds" } else { "does not hold" }).to_string()
    } else {
        how.to_string()
    };
    t
}

fn op_match(op: Op, v: &str, p: &Pattern) -> bool {
    match op {
        Op::StringEquals | Op::StringNotEquals | Op::StringLike | Op::StringNotLike => {
            p.matches(v, false)
        }
        Op::StringEqualsIgnoreCase | Op::StringNotEqualsIgnoreCase => p.matches(v, true),
        Op::Bool => v.eq_ignore_ascii_case(&literal_text(p)),
        Op::IpAddress | Op::NotIpAddress => {
            match (v.parse::<std::net::IpAddr>(), parse_cidr(&literal_text(p))) {
                (Ok(ip), Ok((net, len))) => cidr_contains(net, len, ip),
                _ => false,
            }
        }
        Op::ArnEquals | Op::ArnLike | Op::ArnNotEquals | Op::ArnNotLike => p.matches_arn(v),
        Op::Null => false,
    }
}

fn cidr_contains(net: std::net::IpAddr, len: u8, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr::*;
    let (a, b, bits): (u128, u128, u32) = match (net, ip) {
        (V4(n), V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
        (V6(n), V6(i)) => (u128::from(n), u128::from(i), 128),
        (V6(n), V4(i)) | (V4(i), V6(n)) => match n.to_ipv4_mapped() {
            Some(m) if net.is_ipv4() => return cidr_contains(V4(i), len, V4(m)),
            _ => return false,
        },
    };
    let len = len as u32;
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

impl Decision {
    /// The explanation for a learner, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} on {} → {}",
            self.action,
            self.resource,
            self.kind.as_str()
        )];
        let find = |r: &StatementRef| self.statements.iter().find(|t| t.at == *r);
        match self.kind {
            DecisionKind::ExplicitDeny => {
                for r in &self.deciding {
                    out.push(format!(
                        "Denied by {}: an explicit Deny overrides every Allow.",
                        r.describe()
                    ));
                    if let Some(t) = find(r) {
                        explain_statement(t, &mut out);
                    }
                }
            }
            DecisionKind::Allowed => {
                for r in &self.deciding {
                    out.push(format!("Allowed by {}.", r.describe()));
                    if let Some(t) = find(r) {
                        explain_statement(t, &mut out);
                    }
                }
                out.push("No Deny statement applies.".to_string());
            }
            DecisionKind::ImplicitDeny => {
                out.push("No statement allows it, so it is denied by default.".to_string());
                let covering: Vec<&StatementTrace> =
                    self.statements.iter().filter(|t| t.covers_action).collect();
                if covering.is_empty() {
                    out.push(format!(
                        "  None of the {} statement(s) of {} covers {}.",
                        self.statements.len(),
                        if self.policies.is_empty() {
                            "(no policies attached)".to_string()
                        } else {
                            self.policies.join(", ")
                        },
                        self.action
                    ));
                }
                for t in covering {
                    out.push(format!(
                        "  {} ({}) does not apply:",
                        t.at.describe(),
                        t.at.effect
                    ));
                    explain_statement(t, &mut out);
                }
            }
        }
        for v in &self.variables {
            if v.resolved {
                out.push(format!(
                    "  ${{{}}} = {} (from {})",
                    v.name,
                    show_values(&v.values),
                    v.source
                ));
            } else {
                out.push(format!(
                    "  ${{{}}} did not resolve: {}",
                    v.name,
                    v.problem.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }

    /// The explanation as JSON (goes into `trace::PolicyEvent::detail`).
    pub fn detail(&self) -> serde_json::Value {
        json!({
            "decision": self.kind.as_str(),
            "action": self.action.as_str(),
            "resource": self.resource,
            "policies": self.policies,
            "deciding": self.deciding,
            "statements": self.statements,
            "variables": self.variables,
        })
    }
}

fn show_values(v: &[String]) -> String {
    match v {
        [one] => format!("{one:?}"),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn explain_statement(t: &StatementTrace, out: &mut Vec<String>) {
    for r in &t.resources {
        let verdict = if r.matched {
            "matches"
        } else {
            "does not match"
        };
        match &r.substituted {
            Some(s) if *s == r.pattern => {
                out.push(format!("    {} {} {verdict}", t.resource_element, s))
            }
            Some(s) => out.push(format!(
                "    {} {} → {} {verdict}",
                t.resource_element, r.pattern, s
            )),
            None => out.push(format!(
                "    {} {} matches nothing: {}",
                t.resource_element,
                r.pattern,
                r.unresolved.join("; ")
            )),
        }
    }
    if t.resource_element == "NotResource" && t.resource_ok {
        out.push(
            "    (NotResource: the statement applies because no listed resource matches)"
                .to_string(),
        );
    }
    for c in &t.conditions {
        out.push(format!(
            "    Condition {} {}: request {} vs policy {} — {}{}",
            c.operator,
            c.key,
            show_values(&c.request_values),
            show_values(&c.policy_values),
            if c.holds { "holds" } else { "does not hold" },
            if c.note.is_empty() || c.note == "holds" || c.note == "does not hold" {
                String::new()
            } else {
                format!(" ({})", c.note)
            }
        ));
    }
}
