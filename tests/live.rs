//! Live sessions: every flight waits at the gate until the learner steps, the device's actions
//! wait for the button, and the finished trace has the structure of a session run at full speed.

use iotls::engine::live::{Gate, LiveSession, LIVE_DEADLINE};
use iotls::engine::{self, lessons, Scenario};
use iotls::trace::{CloseCause, Decision, EventKind, FailureCode, MqttPacketType, Side, Trace};
use std::time::{Duration, Instant};

/// Long enough for a side's rustls to answer a released flight on a busy machine.
const QUIET: Duration = Duration::from_millis(150);
const LIMIT: Duration = Duration::from_secs(10);

fn start(s: &Scenario) -> LiveSession {
    let live = LiveSession::start(s).expect("live session starts");
    live.settle(QUIET, LIMIT);
    live
}

/// Every MQTT packet in the trace, as (sender, type).
fn mqtt(t: &Trace) -> Vec<(Side, MqttPacketType)> {
    t.mqtt_packets().map(|(e, p)| (e.side, p.packet)).collect()
}

/// The structure of a trace: who sent which message, record and packet, who checked what with
/// which verdict, the policy decisions, how each side closed; no bytes, keys or times.
fn shape(t: &Trace) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| {
            let what = match &e.kind {
                EventKind::Tcp { .. } => "tcp".to_string(),
                EventKind::Handshake { msg, .. } => msg.name(),
                EventKind::ChangeCipherSpec { .. } => "ChangeCipherSpec".into(),
                EventKind::Alert { .. } => "alert".into(),
                EventKind::AppData { mqtt, .. } => format!(
                    "data {:?}",
                    mqtt.iter().map(|p| p.packet).collect::<Vec<_>>()
                ),
                EventKind::Check { check, ok, .. } => format!("check {} {ok}", check.as_str()),
                EventKind::Policy(p) => format!("policy {:?} {:?}", p.action, p.decision),
                EventKind::Closed { cause, by, .. } => format!("closed {cause:?} by {by:?}"),
                EventKind::Error { stage, .. } => format!("error {stage:?}"),
                _ => return None,
            };
            Some(format!("{:?} {what}", e.side))
        })
        .collect()
}

/// Step (and press the button when the device waits for it) until the session is over.
fn drive_to_end(live: &LiveSession) -> Trace {
    let start = Instant::now();
    while !live.finished() {
        assert!(start.elapsed() < LIMIT * 3, "the session never finished");
        let st = live.status();
        if st.button.is_some() {
            assert!(live.press());
        } else {
            live.step();
        }
        live.settle(QUIET, LIMIT);
    }
    live.trace()
}

fn held_side(live: &LiveSession) -> Option<Side> {
    live.status().held.map(|h| h.side)
}

#[test]
fn the_broker_receives_nothing_until_the_learner_steps_and_the_publish_waits_for_the_button() {
    let scenario = lessons::scenario("pizza-button").expect("lesson");
    let live = start(&scenario);

    // The TCP connection is open; the device's rustls made its ClientHello, which the gate holds.
    let t = live.trace();
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Tcp { .. })),
        "the connection opens when the session starts"
    );
    assert!(
        t.records.is_empty(),
        "nothing on the wire yet: {:?}",
        t.records.len()
    );
    assert!(
        t.events.iter().all(|e| e.side != Side::Broker),
        "the broker's side shows nothing before the first step: {:?}",
        shape(&t)
    );
    let held = live
        .status()
        .held
        .expect("the ClientHello waits at the gate");
    assert_eq!(held.side, Side::Device);
    assert!(held.bytes > 40, "a ClientHello: {} bytes", held.bytes);
    assert_eq!(held.records, vec!["ClientHello".to_string()]);

    // Step: the ClientHello leaves; the broker answers with its flight, which now waits.
    assert_eq!(live.step(), Some(Side::Device));
    live.settle(QUIET, LIMIT);
    let t = live.trace();
    let names: Vec<(Side, String)> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Handshake { msg, .. } => Some((e.side, msg.name())),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![(Side::Device, "ClientHello".to_string())]);
    assert_eq!(
        t.records.iter().map(|r| r.from).collect::<Vec<_>>(),
        vec![Side::Device],
        "exactly the ClientHello's record is on the wire"
    );
    let broker = live.status().held.expect("the broker's first flight waits");
    assert_eq!(broker.side, Side::Broker);
    assert_eq!(
        broker.records,
        [
            "ServerHello",
            "Certificate",
            "ServerKeyExchange",
            "CertificateRequest",
            "ServerHelloDone"
        ]
    );

    // Step on until the device waits for the button: CONNECT was answered, nothing is published.
    let t0 = Instant::now();
    while live.status().button.is_none() {
        assert!(
            t0.elapsed() < LIMIT,
            "the device never waited for the button"
        );
        live.step();
        live.settle(QUIET, LIMIT);
    }
    let t = live.trace();
    assert_eq!(
        mqtt(&t),
        vec![
            (Side::Device, MqttPacketType::Connect),
            (Side::Broker, MqttPacketType::ConnAck)
        ]
    );
    assert!(live
        .status()
        .button
        .unwrap()
        .contains("PUBLISH to iotbutton/"));
    // Stepping cannot send the order: nothing is held, and the PUBLISH is not made.
    assert_eq!(live.step(), None);
    live.settle(QUIET, LIMIT);
    assert_eq!(mqtt(&live.trace()).len(), 2);

    // The button: the PUBLISH leaves at once; the broker's PUBACK waits for the next step.
    assert!(live.press());
    live.settle(QUIET, LIMIT);
    let t = live.trace();
    assert_eq!(
        mqtt(&t).last(),
        Some(&(Side::Device, MqttPacketType::Publish))
    );
    assert!(
        t.events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Policy(_))),
        "the broker's policy decided on the PUBLISH it received"
    );
    assert_eq!(held_side(&live), Some(Side::Broker));

    let live_trace = drive_to_end(&live);
    let recorded = engine::run(&scenario).expect("recorded session");
    assert!(live_trace.outcome.ok, "{:?}", live_trace.outcome);
    assert_eq!(live_trace.outcome, recorded.outcome);
    assert_eq!(shape(&live_trace), shape(&recorded));
    assert_eq!(
        live_trace.records.len(),
        recorded.records.len(),
        "as many records on the wire"
    );
}

