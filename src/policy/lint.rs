//! The Device Defender audit checks that look at one policy document.
//!
//! * `IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK`
//!   (<https://docs.aws.amazon.com/iot/latest/developerguide/audit-chk-iot-misconfigured-policies.html>):
//!   `POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT` and
//!   `TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS`.
//! * `IOT_POLICY_OVERLY_PERMISSIVE_CHECK`
//!   (<https://docs.aws.amazon.com/iot-device-defender/latest/devguide/audit-chk-iot-policy-permissive.html>):
//!   `ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS` for `client/${iot:ClientId}` without
//!   `iot:Connection.Thing.IsAttached`, for `client/*`, and for `iot:*` / `*` on `*`.
//!
//! Conditions are ignored when looking for a bypass (a finding is a warning to read the policy).

use serde::Serialize;

use super::document::{ActionSpec, Effect, Op, Policy, ResourceSpec, Seg, Statement, Template};
use super::pattern::{Pattern, Tok};
use super::vars::Var;

/// One audit finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Device Defender check name, e.g. `IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK`.
    pub check: &'static str,
    /// Its reason code, e.g. `POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT`.
    pub reason: &'static str,
    /// `Critical` or `Medium`, as Device Defender rates the check.
    pub severity: &'static str,
    /// The statement, e.g. `statement 2 (Sid "DenyControlRoom")`.
    pub statement: String,
    /// What is wrong, with the concrete example that shows it.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

const MISCONFIG: &str = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK";
const PERMISSIVE: &str = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK";

/// Runs the audit checks on one policy.
pub fn lint(policy: &Policy) -> Vec<Finding> {
    let stmts = &policy.document.statements;
    let mut out = Vec::new();
    for s in stmts {
        mqtt_wildcards_in_deny(s, &mut out);
        subscribe_deny_bypass(s, stmts, &mut out);
        connect_client_id_without_is_attached(s, &mut out);
        broad_access(s, &mut out);
    }
    out
}

/// The resource part (`topic/a/b`) of a template's raw text.
fn resource_part(raw: &str) -> &str {
    raw.splitn(6, ':').nth(5).unwrap_or(raw)
}

fn mqtt_wildcards_in_deny(s: &Statement, out: &mut Vec<Finding>) {
    if s.effect != Effect::Deny {
        return;
    }
    let ResourceSpec::Resource(ts) = &s.resource else {
        return;
    };
    for t in ts {
        let part = resource_part(&t.raw);
        let Some(name) = part
            .strip_prefix("topicfilter/")
            .or_else(|| part.strip_prefix("topic/"))
        else {
            continue;
        };
        if name.contains('+') || name.contains('#') {
            let suggestion = name.replace(['#', '+'], "*");
            out.push(Finding {
                check: MISCONFIG,
                reason: "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
                severity: "Medium",
                statement: s.label(),
                message: format!(
                    "Deny on `{part}` uses the MQTT wildcard `{}`, which a policy treats as a literal character: it denies only \
                     the filter spelled exactly `{name}`, not the topics it was meant to cover",
                    if name.contains('#') { '#' } else { '+' }
                ),
                fix: format!(
                    "write the policy wildcard instead (`{suggestion}`), and also deny iot:Receive on `topic/{suggestion}` so that a \
                     wider subscription cannot deliver those messages"
                ),
            });
        }
    }
}

/// Lint rendering of a template: variables stay as their literal `${name}` text.
fn lint_pattern(t: &Template) -> Pattern {
    let mut p = Pattern::default();
    for seg in &t.segs {
        match seg {
            Seg::Text(s) => p.push_policy_text(s),
            Seg::Var(_, n) => p.push_literal(&format!("${{{n}}}")),
            Seg::Lit(c) => p.0.push(Tok::Lit(*c)),
        }
    }
    p
}

/// Whether a statement (conditions ignored) applies to `action` on `arn`.
fn applies(s: &Statement, action: &str, arn: &str) -> bool {
    if !s.covers_action(action) {
        return false;
    }
    match &s.resource {
        ResourceSpec::Resource(ts) => ts.iter().any(|t| lint_pattern(t).matches_arn(arn)),
        ResourceSpec::NotResource(ts) => !ts.iter().any(|t| lint_pattern(t).matches_arn(arn)),
    }
}

/// Allowed by some statement and denied by none (conditions ignored).
fn allowed(stmts: &[Statement], action: &str, arn: &str) -> Option<usize> {
    if stmts
        .iter()
        .any(|s| s.effect == Effect::Deny && applies(s, action, arn))
    {
        return None;
    }
    stmts
        .iter()
        .find(|s| s.effect == Effect::Allow && applies(s, action, arn))
        .map(|s| s.index)
}

