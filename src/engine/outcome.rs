//! How a session ended, computed from the trace's typed events — never from display text.
//!
//! - The failure is the first thing that went wrong *on a side that really decided it*: a failed
//!   check of the device or the broker (iotls's own recomputations never decide an outcome), a denied
//!   policy decision, a handshake that ended with an alert or a closed connection, a timeout.
//! - Each thing the device asked the broker gets a result. Where iotls is the broker (tour, serve),
//!   the broker's policy decision says `carried_out` or `refused`. Where iotls is only the device
//!   (connect), the answer on the wire decides: a CONNACK or MQTT 5 reason code below 0x80 is a
//!   success, 0x80 and above a refusal; an MQTT 3.1.1 PUBACK proves receipt only
//!   (`acknowledged_unverifiable`: AWS IoT would have closed the connection, mosquitto acknowledges
//!   a publish its ACL drops); no answer before the connection ended is `connection_closed`.

use super::assemble::Observer;
use super::device::DeviceReport;
use crate::trace::{
    CertInfo, CertRoleKind, CheckId, CloseCause, Event, EventKind, Failure, FailureCode,
    MqttOutcome, MqttPacket, MqttPacketType, MqttRequest, MqttResult, Outcome, Phase, PolicyAction,
    Side,
};

/// The outcome of a session from its events.
pub fn outcome(
    events: &[Event],
    certificates: &[CertInfo],
    report: Option<&DeviceReport>,
    observer: Observer,
) -> Outcome {
    let handshake_done = events.iter().any(|e| {
        matches!(
            (&e.kind, e.side),
            (
                EventKind::Check {
                    check: CheckId::ClientFinished,
                    ok: true,
                    ..
                },
                Side::Broker
            ) | (
                EventKind::Check {
                    check: CheckId::ServerFinished,
                    ok: true,
                    ..
                },
                Side::Device
            )
        )
    });
    // A capture (no end is iotls's): only the wire can tell.
    let handshake_done =
        handshake_done || (observer == Observer::NONE && completed_on_wire(events));
    let mqtt = mqtt_outcomes(events, report, observer);

    let mut failure: Option<(Failure, Phase)> = first_failure(events, observer);
    if failure.is_none() {
        if let Some(m) = mqtt
            .iter()
            .find(|m| !m.result.is_ok() && m.result != MqttResult::NotSent)
        {
            let at = events.last().map(|e| e.phase).unwrap_or(Phase::Close);
            let code = match m.result {
                MqttResult::Refused => FailureCode::MqttRefused,
                _ => match device_close_cause(events) {
                    Some(CloseCause::Timeout) => FailureCode::Timeout,
                    // Unanswered because the learner quit the live tour, not because of the broker.
                    Some(CloseCause::Interrupted) => FailureCode::Interrupted,
                    _ => FailureCode::ClosedByPeer,
                },
            };
            let f = Failure {
                side: (code != FailureCode::Interrupted).then_some(Side::Broker),
                action: Some(m.action.packet_name().to_string()),
                topic: m.topic.clone().or_else(|| m.filter.clone()),
                reason_code: m.reason_code,
                ..Failure::new(code)
            };
            failure = Some((f, at.max(Phase::Mqtt)));
        }
    }
    if failure.is_none() && handshake_done {
        // A side that closed because its peer stopped answering (a CONNECT never completed, a
        // keep-alive ran out) or broke MQTT ended the session: it did not end well, even when no
        // request was refused.
        if let Some((by, cause)) = events.iter().find_map(|e| match &e.kind {
            EventKind::Closed {
                by: Some(by),
                cause: cause @ (CloseCause::Timeout | CloseCause::ProtocolViolation),
                ..
            } => Some((*by, *cause)),
            _ => None,
        }) {
            let code = match cause {
                CloseCause::Timeout => FailureCode::Timeout,
                _ => FailureCode::ProtocolViolation,
            };
            // A timeout's or a violation's side is the one at fault: the closer's peer.
            let at_fault = match by {
                Side::Device => Side::Broker,
                _ => Side::Device,
            };
            let f = Failure {
                side: Some(at_fault),
                ..Failure::new(code)
            };
            failure = Some((f, Phase::Mqtt));
        }
    }
    if failure.is_none() && interrupted(events) {
        // A live tour quit midway: no side failed, the learner stopped it.
        failure = Some((Failure::new(FailureCode::Interrupted), Phase::Close));
    }
    if failure.is_none() && !handshake_done {
        // The handshake never completed and no side said why.
        let not_tls = not_tls_sender(events);
        let f = match not_tls {
            Some(side) => Failure {
                side: Some(side),
                ..Failure::new(FailureCode::PeerNotTls)
            },
            None => Failure {
                side: match (observer.device, observer.broker) {
                    (true, false) => Some(Side::Broker),
                    (false, false) => None,
                    _ => Some(Side::Device),
                },
                ..Failure::new(FailureCode::ClosedByPeer)
            },
        };
        failure = Some((f, Phase::Hello));
    }
    if let Some((f, _)) = &mut failure {
        // A handshake that broke on bytes that are not TLS at all: say so.
        if let Some(sender) = not_tls_sender(events) {
            if !handshake_done
                && matches!(
                    f.code,
                    FailureCode::ProtocolViolation | FailureCode::Other | FailureCode::Alert
                )
            {
                f.code = FailureCode::PeerNotTls;
                f.side = Some(sender);
            }
        }
        explain_certificate(f, certificates);
    }
    let ok = failure.is_none();
    let (failure, phase) = match failure {
        Some((f, p)) => (Some(f), p),
        None => (None, Phase::Close),
    };
    let mut out = Outcome {
        ok,
        phase,
        summary: String::new(),
        failure,
        mqtt,
        tls_completed: handshake_done,
    };
    out.summary = crate::narrate::outcome_line(&out, report.is_some_and(|r| !r.mqtt));
    out
}

