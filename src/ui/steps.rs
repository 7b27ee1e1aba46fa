//! The tour's steps: a flat list over the trace. One step per event, except that an
//! application-data record yields one step per MQTT packet it carries (so CONNECT and PUBLISH
//! each get their own arrow even when they share a record).

use crate::trace::{
    Actor, AlertLevel, CheckId, Decision, Event, EventKind, HandshakeType, MqttPacket, Operation,
    OperationKind, Phase, Side, Trace,
};

/// One step of the tour: an event, and for application data the MQTT packet within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Index into `trace.events`.
    pub event: usize,
    /// Index into the event's `mqtt` packets, for application data that carried packets.
    pub packet: Option<usize>,
}

/// Every step of a trace, in order.
pub fn steps(trace: &Trace) -> Vec<Step> {
    let mut out = Vec::with_capacity(trace.events.len() + 4);
    for (i, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::AppData { mqtt, .. } if !mqtt.is_empty() => {
                out.extend((0..mqtt.len()).map(|p| Step {
                    event: i,
                    packet: Some(p),
                }));
            }
            _ => out.push(Step {
                event: i,
                packet: None,
            }),
        }
    }
    out
}

impl Step {
    pub fn event<'t>(&self, trace: &'t Trace) -> Option<&'t Event> {
        trace.events.get(self.event)
    }

    pub fn packet<'t>(&self, trace: &'t Trace) -> Option<&'t MqttPacket> {
        match (&self.event(trace)?.kind, self.packet) {
            (EventKind::AppData { mqtt, .. }, Some(p)) => mqtt.get(p),
            _ => None,
        }
    }

    pub fn phase(&self, trace: &Trace) -> Phase {
        self.event(trace).map(|e| e.phase).unwrap_or(Phase::Close)
    }
}

/// How a step is drawn in the sequence diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Bytes on the wire from `from` to its peer. `encrypted` draws a double line.
    Arrow {
        from: Side,
        label: String,
        encrypted: bool,
    },
    /// Something one side did or decided, written on its side of the diagram.
    Note {
        side: Side,
        label: String,
        ok: Option<bool>,
    },
    /// Something that belongs to both sides (TCP set-up, the end of the connection).
    Span { label: String, ok: Option<bool> },
}

/// The diagram shape of a step, with a short label.
pub fn shape(trace: &Trace, step: &Step) -> Shape {
    let Some(e) = step.event(trace) else {
        return Shape::Span {
            label: "(no event)".into(),
            ok: None,
        };
    };
    match &e.kind {
        EventKind::Tcp { .. } => Shape::Span {
            label: "TCP connection".into(),
            ok: None,
        },
        EventKind::Handshake {
            msg,
            encrypted,
            fields,
            ..
        } => {
            let label = if *msg == HandshakeType::CERTIFICATE {
                let n = fields
                    .iter()
                    .filter(|f| f.depth == 1 && f.name.to_lowercase().starts_with("certificate"))
                    .count();
                if n > 0 {
                    format!("Certificate ×{n}")
                } else {
                    msg.name()
                }
            } else {
                msg.name()
            };
            Shape::Arrow {
                from: e.side,
                label,
                encrypted: *encrypted,
            }
        }
        EventKind::ChangeCipherSpec { .. } => Shape::Arrow {
            from: e.side,
            label: "ChangeCipherSpec".into(),
            encrypted: false,
        },
        EventKind::Alert {
            description,
            encrypted,
            ..
        } => Shape::Arrow {
            from: e.side,
            label: format!("Alert {description}"),
            encrypted: *encrypted,
        },
        EventKind::AppData { ciphertext, .. } => {
            let label = match step.packet(trace) {
                Some(p) => mqtt_label(p),
                None => format!("AppData {} B", ciphertext.len()),
            };
            Shape::Arrow {
                from: e.side,
                label,
                encrypted: true,
            }
        }
        EventKind::Undecodable { hex, .. } => Shape::Arrow {
            from: e.side,
            label: format!("?? {} bytes", hex.len()),
            encrypted: false,
        },
        EventKind::Check { check, ok, .. } => Shape::Note {
            side: e.side,
            label: if e.side == Side::Iotls {
                format!("iotls: {}", check_label(*check))
            } else {
                check_label(*check).to_string()
            },
            ok: Some(*ok),
        },
        EventKind::Secret { .. } => Shape::Note {
            side: e.side,
            label: "master secret".into(),
            ok: None,
        },
        EventKind::KeySchedule(_) => Shape::Note {
            side: e.side,
            label: "iotls: key schedule".into(),
            ok: None,
        },
        EventKind::Policy(p) => Shape::Note {
            side: e.side,
            label: format!("{} {}", p.action, decision_word(p.decision)),
            ok: Some(p.decision.allowed()),
        },
        EventKind::Closed { .. } => Shape::Span {
            label: "connection closed".into(),
            ok: None,
        },
        EventKind::Error { stage, .. } => Shape::Span {
            label: format!("error: {}", stage.title()),
            ok: Some(false),
        },
        EventKind::Gap { device, broker, .. } => Shape::Span {
            label: crate::narrate::gap_title(device, broker),
            ok: None,
        },
        EventKind::Operation(o) => operation_shape(o),
        EventKind::Witness { device, what } => Shape::Note {
            side: e.side,
            label: crate::narrate::witness_title(device, what),
            ok: match what {
                crate::trace::WitnessKind::Refused { .. } => Some(false),
                crate::trace::WitnessKind::Subscribed { code, .. } => Some(*code < 0x80),
                _ => None,
            },
        },
    }
}

