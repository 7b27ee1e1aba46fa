//! The terminal UI on REAL sessions: each lesson runs through `engine::run` (a real mutual-TLS 1.2
//! + MQTT session on 127.0.0.1), and its trace is rendered on ratatui's test buffer.
//!
//! Snapshots mask what changes every run: the hex view's bytes (the whole hex area), and every
//! number or hex string (randoms, keys, signatures, ports, serials, dates, lengths that depend
//! on signature sizes). Runs of spaces and of box-drawing fill are collapsed, because masked
//! values of different widths shift what follows them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use iotls::trace::{EventKind, Phase, Trace};
use iotls::ui::{
    self, action_for_key, action_for_mouse, render_buffer, Action, AppState, Pane, Styles,
    UiOptions,
};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

fn real(lesson: &str) -> Trace {
    let scenario = iotls::engine::lessons::scenario(lesson).expect("lesson scenario");
    iotls::engine::run(&scenario).expect("a real session")
}

fn draw(trace: &Trace, state: &AppState, w: u16, h: u16) -> Buffer {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    render_buffer(&mut buf, area, trace, state);
    buf
}

fn text(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

/// The screen with what changes per run masked (see the module docs).
fn masked(trace: &Trace, state: &AppState, w: u16, h: u16) -> String {
    let mut buf = draw(trace, state, w, h);
    if let Some(a) = ui::areas(Rect::new(0, 0, w, h)) {
        if state.right == Pane::Detail {
            let g = ui::view::detail::geometry(a.right, trace, state);
            for y in g.hex.top()..g.hex.bottom() {
                for x in g.hex.left()..g.hex.right() {
                    buf[(x, y)].set_symbol("░");
                }
            }
        }
    }
    text(&buf)
        .lines()
        .map(mask_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// RFC 3339 times (`2026-11-28T03:19:58Z`, or cut short: `2027-11-29T03:`) become `#` (they
/// change every run).
fn mask_times(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    // The date and the `T`; the time after it may be cut short by the pane's edge.
    let shape = "dddd-dd-ddT";
    let fits = |at: usize| {
        shape
            .chars()
            .enumerate()
            .all(|(k, p)| match (p, chars.get(at + k)) {
                ('d', Some(c)) => c.is_ascii_digit(),
                (p, Some(c)) => p == *c,
                (_, None) => false,
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if fits(i) {
            out.push('#');
            i += shape.len();
            while i < chars.len() && (chars[i].is_ascii_digit() || ":Z".contains(chars[i])) {
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn mask_line(line: &str) -> String {
    let line = mask_times(line);
    let chars: Vec<char> = line.chars().collect();
    let volatile = |c: char| c.is_ascii_hexdigit() || ":.…+–-".contains(c);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if volatile(c) && (i == 0 || !word(chars[i - 1])) {
            let mut j = i;
            while j < chars.len() && volatile(chars[j]) {
                j += 1;
            }
            let run = &chars[i..j];
            let ends_word = j < chars.len() && word(chars[j]);
            if run.iter().any(|c| c.is_ascii_digit()) && !ends_word {
                out.push('#');
                i = j;
                continue;
            }
            // Not a value: copy the whole run (it may be part of a word such as "cafe").
            out.extend(run);
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    // "2 300" and "Nov # # #" are one value each.
    let mut s = out;
    for month in [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ] {
        s = s.replace(&format!("{month} #"), "#");
    }
    while s.contains("# #") {
        s = s.replace("# #", "#");
    }
    // Collapse runs that masking made uneven.
    for (run, one) in [
        ("   ", "  "),
        ("───", "──"),
        ("═══", "══"),
        ("╌╌╌", "╌╌"),
        ("░░", "░"),
    ] {
        while s.contains(run) {
            s = s.replace(run, one);
        }
    }
    s.trim_end().to_string()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The first step of each phase.
fn phase_starts(trace: &Trace, state: &AppState) -> Vec<(Phase, usize)> {
    let mut out: Vec<(Phase, usize)> = Vec::new();
    for (i, s) in state.steps.iter().enumerate() {
        let p = s.phase(trace);
        if !out.iter().any(|(q, _)| *q == p) {
            out.push((p, i));
        }
    }
    out.sort();
    out
}

fn phase_slug(p: Phase) -> String {
    format!("{p:?}").to_lowercase()
}

#[test]
fn each_phase_screen_at_80x24_and_120x35() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let starts = phase_starts(&trace, &state);
    assert_eq!(
        starts.len(),
        Phase::ALL.len(),
        "a full session shows every phase: {starts:?}"
    );
    for (k, (phase, step)) in starts.iter().enumerate() {
        state.update(&trace, Action::GoTo(*step));
        for (w, h) in [(80, 24), (120, 35)] {
            let name = format!("pizza_{w}x{h}_{k:02}_{}", phase_slug(*phase));
            insta::assert_snapshot!(name, masked(&trace, &state, w, h));
        }
    }
}

#[test]
fn certificate_and_decision_panes() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    state.update(&trace, Action::Last);
    state.update(&trace, Action::ShowCerts);
    for (w, h) in [(80, 24), (120, 35)] {
        insta::assert_snapshot!(
            format!("pizza_{w}x{h}_certificates"),
            masked(&trace, &state, w, h)
        );
    }
    state.update(&trace, Action::ShowPolicy);
    for (w, h) in [(80, 24), (120, 35)] {
        insta::assert_snapshot!(
            format!("pizza_{w}x{h}_decisions"),
            masked(&trace, &state, w, h)
        );
    }
    let s = text(&draw(&trace, &state, 120, 35));
    assert!(s.contains("iot:Publish ALLOWED"), "{s}");
}

/// A failed check is red at the step where it happened, with the reason, the alert sent, the
/// cause and the fix.
#[test]
fn failures_are_red_and_explained() {
    for (lesson, check, alert) in [
        ("untrusted-device", "client_chain", Some("unknown_ca")),
        ("wrong-host", "server_name", Some("bad_certificate")),
        ("inactive-cert", "registry", None),
        ("neighbour", "iot:Publish", None),
    ] {
        let trace = real(lesson);
        let mut state = AppState::new(&trace);
        let at = state
            .steps
            .iter()
            .position(|s| match &s.event(&trace).unwrap().kind {
                EventKind::Check { check: c, ok, .. } => c.as_str() == check && !ok,
                EventKind::Policy(p) => p.action.iot_name() == check && !p.decision.allowed(),
                _ => false,
            })
            .unwrap_or_else(|| panic!("{lesson}: no failed {check}"));
        state.update(&trace, Action::GoTo(at));
        let styles = Styles::new(UiOptions::default());
        for (w, h) in [(80, 24), (120, 35)] {
            let buf = draw(&trace, &state, w, h);
            let s = text(&buf);
            assert!(s.contains('✘'), "{lesson}: {s}");
            assert!(
                s.contains("Cause:") && s.contains("Fix:"),
                "{lesson} {w}x{h}: {s}"
            );
            if let Some(a) = alert {
                assert!(
                    s.contains(&format!("Alert sent: {a}")),
                    "{lesson} {w}x{h}: {s}"
                );
            }
            // The title bar turns red at a failed step.
            assert_eq!(buf[(1, 0)].bg, styles.title_fail.bg.unwrap(), "{lesson}");
            insta::assert_snapshot!(
                format!("{lesson}_{w}x{h}_failure"),
                masked(&trace, &state, w, h)
            );
        }
        // Earlier steps of the diagram show the failure in red once it is passed.
        state.update(&trace, Action::Last);
        let buf = draw(&trace, &state, 120, 35);
        let red = (0..buf.area.height)
            .flat_map(|y| (0..46).map(move |x| (x, y)))
            .any(|(x, y)| buf[(x, y)].fg == styles.fail.fg.unwrap() && buf[(x, y)].symbol() == "✘");
        assert!(red, "{lesson}: the failed check is red in the diagram");
    }
}

/// Walk the whole tour forward with → / l / space and back with ← / h, checking what each step
/// shows: the title's position, the highlighted diagram row, the detail heading and narration
/// that uses this run's values.
#[test]
fn walk_the_whole_tour_forward_and_back() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let n = state.steps.len();
    assert!(n > 25, "a full session has many steps: {n}");
    let styles = Styles::new(UiOptions::default());
    let tls = trace.tls.clone().expect("negotiated");
    let check_step = |state: &AppState, i: usize| {
        assert_eq!(state.step, i);
        let buf = draw(&trace, state, 120, 35);
        let title = row(&buf, 0);
        assert!(title.contains(&format!("step {}/{n}", i + 1)), "{title}");
        // Exactly one highlighted row in the diagram, and it names this step.
        let highlighted: Vec<u16> = (1..29)
            .filter(|&y| buf[(3, y)].bg == styles.current.bg.unwrap())
            .collect();
        assert_eq!(
            highlighted.len(),
            1,
            "step {i}: {highlighted:?}\n{}",
            text(&buf)
        );
        let label = ui::view::chrome::step_name(&trace, &state.steps[i]);
        let short = label
            .split(" (")
            .next()
            .unwrap()
            .replace(" ✔", "")
            .replace(" ✘", "");
        assert!(
            row(&buf, highlighted[0]).contains(short.as_str()),
            "step {i}: {short:?} in {:?}",
            row(&buf, highlighted[0])
        );
        // Narration from this run's values: on screen, the narration as of this step; the
        // whole story (what --plain tells) names the verdicts recorded later.
        let step = &state.steps[i];
        let e = step.event(&trace).unwrap();
        let story = ui::narrate::step(&trace, step.event, step.packet);
        let so_far = ui::narrate::step_so_far(&trace, step.event, step.packet);
        assert!(!story.is_empty());
        let s = text(&buf);
        assert!(
            s.contains(&so_far.chars().take(30).collect::<String>()),
            "narration shown for step {i}"
        );
        match &e.kind {
            EventKind::Handshake { msg, .. } => {
                assert!(s.contains(&msg.name()));
                match msg.name().as_str() {
                    "ClientHello" => {
                        assert!(story.contains(tls.sni.as_deref().unwrap()), "{story}")
                    }
                    "ServerHello" => assert!(story.contains(&tls.cipher_suite), "{story}"),
                    "Certificate" if e.side == iotls::trace::Side::Broker => {
                        assert!(story.contains("broker.pizza.example"), "{story}")
                    }
                    "Certificate" => assert!(story.contains("pizza-button-1"), "{story}"),
                    "ServerKeyExchange" | "ClientKeyExchange" => {
                        assert!(story.contains(tls.kx_group.as_deref().unwrap()), "{story}")
                    }
                    // The verdicts on these come at later steps: the whole story tells them,
                    // the screen does not yet.
                    "CertificateVerify" => {
                        assert!(
                            story.contains("✔ valid") && story.contains("pizza-button-1"),
                            "{story}"
                        );
                        assert!(
                            !so_far.contains('✔') && so_far.contains("a later step"),
                            "{so_far}"
                        );
                    }
                    "Finished" => {
                        assert!(story.contains("✔ match"), "{story}");
                        assert!(
                            !so_far.contains('✔') && so_far.contains("a later step"),
                            "{so_far}"
                        );
                    }
                    _ => {}
                }
            }
            EventKind::AppData { .. } => {
                if let Some(p) = step.packet(&trace) {
                    assert!(s.contains(&format!("MQTT {}", p.packet)), "{s}");
                    if let Some(t) = &p.topic {
                        assert!(story.contains(t.as_str()), "{story}");
                    }
                }
            }
            EventKind::Check { check, ok, .. } => {
                assert!(*ok, "pizza-button passes every check");
                assert!(s.contains(&format!("✔ {check}")), "{s}");
            }
            EventKind::Policy(p) => assert!(
                story.contains(p.action.iot_name()) && story.contains("ALLOWED"),
                "{story}"
            ),
            _ => {}
        }
    };
    check_step(&state, 0);
    let forward = [KeyCode::Right, KeyCode::Char('l'), KeyCode::Char(' ')];
    for i in 1..n {
        let a = action_for_key(key(forward[i % 3]), &state).expect("a step key");
        state.update(&trace, a);
        check_step(&state, i);
    }
    // At the end, → stays on the last step.
    state.update(&trace, action_for_key(key(KeyCode::Right), &state).unwrap());
    assert_eq!(state.step, n - 1);
    let back = [KeyCode::Left, KeyCode::Char('h')];
    for i in (0..n - 1).rev() {
        let a = action_for_key(key(back[i % 2]), &state).expect("a back key");
        state.update(&trace, a);
        check_step(&state, i);
    }
    state.update(&trace, action_for_key(key(KeyCode::End), &state).unwrap());
    assert_eq!(state.step, n - 1);
    state.update(&trace, action_for_key(key(KeyCode::Home), &state).unwrap());
    assert_eq!(state.step, 0);
}

/// Every key the footer shows does something in that pane; q, Esc and Ctrl-C quit; ↑/↓ select
/// a field and move the hex highlight.
#[test]
fn keys_and_footer_agree() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    for pane in Pane::ALL {
        state.update(&trace, Action::Focus(pane));
        for b in ui::bindings(pane) {
            for code in b.keys {
                assert_eq!(
                    action_for_key(key(*code), &state),
                    Some(b.action),
                    "{code:?} in {pane:?}"
                );
            }
        }
        let footer = row(&draw(&trace, &state, 120, 35), 34);
        assert!(
            footer.contains("next") && footer.contains("quit"),
            "{footer}"
        );
    }
    for quit in [
        key(KeyCode::Char('q')),
        key(KeyCode::Esc),
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    ] {
        assert_eq!(action_for_key(quit, &state), Some(Action::Quit));
    }
    // ↑/↓ on the ClientHello select its fields.
    state.update(&trace, Action::Focus(Pane::Diagram));
    let ch = state.steps.iter().position(|s| s.event == 1).unwrap();
    state.update(&trace, Action::GoTo(ch));
    state.update(&trace, action_for_key(key(KeyCode::Down), &state).unwrap());
    state.update(&trace, action_for_key(key(KeyCode::Down), &state).unwrap());
    assert_eq!(state.field, 2);
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(s.contains("▸client_version"), "{s}");
    assert!(s.contains("client_version: bytes 4–5"), "{s}");
    // Help overlay: ? opens, any key closes.
    state.update(
        &trace,
        action_for_key(key(KeyCode::Char('?')), &state).unwrap(),
    );
    assert!(text(&draw(&trace, &state, 80, 24)).contains("Help"));
    state.update(&trace, action_for_key(key(KeyCode::Right), &state).unwrap());
    assert!(state.overlay.is_none());
    assert_eq!(state.step, ch, "the key that closes help does nothing else");
}

#[test]
fn mouse_clicks_steps_and_fields() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let screen = Rect::new(0, 0, 120, 35);
    let buf = draw(&trace, &state, 120, 35);
    // Click the diagram row that names ServerHello.
    let y = (1..29)
        .find(|&y| row(&buf, y).contains("ServerHello "))
        .expect("ServerHello row");
    let click = |x, y| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    let a = action_for_mouse(click(10, y), &trace, &state, screen).expect("a click on a step");
    state.update(&trace, a);
    assert!(
        ui::view::chrome::step_name(&trace, &state.steps[state.step]).starts_with("ServerHello")
    );
    // Click a byte of the hex view: the field holding it is selected.
    let a = ui::areas(screen).unwrap();
    let g = ui::view::detail::geometry(a.right, &trace, &state);
    let act = action_for_mouse(click(g.hex.x + 6 + 3 * 6, g.hex.y), &trace, &state, screen);
    state.update(&trace, act.expect("a click on a byte"));
    let rows = ui::view::detail::rows(&trace, &state.steps[state.step]);
    let (off, len) = rows[state.field].range.unwrap();
    assert!(
        (off..off + len).contains(&(g.hex_offset * g.bytes_per_row + 6)),
        "{:?}",
        rows[state.field]
    );
    // Scrolling over the diagram steps.
    let before = state.step;
    let scroll = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 5,
        row: 5,
        modifiers: KeyModifiers::NONE,
    };
    state.update(
        &trace,
        action_for_mouse(scroll, &trace, &state, screen).unwrap(),
    );
    assert_eq!(state.step, before + 1);
}

#[test]
fn no_color_means_no_colour() {
    let trace = real("untrusted-device");
    let mut state = AppState::new(&trace);
    state.opts = UiOptions {
        no_color: true,
        ..UiOptions::default()
    };
    for step in 0..state.steps.len() {
        state.update(&trace, Action::GoTo(step));
        let buf = draw(&trace, &state, 80, 24);
        for cell in buf.content() {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "a coloured cell at step {step}"
            );
        }
    }
}

#[test]
fn projector_theme_renders() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    state.opts = UiOptions {
        theme: ui::Theme::Projector,
        no_color: false,
        replayed: false,
    };
    state.update(&trace, Action::GoTo(4));
    let buf = draw(&trace, &state, 120, 35);
    assert_eq!(buf[(1, 0)].bg, Color::White);
}

/// No size, step or pane panics, down to 0×0; below the minimum a message says so.
#[test]
fn any_size_any_step() {
    for lesson in ["pizza-button", "wrong-host"] {
        let trace = real(lesson);
        let mut state = AppState::new(&trace);
        for step in 0..state.steps.len() {
            state.update(&trace, Action::GoTo(step));
            for pane in [Pane::Detail, Pane::Certificates, Pane::Decisions] {
                state.update(&trace, Action::Focus(pane));
                for (w, h) in [
                    (0, 0),
                    (1, 1),
                    (20, 5),
                    (59, 15),
                    (60, 16),
                    (61, 17),
                    (100, 30),
                    (250, 80),
                ] {
                    let _ = draw(&trace, &state, w, h);
                }
            }
            // Every field selected (a calculation's long values fill the note), the hex view
            // enlarged, the record as sent: at the smallest sizes the tour draws.
            state.update(&trace, Action::Focus(Pane::Detail));
            let n = ui::view::detail::shown_rows(&trace, &state, &state.steps[step]).len();
            for f in 0..n {
                state.update(&trace, Action::SelectField(f));
                for (w, h) in [(60, 16), (61, 17), (80, 24)] {
                    let _ = draw(&trace, &state, w, h);
                    state.update(&trace, Action::ToggleHex);
                    let _ = draw(&trace, &state, w, h);
                    state.update(&trace, Action::ToggleHex);
                }
            }
        }
        state.update(&trace, Action::ToggleSent);
        for step in 0..state.steps.len() {
            state.update(&trace, Action::GoTo(step));
            let n = ui::view::detail::shown_rows(&trace, &state, &state.steps[step]).len();
            for f in 0..n {
                state.update(&trace, Action::SelectField(f));
                let _ = draw(&trace, &state, 60, 16);
            }
        }
        let s = text(&draw(&trace, &state, 20, 5));
        assert!(s.contains("too"), "{s}");
    }
}

/// `r`: a re-run gives a new trace (new randoms), and the tour stays where it was.
#[test]
fn rerun_keeps_the_place() {
    let first = real("pizza-button");
    let mut state = AppState::new(&first);
    state.update(&first, Action::GoTo(5));
    state.update(
        &first,
        action_for_key(key(KeyCode::Char('r')), &state).unwrap(),
    );
    assert!(state.rerun_requested);
    let second = real("pizza-button");
    assert_ne!(first.events[1], second.events[1], "a fresh ClientHello");
    state.reload(&second);
    assert_eq!(state.step, 5);
    assert!(!state.rerun_requested);
    assert_eq!(state.run, 2);
    assert!(text(&draw(&second, &state, 120, 35)).contains("run #2"));
}

/// Narration fits the 80×24 narration area (5 lines of 78 columns) on every step of every lesson.
#[test]
fn narration_fits_on_a_small_screen() {
    let mut long = Vec::new();
    for lesson in iotls::engine::lessons::names() {
        // A lesson of operations wraps its own longer explanations (tests/operations.rs).
        if iotls::walkthrough::load(lesson, &[])
            .expect("lesson")
            .operations
            .is_some()
        {
            continue;
        }
        let trace = real(lesson);
        let state = AppState::new(&trace);
        for s in &state.steps {
            for story in [
                ui::narrate::step(&trace, s.event, s.packet),
                ui::narrate::step_so_far(&trace, s.event, s.packet),
            ] {
                let lines = ui::view::wrap(&story, 78);
                if lines.len() > 5 {
                    long.push(format!("{lesson}: {} lines: {story}", lines.len()));
                }
            }
        }
    }
    long.dedup();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// Map a key as the terminal would, update, and keep an overlay's scroll within the screen.
fn press(trace: &Trace, state: &mut AppState, code: KeyCode, screen: Rect) {
    let a = action_for_key(key(code), state).unwrap_or_else(|| panic!("{code:?} does nothing"));
    state.update(trace, a);
    state.clamp_overlay(ui::overlay_max_scroll(state, screen));
}

/// The screen's lines, trimmed, with runs of spaces collapsed (so a line can be looked for as
/// words).
fn words(buf: &Buffer) -> Vec<String> {
    text(buf)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Predict before you see: the title tells how the session ended only at its last step (or from
/// the first, for a session replayed from a file); before the first verdict nothing on screen
/// shows a ✔ or ✘, in any pane.
#[test]
fn the_ending_shows_only_at_the_last_step() {
    for lesson in ["pizza-button", "untrusted-device"] {
        let trace = real(lesson);
        let ending = match &trace.outcome.failure {
            None => "✔ session ok".to_string(),
            Some(f) => format!("✘ failed: {}", f.code.as_str()),
        };
        assert_eq!(trace.outcome.ok, lesson == "pizza-button");
        let mut state = AppState::new(&trace);
        let n = state.steps.len();
        for k in 0..n {
            state.update(&trace, Action::GoTo(k));
            for (w, h) in [(80, 24), (120, 35)] {
                let title = row(&draw(&trace, &state, w, h), 0);
                if k + 1 == n {
                    assert!(
                        title.contains(&ending),
                        "{lesson} last step {w}x{h}: {title}"
                    );
                } else {
                    assert!(
                        !title.contains("session ok") && !title.contains("failed"),
                        "{lesson} step {k} {w}x{h} spoils the ending: {title}"
                    );
                }
            }
        }
        // Replayed from a file, the ending is known: it shows from the first step.
        state.opts.replayed = true;
        state.update(&trace, Action::First);
        let title = row(&draw(&trace, &state, 120, 35), 0);
        assert!(title.contains(&ending), "{lesson} replayed: {title}");
    }

    // Before the device's first check, no verdict anywhere: diagram, panes, strip, narration.
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let first_verdict = state
        .steps
        .iter()
        .position(|s| {
            matches!(
                s.event(&trace).unwrap().kind,
                EventKind::Check { .. } | EventKind::Policy(_)
            )
        })
        .unwrap();
    assert!(first_verdict > 4, "the handshake's messages come first");
    for k in 0..first_verdict {
        state.update(&trace, Action::GoTo(k));
        for pane in [Pane::Detail, Pane::Certificates, Pane::Decisions] {
            state.update(&trace, Action::Focus(pane));
            for (w, h) in [(80, 24), (120, 35)] {
                // The wide screen's strip counts "0 ✔  0 ✘": marks, but no verdict.
                let s = text(&draw(&trace, &state, w, h)).replace("0 ✔  0 ✘", "");
                assert!(
                    !s.contains('✔') && !s.contains('✘'),
                    "step {k} ({pane:?}, {w}x{h}) shows a verdict not reached yet:\n{s}"
                );
            }
        }
    }
    // At the first verdict, it is there.
    state.update(&trace, Action::GoTo(first_verdict));
    state.update(&trace, Action::Focus(Pane::Diagram));
    assert!(text(&draw(&trace, &state, 80, 24)).contains('✔'));
}

/// The decisions pane at step k lists exactly the verdicts of events up to k's, in order, each
/// with its mark; the wide screen's strip counts the same.
#[test]
fn decisions_pane_lists_only_verdicts_reached() {
    for lesson in ["pizza-button", "untrusted-device", "neighbour"] {
        let trace = real(lesson);
        let mut state = AppState::new(&trace);
        state.update(&trace, Action::ShowPolicy);
        let styles = Styles::new(UiOptions::default());
        for k in 0..state.steps.len() {
            state.update(&trace, Action::GoTo(k));
            let now = state.steps[k].event;
            let expected: Vec<(bool, String)> = trace.events[..=now]
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Check { check, ok, .. } => Some((*ok, check.as_str().to_string())),
                    EventKind::Policy(p) => {
                        Some((p.decision.allowed(), format!("{} {}", p.action, p.decision)))
                    }
                    _ => None,
                })
                .collect();
            // A pane tall enough for every line, so nothing is scrolled away.
            let area = Rect::new(0, 0, 110, 400);
            let mut buf = Buffer::empty(area);
            ui::view::decisions::render(&mut buf, area, &trace, &state, &styles);
            let shown: Vec<(bool, String)> = (1..area.height - 1)
                .filter_map(|y| {
                    let l = row(&buf, y);
                    let l = l.trim_start_matches('│').trim_start_matches(['▸', ' ']);
                    let ok = if l.starts_with('✔') {
                        true
                    } else if l.starts_with('✘') {
                        false
                    } else {
                        return None;
                    };
                    let title = l['✔'.len_utf8()..]
                        .trim_start()
                        .split(" · by the ")
                        .next()
                        .unwrap()
                        .to_string();
                    Some((ok, title))
                })
                .collect();
            assert_eq!(shown, expected, "{lesson} step {k}");
            let strip = text(&draw(&trace, &state, 120, 40));
            let passed = expected.iter().filter(|(ok, _)| *ok).count();
            assert!(
                strip.contains(&format!(
                    "Decisions so far: {passed} ✔  {} ✘",
                    expected.len() - passed
                )),
                "{lesson} step {k}:\n{strip}"
            );
        }
    }
}

/// The certificates pane marks a chain ✔/✘ from the step of its check on, and says "not
/// checked yet" before.
#[test]
fn certificate_chains_are_judged_from_their_check_on() {
    for lesson in ["pizza-button", "untrusted-device"] {
        let trace = real(lesson);
        let mut state = AppState::new(&trace);
        state.update(&trace, Action::ShowCerts);
        let styles = Styles::new(UiOptions::default());
        for k in 0..state.steps.len() {
            state.update(&trace, Action::GoTo(k));
            let now = state.steps[k].event;
            let area = Rect::new(0, 0, 80, 60);
            let mut buf = Buffer::empty(area);
            ui::view::certs::render(&mut buf, area, &trace, &state, &styles);
            let lines = words(&buf);
            for (title, check) in [
                ("Broker's chain", "server_chain"),
                ("Device's chain", "client_chain"),
            ] {
                let verdict = trace.events[..=now].iter().find_map(|e| match &e.kind {
                    EventKind::Check { check: c, ok, .. }
                        if c.as_str() == check && e.side != iotls::trace::Side::Iotls =>
                    {
                        Some(*ok)
                    }
                    _ => None,
                });
                let Some(at) = lines.iter().position(|l| l.contains(title)) else {
                    continue;
                };
                let head = &lines[at];
                match verdict {
                    Some(true) => assert!(head.contains('✔'), "{lesson} step {k}: {head}"),
                    Some(false) => assert!(head.contains('✘'), "{lesson} step {k}: {head}"),
                    None => {
                        assert!(
                            !head.contains('✔') && !head.contains('✘'),
                            "{lesson} step {k}: {head}"
                        );
                        let group: Vec<&String> = lines[at..]
                            .iter()
                            .take_while(|l| !l.contains("──"))
                            .collect();
                        assert!(
                            group.iter().any(|l| l.contains("not checked yet")),
                            "{lesson} step {k}: {group:?}"
                        );
                    }
                }
            }
        }
    }
}

/// `?`: the help lists every key of the key table, at 80×24, scrolling to show all of it; `w`:
/// the glossary, one line per abbreviation, whole. Esc closes an overlay without quitting.
#[test]
fn help_and_glossary_fit_at_80x24() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let screen = Rect::new(0, 0, 80, 24);
    for (open, name, slug) in [
        (KeyCode::Char('?'), "Help", "help"),
        (KeyCode::Char('w'), "Glossary", "glossary"),
    ] {
        press(&trace, &mut state, open, screen);
        assert!(state.overlay.is_some(), "{name} opens");
        insta::assert_snapshot!(
            format!("pizza_80x24_{slug}"),
            masked(&trace, &state, 80, 24)
        );
        // Every line the overlay has, as the screen shows it while scrolling to the end.
        let mut seen: Vec<String> = words(&draw(&trace, &state, 80, 24));
        let mut scrolls = 0;
        loop {
            let before = state.overlay_scroll;
            press(&trace, &mut state, KeyCode::Down, screen);
            if state.overlay_scroll == before {
                break;
            }
            scrolls += 1;
            seen.extend(words(&draw(&trace, &state, 80, 24)));
        }
        assert!(scrolls > 0, "{name} needs to scroll at 80×24, and does");
        insta::assert_snapshot!(
            format!("pizza_80x24_{slug}_end"),
            masked(&trace, &state, 80, 24)
        );
        // ↑ moves back at once, even after pressing ↓ past the end.
        press(&trace, &mut state, KeyCode::Down, screen);
        let end = state.overlay_scroll;
        press(&trace, &mut state, KeyCode::Up, screen);
        assert_eq!(state.overlay_scroll, end - 1, "{name}");
        let has = |needle: &str| {
            let needle = needle.split_whitespace().collect::<Vec<_>>().join(" ");
            seen.iter().any(|l| l.contains(&needle))
        };
        if name == "Help" {
            for (keys, what) in ui::help_entries() {
                assert!(
                    has(&format!("{keys} {what}")),
                    "help line {keys:?} {what:?} is not shown whole"
                );
            }
            for b in ui::every_binding() {
                assert!(!b.keys.is_empty());
            }
            assert!(has("w glossary"), "the glossary key is in the help");
        } else {
            for (term, what) in ui::narrate::GLOSSARY {
                assert!(
                    has(&format!("{term} {what}")),
                    "glossary line {term} is not shown whole"
                );
            }
            for term in [
                "EKU", "SAN", "SNI", "PRF", "ARN", "SKE", "ECDHE", "AEAD", "GCM", "AAD", "CA",
                "CN", "DER", "PEM", "QoS", "CONNACK", "PUBACK", "SUBACK", "ALPN", "EMS", "MAC",
                "SPKI",
            ] {
                assert!(
                    ui::narrate::GLOSSARY.iter().any(|(t, _)| *t == term),
                    "{term} is in the glossary"
                );
            }
        }
        // Esc closes it, does not quit, and the tour is where it was.
        press(&trace, &mut state, KeyCode::Esc, screen);
        assert!(state.overlay.is_none() && !state.quit, "{name}");
        assert!(!text(&draw(&trace, &state, 80, 24)).contains(name));
    }
}

/// `e` on an encrypted record: the hex view shows the record as it was sent (the trace's
/// ciphertext: header, explicit nonce, encrypted content, tag) and back; the hex view's title
/// and the footer say which.
#[test]
fn an_encrypted_record_as_sent_and_decrypted() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let screen = Rect::new(0, 0, 80, 24);
    let publish = state
        .steps
        .iter()
        .position(|s| {
            s.packet(&trace)
                .is_some_and(|p| p.packet == iotls::trace::MqttPacketType::Publish)
        })
        .expect("a PUBLISH step");
    state.update(&trace, Action::GoTo(publish));
    // The bytes in the hex view's first row, read off the screen, and how many a row holds.
    let first_row = |state: &AppState| -> (Vec<u8>, usize) {
        let a = ui::areas(screen).unwrap();
        let g = ui::view::detail::geometry(a.right, &trace, state);
        let buf = draw(&trace, state, 80, 24);
        let line: String = (g.hex.x..g.hex.right())
            .map(|x| buf[(x, g.hex.y)].symbol().to_string())
            .collect();
        let bytes = line[6..]
            .split_whitespace()
            .take(g.bytes_per_row)
            .map_while(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        (bytes, g.bytes_per_row)
    };
    let (ciphertext, packet) = match &state.steps[publish].event(&trace).unwrap().kind {
        EventKind::AppData {
            ciphertext, mqtt, ..
        } => (ciphertext.clone(), mqtt[0].hex.clone()),
        _ => unreachable!(),
    };
    let s = text(&draw(&trace, &state, 120, 35));
    assert!(
        s.contains(&format!(
            "inside a {}-byte encrypted record",
            ciphertext.len()
        )),
        "the heading counts the record's bytes:\n{s}"
    );
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(s.contains("── decrypted: "), "{s}");
    assert!(s.contains("e as sent"), "the footer names the key:\n{s}");
    let (shown, per_row) = first_row(&state);
    assert_eq!(shown, packet[..per_row.min(packet.len())]);
    insta::assert_snapshot!(
        "pizza_80x24_publish_decrypted",
        masked(&trace, &state, 80, 24)
    );

    press(&trace, &mut state, KeyCode::Char('e'), screen);
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(s.contains("── as sent, encrypted: "), "{s}");
    assert!(s.contains("e decrypted"), "{s}");
    let (shown, per_row) = first_row(&state);
    assert_eq!(shown, ciphertext[..per_row.min(ciphertext.len())]);
    assert_eq!(shown[0], 23, "an application_data record");
    let rows = ui::view::detail::shown_rows(&trace, &state, &state.steps[publish]);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "content type",
            "version",
            "length",
            "explicit nonce",
            "encrypted content",
            "decrypted",
            "tag",
            "AEAD",
            "seq",
            "nonce",
            "AAD",
            "redo",
            "command"
        ],
        "{rows:?}"
    );
    // The parts cover the record, once each.
    let covered: usize = rows.iter().filter_map(|r| r.range).map(|(_, l)| l).sum();
    assert_eq!(covered, ciphertext.len());
    insta::assert_snapshot!(
        "pizza_80x24_publish_as_sent",
        masked(&trace, &state, 80, 24)
    );

    // The encrypted Finished and the encrypted close_notify: the record as sent, and back.
    for pick in ["Finished", "Alert"] {
        let k = state
            .steps
            .iter()
            .position(|s| match &s.event(&trace).unwrap().kind {
                EventKind::Handshake { msg, encrypted, .. } => {
                    pick == "Finished" && *encrypted && msg.name() == "Finished"
                }
                EventKind::Alert { encrypted, .. } => pick == "Alert" && *encrypted,
                _ => false,
            })
            .unwrap_or_else(|| panic!("an encrypted {pick}"));
        state.update(&trace, Action::GoTo(k));
        let step = state.steps[k];
        let sent = ui::view::detail::record_as_sent(&trace, &step)
            .unwrap()
            .to_vec();
        assert!(state.as_sent, "the choice holds from step to step");
        assert_eq!(
            ui::view::detail::shown_bytes(&trace, &state, &step),
            Some(sent.clone())
        );
        let (shown, per_row) = first_row(&state);
        assert_eq!(shown, sent[..sent.len().min(per_row)]);
        press(&trace, &mut state, KeyCode::Char('e'), screen);
        let decrypted = ui::view::detail::shown_bytes(&trace, &state, &step).unwrap();
        assert_ne!(decrypted, sent, "{pick}");
        let heading = text(&draw(&trace, &state, 120, 35));
        assert!(
            heading.contains(&format!("encrypted on the wire ({} bytes)", sent.len())),
            "{heading}"
        );
        match &step.event(&trace).unwrap().kind {
            EventKind::Handshake { hex, .. } => {
                assert_eq!(&decrypted, hex);
                assert!(
                    heading.contains(&format!("Finished · device → broker · {} bytes", hex.len())),
                    "{heading}"
                );
            }
            EventKind::Alert { level, code, .. } => assert_eq!(decrypted, vec![level.0, *code]),
            _ => unreachable!(),
        }
        assert!(text(&draw(&trace, &state, 80, 24)).contains("── decrypted: "));
        press(&trace, &mut state, KeyCode::Char('e'), screen);
    }

    // A step sent in the clear: the footer does not offer the key, and it changes nothing.
    state.update(&trace, Action::GoTo(1));
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(
        !s.contains("e as sent") && !s.contains("e decrypted"),
        "{s}"
    );
    let before = ui::view::detail::shown_bytes(&trace, &state, &state.steps[1]);
    press(&trace, &mut state, KeyCode::Char('e'), screen);
    assert_eq!(
        ui::view::detail::shown_bytes(&trace, &state, &state.steps[1]),
        before
    );
    assert!(state.status.is_some(), "it says why nothing changed");
}

/// The device's certificate at 80×24: the subject keeps `serialNumber=`, and one line says which
/// of the two serials the policy variable reads.
#[test]
fn the_device_certificate_keeps_its_serial_number_at_80x24() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    state.update(&trace, Action::Last);
    state.update(&trace, Action::ShowCerts);
    let order = ui::view::certs::order(&trace);
    let device = order
        .iter()
        .position(|&i| trace.certificates[i].subject.contains("CN=pizza-button-1"))
        .expect("the device's certificate");
    for _ in 0..device {
        state.update(&trace, Action::CertDown);
    }
    for (w, h) in [(80, 24), (120, 35)] {
        let s = text(&draw(&trace, &state, w, h));
        assert!(s.contains("serialNumber=G030JF055364XVRB"), "{w}x{h}:\n{s}");
        assert!(
            s.contains("reads serialNumber=, not Serial"),
            "{w}x{h}:\n{s}"
        );
        assert!(
            words(&draw(&trace, &state, w, h))
                .iter()
                .any(|l| l.contains("Serial") && !l.contains("serialNumber") && l.contains(':')),
            "the certificate's own serial number has its line:\n{s}"
        );
    }
    insta::assert_snapshot!(
        "pizza_80x24_device_certificate",
        masked(&trace, &state, 80, 24)
    );
}

