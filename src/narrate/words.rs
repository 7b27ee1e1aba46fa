//! Words as data: what fields, alerts, failures and checks mean, read from the files of
//! `words/` (embedded, parsed once) and looked up by id. [`crate::narrate`] builds its sentences
//! from these and this run's values; the terminal UI, `--plain` and the exported page share them.
//!
//! The files are checked by the tests below (every id has an entry, every entry is used, every
//! line fits). Should one still not parse, its lookups fall back to neutral words: a malformed
//! file never stops a session from being shown.

use crate::trace::{field_id, CheckId};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const FIELDS: &str = include_str!("../../words/fields.toml");
const ALERTS: &str = include_str!("../../words/alerts.toml");
const FAILURES: &str = include_str!("../../words/failures.toml");
const CHECKS: &str = include_str!("../../words/checks.toml");
const REASONS_TOML: &str = include_str!("../../words/reasons.toml");
const CLOSES_TOML: &str = include_str!("../../words/closes.toml");

/// Said of an alert that has no entry.
pub const ALERT_FALLBACK: &str = "an error the peer reported";
/// Said of a check that has no entry.
pub const CHECK_FALLBACK: &str = "this check";
/// Cause and fix of a failure that has no entry.
pub const FAILURE_FALLBACK: (&str, &str) = (
    "The check failed for the reason shown.",
    "Read the reason above; correct the configuration it names.",
);

/// The cause and fix templates of one failure (`words/failures.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureWords {
    pub cause: String,
    pub fix: String,
}

/// Every file of `words/`, parsed.
#[derive(Debug, Default)]
pub struct Words {
    /// Section (message id, `handshake`, `mqtt`, `record`) → field id → meaning.
    pub fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Alert name → meaning.
    pub alerts: BTreeMap<String, String>,
    /// Failure code (or code variant) → cause and fix.
    pub failures: BTreeMap<String, FailureWords>,
    /// Check id → title.
    pub checks: BTreeMap<String, String>,
    /// Reason id → the template of a check's recorded reason.
    pub reasons: BTreeMap<String, String>,
    /// Close id → the template of the broker's reason for ending a connection.
    pub closes: BTreeMap<String, String>,
}

impl Words {
    /// Parses the four files; the first error names its file.
    pub fn parse(
        fields: &str,
        alerts: &str,
        failures: &str,
        checks: &str,
        reasons: &str,
        closes: &str,
    ) -> Result<Words, String> {
        fn one<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T, String> {
            toml::from_str(text).map_err(|e| format!("words/{name}: {e}"))
        }
        Ok(Words {
            fields: one("fields.toml", fields)?,
            alerts: one("alerts.toml", alerts)?,
            failures: one("failures.toml", failures)?,
            checks: one("checks.toml", checks)?,
            reasons: one("reasons.toml", reasons)?,
            closes: one("closes.toml", closes)?,
        })
    }

    /// The embedded files.
    pub fn embedded() -> Result<Words, String> {
        Words::parse(FIELDS, ALERTS, FAILURES, CHECKS, REASONS_TOML, CLOSES_TOML)
    }
}

/// The embedded words, parsed on first use (empty maps, hence neutral words, if they do not
/// parse; the tests make sure they do).
pub fn words() -> &'static Words {
    static WORDS: OnceLock<Words> = OnceLock::new();
    WORDS.get_or_init(|| Words::embedded().unwrap_or_default())
}

/// What field `field` (a name as the trace shows it) of message `msg` means: the message's own
/// entry, else the entry every handshake message (or every MQTT packet: an upper-case `msg`)
/// shares; an extension without an entry of its own is a TLS extension.
pub fn field(msg: &str, field: &str) -> Option<&'static str> {
    let id = field_id(field);
    let w = words();
    let common = if !msg.is_empty() && msg.chars().all(|c| c.is_ascii_uppercase()) {
        "mqtt"
    } else {
        "handshake"
    };
    let get = |section: &str, key: &str| {
        w.fields
            .get(section)
            .and_then(|s| s.get(key))
            .map(String::as_str)
    };
    get(msg, &id).or_else(|| get(common, &id)).or_else(|| {
        (common == "handshake" && id.starts_with("extension_"))
            .then(|| get("handshake", "extension"))
            .flatten()
    })
}

