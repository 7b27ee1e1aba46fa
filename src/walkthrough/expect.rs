//! What a lesson says about its run: `[expect]` checked against the trace, step selectors resolved
//! to events, and `say` placeholders filled from the run's own values.

use super::format::{Expect, SelectorSpec};
use crate::engine::mqtt_io::Version;
use crate::mqtt::topic::filter_matches;
use crate::trace::{
    CertRoleKind, CheckId, EventKind, FailureCode, HandshakeType, MqttPacketType, Phase,
    PolicyAction, Side, Trace, WitnessKind,
};
use serde::de::DeserializeOwned;

/// A step of a run, by what happened there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// A check (`client_chain`, `server_name`, …), optionally by the side that made it.
    Check { check: CheckId, by: Option<Side> },
    /// A TLS handshake message, optionally by its sender.
    Message {
        msg: HandshakeType,
        from: Option<Side>,
    },
    /// The first record carrying this MQTT packet, optionally by its sender.
    Mqtt {
        packet: MqttPacketType,
        from: Option<Side>,
    },
    /// The first policy decision on this action.
    Policy(PolicyAction),
    /// The first event of a phase.
    Phase(Phase),
}

/// A quiz question asked before the step its selector names is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuizItem {
    pub after: Selector,
    pub question: String,
    pub choices: Vec<String>,
    /// From 1.
    pub answer: usize,
    pub explain: Option<String>,
}

fn enum_value<T: DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// Every check id, for error messages.
const CHECKS: &str = "server_chain, server_name, server_kx_signature, client_chain, \
certificate_verify, client_finished, server_finished, registry";
const PHASES: &str =
    "connect, hello, server_auth, client_auth, key_exchange, handshake_signature, finished, mqtt, policy, close";
const ACTIONS: [PolicyAction; 5] = [
    PolicyAction::Connect,
    PolicyAction::Publish,
    PolicyAction::RetainPublish,
    PolicyAction::Subscribe,
    PolicyAction::Receive,
];

/// A TLS 1.2 handshake message by its RFC 5246 name (`CertificateVerify`).
pub fn handshake_by_name(name: &str) -> Option<HandshakeType> {
    (0u8..=255)
        .map(HandshakeType)
        .find(|t| !t.name().starts_with("Unknown") && t.name() == name)
}

/// An MQTT packet type by its name (`PUBLISH`, `PUBACK`, …).
pub fn packet_by_name(name: &str) -> Option<MqttPacketType> {
    (1u8..=15)
        .filter_map(MqttPacketType::from_nibble)
        .find(|p| p.name().eq_ignore_ascii_case(name))
}

/// A policy action by its AWS name (`iot:Publish`).
pub fn action_by_name(name: &str) -> Option<PolicyAction> {
    ACTIONS
        .into_iter()
        .find(|a| a.iot_name().eq_ignore_ascii_case(name))
}

impl Selector {
    /// Parse a selector table; the error says what is wrong in words.
    pub fn parse(s: &SelectorSpec) -> Result<Selector, String> {
        let set = [
            s.check.is_some(),
            s.message.is_some(),
            s.mqtt.is_some(),
            s.policy.is_some(),
            s.phase.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            return Err(
                "a step selector has exactly one of check, message, mqtt, policy, phase \
                 (and `from` with check, message or mqtt)"
                    .into(),
            );
        }
        let from = match &s.from {
            None => None,
            Some(f) => Some(enum_value::<Side>(f).ok_or_else(|| {
                format!("from = {f:?}: a side is \"device\", \"broker\" or \"iotls\"")
            })?),
        };
        if from.is_some() && (s.policy.is_some() || s.phase.is_some()) {
            return Err("`from` goes with check, message or mqtt only".into());
        }
        if let Some(c) = &s.check {
            let check = enum_value::<CheckId>(c)
                .ok_or_else(|| format!("check = {c:?} is not a check; the checks: {CHECKS}"))?;
            return Ok(Selector::Check { check, by: from });
        }
        if let Some(m) = &s.message {
            let msg = handshake_by_name(m).ok_or_else(|| {
                format!(
                    "message = {m:?} is not a TLS 1.2 handshake message (ClientHello, \
                     ServerHello, Certificate, ServerKeyExchange, CertificateRequest, \
                     ServerHelloDone, ClientKeyExchange, CertificateVerify, Finished)"
                )
            })?;
            return Ok(Selector::Message { msg, from });
        }
        if let Some(m) = &s.mqtt {
            let packet = packet_by_name(m).ok_or_else(|| {
                format!("mqtt = {m:?} is not an MQTT packet (CONNECT, CONNACK, PUBLISH, PUBACK, …)")
            })?;
            return Ok(Selector::Mqtt { packet, from });
        }
        if let Some(p) = &s.policy {
            let a = action_by_name(p).ok_or_else(|| {
                format!(
                    "policy = {p:?} is not an MQTT policy action (iot:Connect, iot:Publish, \
                     iot:RetainPublish, iot:Subscribe, iot:Receive)"
                )
            })?;
            return Ok(Selector::Policy(a));
        }
        let p = s.phase.as_deref().unwrap_or_default();
        enum_value::<Phase>(p)
            .map(Selector::Phase)
            .ok_or_else(|| format!("phase = {p:?} is not a phase; the phases: {PHASES}"))
    }