#[test]
fn every_lesson_has_the_same_structure_live_as_recorded() {
    for name in lessons::names() {
        let lesson = iotls::walkthrough::load(name, &[]).expect("lesson");
        if lesson.operations.is_some() {
            continue;
        }
        for version in lesson.versions() {
            let mqtt5 = version == engine::mqtt_io::Version::V5;
            let scenario = lesson.scenario(Some(version)).expect("scenario");
            let live = start(&scenario);
            let t = drive_to_end(&live);
            let recorded = engine::run(&scenario).expect("recorded session");
            // The same outcome; the clock readings in it (a check's time) may differ.
            let verdict = |t: &Trace| {
                let o = &t.outcome;
                let f = o.failure.as_ref().map(|f| (f.code, f.side, f.check));
                (o.ok, o.phase, f, o.mqtt.clone(), o.tls_completed)
            };
            assert_eq!(verdict(&t), verdict(&recorded), "{name} (MQTT 5: {mqtt5})");
            assert_eq!(
                shape(&t),
                shape(&recorded),
                "{name} (MQTT 5: {mqtt5}): live and recorded differ"
            );
            // Each record on the wire, by sender and content type, in order.
            let kinds = |t: &Trace| -> Vec<(Side, u8)> {
                t.records.iter().map(|r| (r.from, r.bytes[0])).collect()
            };
            assert_eq!(kinds(&t), kinds(&recorded), "{name} (MQTT 5: {mqtt5})");
        }
    }
}

#[test]
fn an_idle_learner_keeps_the_session_alive_with_pings() {
    let mut scenario = lessons::scenario("pizza-button").expect("lesson");
    // The broker closes a connection silent for 1.5 × the keep-alive: 1.5 s here.
    scenario.device.keep_alive = 1;
    let live = start(&scenario);
    while live.status().button.is_none() {
        live.step();
        live.settle(QUIET, LIMIT);
    }
    std::thread::sleep(Duration::from_millis(3200));
    let t = live.trace();
    let pings = mqtt(&t);
    assert!(
        pings.contains(&(Side::Device, MqttPacketType::PingReq))
            && pings.contains(&(Side::Broker, MqttPacketType::PingResp)),
        "the device pinged within its keep-alive and the broker answered: {pings:?}"
    );
    let t = drive_to_end(&live);
    assert!(t.outcome.ok, "{:?}", t.outcome);
}

#[test]
fn a_handshake_left_idle_longer_than_the_normal_deadline_still_completes() {
    let scenario = lessons::scenario("pizza-button").expect("lesson");
    let live = start(&scenario);
    live.step();
    live.settle(QUIET, LIMIT);
    // The device now waits for the broker's flight longer than it would at full speed.
    std::thread::sleep(engine::device::ANSWER_TIMEOUT + Duration::from_millis(500));
    assert!(LIVE_DEADLINE > engine::device::ANSWER_TIMEOUT);
    let t = drive_to_end(&live);
    assert!(t.outcome.ok, "{:?}", t.outcome);
}

