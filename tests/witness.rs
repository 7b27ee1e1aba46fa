//! `[[devices]]`: a witness (the shop's order screen) connects to the same broker over its own
//! real TLS connection before the device, subscribes, and its real deliveries are witness events
//! in the device's trace. It receives the order the device really published, nothing of the
//! neighbour's forged one, and never decides the outcome; a bad `[[devices]]` entry is one line
//! with the file, the line and the key.

use iotls::engine::mqtt_io::Version;
use iotls::trace::{EventKind, MqttPacketType, Side, Trace, WitnessKind};
use iotls::walkthrough::{self, WalkError};

fn run(id: &str, v: Version) -> Trace {
    let lesson = walkthrough::load(id, &[]).expect("built-in lesson loads");
    lesson.run(Some(v)).expect("lesson runs")
}

/// The witness events of `device`, in trace order, with their index in the trace.
fn witness<'a>(t: &'a Trace, device: &str) -> Vec<(usize, &'a WitnessKind)> {
    t.events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            EventKind::Witness { device: d, what } if d == device => Some((i, what)),
            _ => None,
        })
        .collect()
}

/// The witness was really there: connected, and its subscription granted before the device's TCP
/// connection opened.
fn assert_listening_before_the_device(t: &Trace, v: Version) {
    let w = witness(t, "shop");
    let tcp = t
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::Tcp { .. }))
        .expect("the device connected");
    assert!(
        w.iter()
            .any(|(_, k)| matches!(k, WitnessKind::Connected { client_id } if client_id == "pizza-shop-orders")),
        "{v:?}: the shop connected: {w:?}"
    );
    let sub = w
        .iter()
        .find(|(_, k)| matches!(k, WitnessKind::Subscribed { filter, code } if filter == "iotbutton/#" && *code < 0x80))
        .unwrap_or_else(|| panic!("{v:?}: the shop's subscription granted: {w:?}"));
    assert!(sub.0 < tcp, "{v:?}: subscribed before the device connected");
    assert!(
        matches!(w.last(), Some((_, WitnessKind::Disconnected))),
        "{v:?}: the shop disconnects last: {w:?}"
    );
    assert!(t.events.iter().all(|e| match e.kind {
        EventKind::Witness { .. } => e.side == Side::Device,
        _ => true,
    }));
}