/// Whether a live tour was quit before the session ended (a side closed as `interrupted`).
fn interrupted(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Closed {
                cause: CloseCause::Interrupted,
                ..
            }
        )
    })
}

/// The side that sent bytes that are not TLS, if one did.
fn not_tls_sender(events: &[Event]) -> Option<Side> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::Undecodable { not_tls: true, .. } => Some(e.side),
        _ => None,
    })
}

/// A capture's handshake completed as far as the wire shows: after the broker's ChangeCipherSpec
/// (sent once it had checked the device's Finished), the device sent application data or a
/// close_notify (it accepted the broker's Finished; a device that did not would send a fatal alert).
fn completed_on_wire(events: &[Event]) -> bool {
    let Some(ccs) = events.iter().position(|e| {
        e.side == Side::Broker && matches!(e.kind, EventKind::ChangeCipherSpec { .. })
    }) else {
        return false;
    };
    events[ccs..].iter().any(|e| {
        e.side == Side::Device
            && match &e.kind {
                EventKind::AppData { .. } => true,
                EventKind::Alert { description, .. } => {
                    *description == crate::trace::AlertDescription::CLOSE_NOTIFY
                }
                _ => false,
            }
    })
}

/// The first failure a real side decided, with its phase. In a capture (`Observer::NONE`) a side's
/// decisions show only as the fatal alerts it sent.
fn first_failure(events: &[Event], observer: Observer) -> Option<(Failure, Phase)> {
    for (i, e) in events.iter().enumerate() {
        // iotls's own recomputations never decide an outcome; a denied iot:Receive drops a
        // delivery to a subscriber, it refuses nothing the device asked.
        let decides = match &e.kind {
            EventKind::Check { .. } => e.side != Side::Iotls,
            EventKind::Policy(p) => e.side != Side::Iotls && p.action != PolicyAction::Receive,
            _ => true,
        };
        if let (Observer::NONE, EventKind::Alert { level, code, .. }) = (observer, &e.kind) {
            if *level == crate::trace::AlertLevel::FATAL {
                let f = super::observe::failure_of_alert(
                    rustls::AlertDescription::from(*code),
                    Some(e.side),
                );
                return Some((f, e.phase));
            }
        }
        if let Some(mut f) = e.failure().filter(|_| decides) {
            // The alert that went out because of it, if the trace shows one.
            if f.alert.is_none() {
                f.alert = events[i..].iter().find_map(|a| match &a.kind {
                    EventKind::Alert { description, .. }
                        if *description != crate::trace::AlertDescription::CLOSE_NOTIFY =>
                    {
                        Some(description.name())
                    }
                    _ => None,
                });
            }
            return Some((f, e.phase));
        }
    }
    None
}

