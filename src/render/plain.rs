//! The plain-text tour: the session narrated phase by phase, for a log or a screen reader. Each step
//! says what happened, with this run's values, and what it proves.

use crate::trace::{unhex, Event, EventKind, Fact, Phase, Trace};
use std::fmt::Write;

/// Render the whole trace as text.
pub fn render(trace: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "iotls tour — scenario {}", trace.scenario);
    if let Some(tls) = &trace.tls {
        let _ = writeln!(
            out,
            "negotiated: {} {} key exchange {} extended master secret: {}{}",
            tls.version,
            tls.cipher_suite,
            tls.kx_group.as_deref().unwrap_or("?"),
            if tls.extended_master_secret {
                "yes"
            } else {
                "no"
            },
            tls.sni
                .as_ref()
                .map(|s| format!(", SNI {s}"))
                .unwrap_or_default()
        );
    }
    let mut phase: Option<Phase> = None;
    for e in &trace.events {
        if phase != Some(e.phase) {
            phase = Some(e.phase);
            let _ = writeln!(out, "\n== {} ==", e.phase.title());
        }
        for (i, line) in narrate(trace, e).into_iter().enumerate() {
            let prefix = if i == 0 {
                format!("[{:>3}] ", e.seq)
            } else {
                "      ".to_string()
            };
            let _ = writeln!(out, "{prefix}{line}");
        }
    }
    let _ = writeln!(out, "\n== Outcome ==");
    let _ = writeln!(
        out,
        "{} {}",
        if trace.outcome.ok { "OK:" } else { "FAILED:" },
        trace.outcome.summary
    );
    out
}

fn fact<'a>(facts: &'a [Fact], name: &str) -> Option<&'a str> {
    facts
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

fn field<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
    match &e.kind {
        EventKind::Handshake { fields, .. } => fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str()),
        _ => None,
    }
}

fn arrow(e: &Event) -> String {
    match e.side {
        crate::trace::Side::Device => "device → broker".to_string(),
        crate::trace::Side::Broker => "broker → device".to_string(),
    }
}