/// What a part of a TLS record as sent means (`[record]` of `words/fields.toml`).
pub fn record_field(name: &str) -> Option<&'static str> {
    words()
        .fields
        .get("record")
        .and_then(|s| s.get(&field_id(name)))
        .map(String::as_str)
}

/// What the alert named `name` means, said by its sender.
pub fn alert(name: &str) -> &'static str {
    words()
        .alerts
        .get(name)
        .map(String::as_str)
        .unwrap_or(ALERT_FALLBACK)
}

/// What a check verifies (`the broker's certificate chain`).
pub fn check(id: CheckId) -> &'static str {
    words()
        .checks
        .get(id.as_str())
        .map(String::as_str)
        .unwrap_or(CHECK_FALLBACK)
}

/// The cause and fix templates of failure `key` (a code, or a code variant).
pub fn failure(key: &str) -> (&'static str, &'static str) {
    words()
        .failures
        .get(key)
        .map(|f| (f.cause.as_str(), f.fix.as_str()))
        .unwrap_or(FAILURE_FALLBACK)
}

/// Said of a check whose reason has no entry.
pub const REASON_FALLBACK: &str = "the verdict's evidence is in the facts";

/// The reason a check event records (`words/reasons.toml`), filled with `values`; `id` is one of
/// [`REASONS`].
pub fn reason(id: &str, values: &[(&str, &str)]) -> String {
    match words().reasons.get(id) {
        Some(t) => fill(t, values),
        None => REASON_FALLBACK.to_string(),
    }
}

/// Said of a connection's end whose close id has no entry.
pub const CLOSE_FALLBACK: &str = "the connection ended";

/// Why iotls's broker ended a connection (`words/closes.toml`), filled with `values`; `id` is one
/// of [`CLOSES`].
pub fn close(id: &str, values: &[(&str, &str)]) -> String {
    match words().closes.get(id) {
        Some(t) => fill(t, values),
        None => CLOSE_FALLBACK.to_string(),
    }
}

/// The close ids the broker fills, each with the placeholders it provides.
pub const CLOSES: &[(&str, &[&str])] = &[
    ("peer_closed", &[]),
    ("silent", &["what"]),
    ("not_mqtt", &["error"]),
    ("connection_failed", &["error"]),
    ("handshake_silent", &["secs"]),
    ("handshake_failed", &["error"]),
    ("registry_refused", &[]),
    ("first_not_connect", &[]),
    ("refused", &["request"]),
    ("gone_before_connack", &[]),
    ("taken_over", &["client_id"]),
    ("delivery_failed", &[]),
    ("slow_consumer", &["secs"]),
    ("write_failed", &[]),
    ("second_connect", &[]),
    ("qos2", &["topic"]),
    ("disconnect", &[]),
    ("not_from_client", &["packet"]),
];

/// The reason ids the code fills, each with the placeholders it provides.
pub const REASONS: &[(&str, &[&str])] = &[
    ("server_chain_ok", &[]),
    ("server_chain_ok_name_failed", &[]),
    ("server_name_ok", &["asked", "names"]),
    ("server_kx_signature_ok", &[]),
    ("client_chain_ok", &["signer"]),
    ("certificate_verify_ok", &["signed_len", "signer"]),
    ("server_kx_signature_failed", &["error"]),
    ("certificate_verify_failed", &["error"]),
    ("missing_intermediate", &[]),
    ("evidence_not_kept", &[]),
    (
        "finished_recomputed_ok",
        &["label", "hash", "count", "span", "sender"],
    ),
    (
        "finished_recomputed_mismatch",
        &["label", "hash", "count", "span"],
    ),
];

/// `template` with each `{name}` of `values` replaced by its value. A placeholder without a
/// value stays as written (the tests allow only known ones).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The placeholders of `words/failures.toml`, filled by `narrate::failure_help`.
pub const FAILURE_PLACEHOLDERS: &[&str] = &[
    "side",
    "refuser",
    "validity",
    "expected_name",
    "issuer",
    "action",
    "reason_code",
    "aws_alpn",
];