/// For a certificate failure seen only through an alert (the peer's check), fill in the dates and
/// names from the certificate that was judged: the leaf of the other side's chain.
fn explain_certificate(f: &mut Failure, certificates: &[CertInfo]) {
    let judged = match (f.check, f.side) {
        (Some(CheckId::ServerChain | CheckId::ServerName), _) => Side::Broker,
        (Some(CheckId::ClientChain), _) => Side::Device,
        (_, Some(Side::Broker)) => Side::Device,
        (_, Some(Side::Device)) => Side::Broker,
        _ => return,
    };
    let leaf = certificates.iter().find(|c| {
        c.roles
            .iter()
            .any(|r| r.side == judged && r.kind == CertRoleKind::Chain && r.index == 0)
    });
    let Some(leaf) = leaf else { return };
    match f.code {
        FailureCode::Expired => {
            f.not_after.get_or_insert_with(|| leaf.not_after.clone());
            f.not_before.get_or_insert_with(|| leaf.not_before.clone());
        }
        FailureCode::NotYetValid => {
            f.not_before.get_or_insert_with(|| leaf.not_before.clone());
            f.not_after.get_or_insert_with(|| leaf.not_after.clone());
        }
        FailureCode::UnknownIssuer
        | FailureCode::BadSignature
        | FailureCode::InvalidPurpose
        | FailureCode::Revoked
        | FailureCode::Alert
        | FailureCode::NoCertificate => {}
        _ => return,
    }
    f.subject.get_or_insert_with(|| leaf.subject.clone());
}

fn device_close_cause(events: &[Event]) -> Option<CloseCause> {
    events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Closed {
            by: Some(Side::Device),
            cause,
            ..
        } => Some(*cause),
        _ => None,
    })
}

/// One request on the wire, with the index of the event that carried it.
struct Asked {
    at: usize,
    out: MqttOutcome,
    pkid: Option<u16>,
    /// For SUBSCRIBE and UNSUBSCRIBE: which filter of the packet this entry is.
    filter_index: usize,
}

fn mqtt_outcomes(
    events: &[Event],
    report: Option<&DeviceReport>,
    observer: Observer,
) -> Vec<MqttOutcome> {
    let packets: Vec<(usize, Side, &MqttPacket)> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| match &e.kind {
            EventKind::AppData { mqtt, .. } => mqtt.iter().map(|p| (i, e.side, p)).collect(),
            _ => Vec::new(),
        })
        .collect();
    let mut out: Vec<MqttOutcome> = asked(&packets)
        .iter()
        .map(|a| {
            let mut o = a.out.clone();
            match answer(&packets, a) {
                Some((r, code)) => (o.result, o.reason_code) = (r, code),
                None if o.action == MqttRequest::Publish && o.qos == Some(0) => {
                    o.result = MqttResult::SentUnacknowledged
                }
                None => {}
            }
            if observer.broker {
                // iotls is the broker: its own decisions say what became of the request.
                if let Some(allowed) = decided(events, &packets, a) {
                    o.result = if allowed {
                        MqttResult::CarriedOut
                    } else {
                        MqttResult::Refused
                    };
                }
            }
            o
        })
        .collect();
    // What the device meant to ask but never sent.
    if let Some(r) = report {
        let mut seen: Vec<MqttRequest> = out.iter().map(|o| o.action).collect();
        for p in &r.planned {
            match seen.iter().position(|a| *a == p.action) {
                Some(k) => {
                    seen.remove(k);
                }
                None => out.push(MqttOutcome {
                    result: MqttResult::NotSent,
                    ..p.clone()
                }),
            }
        }
    }
    out
}

/// The device's requests, in order; a SUBSCRIBE or UNSUBSCRIBE is one entry per filter. Until an
/// answer says otherwise, a request's result is `connection_closed`.
fn asked(packets: &[(usize, Side, &MqttPacket)]) -> Vec<Asked> {
    let mut asked = Vec::new();
    for (at, _, p) in packets.iter().filter(|(_, side, _)| *side == Side::Device) {
        let new = |action| MqttOutcome::new(action, MqttResult::ConnectionClosed);
        let one = |out| Asked {
            at: *at,
            out,
            pkid: p.pkid,
            filter_index: 0,
        };
        match p.packet {
            MqttPacketType::Connect => asked.push(one(MqttOutcome {
                client_id: p.client_id.clone(),
                ..new(MqttRequest::Connect)
            })),
            MqttPacketType::Publish => asked.push(one(MqttOutcome {
                topic: p.topic.clone(),
                qos: p.qos,
                ..new(MqttRequest::Publish)
            })),
            MqttPacketType::Subscribe | MqttPacketType::Unsubscribe => {
                let action = if p.packet == MqttPacketType::Subscribe {
                    MqttRequest::Subscribe
                } else {
                    MqttRequest::Unsubscribe
                };
                for (k, f) in p.filters.iter().enumerate() {
                    asked.push(Asked {
                        filter_index: k,
                        ..one(MqttOutcome {
                            filter: Some(f.clone()),
                            ..new(action)
                        })
                    });
                }
            }
            MqttPacketType::PingReq => asked.push(one(new(MqttRequest::Ping))),
            _ => {}
        }
    }
    asked
}