#[test]
fn quitting_mid_session_closes_both_sides() {
    let scenario = lessons::scenario("pizza-button").expect("lesson");
    let live = start(&scenario);
    live.step();
    live.settle(QUIET, LIMIT);
    live.step();
    live.settle(QUIET, LIMIT);
    let held = live
        .status()
        .held
        .expect("the device's second flight waits");
    assert_eq!(held.side, Side::Device);
    let t = live.quit();
    let closed: Vec<(Side, CloseCause)> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Closed { cause, .. } => Some((e.side, *cause)),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        vec![
            (Side::Device, CloseCause::Interrupted),
            (Side::Broker, CloseCause::Interrupted)
        ]
    );
    // The engine is gone: its broker no longer listens.
    let broker = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Tcp { broker_addr, .. } => Some(broker_addr.clone()),
            _ => None,
        })
        .expect("the tcp event");
    assert!(
        std::net::TcpStream::connect(&broker).is_err(),
        "nothing listens on {broker} after quitting"
    );
    // What was held was never sent: the wire holds the first two flights only.
    let from: Vec<Side> = t.records.iter().map(|r| r.from).collect();
    assert_eq!(from.first(), Some(&Side::Device), "{from:?}");
    assert_eq!(
        from.iter().filter(|s| **s == Side::Device).count(),
        1,
        "the device's only record on the wire is its ClientHello: {from:?}"
    );
    assert!(from.len() > 1, "the broker's first flight left: {from:?}");
    assert!(!t.events.iter().any(|e| e.side == Side::Device
        && matches!(&e.kind, EventKind::Handshake { msg, .. } if msg.name() == "Certificate")));
}

#[test]
fn an_open_gate_changes_nothing() {
    let scenario = lessons::scenario("pizza-button").expect("lesson");
    let live = LiveSession::start_with(&scenario, Gate::open(), LIVE_DEADLINE).expect("starts");
    live.settle(QUIET, LIMIT);
    // Nothing is held, but the device still waits for its button.
    assert_eq!(live.status().held, None);
    let t = drive_to_end(&live);
    let recorded = engine::run(&scenario).expect("recorded session");
    assert_eq!(shape(&t), shape(&recorded));
}

#[test]
fn a_held_alert_is_named_before_it_leaves() {
    let scenario = lessons::scenario("untrusted-device").expect("lesson");
    let live = start(&scenario);
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while !live.finished() {
        assert!(t0.elapsed() < LIMIT * 3, "the session never finished");
        if let Some(h) = live.status().held {
            seen.push((h.side, h.records));
        }
        live.step();
        live.settle(QUIET, LIMIT);
    }
    assert!(
        seen.contains(&(Side::Broker, vec!["alert unknown_ca".to_string()])),
        "the broker's alert was held and named: {seen:?}"
    );
}

#[test]
fn a_pause_while_the_device_s_packet_is_held_is_not_its_silence() {
    let mut scenario = lessons::scenario("pizza-button").expect("lesson");
    scenario.device.keep_alive = 1;
    let live = start(&scenario);
    while live.status().button.is_none() {
        live.step();
        live.settle(QUIET, LIMIT);
    }
    assert!(live.press());
    live.settle(QUIET, LIMIT);
    // Release the PUBACK: the device answers with its DISCONNECT, which the gate now holds.
    assert_eq!(live.step(), Some(Side::Broker));
    live.settle(QUIET, LIMIT);
    let held = live.status().held.expect("the DISCONNECT waits");
    assert_eq!(held.side, Side::Device);
    // Longer than 1.5 × the keep-alive: the learner reads, the device has said goodbye.
    std::thread::sleep(Duration::from_millis(2500));
    let t = drive_to_end(&live);
    let recorded = engine::run(&scenario).expect("recorded session");
    assert!(t.outcome.ok, "{:?}", t.outcome);
    assert_eq!(shape(&t), shape(&recorded));
}

#[test]
fn a_quit_session_s_outcome_says_it_was_interrupted() {
    let scenario = lessons::scenario("pizza-button").expect("lesson");
    // Quit in the handshake: nobody refused anything.
    let live = start(&scenario);
    live.step();
    live.settle(QUIET, LIMIT);
    let t = live.quit();
    assert!(!t.outcome.ok);
    let f = t.outcome.failure.as_ref().expect("a failure");
    assert_eq!(f.code, FailureCode::Interrupted, "{:?}", t.outcome);
    assert_eq!(f.side, None, "no side failed");
    assert!(t.outcome.summary.contains("quit"), "{}", t.outcome.summary);
    // Quit after the PUBLISH, before its PUBACK left: the broker's decision is kept, the session
    // is still interrupted.
    let live = start(&scenario);
    while live.status().button.is_none() {
        live.step();
        live.settle(QUIET, LIMIT);
    }
    assert!(live.press());
    live.settle(QUIET, LIMIT);
    let t = live.quit();
    assert_eq!(
        t.outcome.failure.as_ref().map(|f| f.code),
        Some(FailureCode::Interrupted)
    );
    assert!(t
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Policy(p) if p.decision == Decision::Allowed)));
    // A refusal the broker made before the quit is what the outcome reports.
    let live = start(&lessons::scenario("untrusted-device").expect("lesson"));
    let t0 = Instant::now();
    while !live
        .trace()
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Check { ok: false, .. }))
    {
        assert!(t0.elapsed() < LIMIT, "the broker never checked");
        live.step();
        live.settle(QUIET, LIMIT);
    }
    let t = live.quit();
    assert_eq!(
        t.outcome.failure.as_ref().map(|f| f.code),
        Some(FailureCode::UnknownIssuer),
        "{:?}",
        t.outcome
    );
}