    /// The index in `trace.events` of the first event this selector names, if the run had one.
    pub fn resolve(&self, trace: &Trace) -> Option<usize> {
        trace.events.iter().position(|e| match (self, &e.kind) {
            (Selector::Check { check, by }, EventKind::Check { check: c, .. }) => {
                c == check && by.is_none_or(|s| s == e.side)
            }
            (Selector::Message { msg, from }, EventKind::Handshake { msg: m, .. }) => {
                m == msg && from.is_none_or(|s| s == e.side)
            }
            (Selector::Mqtt { packet, from }, EventKind::AppData { mqtt, .. }) => {
                mqtt.iter().any(|p| p.packet == *packet) && from.is_none_or(|s| s == e.side)
            }
            (Selector::Policy(a), EventKind::Policy(p)) => p.action == *a,
            // A witness's events are another connection's: they mark no phase of this one.
            (Selector::Phase(_), EventKind::Witness { .. }) => false,
            (Selector::Phase(p), _) => e.phase == *p,
            _ => false,
        })
    }
}

/// The placeholders a `say` text may use, filled from the run.
pub const PLACEHOLDERS: &[&str] = &[
    "cert.device.cn",
    "cert.device.subject",
    "cert.device.issuer",
    "cert.device.serial_number",
    "cert.device.serial",
    "cert.device.not_before",
    "cert.device.not_after",
    "cert.device.key",
    "cert.device.id",
    "cert.broker.cn",
    "cert.broker.subject",
    "cert.broker.issuer",
    "cert.broker.san",
    "cert.broker.not_after",
    "cert.broker.key",
    "tls.cipher_suite",
    "tls.kx_group",
    "tls.sni",
    "outcome.failure",
    "outcome.summary",
];

/// The `{…}` placeholders of a text with a dot in their name (lesson variables have none).
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) => {
                let name = &after[..j];
                if name.contains('.')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                {
                    out.push(name);
                }
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// One placeholder's value in this run (`?` when the run never got there, e.g. no broker
/// certificate after a refused ClientHello).
pub fn placeholder_value(trace: &Trace, name: &str) -> String {
    let mut parts = name.splitn(3, '.');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    let unknown = || "?".to_string();
    match (a, b, c) {
        (Some("cert"), Some(side), Some(field)) => {
            let side = match side {
                "device" => Side::Device,
                "broker" => Side::Broker,
                _ => return unknown(),
            };
            let Some(info) = trace.certificates.iter().find(|c| {
                c.roles
                    .iter()
                    .any(|r| r.side == side && r.kind == CertRoleKind::Chain && r.index == 0)
            }) else {
                return unknown();
            };
            let vars = crate::policy::CertVars::from_der(&info.der).unwrap_or_default();
            let attr = |k: &str| vars.subject.get(k).and_then(|v| v.first()).cloned();
            match field {
                "cn" => attr("CommonName").unwrap_or_else(unknown),
                "subject" => info.subject.clone(),
                "issuer" => info.issuer.clone(),
                "serial_number" => attr("SerialNumber").unwrap_or_else(unknown),
                "serial" => info.serial.clone(),
                "not_before" => info.not_before.clone(),
                "not_after" => info.not_after.clone(),
                "key" => info.key.clone(),
                "id" => info.sha256.clone(),
                "san" => info.san.join(", "),
                _ => unknown(),
            }
        }
        (Some("tls"), Some(field), None) => {
            let Some(t) = &trace.tls else {
                return unknown();
            };
            match field {
                "cipher_suite" => t.cipher_suite.clone(),
                "kx_group" => t.kx_group.clone().unwrap_or_else(unknown),
                "sni" => t.sni.clone().unwrap_or_else(|| "(none)".into()),
                _ => unknown(),
            }
        }
        (Some("outcome"), Some("failure"), None) => trace
            .outcome
            .failure
            .as_ref()
            .map(|f| f.code.as_str().to_string())
            .unwrap_or_else(|| "none".into()),
        (Some("outcome"), Some("summary"), None) => trace.outcome.summary.clone(),
        _ => unknown(),
    }
}

/// A `say` text with its placeholders filled from the run.
pub fn fill(text: &str, trace: &Trace) -> String {
    let mut out = text.to_string();
    for p in placeholders(text) {
        out = out.replace(&format!("{{{p}}}"), &placeholder_value(trace, p));
    }
    out
}

/// One way the run contradicted the lesson's `[expect]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The `[expect]` key (`expect.failure`, `expect.mqtt5.absent`, …).
    pub key: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the lesson expects {}, the run gave {}",
            self.key, self.expected, self.got
        )
    }
}

