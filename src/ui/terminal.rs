//! The event loop and the terminal's set-up and restoration.
//!
//! The terminal is restored on every exit path: normal return and `?` errors (a `Drop` guard), a
//! panic (a panic hook that restores before the report is printed), and SIGTERM / SIGHUP (a flag
//! set by a minimal signal handler; the loop sees it within one poll interval and returns, and the
//! guard restores). Ctrl-C arrives as a key in raw mode and quits like `q`.

use super::app::{AppState, Live, Swap};
use super::compare::Comparison;
use super::keys::action_for_key;
use super::theme::UiOptions;
use super::view::action_for_mouse;
use super::view::render;
use crate::engine::live::LiveSession;
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
    run_lesson(
        first,
        rerun,
        opts,
        |_| (Vec::new(), Vec::new()),
        BreakIt::nothing(
            "Nothing to swap: this is a recording, not a lesson iotls runs. Break a lesson with \
             iotls tour LESSON and b, or --set KEY=VALUE.",
        ),
    )
}

/// A lesson's emphasis texts at their event index, and its quiz questions.
pub type LessonNotes = (Vec<(usize, String)>, Vec<super::app::Quiz>);

/// Break it, as the caller provides it: the swaps the lesson offers (or why there are none) and
/// how to run the lesson with one. `run` makes the broken lesson the one `r` and the lesson's
/// texts use from then on, and returns its real run.
pub struct BreakIt<'a> {
    pub swaps: Vec<Swap>,
    /// Why there is nothing to swap, shown when `swaps` is empty.
    pub none: String,
    #[allow(clippy::type_complexity)]
    pub run: Box<dyn FnMut(&Swap) -> Result<Trace, String> + 'a>,
}

impl BreakIt<'_> {
    /// Nothing to swap, and why.
    pub fn nothing(why: &str) -> BreakIt<'static> {
        let why = why.to_string();
        let said = why.clone();
        BreakIt {
            swaps: Vec::new(),
            none: why,
            run: Box::new(move |_| Err(said.clone())),
        }
    }

    fn offer(&self, state: &mut AppState) {
        state.swaps = self.swaps.clone();
        state.no_swaps = self.none.clone();
    }
}

/// [`run`] for a lesson: `lesson` gives, for each trace run, the lesson's emphasis texts at their
/// event index (shown in the detail pane at that step) and its quiz questions; `breakit` the
/// swaps of `b`.
pub fn run_lesson(
    first: Trace,
    mut rerun: impl FnMut() -> Result<Trace, String>,
    opts: UiOptions,
    lesson: impl Fn(&Trace) -> LessonNotes,
    mut breakit: BreakIt,
) -> io::Result<Trace> {
    let mut trace = first;
    let mut state = AppState::new(&trace);
    state.opts = opts;
    breakit.offer(&mut state);
    let (notes, quizzes) = lesson(&trace);
    state.set_lesson(notes, quizzes);

    install_panic_hook();
    let _guard = Guard::enter()?;
    let _signals = signals::Handlers::install();
    recorded_loop(
        &mut trace,
        &mut state,
        &mut rerun,
        &lesson,
        &mut breakit,
        None,
    )?;
    Ok(trace)
}

/// Handles every event already waiting before the next draw (a mouse-wheel burst); returns whether
/// the screen changed. A request `stop` sees (quit, re-run, …) ends the burst, and so do a signal
/// (e.g. SIGHUP: the terminal went away, and a dead terminal reads as an endless stream of events)
/// and a burst that never ends.
fn handle_burst(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    trace: &Trace,
    state: &mut AppState,
    stop: impl Fn(&AppState) -> bool,
) -> io::Result<bool> {
    let mut dirty = false;
    let mut burst = 0;
    loop {
        let size = terminal.size()?;
        let screen = Rect::new(0, 0, size.width, size.height);
        let action = match event::read()? {
            Event::Key(k) => action_for_key(k, state),
            Event::Mouse(m) => action_for_mouse(m, trace, state, screen),
            Event::Resize(..) => {
                terminal.autoresize()?;
                dirty = true;
                None
            }
            _ => None,
        };
        if let Some(a) = action {
            state.update(trace, a);
            state.clamp_overlay(super::view::overlay_max_scroll(state, screen));
            dirty = true;
        }
        burst += 1;
        if stop(state) || signals::received() || burst >= MAX_BURST || !event::poll(Duration::ZERO)?
        {
            return Ok(dirty);
        }
    }
}

