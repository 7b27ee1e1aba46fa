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

/// Whether the terminal is currently in the UI's modes (raw, alternate screen, mouse capture).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Run the UI on the real terminal until the person quits.
///
/// `first` is the trace of a session already run; `rerun` runs a fresh session (new keys, a new
/// real handshake) when the person presses `r`. Returns the trace on screen when they quit (the
/// session `--pcap` and the other exports are written from).
pub fn run(
    first: Trace,
    mut rerun: impl FnMut() -> Result<Trace, String>,
    opts: UiOptions,
) -> io::Result<Trace> {
    let mut trace = first;
    let mut state = AppState::new(&trace);
    state.opts = opts;

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
            if state.quit || state.rerun_requested || !event::poll(Duration::ZERO)? {
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

/// SIGTERM and SIGHUP: set a flag the event loop polls, so the normal exit path restores the
/// terminal. crossterm does not expose signals and the crate has no signal library, so this is a
/// direct call to the C library's `signal(2)`; the handler only stores an atomic flag, which is
/// async-signal-safe.
#[cfg(unix)]
pub(super) mod signals {
    use std::sync::atomic::{AtomicBool, Ordering};

    static RECEIVED: AtomicBool = AtomicBool::new(false);

    const SIGHUP: i32 = 1;
    const SIGTERM: i32 = 15;

    extern "C" {
        // `sighandler_t signal(int, sighandler_t)`; a handler is a pointer-sized value.
        fn signal(signum: i32, handler: usize) -> usize;
    }

    extern "C" fn on_signal(_signum: i32) {
        RECEIVED.store(true, Ordering::SeqCst);
    }

    pub fn received() -> bool {
        RECEIVED.load(Ordering::SeqCst)
    }

    /// The handlers in place while the UI runs; dropping restores the previous ones.
    pub struct Handlers {
        previous: [(i32, usize); 2],
    }

    impl Handlers {
        pub fn install() -> Handlers {
            RECEIVED.store(false, Ordering::SeqCst);
            let handler = on_signal as extern "C" fn(i32) as usize;
            // SAFETY: `signal` is the C library's, with its C signature; `on_signal` is an
            // `extern "C" fn(i32)` that only touches an atomic.
            let previous = [SIGTERM, SIGHUP].map(|s| (s, unsafe { signal(s, handler) }));
            Handlers { previous }
        }
    }

    impl Drop for Handlers {
        fn drop(&mut self) {
            for (s, h) in self.previous {
                // SAFETY: re-installs the disposition `signal` returned for this signal.
                unsafe {
                    signal(s, h);
                }
            }
        }
    }
}

#[cfg(not(unix))]
pub(super) mod signals {
    pub fn received() -> bool {
        false
    }
    pub struct Handlers;
    impl Handlers {
        pub fn install() -> Handlers {
            Handlers
        }
    }
}