/// Check `[expect]` against a run under `version`: every contradiction, none when the claim held.
pub fn check(expect: &Expect, trace: &Trace, version: Version) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if let Some(ok) = expect.ok {
        if ok != trace.outcome.ok {
            out.push(Mismatch {
                key: "expect.ok".into(),
                expected: format!("ok = {ok}"),
                got: match &trace.outcome.failure {
                    Some(f) => format!("ok = {} (failure {})", trace.outcome.ok, f.code.as_str()),
                    None => format!("ok = {}", trace.outcome.ok),
                },
            });
        }
    }
    if let Some(f) = &expect.failure {
        let got = trace.outcome.failure.as_ref().map(|f| f.code);
        if got.map(FailureCode::as_str) != Some(f.as_str()) {
            out.push(Mismatch {
                key: "expect.failure".into(),
                expected: format!("failure {f}"),
                got: got
                    .map(|c| format!("failure {}", c.as_str()))
                    .unwrap_or_else(|| "no failure".into()),
            });
        }
    }
    for (i, p) in expect.policy.iter().flatten().enumerate() {
        let action = action_by_name(&p.action);
        let decisions: Vec<String> = trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Policy(d) if Some(d.action) == action => {
                    Some(d.decision.as_str().to_string())
                }
                _ => None,
            })
            .collect();
        if !decisions.iter().any(|d| d == &p.decision) {
            out.push(Mismatch {
                key: format!("expect.policy.{i}"),
                expected: format!("{} {}", p.action, p.decision),
                got: if decisions.is_empty() {
                    format!("no {} decision", p.action)
                } else {
                    format!("{} {}", p.action, decisions.join(", "))
                },
            });
        }
    }
    for (i, w) in expect.witness.iter().flatten().enumerate() {
        let got: Vec<&str> = trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Witness {
                    device,
                    what: WitnessKind::Received { topic, .. },
                } if *device == w.device => Some(topic.as_str()),
                _ => None,
            })
            .collect();
        let said = || {
            if got.is_empty() {
                format!("{} received nothing", w.device)
            } else {
                format!("{} received {}", w.device, got.join(", "))
            }
        };
        let matched = |f: &str| got.iter().any(|t| filter_matches(f, t));
        for f in w.received.iter().flatten() {
            if !matched(f) {
                out.push(Mismatch {
                    key: format!("expect.witness.{i}.received"),
                    expected: format!("{} to receive {f}", w.device),
                    got: said(),
                });
            }
        }
        for f in w.not_received.iter().flatten() {
            if matched(f) {
                out.push(Mismatch {
                    key: format!("expect.witness.{i}.not_received"),
                    expected: format!("{} to receive nothing on {f}", w.device),
                    got: said(),
                });
            }
        }
    }
    let (key, packets) = match version {
        Version::V4 => ("expect.mqtt311", &expect.mqtt311),
        Version::V5 => ("expect.mqtt5", &expect.mqtt5),
    };
    if let Some(p) = packets {
        let seen: Vec<MqttPacketType> = trace.mqtt_packets().map(|(_, p)| p.packet).collect();
        for name in p.present.iter().flatten() {
            if !packet_by_name(name).is_some_and(|t| seen.contains(&t)) {
                out.push(Mismatch {
                    key: format!("{key}.present"),
                    expected: format!("a {name}"),
                    got: format!("no {name}"),
                });
            }
        }
        for name in p.absent.iter().flatten() {
            if packet_by_name(name).is_some_and(|t| seen.contains(&t)) {
                out.push(Mismatch {
                    key: format!("{key}.absent"),
                    expected: format!("no {name}"),
                    got: format!("a {name}"),
                });
            }
        }
    }
    out
}

/// Check the values of `[expect]` (not the run): unknown failure codes, actions, decisions and
/// packet names. Returns the key and the message of the first wrong one.
pub fn validate(expect: &Expect) -> Result<(), (String, String)> {
    if let Some(f) = &expect.failure {
        if enum_value::<FailureCode>(f).is_none() {
            return Err((
                "expect.failure".into(),
                format!(
                    "{f:?} is not a failure code (unknown_issuer, missing_intermediate, expired, \
                     not_valid_for_name, invalid_purpose, inactive_certificate, policy_denied, … \
                     as in docs/trace-format.md)"
                ),
            ));
        }
    }
    for (i, p) in expect.policy.iter().flatten().enumerate() {
        if action_by_name(&p.action).is_none() {
            return Err((
                format!("expect.policy.{i}.action"),
                format!(
                    "{:?} is not an MQTT policy action (iot:Connect, iot:Publish, …)",
                    p.action
                ),
            ));
        }
        if !["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"].contains(&p.decision.as_str()) {
            return Err((
                format!("expect.policy.{i}.decision"),
                format!(
                    "{:?}: a decision is ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY",
                    p.decision
                ),
            ));
        }
    }
    for (key, p) in [
        ("expect.mqtt311", &expect.mqtt311),
        ("expect.mqtt5", &expect.mqtt5),
    ] {
        let Some(p) = p else { continue };
        for (sub, names) in [("present", &p.present), ("absent", &p.absent)] {
            for name in names.iter().flatten() {
                if packet_by_name(name).is_none() {
                    return Err((
                        format!("{key}.{sub}"),
                        format!("{name:?} is not an MQTT packet (CONNACK, PUBACK, SUBACK, …)"),
                    ));
                }
            }
        }
    }
    Ok(())
}
