//! The event loop and the terminal's set-up and restoration.
//!
//! The terminal is restored on every exit path: normal return and `?` errors (a `Drop` guard), a
//! panic (a panic hook that restores before the report is printed), and SIGTERM / SIGHUP (a flag
//! set by a minimal signal handler; the loop sees it within one poll interval and returns, and the
//! guard restores). Ctrl-C arrives as a key in raw mode and quits like `q`.

use super::app::AppState;
use super::keys::{action_for_key, action_for_mouse};
use super::theme::UiOptions;
use super::view::render;
use crate::trace::Trace;
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

/// How long the loop waits for an event before it looks at the signal flag again. Only a wake-up
/// interval: nothing is drawn unless something changed.
const POLL: Duration = Duration::from_millis(200);

/// The most events handled before the loop draws and looks at the signal flag again.
pub(super) const MAX_BURST: usize = 256;

/// Whether the terminal is currently in the UI's modes (raw, alternate screen, mouse capture).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Run the UI on the real terminal until the person quits.
///
/// `first` is the trace of a session already run; `rerun` runs a fresh session (new keys, a new
/// real handshake) when the person presses `r`. Returns the trace on screen when they quit (the
/// session `--pcap` and the other exports are written from).
pub fn run(
    first: Trace,
    rerun: impl FnMut() -> Result<Trace, String>,
    opts: UiOptions,
) -> io::Result<Trace> {
    run_lesson(first, rerun, opts, |_| (Vec::new(), Vec::new()))
}

/// [`run`] for a lesson: `lesson` gives, for each trace run, the lesson's emphasis texts at their
/// event index (shown in the detail pane at that step) and its quiz questions.
pub fn run_lesson(
    first: Trace,
    mut rerun: impl FnMut() -> Result<Trace, String>,
    opts: UiOptions,
    lesson: impl Fn(&Trace) -> (Vec<(usize, String)>, Vec<super::app::Quiz>),
) -> io::Result<Trace> {
    let mut trace = first;
    let mut state = AppState::new(&trace);
    state.opts = opts;
    let (notes, quizzes) = lesson(&trace);
    state.set_lesson(notes, quizzes);

    install_panic_hook();
    let _guard = Guard::enter()?;
    let _signals = signals::Handlers::install();
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;

    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|f| render(f, &trace, &state))?;
            dirty = false;
        }
        if signals::received() {
            break;
        }
        if !event::poll(POLL)? {
            continue;
        }
        // Handle every event already waiting before drawing again (mouse-wheel bursts).
        let mut burst = 0;
        loop {
            let size = terminal.size()?;
            let screen = Rect::new(0, 0, size.width, size.height);
            let action = match event::read()? {
                Event::Key(k) => action_for_key(k, &state),
                Event::Mouse(m) => action_for_mouse(m, &trace, &state, screen),
                Event::Resize(..) => {
                    terminal.autoresize()?;
                    dirty = true;
                    None
                }
                _ => None,
            };
            if let Some(a) = action {
                state.update(&trace, a);
                state.clamp_overlay(screen);
                dirty = true;
            }
            burst += 1;
            // A signal (e.g. SIGHUP: the terminal went away, and a dead terminal reads as an
            // endless stream of events) ends the burst; so does a burst that never ends.
            if state.quit
                || state.rerun_requested
                || signals::received()
                || burst >= MAX_BURST
                || !event::poll(Duration::ZERO)?
            {
                break;
            }
        }
        if state.quit {
            break;
        }
        if state.rerun_requested {
            state.status = Some("running a new session…".to_string());
            terminal.draw(|f| render(f, &trace, &state))?;
            match rerun() {
                Ok(t) => {
                    trace = t;
                    state.reload(&trace);
                    let (notes, quizzes) = lesson(&trace);
                    state.set_lesson(notes, quizzes);
                }
                Err(e) => {
                    state.rerun_requested = false;
                    state.status = Some(format!("re-run failed: {e}"));
                }
            }
            dirty = true;
        }
    }
    Ok(trace)
}

/// Puts the terminal into the UI's modes; restores it when dropped.
pub(super) struct Guard;

impl Guard {
    pub(super) fn enter() -> io::Result<Guard> {
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on, the guard restores even if a later step fails.
        let guard = Guard;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave the UI's terminal modes, once; safe to call from any exit path.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
}

/// On panic, restore the terminal first so the report is readable, then report as usual.
pub(super) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// SIGINT, SIGTERM and SIGHUP (the terminal went away): set a flag the event loop polls, so the
/// normal exit path restores the terminal; the signal's number gives the exit code shells expect
/// (128 + n: 130 for SIGINT, 143 for SIGTERM). The handlers only store atomics (signal-hook).
pub(super) mod signals {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};

    /// The signal that ended the UI, if one did (0 = none); set by signal-hook's handler.
    fn last() -> &'static Arc<AtomicUsize> {
        static LAST: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
        LAST.get_or_init(Arc::default)
    }

    #[cfg(unix)]
    const WATCHED: [i32; 3] = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ];

    pub fn received() -> bool {
        last().load(Ordering::SeqCst) != 0
    }

    /// The exit code for the signal that ended the UI: 128 + its number.
    pub fn exit_code() -> Option<u8> {
        match last().load(Ordering::SeqCst) {
            0 => None,
            n => Some((128 + n).min(255) as u8),
        }
    }

    /// The handlers in place while the UI runs; dropping removes them.
    pub struct Handlers {
        #[cfg(unix)]
        ids: Vec<signal_hook::SigId>,
        #[cfg(unix)]
        done: Arc<std::sync::atomic::AtomicBool>,
    }

    /// How long the UI may take to end by itself after a signal before the watchdog ends it.
    #[cfg(unix)]
    const GRACE: std::time::Duration = std::time::Duration::from_millis(500);

    impl Handlers {
        #[cfg(unix)]
        pub fn install() -> Handlers {
            last().store(0, Ordering::SeqCst);
            let ids = WATCHED
                .iter()
                .filter_map(|&s| {
                    signal_hook::flag::register_usize(s, Arc::clone(last()), s as usize).ok()
                })
                .collect();
            // A terminal that went away can leave the event source spinning inside crossterm,
            // where the loop never sees the flag: a watchdog restores what it can and exits with
            // the signal's code if the UI has not ended by itself shortly after the signal.
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watching = Arc::clone(&done);
            std::thread::spawn(move || {
                let tick = std::time::Duration::from_millis(50);
                let mut since: Option<std::time::Instant> = None;
                while !watching.load(Ordering::SeqCst) {
                    if let Some(code) = exit_code() {
                        let t = *since.get_or_insert_with(std::time::Instant::now);
                        if t.elapsed() >= GRACE {
                            super::restore();
                            std::process::exit(i32::from(code));
                        }
                    }
                    std::thread::sleep(tick);
                }
            });
            Handlers { ids, done }
        }

        #[cfg(not(unix))]
        pub fn install() -> Handlers {
            Handlers {}
        }
    }

    impl Drop for Handlers {
        fn drop(&mut self) {
            #[cfg(unix)]
            {
                self.done.store(true, Ordering::SeqCst);
                for id in self.ids.drain(..) {
                    signal_hook::low_level::unregister(id);
                }
            }
        }
    }
}

/// The exit code a signal asked for while the UI ran (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
pub fn signal_exit_code() -> Option<u8> {
    signals::exit_code()
}