/// The lessons made of operations: every step of each draws at 80×24 and at the smallest size,
/// and one step of public-key-basics (the tampered order that ring rejects) is a snapshot.
#[test]
fn operations_lessons_draw() {
    use iotls::engine::operations::{self, Operations};
    for k in Operations::ALL {
        let trace = operations::run(k).expect("an operations lesson");
        let mut state = AppState::new(&trace);
        assert_eq!(state.steps.len(), trace.events.len(), "{}", k.id());
        for i in 0..state.steps.len() {
            state.update(&trace, Action::GoTo(i));
            for (w, h) in [(80, 24), (60, 16)] {
                let screen = text(&draw(&trace, &state, w, h));
                assert!(screen.contains("Operations"), "{}\n{screen}", k.id());
            }
        }
    }
    let trace = operations::run(Operations::PublicKeyBasics).expect("public-key-basics");
    let mut state = AppState::new(&trace);
    let tampered = trace
        .events
        .iter()
        .position(|e| {
            matches!(&e.kind, EventKind::Operation(o)
                if o.op == iotls::trace::OperationKind::Verify
                    && o.verdict.as_ref().is_some_and(|v| !v.ok))
        })
        .expect("the tampered order's verification");
    state.update(&trace, Action::GoTo(tampered));
    let screen = masked(&trace, &state, 80, 24);
    assert!(screen.contains("ring"), "{screen}");
    insta::assert_snapshot!("ops_public_key_basics_80x24_tampered", screen);
}

