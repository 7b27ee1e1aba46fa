//! The tour's state over a live session, driven by test keys: → at the live edge asks for the
//! next flight and moves to it when it arrives, going back re-shows recorded steps, and `b` is
//! what presses the button.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use iotls::engine::lessons;
use iotls::engine::live::LiveSession;
use iotls::trace::{EventKind, Trace};
use iotls::ui::{action_for_key, Action, AppState, Live};

use std::time::Duration;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn settle(s: &LiveSession) {
    s.settle(Duration::from_millis(150), Duration::from_secs(10));
}

fn live(s: &LiveSession) -> Live {
    let st = s.status();
    Live {
        running: !st.finished,
        button: st.button,
        text: String::new(),
    }
}

/// Apply a key; carry out what the event loop would (release a flight, press the button) and
/// adopt the fresh trace.
fn press(state: &mut AppState, trace: &mut Trace, s: &LiveSession, c: KeyCode) {
    if let Some(a) = action_for_key(key(c), state) {
        state.update(trace, a);
    }
    if std::mem::take(&mut state.advance_requested) && s.step().is_none() {
        state.follow = None;
    }
    if std::mem::take(&mut state.press_requested) && !s.press() {
        state.follow = None;
    }
    settle(s);
    *trace = s.trace();
    state.live = Some(live(s));
    state.reload_live(trace);
}

fn current(state: &AppState, trace: &Trace) -> String {
    let step = state.current().expect("a step");
    match &trace.events[step.event].kind {
        EventKind::Handshake { msg, .. } => msg.name(),
        other => format!("{other:?}").chars().take(20).collect(),
    }
}

#[test]
fn arrow_at_the_live_edge_sends_the_next_flight_and_a_sends_the_order() {
    let s =
        LiveSession::start(&lessons::scenario("pizza-button").expect("lesson")).expect("starts");
    settle(&s);
    let mut trace = s.trace();
    let mut state = AppState::new(&trace);
    state.live = Some(live(&s));
    assert_eq!(state.steps.len(), 1, "only the TCP connection so far");
    assert!(state.at_live_edge());

    // → at the edge: the ClientHello leaves and the tour moves onto it.
    press(&mut state, &mut trace, &s, KeyCode::Right);
    assert_eq!(current(&state, &trace), "ClientHello");
    assert_eq!(state.step, 1);
    // Back re-shows the recorded step and sends nothing.
    let before = s.gate().released();
    press(&mut state, &mut trace, &s, KeyCode::Left);
    assert_eq!(state.step, 0);
    assert_eq!(s.gate().released(), before);
    press(&mut state, &mut trace, &s, KeyCode::Right);
    assert_eq!(state.step, 1);
    assert_eq!(
        s.gate().released(),
        before,
        "a recorded step: nothing leaves"
    );
    // At the edge again: the broker's flight arrives, starting with its ServerHello.
    press(&mut state, &mut trace, &s, KeyCode::Right);
    assert_eq!(current(&state, &trace), "ServerHello");

    // Enter (another "next" key) steps on until the device waits for its button.
    let mut n = 0;
    while state.live.as_ref().unwrap().button.is_none() {
        n += 1;
        assert!(n < 200, "the device never waited for its button");
        press(&mut state, &mut trace, &s, KeyCode::Enter);
    }
    assert_eq!(
        action_for_key(key(KeyCode::Char('a')), &state),
        Some(Action::Button)
    );
    let packets = trace.mqtt_packets().count();
    // → cannot send the order, however often it is pressed.
    for _ in 0..3 {
        press(&mut state, &mut trace, &s, KeyCode::Right);
    }
    assert_eq!(trace.mqtt_packets().count(), packets);
    // a does, and the tour moves onto the PUBLISH.
    press(&mut state, &mut trace, &s, KeyCode::Char('a'));
    assert_eq!(trace.mqtt_packets().count(), packets + 1);
    let step = state.current().unwrap();
    let packet = match &trace.events[step.event].kind {
        EventKind::AppData { mqtt, .. } => mqtt[step.packet.expect("a packet step")].packet,
        other => panic!("the current step is not an MQTT packet: {other:?}"),
    };
    assert_eq!(packet, iotls::trace::MqttPacketType::Publish);
    s.quit();
}