#[test]
fn the_shop_receives_exactly_the_order_the_button_published() {
    for v in [Version::V4, Version::V5] {
        let t = run("policy-variables", v);
        assert!(t.outcome.ok, "{v:?}: {}", t.outcome.summary);
        assert_listening_before_the_device(&t, v);
        // What the device put on its own wire: the PUBLISH it sent.
        let (_, sent) = t
            .mqtt_packets()
            .find(|(e, p)| e.side == Side::Device && p.packet == MqttPacketType::Publish)
            .expect("the device published");
        let received: Vec<(&String, &Vec<u8>)> = witness(&t, "shop")
            .into_iter()
            .filter_map(|(_, k)| match k {
                WitnessKind::Received { topic, payload } => Some((topic, payload)),
                _ => None,
            })
            .collect();
        assert_eq!(received.len(), 1, "{v:?}: one delivery: {received:?}");
        let (topic, payload) = received[0];
        assert_eq!(Some(topic), sent.topic.as_ref(), "{v:?}: the topic");
        assert_eq!(
            Some(String::from_utf8_lossy(payload).into_owned()),
            sent.payload,
            "{v:?}: the payload the shop received is the one the button sent"
        );
        assert_eq!(topic, "iotbutton/G030JF055364XVRB");
        // In JSON, the witness's keys sit beside `kind`, and the trace reads back the same.
        let json = serde_json::to_value(&t).unwrap();
        let received = json["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "witness" && e["what"] == "received")
            .expect("a received witness event in JSON");
        assert_eq!(received["device"], "shop");
        assert_eq!(received["topic"], "iotbutton/G030JF055364XVRB");
        let back: Trace = serde_json::from_value(json).unwrap();
        assert_eq!(back.events, t.events);
        // And it is told at its step.
        let i = t
            .events
            .iter()
            .position(|e| {
                matches!(
                    &e.kind,
                    EventKind::Witness {
                        what: WitnessKind::Received { .. },
                        ..
                    }
                )
            })
            .unwrap();
        let told = iotls::narrate::step(&t, i, None);
        assert!(
            told.contains("shop received a PUBLISH on iotbutton/G030JF055364XVRB"),
            "{told}"
        );
        // The page of the session has the step, with the delivered bytes.
        let page = iotls::export::page::render(
            &t,
            iotls::export::PageFormat::Markdown,
            &iotls::export::page::Secrets::Shown,
        );
        let heading = format!(
            "] shop: received iotbutton/G030JF055364XVRB {}",
            sent.payload.as_deref().unwrap()
        );
        assert!(page.contains(&heading), "the page names the delivery");
        assert!(page.contains("the payload delivered on iotbutton/G030JF055364XVRB — 56 bytes"));
    }
}

#[test]
fn the_shop_receives_nothing_of_the_neighbours_forged_order() {
    for v in [Version::V4, Version::V5] {
        let t = run("neighbour", v);
        assert!(!t.outcome.ok, "{v:?}: refused");
        assert_listening_before_the_device(&t, v);
        let got: Vec<_> = witness(&t, "shop")
            .into_iter()
            .filter(|(_, k)| matches!(k, WitnessKind::Received { .. }))
            .collect();
        assert!(got.is_empty(), "{v:?}: the shop received {got:?}");
    }
}

#[test]
fn the_expect_claim_about_a_witness_fails_when_the_run_contradicts_it() {
    // The neighbour lesson with the customer's own button: the order goes through, and the
    // lesson's claim that the shop receives nothing no longer holds.
    let sets = [
        "device.identity=button".to_string(),
        "device.client_id=pizza-button-1".to_string(),
    ];
    let lesson = walkthrough::load("neighbour", &sets).expect("loads");
    let t = lesson.run(Some(Version::V4)).expect("runs");
    let mismatches = lesson.check_expect(&t, Version::V4);
    let m = mismatches
        .iter()
        .find(|m| m.key == "expect.witness.0.not_received")
        .unwrap_or_else(|| panic!("a witness mismatch: {mismatches:?}"));
    assert!(
        m.to_string()
            .contains("the run gave shop received iotbutton/G030JF055364XVRB"),
        "{m}"
    );
}

#[test]
fn a_refused_witness_is_told_and_does_not_decide_the_outcome() {
    let text = r#"format = "iotls-walkthrough/1"
id = "counterfeit-shop"
extends = "pizza-button"

[[devices]]
name = "fake-shop"
identity = "rogue-button"
trust = ["root"]

[[devices.actions]]
subscribe = "iotbutton/#"
"#;
    let lesson = walkthrough::load_str("counterfeit-shop.toml", text, &[]).expect("loads");
    let t = lesson.run(Some(Version::V4)).expect("runs");
    assert!(
        t.outcome.ok,
        "the device's own session: {}",
        t.outcome.summary
    );
    let w = witness(&t, "fake-shop");
    assert!(
        matches!(w.as_slice(), [(_, WitnessKind::Refused { reason })] if reason.contains("handshake")),
        "{w:?}"
    );
}

/// The error of a lesson that loads (its keys are well formed) or builds (its names resolve).
fn invalid(text: &str) -> (Option<usize>, Option<String>, String) {
    let built = walkthrough::load_str("bad.toml", text, &[]).and_then(|l| l.scenario(None));
    match built {
        Err(WalkError::Invalid {
            file,
            line,
            key,
            message,
        }) => {
            assert_eq!(file, "bad.toml");
            (line, key, message)
        }
        Err(e) => panic!("not an invalid-lesson error: {e}"),
        Ok(_) => panic!("a bad [[devices]] entry gives a scenario"),
    }
}

const HEAD: &str = "format = \"iotls-walkthrough/1\"\nid = \"bad\"\nextends = \"pizza-button\"\n\n";

#[test]
fn a_bad_devices_entry_names_the_file_line_and_key() {
    // Line 7: a key a witness does not have.
    let (line, _, message) = invalid(&format!(
        "{HEAD}[[devices]]\nidentity = \"neighbour\"\nwill = {{ topic = \"x\" }}\n"
    ));
    assert_eq!(line, Some(7), "{message}");
    assert!(message.contains("unknown field `will`"), "{message}");

    // Line 8 (the action's table): a witness that publishes.
    let (line, key, message) = invalid(&format!(
        "{HEAD}[[devices]]\nidentity = \"neighbour\"\n\n[[devices.actions]]\npublish = \"iotbutton/x\"\n"
    ));
    assert_eq!(key.as_deref(), Some("devices.0.actions.0"), "{message}");
    assert_eq!(line, Some(8), "{message}");
    assert!(message.contains("subscribe"), "{message}");

    // A certificate [pki] does not have.
    let (line, key, message) = invalid(&format!(
        "{HEAD}[[devices]]\nidentity = \"nobody\"\ntrust = [\"root\"]\n\n[[devices.actions]]\nsubscribe = \"#\"\n"
    ));
    assert_eq!(key.as_deref(), Some("devices.0.identity"), "{message}");
    assert_eq!(line, Some(6), "{message}");
    assert!(message.contains("no certificate \"nobody\""), "{message}");

    // No subscription.
    let (_, key, message) = invalid(&format!("{HEAD}[[devices]]\nidentity = \"neighbour\"\n"));
    assert_eq!(key.as_deref(), Some("devices.0.actions"), "{message}");

    // A claim about a witness the lesson does not have.
    let (line, key, message) = invalid(&format!(
        "{HEAD}[[expect.witness]]\ndevice = \"shop\"\nreceived = [\"iotbutton/x\"]\n"
    ));
    assert_eq!(key.as_deref(), Some("expect.witness.0.device"), "{message}");
    assert_eq!(line, Some(6), "{message}");
}

#[test]
fn in_a_live_tour_the_shop_listens_ungated_and_receives_the_order_the_learner_sends() {
    use iotls::engine::live::LiveSession;
    use std::time::{Duration, Instant};
    let lesson = walkthrough::load("policy-variables", &[]).expect("loads");
    let mut scenario = lesson.scenario(Some(Version::V4)).expect("scenario");
    // A short keep-alive: the broker drops a client silent for 1.5 × 2 s, so the shop must keep
    // its session alive while the learner reads.
    scenario.witnesses[0].device.keep_alive = 2;
    let live = LiveSession::start(&scenario).expect("live session starts");
    let (quiet, limit) = (Duration::from_millis(150), Duration::from_secs(10));
    live.settle(quiet, limit);
    std::thread::sleep(Duration::from_secs(4));
    let start = Instant::now();
    while !live.finished() {
        assert!(start.elapsed() < limit * 3, "the session never finished");
        if live.status().button.is_some() {
            assert!(live.press());
        } else {
            live.step();
        }
        live.settle(quiet, limit);
    }
    let t = live.trace();
    assert!(t.outcome.ok, "{}", t.outcome.summary);
    assert_listening_before_the_device(&t, Version::V4);
    assert!(
        witness(&t, "shop").iter().any(|(_, k)| matches!(k,
            WitnessKind::Received { topic, .. } if topic == "iotbutton/G030JF055364XVRB")),
        "{:?}",
        witness(&t, "shop")
    );
}