/// The loop over recorded runs: `r` runs the lesson again, a break-it swap runs it with the swap.
fn recorded_loop(
    trace: &mut Trace,
    state: &mut AppState,
    rerun: &mut impl FnMut() -> Result<Trace, String>,
    lesson: &impl Fn(&Trace) -> LessonNotes,
    breakit: &mut BreakIt,
    mut note: Option<String>,
) -> io::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;

    let mut dirty = true;
    loop {
        if let Some(i) = state.break_requested.take() {
            run_swap(&mut terminal, trace, state, i, lesson, breakit, note.take())?;
            dirty = true;
        }
        if dirty {
            terminal.draw(|f| render(f, trace, state))?;
            dirty = false;
        }
        if signals::received() {
            break;
        }
        if !event::poll(POLL)? {
            continue;
        }
        dirty |= handle_burst(&mut terminal, trace, state, |s| {
            s.quit || s.rerun_requested || s.break_requested.is_some()
        })?;
        if state.quit {
            break;
        }
        if state.rerun_requested {
            state.status = Some("running a new session…".to_string());
            terminal.draw(|f| render(f, trace, state))?;
            match rerun() {
                Ok(t) => {
                    *trace = t;
                    state.reload(trace);
                    let (notes, quizzes) = lesson(trace);
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
    Ok(())
}

/// Run the lesson with swap `i` for real, at full speed, and put the comparison with the run on
/// screen before it in front of the new run.
fn run_swap(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    trace: &mut Trace,
    state: &mut AppState,
    i: usize,
    lesson: &impl Fn(&Trace) -> LessonNotes,
    breakit: &mut BreakIt,
    note: Option<String>,
) -> io::Result<()> {
    let Some(swap) = state.swaps.get(i).cloned() else {
        return Ok(());
    };
    state.status = Some(format!(
        "break it: running the lesson with {}…",
        swap.command
    ));
    terminal.draw(|f| render(f, trace, state))?;
    match (breakit.run)(&swap) {
        Ok(t) => {
            let mut c = Comparison::new(&swap.label, &swap.command, trace, &t);
            c.note = note;
            *trace = t;
            state.broke(trace, c);
            state.broken = Some(swap);
            let (notes, quizzes) = lesson(trace);
            state.set_lesson(notes, quizzes);
        }
        Err(e) => state.status = Some(format!("break it: {e}")),
    }
    Ok(())
}

/// How often the loop of a live session looks at the engine between events.
const LIVE_POLL: Duration = Duration::from_millis(30);

/// Run the UI over a live session until the person quits: → at the last step releases the next
/// flight, `a` presses the device's button, `r` ends the session and starts a new one (`start`).
/// `keys` is called once per session with its trace, as soon as the trace holds the session's key
/// log (so `SSLKEYLOGFILE` has it while the learner steps), or when the session ends without one
/// (a new one, or quitting). Quitting
/// mid-session closes both sides; returns the trace of what happened up to then.
///
/// A break-it swap (`b`) ends the live session as `r` does and runs the broken lesson at full
/// speed; from then on the tour browses recorded runs (`r`: `rerun`, the broken lesson again), and
/// the trace on screen at quit is returned.
pub fn run_live(
    first: LiveSession,
    mut start: impl FnMut() -> Result<LiveSession, String>,
    mut rerun: impl FnMut() -> Result<Trace, String>,
    keys: impl FnMut(&Trace),
    opts: UiOptions,
    lesson: impl Fn(&Trace, bool) -> LessonNotes,
    mut breakit: BreakIt,
) -> io::Result<Trace> {
    let mut session = first;
    // The version before the trace: whatever the session records after this is seen as a
    // change and loaded (read after, a step recorded meanwhile would never show).
    let mut seen = session.version();
    let mut trace = session.trace();
    let mut state = AppState::new(&trace);
    state.opts = opts;
    state.live = Some(live_info(&session));
    breakit.offer(&mut state);
    let (notes, quizzes) = lesson(&trace, session.status().finished);
    state.set_lesson(notes, quizzes);
    let mut keyed = KeyOnce { done: false, keys };

    install_panic_hook();
    let guard = Guard::enter()?;
    let signals = signals::Handlers::install();
    let r = live_loop(
        &mut session,
        &mut trace,
        &mut state,
        &mut seen,
        &mut start,
        &mut keyed,
        &lesson,
    );
    // Both sides close before the terminal is given back, whatever ended the loop (and before a
    // break-it run starts: the live session ends as `r` ends it).
    let finished = session.status().finished;
    let last = session.quit();
    let broke = match r {
        Ok(b) => b,
        Err(e) => {
            drop(signals);
            drop(guard);
            return Err(e);
        }
    };
    keyed.end(&last);
    let Some(i) = broke else {
        drop(signals);
        drop(guard);
        return Ok(last);
    };
    // Break it: the lesson with the swap runs at full speed; the tour goes on over recordings.
    // A live session ended before it finished is no run to compare with: the lesson runs again
    // to the end first, at full speed, and the comparison says so.
    let (mut trace, note) = if finished {
        (last, None)
    } else {
        state.status = Some("break it: running the lesson to the end first…".into());
        match rerun() {
            Ok(t) => (
                t,
                Some(
                    "(The live session was ended before it finished; \"before\" is the lesson \
                     without the swap, run again to the end at full speed.)"
                        .to_string(),
                ),
            ),
            Err(_) => (last, None),
        }
    };
    state.live = None;
    state.advance_requested = false;
    state.press_requested = false;
    state.follow = None;
    state.break_requested = Some(i);
    let recorded = |t: &Trace| lesson(t, true);
    let r = recorded_loop(
        &mut trace,
        &mut state,
        &mut rerun,
        &recorded,
        &mut breakit,
        note,
    );
    drop(signals);
    drop(guard);
    r?;
    Ok(trace)
}

/// Hands each session's trace to the key-log callback once: when its key log appears, or when
/// the session ends without one.
struct KeyOnce<F: FnMut(&Trace)> {
    done: bool,
    keys: F,
}

impl<F: FnMut(&Trace)> KeyOnce<F> {
    fn seen(&mut self, t: &Trace) {
        let has_key = t
            .events
            .iter()
            .any(|e| matches!(e.kind, crate::trace::EventKind::Secret { .. }));
        if !self.done && has_key {
            self.done = true;
            (self.keys)(t);
        }
    }

    /// The session ended: hand it over if it was not yet; the next session starts afresh.
    fn end(&mut self, t: &Trace) {
        if !self.done {
            (self.keys)(t);
        }
        self.done = false;
    }
}

fn live_loop(
    session: &mut LiveSession,
    trace: &mut Trace,
    state: &mut AppState,
    seen: &mut (usize, usize, u64),
    start: &mut impl FnMut() -> Result<LiveSession, String>,
    keyed: &mut KeyOnce<impl FnMut(&Trace)>,
    lesson: &impl Fn(&Trace, bool) -> LessonNotes,
) -> io::Result<Option<usize>> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut dirty = true;
    loop {
        let v = session.version();
        if v != *seen {
            *seen = v;
            *trace = session.trace();
            keyed.seen(trace);
            state.live = Some(live_info(session));
            // The lesson's texts and questions for what the session holds now (an open question
            // stays open).
            let (notes, quizzes) = lesson(trace, session.status().finished);
            state.refresh_lesson(notes, quizzes);
            state.reload_live(trace);
            dirty = true;
        }
        if dirty {
            terminal.draw(|f| render(f, trace, state))?;
            dirty = false;
        }
        if signals::received() {
            return Ok(None);
        }
        if !event::poll(LIVE_POLL)? {
            continue;
        }
        dirty |= handle_burst(&mut terminal, trace, state, |s| {
            s.quit
                || s.rerun_requested
                || s.advance_requested
                || s.press_requested
                || s.break_requested.is_some()
        })?;
        if state.quit {
            return Ok(None);
        }
        if let Some(i) = state.break_requested {
            return Ok(Some(i));
        }
        if std::mem::take(&mut state.advance_requested) && session.step().is_none() {
            state.follow = None;
            let st = session.status();
            state.status = Some(if st.button.is_some() {
                "→ sends nothing now: the device waits for its button (a)".to_string()
            } else if st.finished {
                "the session is over".to_string()
            } else {
                "nothing is held yet: the other side is still working".to_string()
            });
        }
        if std::mem::take(&mut state.press_requested) && !session.press() {
            state.follow = None;
            state.status = Some("the device is not waiting for its button now".into());
        }
        if state.rerun_requested {
            state.status = Some("starting a new live session…".to_string());
            terminal.draw(|f| render(f, trace, state))?;
            match start() {
                Ok(next) => {
                    let old = std::mem::replace(session, next);
                    keyed.end(&old.quit());
                    *seen = session.version();
                    *trace = session.trace();
                    state.live = Some(live_info(session));
                    let (notes, quizzes) = lesson(trace, session.status().finished);
                    state.set_lesson(notes, quizzes);
                    state.restart_live(trace);
                }
                Err(e) => {
                    state.rerun_requested = false;
                    state.status = Some(format!("a new session could not start: {e}"));
                }
            }
            dirty = true;
        }
    }
}

/// The screen's words for where a live session is: who holds which bytes, what → and `a` do.
fn live_info(session: &LiveSession) -> Live {
    let st = session.status();
    let text = if let Some(e) = &st.error {
        format!("Live: the session could not run: {e}. Press r to try a new one.")
    } else if st.finished {
        "Live: the session is over; each flight left when you stepped. Press r for a new one."
            .to_string()
    } else if let Some(what) = &st.button {
        format!(
            "Live: the device waits for its button. Press a to press the button: the device \
             sends {what}."
        )
    } else if let Some(h) = &st.held {
        format!(
            "Live: the {side}'s rustls made its next flight, {what} ({n} bytes); iotls holds it \
             between rustls and the socket: it is not on the wire yet and the {peer} has not \
             received it. Press → to send it.",
            side = h.side.name(),
            peer = h.side.peer().name(),
            what = if h.records.is_empty() {
                "not yet a whole record".to_string()
            } else {
                h.records.join(", ")
            },
            n = h.bytes
        )
    } else {
        "Live: the device and the broker are working…".to_string()
    };
    Live {
        running: !st.finished,
        button: st.button,
        text,
    }
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