/// The broker's answer on the wire to a request, if one came: (result, code).
fn answer(packets: &[(usize, Side, &MqttPacket)], a: &Asked) -> Option<(MqttResult, Option<u8>)> {
    let per_filter = |p: &MqttPacket| p.reason_codes.get(a.filter_index).copied();
    packets
        .iter()
        .filter(|(i, side, _)| *side == Side::Broker && *i >= a.at)
        .find_map(|(_, _, p)| match (a.out.action, p.packet) {
            (MqttRequest::Connect, MqttPacketType::ConnAck) => {
                let c = p.reason_code.unwrap_or(0);
                Some((MqttResult::of_connack(c), Some(c)))
            }
            (MqttRequest::Publish, MqttPacketType::PubAck) if p.pkid == a.pkid => {
                match p.reason_code {
                    // MQTT 5: the reason code says what happened.
                    Some(c) => Some((MqttResult::of_code(c), Some(c))),
                    // MQTT 3.1.1: receipt only.
                    None => Some((MqttResult::AcknowledgedUnverifiable, None)),
                }
            }
            (MqttRequest::Subscribe, MqttPacketType::SubAck) if p.pkid == a.pkid => {
                let c = per_filter(p).unwrap_or(0x80);
                Some((MqttResult::of_code(c), Some(c)))
            }
            (MqttRequest::Unsubscribe, MqttPacketType::UnsubAck) if p.pkid == a.pkid => {
                let c = per_filter(p);
                Some((MqttResult::of_code(c.unwrap_or(0)), c))
            }
            (MqttRequest::Ping, MqttPacketType::PingResp) => Some((MqttResult::CarriedOut, None)),
            // MQTT 5: a QoS 0 publish has no PUBACK, and a QoS 2 one is refused (QoS 2 is not
            // supported): the refusal comes as DISCONNECT.
            (MqttRequest::Publish, MqttPacketType::Disconnect)
                if a.out.qos != Some(1) && p.reason_code.unwrap_or(0) >= 0x80 =>
            {
                Some((MqttResult::Refused, p.reason_code))
            }
            _ => None,
        })
}

/// Where iotls is the broker: whether it allowed a request, from its own decisions between the
/// request and the device's next packet (a retained PUBLISH has two: iot:RetainPublish and
/// iot:Publish; a SUBSCRIBE one per filter). A registry refusal refuses the CONNECT.
fn decided(events: &[Event], packets: &[(usize, Side, &MqttPacket)], a: &Asked) -> Option<bool> {
    let wanted: &[PolicyAction] = match a.out.action {
        MqttRequest::Connect => &[PolicyAction::Connect],
        MqttRequest::Publish => &[PolicyAction::Publish, PolicyAction::RetainPublish],
        MqttRequest::Subscribe => &[PolicyAction::Subscribe],
        _ => return None,
    };
    let next = packets
        .iter()
        .find(|(i, side, _)| *side == Side::Device && *i > a.at)
        .map(|(i, _, _)| *i)
        .unwrap_or(events.len());
    let decisions: Vec<bool> = events[a.at..next]
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Policy(p) if wanted.contains(&p.action) => Some(p.decision.allowed()),
            _ => None,
        })
        .collect();
    match a.out.action {
        MqttRequest::Subscribe => decisions.get(a.filter_index).copied(),
        MqttRequest::Connect if decisions.is_empty() => {
            let refused = events.iter().any(|e| {
                matches!(
                    e.kind,
                    EventKind::Check {
                        check: CheckId::Registry,
                        ok: false,
                        ..
                    }
                )
            });
            refused.then_some(false)
        }
        _ if decisions.is_empty() => None,
        _ => Some(decisions.iter().all(|ok| *ok)),
    }
}
