//! View and update tests on the development fixtures (src/ui/sample.rs). The real-session tests
//! are in tests/ui_tour.rs.

use super::sample;
use super::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn screen(trace: &crate::trace::Trace, state: &AppState, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| render(f, trace, state)).unwrap();
    if w == 0 || h == 0 {
        return String::new(); // TestBackend cannot print an empty buffer
    }
    term.backend().to_string()
}

#[test]
fn every_step_renders_at_every_size() {
    for trace in [
        sample::pizza(),
        sample::unknown_ca(),
        sample::empty(),
        sample::odd(),
    ] {
        let mut state = AppState::new(&trace);
        for (w, h) in [
            (80, 24),
            (120, 35),
            (20, 5),
            (60, 16),
            (59, 16),
            (200, 60),
            (1, 1),
            (0, 0),
        ] {
            for step in 0..state.steps.len().max(1) {
                state.update(&trace, Action::GoTo(step));
                for pane in [Pane::Detail, Pane::Certificates, Pane::Decisions] {
                    state.update(&trace, Action::Focus(pane));
                    let _ = screen(&trace, &state, w, h);
                }
                state.update(&trace, Action::ToggleHex);
                let _ = screen(&trace, &state, w, h);
                state.update(&trace, Action::ToggleHex);
                // The record as sent, where the step has one.
                state.update(&trace, Action::ToggleSent);
                let _ = screen(&trace, &state, w, h);
                state.update(&trace, Action::ToggleSent);
                state.as_sent = false;
            }
            // The overlays, scrolled to their end.
            for open in [Action::Help, Action::Glossary] {
                state.update(&trace, open);
                for _ in 0..40 {
                    state.update(&trace, Action::OverlayDown);
                }
                state.clamp_overlay(super::view::overlay_max_scroll(
                    &state,
                    ratatui::layout::Rect::new(0, 0, w, h),
                ));
                let _ = screen(&trace, &state, w, h);
                state.update(&trace, Action::CloseOverlay);
            }
        }
    }
}

#[test]
fn first_screen_explains_itself() {
    let trace = sample::pizza();
    let state = AppState::new(&trace);
    let s = screen(&trace, &state, 80, 24);
    println!("{s}");
    assert!(s.contains("iotls — step 1/"), "{s}");
    assert!(s.contains("Device") && s.contains("Broker"));
    assert!(s.contains("What is happening"));
    assert!(s.contains("quit"));
}

#[test]
fn too_small_says_so() {
    let trace = sample::pizza();
    let state = AppState::new(&trace);
    let s = screen(&trace, &state, 20, 5);
    assert!(s.contains("too"), "{s}");
}

#[test]
fn walk_forward_and_back() {
    let trace = sample::pizza();
    let mut state = AppState::new(&trace);
    let n = state.steps.len();
    for _ in 0..n + 3 {
        state.update(&trace, Action::Next);
    }
    assert_eq!(state.step, n - 1);
    for _ in 0..n + 3 {
        state.update(&trace, Action::Prev);
    }
    assert_eq!(state.step, 0);
}

#[test]
fn failure_is_explained() {
    let trace = sample::unknown_ca();
    let mut state = AppState::new(&trace);
    let at = state
        .steps
        .iter()
        .position(|s| steps::is_failure(&trace, s))
        .unwrap();
    state.update(&trace, Action::GoTo(at));
    let s = screen(&trace, &state, 120, 35);
    println!("{s}");
    assert!(s.contains("✘"));
    assert!(s.contains("Cause:") && s.contains("Fix:"), "{s}");
    assert!(s.contains("unknown_ca"), "{s}");
}

/// The layers only call downwards: model → state → keys → view. The state, the keys and the
/// model never reach into the view's drawing code.
#[test]
fn state_keys_and_model_do_not_use_the_view() {
    for (name, src) in [
        ("app.rs", include_str!("app.rs")),
        ("keys.rs", include_str!("keys.rs")),
        ("model.rs", include_str!("model.rs")),
        ("compare.rs", include_str!("compare.rs")),
        ("steps.rs", include_str!("steps.rs")),
    ] {
        for (i, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            assert!(
                !code.contains("view::") && !code.contains("use super::view"),
                "src/ui/{name}:{}: {line}",
                i + 1
            );
        }
    }
}