/// The step of event `kind` (a check with `check` made by `side`, or the key schedule).
fn calc_step(
    trace: &Trace,
    state: &AppState,
    pick: &dyn Fn(&iotls::trace::Event) -> bool,
) -> usize {
    state
        .steps
        .iter()
        .position(|s| s.packet.is_none() && s.event(trace).is_some_and(pick))
        .expect("the calculation's step")
}

fn is_check(e: &iotls::trace::Event, id: &str, side: iotls::trace::Side) -> bool {
    e.side == side && matches!(&e.kind, EventKind::Check { check, .. } if check.to_string() == id)
}

/// The rows of the detail pane, read off the screen at 120×35 by selecting each in turn: the
/// note under the list shows the selected row in full, `name = value`.
fn shown_rows(trace: &Trace, state: &AppState) -> Vec<(String, String)> {
    let step = state.steps[state.step];
    ui::view::detail::shown_rows(trace, state, &step)
        .into_iter()
        .map(|r| (r.name, r.value))
        .collect()
}

/// A calculation screen says on screen which `reproduce.sh` check redoes it, and the script
/// knows that name.
fn assert_redo(trace: &Trace, state: &mut AppState, check: &str) {
    let rows = shown_rows(trace, state);
    let redo = rows
        .iter()
        .position(|(n, _)| n == "redo")
        .expect("a redo row");
    state.update(trace, Action::SelectField(redo));
    // The note under the list, where the selected row is shown in full.
    let a = ui::areas(Rect::new(0, 0, 80, 24)).unwrap();
    let g = ui::view::detail::geometry(a.right, trace, state);
    let buf = draw(trace, state, 80, 24);
    let s = (g.note.top()..g.note.bottom())
        .map(|y| {
            (g.note.left()..g.note.right())
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let command = format!("iotls tour --reproduce DIR && sh DIR/reproduce.sh {check}");
    assert!(
        s.contains(&command),
        "the command is on screen at 80x24, wrapped, not cut:\n{s}"
    );
    assert!(iotls::narrate::calc::CHECKS.contains(&check));
    state.update(trace, Action::SelectField(0));
}

/// The sum of the byte counts a calculation lists (`N bytes from the …`), and the total it
/// says they make (`a + b + … = N bytes`), read from its rows.
fn listed_and_total(rows: &[(String, String)], total_row: &str) -> (usize, usize) {
    let listed: usize = rows
        .iter()
        .filter_map(|(_, v)| v.split_once(" bytes from the "))
        .map(|(n, _)| n.parse::<usize>().expect("a length"))
        .sum();
    let total = rows
        .iter()
        .find(|(n, _)| n == total_row)
        .and_then(|(_, v)| v.split(" = ").nth(1))
        .and_then(|v| v.split(' ').next())
        .map(|n| n.parse::<usize>().expect("the total"))
        .expect("a total row");
    (listed, total)
}

/// The broker's check of the device's CertificateVerify, as a calculation: the messages it
/// signed with their lengths, summing to the signed length; the digest iotls computed; whose
/// verdict it was; the signed bytes in the hex view with each message's start marked.
#[test]
fn certificate_verify_calculation_screen() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let k = calc_step(&trace, &state, &|e| {
        is_check(e, "certificate_verify", iotls::trace::Side::Broker)
    });
    state.update(&trace, Action::GoTo(k));
    let sig = match &state.steps[k].event(&trace).unwrap().kind {
        EventKind::Check {
            signature: Some(s), ..
        } => s.clone(),
        _ => unreachable!(),
    };
    let rows = shown_rows(&trace, &state);
    let (listed, total) = listed_and_total(&rows, "signed bytes");
    assert_eq!(listed, total, "{rows:?}");
    assert_eq!(total, sig.signed_len);
    let names: Vec<&str> = rows.iter().take(3).map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ClientHello", "ServerHello", "Certificate"]);
    let value = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(value("digest").ends_with(&iotls::trace::hex(&sig.digest)));
    assert!(value("digest").contains("computed by iotls"));
    assert!(value("verdict").contains("the broker's rustls"), "{rows:?}");
    assert!(value("public key").contains("pizza-button-1"));
    // The hex view holds the signed bytes: every handshake message before the CertificateVerify,
    // as sent.
    let step = state.steps[k];
    let signed = ui::view::detail::shown_bytes(&trace, &state, &step).expect("signed bytes");
    let sent: Vec<u8> = trace
        .events
        .iter()
        .take_while(|e| {
            !matches!(&e.kind, EventKind::Handshake { msg, .. } if msg.name() == "CertificateVerify")
        })
        .filter_map(|e| match &e.kind {
            EventKind::Handshake { hex, .. } => Some(hex.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(signed, sent);
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(
        s.contains(&format!("── signed: {} bytes ──", sig.signed_len)),
        "{s}"
    );
    assert!(s.contains("◂ClientHello"), "the first span is marked:\n{s}");
    insta::assert_snapshot!(
        "pizza_80x24_certificate_verify_calc",
        masked(&trace, &state, 80, 24)
    );
    assert_redo(&trace, &mut state, "certificate_verify");

    // Select the device's Certificate: the hex view scrolls to its first byte, marked.
    let cert = rows
        .iter()
        .position(|(n, v)| n == "Certificate" && v.contains("from the device"))
        .expect("the device's Certificate");
    state.update(&trace, Action::SelectField(cert));
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(s.contains("◂Certificate"), "{s}");
    let at = sig
        .signed
        .iter()
        .find(|x| x.name == "Certificate" && x.from == iotls::trace::Side::Device)
        .unwrap();
    assert!(
        s.contains(&format!(
            "Certificate: {}–{}",
            at.offset,
            at.offset + at.len - 1
        )),
        "the caption names the selected span's bytes:\n{s}"
    );
    // The snapshot scrolls to the broker's Certificate: the spans before it have the same
    // lengths every run (the hellos), so its mark is on the same row every run.
    state.update(&trace, Action::SelectField(2));
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(s.contains("◂Certificate"), "{s}");
    assert!(s.contains("Certificate: 202–"), "{s}");
    insta::assert_snapshot!(
        "pizza_80x24_certificate_verify_signed_bytes",
        masked(&trace, &state, 80, 24)
    );
}

/// The device's check of the ServerKeyExchange signature: client_random ‖ server_random ‖
/// params, 32 + 32 + N bytes, signed with the key of the broker's certificate.
#[test]
fn server_key_exchange_calculation_screen() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let k = calc_step(&trace, &state, &|e| {
        is_check(e, "server_kx_signature", iotls::trace::Side::Device)
    });
    state.update(&trace, Action::GoTo(k));
    let rows = shown_rows(&trace, &state);
    let names: Vec<&str> = rows.iter().take(3).map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["client_random", "server_random", "ecdhe_params"]);
    let (listed, total) = listed_and_total(&rows, "signed bytes");
    assert_eq!(listed, total);
    // The signed bytes begin with the two randoms of the hellos as sent.
    let step = state.steps[k];
    let signed = ui::view::detail::shown_bytes(&trace, &state, &step).unwrap();
    let random = |side, msg: &str| match &trace
        .events
        .iter()
        .find(|e| {
            e.side == side
                && matches!(&e.kind, EventKind::Handshake { msg: m, .. } if m.name() == msg)
        })
        .unwrap()
        .kind
    {
        EventKind::Handshake { hex, .. } => hex[6..38].to_vec(),
        _ => unreachable!(),
    };
    assert_eq!(
        signed[..32],
        random(iotls::trace::Side::Device, "ClientHello")[..]
    );
    assert_eq!(
        signed[32..64],
        random(iotls::trace::Side::Broker, "ServerHello")[..]
    );
    assert_eq!(signed.len(), total);
    let value = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(value("public key").contains("broker chain[0]"), "{rows:?}");
    assert!(value("verdict").contains("the device's rustls"));
    insta::assert_snapshot!(
        "pizza_80x24_server_key_exchange_calc",
        masked(&trace, &state, 80, 24)
    );
    assert_redo(&trace, &mut state, "server_kx_signature");
}

/// iotls's key schedule is a step of the key exchange, drawn as an iotls note: the master
/// secret from the key log (an input), the key block and its parts, equal to the trace's.
#[test]
fn key_schedule_calculation_screen() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let k = calc_step(&trace, &state, &|e| {
        matches!(e.kind, EventKind::KeySchedule(_))
    });
    assert_eq!(state.steps[k].phase(&trace), Phase::KeyExchange);
    let schedule = match &state.steps[k].event(&trace).unwrap().kind {
        EventKind::KeySchedule(s) => s.clone(),
        _ => unreachable!(),
    };
    state.update(&trace, Action::GoTo(k));
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(
        s.contains("iotls: key schedule"),
        "drawn in the diagram:\n{s}"
    );
    let step = state.steps[k];
    assert_eq!(
        ui::view::detail::shown_bytes(&trace, &state, &step),
        Some(schedule.key_expansion.key_block.clone()),
        "the hex view is the trace's key block"
    );
    let rows = shown_rows(&trace, &state);
    let value = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(value("key block").ends_with(&iotls::trace::hex(&schedule.key_expansion.key_block)));
    assert!(value("master secret").ends_with(&iotls::trace::hex(&schedule.master_secret.value)));
    assert!(value("pre-master").contains("never leave rustls"));
    for p in &schedule.key_expansion.parts {
        assert!(
            value(&p.name).ends_with(&iotls::trace::hex(&p.value)),
            "{}",
            p.name
        );
    }
    // The parts tile the key block.
    let parts: usize = schedule.key_expansion.parts.iter().map(|p| p.len).sum();
    assert_eq!(parts, schedule.key_expansion.key_block.len());
    assert!(s.contains("◂client_write_key"), "{s}");
    let block = rows.iter().position(|(n, _)| n == "key block").unwrap();
    state.update(&trace, Action::SelectField(block));
    insta::assert_snapshot!(
        "pizza_80x24_key_schedule_calc",
        masked(&trace, &state, 80, 24)
    );
    assert_redo(&trace, &mut state, "key_block");
    // A replayed session was not run by this tour: no `iotls tour` in its command.
    state.opts.replayed = true;
    let rows = shown_rows(&trace, &state);
    let redo = &rows.iter().find(|(n, _)| n == "redo").unwrap().1;
    assert!(
        redo.starts_with("sh DIR/reproduce.sh key_block,") && !redo.contains("iotls tour"),
        "{redo}"
    );
}

/// iotls's recomputation of the device's Finished: the transcript it hashes, summing to its
/// length, the expected and the received verify_data.
#[test]
fn finished_calculation_screen() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let k = calc_step(&trace, &state, &|e| {
        is_check(e, "client_finished", iotls::trace::Side::Iotls)
    });
    state.update(&trace, Action::GoTo(k));
    let fin = match &state.steps[k].event(&trace).unwrap().kind {
        EventKind::Check {
            finished: Some(f), ..
        } => f.clone(),
        _ => unreachable!(),
    };
    let rows = shown_rows(&trace, &state);
    let (listed, total) = listed_and_total(&rows, "transcript");
    assert_eq!(listed, total);
    assert_eq!(total, fin.transcript_len);
    let value = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(value("expected").starts_with(&iotls::trace::hex(&fin.expected)));
    assert!(value("received").starts_with(&iotls::trace::hex(&fin.received)));
    assert!(value("verdict").contains("iotls"));
    let step = state.steps[k];
    assert_eq!(
        ui::view::detail::shown_bytes(&trace, &state, &step).map(|b| b.len()),
        Some(fin.transcript_len)
    );
    insta::assert_snapshot!("pizza_80x24_finished_calc", masked(&trace, &state, 80, 24));
    assert_redo(&trace, &mut state, "client_finished");
}

