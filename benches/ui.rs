//! Terminal UI speed: the render time of every screen of a real session at 120×35 (the busiest one
//! reported), and start-up to first frame (PKI generation + a real session + the first render).
//!
//! Run: `cargo bench --bench ui`.

use iotls::engine::{self, Scenario};
use iotls::ui::{render_buffer, Action, AppState};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use std::time::{Duration, Instant};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let area = Rect::new(0, 0, 120, 35);
    // Start-up to first frame, 20 times: fresh PKI, real session, trace, first frame into a buffer.
    let mut startup = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let scenario = Scenario::pizza_button().unwrap();
        let trace = engine::run(&scenario).unwrap();
        let state = AppState::new(&trace);
        let mut buf = Buffer::empty(area);
        render_buffer(&mut buf, area, &trace, &state);
        startup.push(t.elapsed());
    }

    let trace = engine::run(&Scenario::pizza_button().unwrap()).unwrap();
    let mut state = AppState::new(&trace);
    let steps = state.steps.len();
    let mut worst = (Duration::ZERO, 0usize);
    let mut all = Vec::new();
    for step in 0..steps {
        let mut times = Vec::with_capacity(200);
        for _ in 0..200 {
            let mut buf = Buffer::empty(area);
            let t = Instant::now();
            render_buffer(&mut buf, area, &trace, &state);
            times.push(t.elapsed());
        }
        let m = median(&mut times);
        all.push(m);
        if m > worst.0 {
            worst = (m, step);
        }
        state.update(&trace, Action::Next);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("screens rendered:                  {steps} steps × 200 frames at 120×35");
    println!(
        "median frame, all screens:         {:>7.3} ms",
        ms(median(&mut all))
    );
    println!(
        "median frame, busiest screen:      {:>7.3} ms  (step {} of {steps}; target ≤ 2 ms)",
        ms(worst.0),
        worst.1 + 1
    );
    println!(
        "start-up to first frame, median:   {:>7.1} ms  (target ≤ 200 ms)",
        ms(median(&mut startup))
    );
}