/// An operation of a lesson: a TLS record is an arrow from its writer; anything else is a note on
/// the side of the party that performed it (a CA, an attacker and iotls itself in the middle),
/// marked with what the library answered.
fn operation_shape(o: &Operation) -> Shape {
    if o.op == OperationKind::TlsRecord {
        let label = o
            .inputs
            .iter()
            .find(|v| v.name == "message")
            .and_then(|v| v.as_text())
            .unwrap_or("record")
            .to_string();
        let encrypted = o
            .outputs
            .first()
            .and_then(|v| v.as_bytes())
            .is_some_and(|b| b.first() == Some(&23));
        return Shape::Arrow {
            from: o.actor.side(),
            label,
            encrypted,
        };
    }
    let label = match o.actor {
        Actor::Device | Actor::Broker => o.op.name().to_string(),
        other => format!("{}: {}", other.name(), o.op.name()),
    };
    Shape::Note {
        side: o.actor.side(),
        label,
        ok: o.verdict.as_ref().map(|v| v.ok),
    }
}

/// The diagram shape of a step the tour has not reached: what was sent stays (the flow the
/// learner follows), what was decided does not. A check or policy decision loses its ✔/✘ and its
/// allowed/denied, an alert its description, an error its stage; the learner predicts them.
pub fn shape_ahead(trace: &Trace, step: &Step) -> Shape {
    let Some(e) = step.event(trace) else {
        return shape(trace, step);
    };
    match (&e.kind, shape(trace, step)) {
        (EventKind::Check { check, .. }, Shape::Note { side, .. }) => Shape::Note {
            side,
            label: if side == Side::Iotls {
                format!("iotls: {}", check_label(*check))
            } else {
                check_label(*check).to_string()
            },
            ok: None,
        },
        (EventKind::Policy(p), Shape::Note { side, .. }) => Shape::Note {
            side,
            label: p.action.to_string(),
            ok: None,
        },
        (
            EventKind::Alert { .. },
            Shape::Arrow {
                from, encrypted, ..
            },
        ) => Shape::Arrow {
            from,
            label: "Alert".into(),
            encrypted,
        },
        (EventKind::Error { .. }, Shape::Span { .. }) => Shape::Span {
            label: "?".into(),
            ok: None,
        },
        (EventKind::Operation(_), Shape::Note { side, label, .. }) => Shape::Note {
            side,
            label,
            ok: None,
        },
        (_, shape) => shape,
    }
}

/// Whether a step is a verdict: a check or a policy decision.
pub fn has_verdict(trace: &Trace, step: &Step) -> bool {
    matches!(
        step.event(trace).map(|e| &e.kind),
        Some(EventKind::Check { .. } | EventKind::Policy(_))
    ) || matches!(
        step.event(trace).map(|e| &e.kind),
        Some(EventKind::Operation(o)) if o.verdict.is_some()
    )
}

fn mqtt_label(p: &MqttPacket) -> String {
    format!("MQTT {}", p.packet.name())
}

/// Short diagram name of a check.
pub fn check_label(check: CheckId) -> &'static str {
    match check {
        CheckId::ServerChain => "broker chain",
        CheckId::ServerName => "broker name",
        CheckId::ServerKxSignature => "SKE signature",
        CheckId::ClientChain => "device chain",
        CheckId::CertificateVerify => "CertVerify sig",
        CheckId::ClientFinished => "device Finished",
        CheckId::ServerFinished => "broker Finished",
        CheckId::Registry => "registry",
    }
}

/// `ALLOWED` → `allowed`, `EXPLICIT_DENY` → `denied`, `IMPLICIT_DENY` → `denied`.
pub fn decision_word(decision: Decision) -> &'static str {
    if decision.allowed() {
        "allowed"
    } else {
        "denied"
    }
}

/// Whether a step is a failed verdict (failed check, denied policy, fatal alert, error).
pub fn is_failure(trace: &Trace, step: &Step) -> bool {
    match step.event(trace).map(|e| &e.kind) {
        Some(EventKind::Check { ok, .. }) => !ok,
        Some(EventKind::Policy(p)) => !p.decision.allowed(),
        Some(EventKind::Alert { level, .. }) => *level == AlertLevel::FATAL,
        Some(EventKind::Error { .. }) => true,
        // A deliberate failure (a tampered message that does not verify) is the lesson, not a
        // failure; an operation fails when its answer is not the one the lesson demonstrates.
        Some(EventKind::Operation(o)) => !o.as_expected(),
        _ => false,
    }
}