/// An encrypted record as sent lists how it was protected: sequence number, nonce, AAD, tag,
/// each the trace's, and the check that redoes it.
#[test]
fn an_encrypted_record_shows_its_nonce_and_additional_data() {
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let k = state
        .steps
        .iter()
        .position(|s| {
            s.packet(&trace)
                .is_some_and(|p| p.packet == iotls::trace::MqttPacketType::Publish)
        })
        .unwrap();
    state.update(&trace, Action::GoTo(k));
    state.update(&trace, Action::ToggleSent);
    let p = match &state.steps[k].event(&trace).unwrap().kind {
        EventKind::AppData {
            protection: Some(p),
            ..
        } => p.clone(),
        _ => unreachable!(),
    };
    let rows = shown_rows(&trace, &state);
    let value = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(
        value("AAD").ends_with(&iotls::trace::hex(&p.aad)),
        "{rows:?}"
    );
    assert!(value("nonce").contains(&iotls::trace::hex(&p.explicit_nonce)));
    assert!(value("tag").ends_with(&iotls::trace::hex(&p.tag)));
    assert!(value("seq").starts_with(&p.seq.to_string()));
    // The ciphertext's plaintext, next to it.
    let plaintext = match &state.steps[k].event(&trace).unwrap().kind {
        EventKind::AppData { plaintext, .. } => plaintext.clone().unwrap(),
        _ => unreachable!(),
    };
    assert!(value("decrypted").ends_with(&iotls::trace::hex(&plaintext)));
    assert_redo(&trace, &mut state, "records");
}