fn subscribe_deny_bypass(s: &Statement, stmts: &[Statement], out: &mut Vec<Finding>) {
    if s.effect != Effect::Deny || !s.covers_action("iot:Subscribe") {
        return;
    }
    let ResourceSpec::Resource(ts) = &s.resource else {
        return;
    };
    for t in ts {
        let rendered = lint_pattern(t).display();
        let Some((prefix, filter)) = rendered.split_once(":topicfilter/") else {
            continue;
        };
        if filter.contains('+') || filter.contains('#') {
            continue; // reported by the MQTT-wildcards check
        }
        // A concrete topic the Deny means to protect: wildcards replaced by a letter.
        let sample = |x: &str| x.replace(['*', '?'], "x");
        let prefix = sample(prefix);
        let topic = sample(filter);
        let levels: Vec<&str> = topic.split('/').collect();
        let mut candidates = vec!["#".to_string()];
        for k in 1..levels.len() {
            candidates.push(format!("{}/#", levels[..k].join("/")));
        }
        for i in 0..levels.len() {
            let mut l = levels.clone();
            l[i] = "+";
            candidates.push(l.join("/"));
        }
        let receive_arn = format!("{prefix}:topic/{topic}");
        let Some(recv_by) = allowed(stmts, "iot:Receive", &receive_arn) else {
            continue;
        };
        for f in candidates {
            if !crate::mqtt::topic::levels_match(&f, &topic) {
                continue;
            }
            let arn = format!("{prefix}:topicfilter/{f}");
            if let Some(sub_by) = allowed(stmts, "iot:Subscribe", &arn) {
                out.push(Finding {
                    check: MISCONFIG,
                    reason: "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS",
                    severity: "Medium",
                    statement: s.label(),
                    message: format!(
                        "the Deny on `topicfilter/{filter}` can be bypassed: a device may subscribe to `{f}` (allowed by statement \
                         {sub_by}, not denied) and then receive `{topic}` (iot:Receive allowed by statement {recv_by})"
                    ),
                    fix: format!(
                        "add a Deny for iot:Receive on `{prefix}:topic/{filter}` (Receive is checked on every delivery, whatever \
                         filter the subscription used), or narrow the iot:Receive allow"
                    ),
                });
                break;
            }
        }
    }
}

fn has_is_attached_true(s: &Statement) -> bool {
    s.conditions.iter().any(|c| {
        c.op == Op::Bool
            && c.key_var == Var::IsAttached
            && c.values.iter().any(|v| v.raw.eq_ignore_ascii_case("true"))
    })
}

fn connect_client_id_without_is_attached(s: &Statement, out: &mut Vec<Finding>) {
    if s.effect != Effect::Allow || !s.covers_action("iot:Connect") {
        return;
    }
    let ResourceSpec::Resource(ts) = &s.resource else {
        return;
    };
    for t in ts {
        let part = resource_part(&t.raw);
        let uses_client_id =
            part.starts_with("client/") && t.vars().any(|(v, _)| *v == Var::ClientId);
        if uses_client_id && !has_is_attached_true(s) {
            out.push(Finding {
                check: PERMISSIVE,
                reason: "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
                severity: "Critical",
                statement: s.label(),
                message: format!(
                    "`{part}` lets a certificate connect with any client id it chooses (the variable is whatever the device sends), \
                     which is the same as `client/*` unless iot:Connection.Thing.IsAttached is required"
                ),
                fix: "use `client/${iot:Connection.Thing.ThingName}` with the condition {\"Bool\": {\"iot:Connection.Thing.IsAttached\": \"true\"}}"
                    .to_string(),
            });
        }
        let explicit_connect = matches!(&s.action, ActionSpec::Action(a) if a.iter().any(|x| x.eq_ignore_ascii_case("iot:Connect")));
        if (part == "client/*" || (t.raw == "*" && explicit_connect)) && !has_is_attached_true(s) {
            out.push(Finding {
                check: PERMISSIVE,
                reason: "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
                severity: "Critical",
                statement: s.label(),
                message: format!("iot:Connect on `{}` lets any certificate holding this policy connect as any client id", t.raw),
                fix: "use `client/${iot:Connection.Thing.ThingName}` with the condition {\"Bool\": {\"iot:Connection.Thing.IsAttached\": \"true\"}}"
                    .to_string(),
            });
        }
    }
}

fn broad_access(s: &Statement, out: &mut Vec<Finding>) {
    if s.effect != Effect::Allow {
        return;
    }
    let ActionSpec::Action(actions) = &s.action else {
        return;
    };
    let Some(all) = actions
        .iter()
        .find(|a| *a == "*" || a.eq_ignore_ascii_case("iot:*"))
    else {
        return;
    };
    let everything = match &s.resource {
        ResourceSpec::Resource(ts) => ts.iter().any(|t| t.raw == "*"),
        ResourceSpec::NotResource(_) => true,
    };
    if everything {
        out.push(Finding {
            check: PERMISSIVE,
            reason: "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
            severity: "Critical",
            statement: s.label(),
            message: format!(
                "`{all}` on every resource: a stolen certificate could connect as any device, publish and subscribe anywhere, and \
                 read or change every shadow and job"
            ),
            fix: "list only the actions the device needs, each on its own resources, built from policy variables (e.g. \
                  topic/iotbutton/${iot:Certificate.Subject.SerialNumber})"
                .to_string(),
        });
    }
}
