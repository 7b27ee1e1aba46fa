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
    CertInfo, CertRoleKind, CheckId, CloseCause, Enforcement, Event, EventKind, Failure,
    FailureCode, MqttOutcome, MqttPacket, MqttPacketType, MqttRequest, MqttResult, Outcome, Phase,
    PolicyAction, Side,
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
    let mqtt = mqtt_outcomes(events, report, observer);

    let mut failure: Option<(Failure, Phase)> = first_failure(events);
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
                    _ => FailureCode::ClosedByPeer,
                },
            };
            let f = Failure {
                side: Some(Side::Broker),
                action: Some(request_name(m.action).to_string()),
                topic: m.topic.clone().or_else(|| m.filter.clone()),
                reason_code: m.reason_code,
                ..Failure::new(code)
            };
            failure = Some((f, at.max(Phase::Mqtt)));
        }
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
                side: Some(if observer.device && !observer.broker {
                    Side::Broker
                } else {
                    Side::Device
                }),
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

/// The side that sent bytes that are not TLS, if one did.
fn not_tls_sender(events: &[Event]) -> Option<Side> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::Undecodable { not_tls: true, .. } => Some(e.side),
        _ => None,
    })
}

/// The first failure a real side decided, with its phase.
fn first_failure(events: &[Event]) -> Option<(Failure, Phase)> {
    for (i, e) in events.iter().enumerate() {
        let f = match &e.kind {
            EventKind::Check {
                ok: false,
                failure,
                check,
                ..
            } if e.side != Side::Iotls => Some(failure.clone().unwrap_or_else(|| Failure {
                side: Some(e.side),
                check: Some(*check),
                ..Failure::default()
            })),
            EventKind::Policy(p) if !p.decision.allowed() && p.action != PolicyAction::Receive => {
                let reason_code = match p.enforcement {
                    Enforcement::ConnackRefused
                    | Enforcement::PubackRefused
                    | Enforcement::SubackRefused
                    | Enforcement::Disconnected => Some(crate::engine::mqtt_io::NOT_AUTHORIZED),
                    _ => None,
                };
                Some(Failure {
                    side: Some(Side::Broker),
                    action: Some(p.action.iot_name().to_string()),
                    topic: Some(crate::narrate::short_arn(&p.resource).to_string()),
                    decision: Some(p.decision.as_str().to_string()),
                    reason_code,
                    ..Failure::new(FailureCode::PolicyDenied)
                })
            }
            EventKind::Error {
                failure: Some(f), ..
            } => Some(f.clone()),
            EventKind::Closed {
                failure: Some(f), ..
            } => Some(f.clone()),
            _ => None,
        };
        if let Some(mut f) = f {
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

pub fn request_name(r: MqttRequest) -> &'static str {
    match r {
        MqttRequest::Connect => "CONNECT",
        MqttRequest::Publish => "PUBLISH",
        MqttRequest::Subscribe => "SUBSCRIBE",
        MqttRequest::Unsubscribe => "UNSUBSCRIBE",
        MqttRequest::Ping => "PINGREQ",
    }
}

/// One request on the wire, with the index of the event that carried it.
struct Asked {
    at: usize,
    out: MqttOutcome,
    pkid: Option<u16>,
    /// For SUBSCRIBE: which filter of the packet this entry is.
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
    let mut asked: Vec<Asked> = Vec::new();
    for (i, side, p) in &packets {
        if *side != Side::Device {
            continue;
        }
        let base = |action| MqttOutcome {
            action,
            client_id: None,
            topic: None,
            filter: None,
            qos: None,
            result: MqttResult::ConnectionClosed,
            reason_code: None,
        };
        match p.packet {
            MqttPacketType::Connect => asked.push(Asked {
                at: *i,
                out: MqttOutcome {
                    client_id: p.client_id.clone(),
                    ..base(MqttRequest::Connect)
                },
                pkid: None,
                filter_index: 0,
            }),
            MqttPacketType::Publish => asked.push(Asked {
                at: *i,
                out: MqttOutcome {
                    topic: p.topic.clone(),
                    qos: p.qos,
                    ..base(MqttRequest::Publish)
                },
                pkid: p.pkid,
                filter_index: 0,
            }),
            MqttPacketType::Subscribe | MqttPacketType::Unsubscribe => {
                let action = if p.packet == MqttPacketType::Subscribe {
                    MqttRequest::Subscribe
                } else {
                    MqttRequest::Unsubscribe
                };
                for (k, f) in p.filters.iter().enumerate() {
                    asked.push(Asked {
                        at: *i,
                        out: MqttOutcome {
                            filter: Some(f.clone()),
                            ..base(action)
                        },
                        pkid: p.pkid,
                        filter_index: k,
                    });
                }
            }
            MqttPacketType::PingReq => asked.push(Asked {
                at: *i,
                out: base(MqttRequest::Ping),
                pkid: None,
                filter_index: 0,
            }),
            _ => {}
        }
    }

    // The broker's answers.
    let answer = |a: &Asked| -> Option<(MqttResult, Option<u8>)> {
        let v5 = |p: &MqttPacket| p.level == Some(5);
        packets
            .iter()
            .filter(|(i, side, _)| *side == Side::Broker && *i >= a.at)
            .find_map(|(_, _, p)| match (a.out.action, p.packet) {
                (MqttRequest::Connect, MqttPacketType::ConnAck) => {
                    let c = p.reason_code.unwrap_or(0);
                    Some((
                        if c == 0 {
                            MqttResult::CarriedOut
                        } else {
                            MqttResult::Refused
                        },
                        Some(c),
                    ))
                }
                (MqttRequest::Publish, MqttPacketType::PubAck) if p.pkid == a.pkid => {
                    if v5(p) {
                        let c = p.reason_code.unwrap_or(0);
                        Some((
                            if c < 0x80 {
                                MqttResult::CarriedOut
                            } else {
                                MqttResult::Refused
                            },
                            Some(c),
                        ))
                    } else {
                        Some((MqttResult::AcknowledgedUnverifiable, None))
                    }
                }
                (MqttRequest::Subscribe, MqttPacketType::SubAck) if p.pkid == a.pkid => {
                    let c = p.reason_codes.get(a.filter_index).copied().unwrap_or(0x80);
                    Some((
                        if c < 0x80 {
                            MqttResult::CarriedOut
                        } else {
                            MqttResult::Refused
                        },
                        Some(c),
                    ))
                }
                (MqttRequest::Unsubscribe, MqttPacketType::UnsubAck) if p.pkid == a.pkid => {
                    let c = p.reason_codes.get(a.filter_index).copied();
                    Some((
                        if c.unwrap_or(0) < 0x80 {
                            MqttResult::CarriedOut
                        } else {
                            MqttResult::Refused
                        },
                        c,
                    ))
                }
                (MqttRequest::Ping, MqttPacketType::PingResp) => {
                    Some((MqttResult::CarriedOut, None))
                }
                (MqttRequest::Publish, MqttPacketType::Disconnect)
                    if a.out.qos == Some(0) && p.reason_code.unwrap_or(0) >= 0x80 =>
                {
                    Some((MqttResult::Refused, p.reason_code))
                }
                _ => None,
            })
    };

    // The broker's own decisions, where iotls is the broker.
    let decision = |a: &Asked, nth: usize| -> Option<(bool, usize)> {
        let want: &[PolicyAction] = match a.out.action {
            MqttRequest::Connect => &[PolicyAction::Connect],
            MqttRequest::Publish => &[PolicyAction::Publish, PolicyAction::RetainPublish],
            MqttRequest::Subscribe => &[PolicyAction::Subscribe],
            _ => return None,
        };
        events
            .iter()
            .enumerate()
            .skip(a.at)
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Policy(p) if want.contains(&p.action) => Some((p.decision.allowed(), i)),
                _ => None,
            })
            .nth(nth)
    };
    let registry_refused = events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Check {
                check: CheckId::Registry,
                ok: false,
                ..
            }
        )
    });

    let mut out = Vec::new();
    for a in &asked {
        let mut o = a.out.clone();
        let wire = answer(a);
        if let Some((r, code)) = wire {
            o.result = r;
            o.reason_code = code;
        } else if a.out.action == MqttRequest::Publish && a.out.qos == Some(0) {
            o.result = MqttResult::SentUnacknowledged;
        }
        if observer.broker {
            // A RetainPublish and a Publish decision may both belong to one PUBLISH: a denial of
            // either refuses it. SUBSCRIBE filters are decided in order.
            let nth = if a.out.action == MqttRequest::Subscribe {
                a.filter_index
            } else {
                0
            };
            match decision(a, nth) {
                Some((true, _)) if wire.is_none_or(|(r, _)| r.is_ok()) => {
                    // Allowed, and (for a retained publish) no second decision denied it.
                    let denied_retain = a.out.action == MqttRequest::Publish
                        && decision(a, 1).is_some_and(|(ok, i)| {
                            !ok && events[a.at..i].iter().all(|e| !is_device_packet(e))
                        });
                    o.result = if denied_retain {
                        MqttResult::Refused
                    } else {
                        MqttResult::CarriedOut
                    };
                }
                Some((false, _)) => o.result = MqttResult::Refused,
                Some(_) => {}
                None if a.out.action == MqttRequest::Connect && registry_refused => {
                    o.result = MqttResult::Refused
                }
                None => {}
            }
        }
        out.push(o);
    }
    // What the device meant to ask but never sent.
    if let Some(r) = report {
        let mut seen: Vec<MqttRequest> = out.iter().map(|o| o.action).collect();
        for p in &r.planned {
            if let Some(k) = seen.iter().position(|a| *a == p.action) {
                seen.remove(k);
            } else {
                out.push(MqttOutcome {
                    result: MqttResult::NotSent,
                    ..p.clone()
                });
            }
        }
    }
    out
}

fn is_device_packet(e: &Event) -> bool {
    e.side == Side::Device && matches!(&e.kind, EventKind::AppData { mqtt, .. } if !mqtt.is_empty())
}