/// Every abbreviation on any screen of the tour (every step, every field selected, at 120×35) is
/// in the glossary (`w`), or is a name rather than an abbreviation (MQTT packet types, policy
/// decisions, algorithm names spelled as the protocols spell them).
#[test]
fn the_glossary_covers_every_abbreviation_on_screen() {
    // Names, not abbreviations a learner needs expanded: packet types, decisions, statuses, and
    // the placeholders of commands.
    const NAMES: &[&str] = &[
        "CONNECT",
        "PUBLISH",
        "DISCONNECT",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "PINGREQ",
        "PINGRESP",
        "UNSUBACK",
        "ALLOWED",
        "EXPLICIT_DENY",
        "IMPLICIT_DENY",
        "DENY",
        "EXPLICIT",
        "IMPLICIT",
        "ACTIVE",
        "INACTIVE",
        "SINGLE",
        "DIR",
        "OK",
        "FAIL",
        "WITH",
        "CLIENT_RANDOM",
        "CLIENT",
        "RANDOM",
        "EMPTY",
        "RENEGOTIATION",
        "INFO",
        "NONE",
        "NOT",
        "ID",
        // Cipher suite and curve names as the RFCs spell them, and an attack's name.
        "CHACHA",
        "POLY",
        "NISTP",
        "CRIME",
    ];
    let trace = real("pizza-button");
    let mut state = AppState::new(&trace);
    let mut missing = std::collections::BTreeMap::<String, String>::new();
    for k in 0..state.steps.len() {
        state.update(&trace, Action::GoTo(k));
        let n = ui::view::detail::shown_rows(&trace, &state, &state.steps[k]).len();
        for f in 0..n.max(1) {
            if n > 0 {
                state.update(&trace, Action::SelectField(f));
            }
            // The hex view's bytes and ASCII column are data, not words; so is the payload.
            let mut buf = draw(&trace, &state, 120, 35);
            let a = ui::areas(Rect::new(0, 0, 120, 35)).unwrap();
            let g = ui::view::detail::geometry(a.right, &trace, &state);
            for y in g.hex.top()..g.hex.bottom() {
                for x in g.hex.left()..g.hex.right() {
                    buf[(x, y)].set_symbol(" ");
                }
            }
            let s: String = text(&buf)
                .lines()
                .filter(|l| !l.contains("clickType"))
                .collect::<Vec<_>>()
                .join("\n");
            // A word cut short by the pane's edge (`…_SH…`) is not a word.
            let chars: Vec<char> = s.chars().collect();
            let mut words = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                if i > start && chars.get(i) != Some(&'…') {
                    words.push(chars[start..i].iter().collect::<String>());
                }
                i += 1;
            }
            for word in words.iter().map(String::as_str) {
                // Letters first, then letters or digits (`SHA256` is SHA): an abbreviation.
                let letters: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                if letters.len() < 2
                    || !letters.chars().all(|c| c.is_ascii_uppercase())
                    || word.chars().any(|c| c.is_ascii_lowercase())
                {
                    continue;
                }
                let known = ui::narrate::GLOSSARY.iter().any(|(t, _)| *t == letters)
                    || NAMES.contains(&letters.as_str());
                if !known {
                    missing.entry(letters).or_insert_with(|| {
                        s.lines()
                            .find(|l| l.contains(word))
                            .unwrap_or("")
                            .trim()
                            .to_string()
                    });
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "abbreviations on screen that the glossary lacks:\n{}",
        missing
            .iter()
            .map(|(w, l)| format!("{w}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A signature no side checked (the broker refused the counterfeit device's chain before it got
/// to the CertificateVerify): its message step shows the calculation from the wire, and the
/// verdict row does not tell whether a check comes.
#[test]
fn an_unchecked_signature_shows_its_calculation_on_the_message() {
    let trace = real("untrusted-device");
    let mut state = AppState::new(&trace);
    assert!(
        !trace
            .events
            .iter()
            .any(|e| is_check(e, "certificate_verify", iotls::trace::Side::Broker)),
        "the broker never checked the signature"
    );
    let k = calc_step(
        &trace,
        &state,
        &|e| matches!(&e.kind, EventKind::Handshake { msg, .. } if msg.name() == "CertificateVerify"),
    );
    state.update(&trace, Action::GoTo(k));
    let rows = shown_rows(&trace, &state);
    let (listed, total) = listed_and_total(&rows, "signed bytes");
    assert_eq!(listed, total, "{rows:?}");
    let verdict = &rows.iter().find(|(n, _)| n == "verdict").unwrap().1;
    assert!(verdict.contains("later step"), "{verdict}");
    let s = text(&draw(&trace, &state, 80, 24));
    assert!(!s.contains('✘'), "nothing failed yet on screen:\n{s}");
    assert_redo(&trace, &mut state, "certificate_verify");
}

/// A lesson run for real under MQTT `v` (or the version it pins).
fn lesson_run(id: &str, sets: &[String], v: iotls::engine::mqtt_io::Version) -> Trace {
    let l = iotls::walkthrough::load(id, sets).expect("the lesson loads");
    l.run(Some(l.mqtt.unwrap_or(v))).expect("a real session")
}

/// The swaps the tour offers for a lesson, as main.rs hands them to the UI.
fn ui_swaps(id: &str) -> Vec<ui::Swap> {
    use iotls::walkthrough::breakit;
    let l = iotls::walkthrough::load(id, &[]).expect("the lesson loads");
    breakit::swaps(&l, iotls::engine::mqtt_io::Version::V4)
        .into_iter()
        .map(|s| ui::Swap {
            command: format!("iotls tour {id} {}", breakit::command_line(&s.sets)),
            label: s.label,
            sets: s.sets,
        })
        .collect()
}

/// A quiz question stops the tour before its step: the question and its numbered choices, at
/// 80×24.
#[test]
fn a_quiz_screen_at_80x24() {
    let l = iotls::walkthrough::load("chain-of-trust", &[]).expect("loads");
    let trace = lesson_run("chain-of-trust", &[], iotls::engine::mqtt_io::Version::V4);
    let quizzes: Vec<ui::Quiz> = l
        .quiz_for(&trace)
        .into_iter()
        .map(|(event, q)| ui::Quiz {
            event,
            question: q.question.clone(),
            choices: q.choices.clone(),
            answer: q.answer,
            explain: q.explain.clone(),
        })
        .collect();
    let first = quizzes.first().expect("the run reached a question").clone();
    let mut state = AppState::new(&trace);
    state.set_lesson(Vec::new(), quizzes);
    while state.asking.is_none() && state.step + 1 < state.steps.len() {
        state.update(&trace, Action::Next);
    }
    assert!(state.asking.is_some(), "the question stops the tour");
    let screen = words(&draw(&trace, &state, 80, 24)).join("\n");
    assert!(screen.contains(&first.question), "{screen}");
    for (i, c) in first.choices.iter().enumerate() {
        assert!(screen.contains(&format!("{}) {c}", i + 1)), "{screen}");
    }
    insta::assert_snapshot!("chain-of-trust_80x24_quiz", masked(&trace, &state, 80, 24));
    // A digit answers; the step it was asked before is shown with the explanation.
    let right = char::from_digit(first.answer as u32, 10).unwrap();
    let a = action_for_key(key(KeyCode::Char(right)), &state).expect("a digit answers");
    state.update(&trace, a);
    assert!(state.asking.is_none());
    assert_eq!(state.current().map(|s| s.event), Some(first.event));
}

/// `b` opens the break-it menu: every swap of the lesson, numbered, with its `--set`s; Esc
/// closes it without breaking anything. Then `3`… picks; the comparison names the first step
/// that differs and both outcomes.
#[test]
fn break_it_menu_and_comparison_at_80x24() {
    let v4 = iotls::engine::mqtt_io::Version::V4;
    let before = real("pizza-button");
    let mut state = AppState::new(&before);
    state.swaps = ui_swaps("pizza-button");
    let screen = Rect::new(0, 0, 80, 24);

    press(&before, &mut state, KeyCode::Char('b'), screen);
    assert_eq!(state.overlay, Some(ui::Overlay::BreakIt));
    let menu = words(&draw(&before, &state, 80, 24)).join("\n");
    for needed in [
        "the device trusts another root",
        "--set 'device.trust=[\"rogue-root\"]'",
        "expired yesterday",
        "--set pki.button.not_after=-1d",
        "another thing's client id",
        "the neighbour's topic",
        "no policy attached",
        "MQTT 5",
    ] {
        assert!(menu.contains(needed), "{needed:?} in the menu:\n{menu}");
    }
    insta::assert_snapshot!("pizza_80x24_break_it_menu", masked(&before, &state, 80, 24));
    // Esc closes it, and nothing is run.
    press(&before, &mut state, KeyCode::Esc, screen);
    assert_eq!(state.overlay, None);
    assert_eq!(state.break_requested, None);
    assert!(!state.quit, "Esc closes the menu; it does not quit");

    // The expired certificate, picked by its digit.
    let n = state
        .swaps
        .iter()
        .position(|s| s.label.contains("expired"))
        .expect("an expired swap")
        + 1;
    press(&before, &mut state, KeyCode::Char('b'), screen);
    press(
        &before,
        &mut state,
        KeyCode::Char(char::from_digit(n as u32, 10).unwrap()),
        screen,
    );
    let i = state.break_requested.expect("the digit picks the swap");
    // What the event loop does: a real run of the lesson with the swap, then the comparison.
    let swap = state.swaps[i].clone();
    let after = lesson_run("pizza-button", &swap.sets, v4);
    let c = ui::compare::Comparison::new(&swap.label, &swap.command, &before, &after);
    state.broke(&after, c);
    assert_eq!(state.overlay, Some(ui::Overlay::Compare));
    let shown = words(&draw(&after, &state, 80, 24)).join("\n");
    assert!(shown.contains("--set pki.button.not_after=-1d"), "{shown}");
    assert!(
        shown.contains("before: broker: check client_chain ✔"),
        "{shown}"
    );
    assert!(
        shown.contains("now: broker: check client_chain ✘"),
        "{shown}"
    );
    assert!(
        shown.contains("[expired]"),
        "the new outcome's code:\n{shown}"
    );
    assert!(
        shown.contains(
            &format!("✔ {}", before.outcome.summary)
                .chars()
                .take(30)
                .collect::<String>()
        ),
        "the previous outcome:\n{shown}"
    );
    insta::assert_snapshot!(
        "pizza_80x24_break_it_expired",
        masked(&after, &state, 80, 24)
    );
    // Any key closes it onto the new run, at the step that differs: the failed check.
    press(&after, &mut state, KeyCode::Enter, screen);
    assert_eq!(state.overlay, None);
    let at = state
        .current()
        .and_then(|s| s.event(&after))
        .expect("a step");
    assert!(
        matches!(at.kind, EventKind::Check { ok: false, .. }),
        "{:?}",
        at.kind
    );
}

/// The neighbour's publish on MQTT 5: the broker answers PUBACK 0x87 Not authorized instead of
/// closing the connection.
#[test]
fn mqtt5_refusal_screen_at_80x24() {
    let trace = lesson_run("neighbour", &[], iotls::engine::mqtt_io::Version::V5);
    let mut state = AppState::new(&trace);
    let at = state
        .steps
        .iter()
        .position(|s| {
            s.packet(&trace)
                .is_some_and(|p| p.packet == iotls::trace::MqttPacketType::PubAck)
        })
        .expect("a PUBACK on MQTT 5");
    state.update(&trace, Action::GoTo(at));
    let screen = words(&draw(&trace, &state, 80, 24)).join("\n");
    assert!(screen.contains("PUBACK"), "{screen}");
    assert!(screen.contains("0x87"), "{screen}");
    insta::assert_snapshot!(
        "neighbour_mqtt5_80x24_puback_refusal",
        masked(&trace, &state, 80, 24)
    );
}