/// The failure entries that are variants of a code, chosen from the typed Failure.
pub const FAILURE_VARIANTS: &[&str] = &["unknown_issuer_of_broker", "policy_denied_explicit"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{EventKind, FailureCode, Trace};
    use std::collections::BTreeSet;

    /// Field entries no real session of a built-in lesson shows, kept on purpose: MQTT packets
    /// and fields the lessons do not send (subscriptions, wills, user names), ALPN (`connect
    /// --alpn`), extensions other clients send (`openssl s_client` against `serve`), session
    /// tickets, and the generic extension meaning.
    const FIELD_EXTRAS: &[&str] = &[
        "handshake.extension",
        "mqtt.reason_code",
        "CONNECT.password",
        "CONNECT.username",
        "CONNECT.will_message",
        "CONNECT.will_properties",
        "CONNECT.will_topic",
        "ClientHello.extension_application_layer_protocol_negotiation",
        "ClientHello.extension_renegotiation_info",
        "ClientHello.extension_session_ticket",
        "ClientHello.protocol",
        "NewSessionTicket.ticket",
        "NewSessionTicket.ticket_lifetime_hint",
        "SUBSCRIBE.subscription_options",
        "SUBSCRIBE.topic_filter",
        "ServerHello.extension_application_layer_protocol_negotiation",
        "ServerHello.protocol",
        "UNSUBSCRIBE.topic_filter",
    ];

    /// The longest meaning of a field: the detail pane's note shows "name: meaning" in at most
    /// two lines, about 64 columns each at 80×24.
    const FIELD_MAX: usize = 126;
    /// An alert's meaning follows "The broker sends a fatal alert, NAME: " in one sentence.
    const ALERT_MAX: usize = 60;
    /// A check's title is quoted in a sentence and in the exported page's table.
    const CHECK_MAX: usize = 45;
    /// Cause and fix are wrapped by every view; kept to about three lines at 80 columns.
    const FAILURE_MAX: usize = 200;
    /// A check's reason is wrapped by every view (and filled: the longest values add ~60).
    const REASON_MAX: usize = 240;

    fn placeholders(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                out.push("<unclosed>");
                break;
            };
            out.push(&rest[open + 1..open + close]);
            rest = &rest[open + close + 1..];
        }
        out
    }

    #[test]
    fn every_reason_the_code_fills_has_a_template_with_only_its_placeholders() {
        let w = strict();
        for (file, ids, map) in [
            ("reasons.toml", REASONS, &w.reasons),
            ("closes.toml", CLOSES, &w.closes),
        ] {
            for (id, allowed) in ids {
                let t = map.get(*id).unwrap_or_else(|| panic!("{file}: no {id}"));
                for p in placeholders(t) {
                    assert!(allowed.contains(&p), "{file} {id}: {{{p}}} is not filled");
                }
            }
            for k in map.keys() {
                assert!(
                    ids.iter().any(|(id, _)| id == k),
                    "{file}: {k} is used by no code"
                );
            }
        }
        assert_eq!(
            reason("server_name_ok", &[("asked", "\"a\""), ("names", "b")]),
            "the certificate is valid for \"a\" (SAN: b)"
        );
    }

    fn strict() -> Words {
        Words::embedded().expect("the embedded words parse")
    }

    #[test]
    fn every_check_has_a_title_and_every_title_a_check() {
        let w = strict();
        for c in CheckId::ALL {
            assert!(w.checks.contains_key(c.as_str()), "no title for {c:?}");
            assert_ne!(check(c), CHECK_FALLBACK);
        }
        let known: BTreeSet<&str> = CheckId::ALL.iter().map(|c| c.as_str()).collect();
        for k in w.checks.keys() {
            assert!(known.contains(k.as_str()), "checks.toml: {k} is no check");
        }
    }

    #[test]
    fn every_alert_rustls_knows_has_a_meaning_and_every_meaning_an_alert() {
        let w = strict();
        let mut known = BTreeSet::new();
        for code in 0..=u8::MAX {
            if let rustls::AlertDescription::Unknown(_) = rustls::AlertDescription::from(code) {
                continue;
            }
            let name = crate::tls::names::alert_name(code);
            assert!(w.alerts.contains_key(&name), "no meaning for alert {name}");
            known.insert(name);
        }
        for k in w.alerts.keys() {
            assert!(
                known.contains(k),
                "alerts.toml: {k} is no alert rustls knows"
            );
        }
        assert_eq!(alert("unknown_ca"), w.alerts["unknown_ca"]);
    }

    #[test]
    fn every_failure_code_has_a_cause_and_a_fix_and_only_known_placeholders() {
        let w = strict();
        // An exhaustive match: a new code fails to compile here until ALL has it.
        let count = |c: FailureCode| match c {
            FailureCode::UnknownIssuer
            | FailureCode::MissingIntermediate
            | FailureCode::Expired
            | FailureCode::NotYetValid
            | FailureCode::NotValidForName
            | FailureCode::BadSignature
            | FailureCode::InvalidPurpose
            | FailureCode::Revoked
            | FailureCode::BadEncoding
            | FailureCode::NoCertificate
            | FailureCode::FinishedMismatch
            | FailureCode::InactiveCertificate
            | FailureCode::Unregistered
            | FailureCode::ProtocolVersion
            | FailureCode::NoSharedCipher
            | FailureCode::NoApplicationProtocol
            | FailureCode::PeerNotTls
            | FailureCode::ClosedByPeer
            | FailureCode::Timeout
            | FailureCode::PolicyDenied
            | FailureCode::MqttRefused
            | FailureCode::ProtocolViolation
            | FailureCode::Interrupted
            | FailureCode::Alert
            | FailureCode::Other => 1,
        };
        assert_eq!(
            FailureCode::ALL.iter().map(|c| count(*c)).sum::<usize>(),
            25
        );
        let mut known: BTreeSet<&str> = FailureCode::ALL.iter().map(|c| c.as_str()).collect();
        known.extend(FAILURE_VARIANTS);
        for k in &known {
            assert!(w.failures.contains_key(*k), "no cause and fix for {k}");
        }
        for (k, f) in &w.failures {
            assert!(
                known.contains(k.as_str()),
                "failures.toml: {k} is no failure"
            );
            for text in [&f.cause, &f.fix] {
                let mut rest = text.as_str();
                while let Some(open) = rest.find('{') {
                    let close = rest[open..].find('}').expect("a closed placeholder") + open;
                    let name = &rest[open + 1..close];
                    assert!(
                        FAILURE_PLACEHOLDERS.contains(&name),
                        "failures.toml: {k} uses an unknown placeholder {{{name}}}"
                    );
                    rest = &rest[close + 1..];
                }
            }
        }
    }

    #[test]
    fn every_line_fits() {
        let w = strict();
        let over = |what: &str, text: &str, max: usize| {
            assert!(
                text.chars().count() <= max && !text.contains('\n') && !text.trim().is_empty(),
                "{what} is empty, has a line break or is longer than {max} characters: {text}"
            )
        };
        for (section, fields) in &w.fields {
            for (id, m) in fields {
                over(&format!("fields.toml {section}.{id}"), m, FIELD_MAX);
            }
        }
        for (k, m) in &w.alerts {
            over(&format!("alerts.toml {k}"), m, ALERT_MAX);
        }
        for (k, m) in &w.checks {
            over(&format!("checks.toml {k}"), m, CHECK_MAX);
        }
        for (k, m) in &w.reasons {
            over(&format!("reasons.toml {k}"), m, REASON_MAX);
        }
        for (k, m) in &w.closes {
            over(&format!("closes.toml {k}"), m, REASON_MAX);
        }
        for (k, f) in &w.failures {
            over(&format!("failures.toml {k}.cause"), &f.cause, FAILURE_MAX);
            over(&format!("failures.toml {k}.fix"), &f.fix, FAILURE_MAX);
        }
    }

    #[test]
    fn a_missing_or_malformed_entry_is_neutral_never_a_panic() {
        assert_eq!(field("ClientHello", "no such field"), None);
        assert_eq!(field("", ""), None);
        assert_eq!(record_field("no such part"), None);
        assert_eq!(alert("unknown (200)"), ALERT_FALLBACK);
        assert_eq!(failure("no_such_code"), FAILURE_FALLBACK);
        assert!(Words::parse("[x", "", "", "", "", "").is_err());
        assert!(Words::parse("", "", "[expired]\ncause = 1", "", "", "").is_err());
        assert_eq!(close("no_such_close", &[]), CLOSE_FALLBACK);
        assert_eq!(reason("no_such_reason", &[]), REASON_FALLBACK);
        assert_eq!(fill("a {b} {c}", &[("b", "B")]), "a B {c}");
    }

    #[test]
    fn lookups_go_by_id_with_shared_entries() {
        // A message's own entry, the handshake's shared one, the generic extension.
        assert!(field("ServerHello", "cipher_suite")
            .is_some_and(|m| m.starts_with("The one suite the broker chose")));
        assert_eq!(
            field("Finished", "length"),
            field("ServerHelloDone", "length")
        );
        assert_eq!(
            field("ClientHello", "extension padding"),
            field("ClientHello", "extensions")
        );
        assert_eq!(field("PUBACK", "packet id"), field("PUBLISH", "packet id"));
        // Per-instance detail is not part of the id.
        assert_eq!(
            field("Certificate", "certificate[0]"),
            field("Certificate", "certificate[1]")
        );
    }

    fn traces() -> Vec<Trace> {
        let mut out = Vec::new();
        for name in crate::engine::lessons::names() {
            let Ok(s) = crate::engine::lessons::scenario(name) else {
                continue; // a lesson of operations: no session, no fields
            };
            let mut v5 = s.clone();
            v5.device.mqtt_version = crate::mqtt::Version::V5;
            for s in [s, v5] {
                if let Ok(t) = crate::engine::run(&s) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// Every field a real session of every lesson shows (MQTT 3.1.1 and 5) has a meaning, and
    /// every meaning is shown by one or listed in FIELD_EXTRAS.
    #[test]
    fn every_field_of_every_lesson_has_a_meaning_and_every_meaning_is_used() {
        let w = strict();
        let traces = traces();
        assert!(traces.len() >= 20, "only {} sessions ran", traces.len());
        let mut used: BTreeSet<String> = FIELD_EXTRAS.iter().map(|s| s.to_string()).collect();
        let mut missing = Vec::new();
        let mut seen = |msg: &str, name: &str, common: &str| {
            let id = field_id(name);
            if field(msg, name).is_none() {
                missing.push(format!("{msg}.{id}"));
            }
            if w.fields.get(msg).is_some_and(|s| s.contains_key(&id)) {
                used.insert(format!("{msg}.{id}"));
            } else {
                used.insert(format!("{common}.{id}"));
            }
        };
        for t in &traces {
            for e in &t.events {
                match &e.kind {
                    EventKind::Handshake { msg, fields, .. } => {
                        for f in fields {
                            seen(&msg.name(), &f.name, "handshake");
                        }
                    }
                    EventKind::AppData { mqtt, .. } => {
                        for p in mqtt {
                            for f in &p.fields {
                                seen(p.packet.name(), &f.name, "mqtt");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(missing.is_empty(), "fields without a meaning: {missing:?}");
        // The parts of a record as sent (src/ui/view/detail.rs names them).
        for part in [
            "content type",
            "version",
            "length",
            "explicit nonce",
            "encrypted content",
            "tag",
            "encrypted fragment",
        ] {
            assert!(record_field(part).is_some(), "record part {part}");
            used.insert(format!("record.{}", field_id(part)));
        }
        let mut unused = Vec::new();
        for (section, fields) in &w.fields {
            for id in fields.keys() {
                if !used.contains(&format!("{section}.{id}")) {
                    unused.push(format!("{section}.{id}"));
                }
            }
        }
        assert!(unused.is_empty(), "entries no session uses: {unused:?}");
    }
}