/// Lines narrating one event: what happened, with this run's values, and what it proves.
pub fn narrate(trace: &Trace, e: &Event) -> Vec<String> {
    let mut v = Vec::new();
    match &e.kind {
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => {
            v.push(format!(
                "TCP connection: device {device_addr} → broker {broker_addr}."
            ));
        }
        EventKind::Handshake {
            msg,
            hex,
            encrypted,
            fields,
            ..
        } => {
            let len = unhex(hex).map(|b| b.len()).unwrap_or(0);
            v.push(format!(
                "{} {msg} ({len} bytes{})",
                arrow(e),
                if *encrypted { ", encrypted" } else { "" }
            ));
            let explain = match (msg.as_str(), e.side) {
                ("ClientHello", _) => format!(
                    "The device offers {} cipher suites and asks for server name {}.",
                    fields.iter().filter(|f| f.name.starts_with("cipher_suite")).count(),
                    trace.tls.as_ref().and_then(|t| t.sni.clone()).unwrap_or_else(|| "(none)".into())
                ),
                ("ServerHello", _) => format!(
                    "The broker chooses {}.",
                    trace.tls.as_ref().map(|t| t.cipher_suite.as_str()).unwrap_or("a cipher suite")
                ),
                ("Certificate", crate::trace::Side::Broker) => {
                    "The broker sends its certificate chain: the device will check it leads to the root it holds.".into()
                }
                ("Certificate", crate::trace::Side::Device) => {
                    "The device sends its own certificate chain: its identity, signed by the shop's CA.".into()
                }
                ("ServerKeyExchange", _) => format!(
                    "The broker's ephemeral ECDHE public key ({}), signed with its certificate's private key.",
                    trace.tls.as_ref().and_then(|t| t.kx_group.clone()).unwrap_or_default()
                ),
                ("CertificateRequest", _) => {
                    "The broker asks the device for a certificate (client authentication), naming the CAs it accepts.".into()
                }
                ("ServerHelloDone", _) => "The broker has finished its first flight.".into(),
                ("ClientKeyExchange", _) => {
                    "The device's ephemeral ECDHE public key; both sides can now compute the same pre-master secret.".into()
                }
                ("CertificateVerify", _) => {
                    "The device's signature over the hash of every handshake message so far, made with its private key.".into()
                }
                ("Finished", _) => "A MAC over the whole handshake, under the new keys: proves both sides saw the same conversation.".into(),
                _ => String::new(),
            };
            if !explain.is_empty() {
                v.push(explain);
            }
            if let Some(sni) = field(e, "extension server_name") {
                v.push(format!("server_name: {sni}"));
            }
        }
        EventKind::ChangeCipherSpec { .. } => {
            v.push(format!(
                "{} ChangeCipherSpec: from here on this direction is encrypted.",
                arrow(e)
            ));
        }
        EventKind::Alert {
            level,
            description,
            encrypted,
            ..
        } => {
            v.push(format!(
                "{} Alert {level} {description}{}",
                arrow(e),
                if *encrypted { " (encrypted)" } else { "" }
            ));
        }
        EventKind::AppData {
            ciphertext,
            mqtt,
            plaintext,
            ..
        } => {
            let n = ciphertext.len() / 2;
            if mqtt.is_empty() {
                v.push(format!(
                    "{} application data, {n} bytes{}",
                    arrow(e),
                    if plaintext.is_none() {
                        " (could not decrypt)"
                    } else {
                        ""
                    }
                ));
            }
            for p in mqtt {
                let mut s = format!("{} MQTT {}", arrow(e), p.packet);
                if let Some(c) = &p.client_id {
                    s += &format!(" client id {c:?}");
                }
                if let Some(t) = &p.topic {
                    s += &format!(" topic {t:?}");
                }
                if let Some(q) = p.qos {
                    s += &format!(" QoS {q}");
                }
                if let Some(c) = &p.code {
                    s += &format!(" ({c})");
                }
                v.push(s);
                if let Some(pl) = &p.payload {
                    if !pl.is_empty() {
                        v.push(format!("payload: {pl}"));
                    }
                }
                v.push(format!("(inside a {n}-byte encrypted TLS record)"));
            }
        }
        EventKind::Undecodable { reason, hex } => {
            v.push(format!(
                "{} {} bytes that are not TLS: {reason}",
                arrow(e),
                hex.len() / 2
            ));
        }
        EventKind::Check {
            check,
            ok,
            reason,
            facts,
            ..
        } => {
            v.push(format!(
                "{} {} checks {check}: {}",
                if *ok { "✔" } else { "✘" },
                e.side.name(),
                reason
            ));
            match check.as_str() {
                "certificate_verify" | "server_kx_signature" => {
                    if let (Some(len), Some(h), Some(alg)) = (
                        fact(facts, "signed_len"),
                        fact(facts, "signed_hash"),
                        fact(facts, "hash_algorithm"),
                    ) {
                        v.push(format!("signed {len} bytes; {alg} = {h}"));
                    }
                    if let Some(s) = fact(facts, "scheme") {
                        v.push(format!("scheme: {s}"));
                    }
                }
                _ => {
                    for f in facts.iter().filter(|f| f.name != "signed_message") {
                        v.push(format!("{}: {}", f.name, f.value));
                    }
                }
            }
        }
        EventKind::Secret {
            label,
            client_random,
            ..
        } => {
            v.push(format!(
                "{} exported the master secret ({label} {}…): iotls uses it to decrypt what follows.",
                e.side.name(),
                &client_random[..client_random.len().min(16)]
            ));
        }
        EventKind::Policy(p) => {
            v.push(format!(
                "{} {} {} on {} — {}",
                if p.decision == "ALLOWED" {
                    "✔"
                } else {
                    "✘"
                },
                p.decision,
                p.action,
                p.resource,
                p.enforcement
            ));
            v.extend(p.lines.iter().cloned());
        }
        EventKind::Closed { by, reason } => {
            v.push(format!(
                "{}: {reason}",
                by.map(|s| s.name()).unwrap_or("connection")
            ));
        }
        EventKind::Error { stage, message } => {
            v.push(format!("error in {stage}: {message}"));
        }
    }
    v
}
