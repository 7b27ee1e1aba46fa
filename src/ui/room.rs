//! The room view of `iotls serve --ui`: one row per session the broker served, newest at the
//! bottom, added as each session ends. Enter opens the selected session in the tour (the same
//! [`AppState`] and view as `iotls tour`); Esc comes back to the room; `q` quits.
//!
//! Like the tour, the room only renders traces: the broker runs elsewhere (its own thread, in
//! `main`) and hands each finished session over a channel as a [`Feed`]. State changes only in
//! [`RoomState`]'s methods, and [`render_room`] is a pure function of the state, so the tests draw
//! it into ratatui's test buffer. The terminal is set up and restored exactly as for the tour
//! (`terminal.rs`: on quit, on error, on panic, on SIGTERM / SIGHUP).

use super::app::{Action, AppState};
use super::keys::action_for_key;
use super::terminal::{install_panic_hook, signals, Guard};
use super::theme::{Styles, UiOptions};
use super::view::action_for_mouse;
use super::view::{chrome, fit, render_buffer, scroll_offset, wrap};
use crate::trace::{CertRoleKind, EventKind, MqttPacketType, Side, Trace};
use crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, StatefulWidget, Table, TableState, Widget};
use ratatui::Terminal;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

/// How long the loop waits for a key before it looks for finished sessions again.
const POLL: Duration = Duration::from_millis(100);

/// How many traces the room keeps to open (about 40 KB each); older sessions keep their row.
pub const KEPT_TRACES: usize = 1000;

/// Smallest screen the room list lays out.
pub const ROOM_MIN_WIDTH: u16 = 60;
pub const ROOM_MIN_HEIGHT: u16 = 10;

/// What the broker's thread sends the room.
#[derive(Debug)]
pub enum Feed {
    /// A session ended; its trace.
    Session(Box<Trace>),
    /// The broker stopped (it served the sessions asked for, or it failed); why, in words.
    Stopped(String),
}

/// One row of the room: what a trainer looks for, taken from the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// When the session started, `HH:MM:SS` (UTC).
    pub time: String,
    /// The CN of the certificate the device sent (its thing name in the room), or `—`.
    pub device: String,
    /// The client id of the device's CONNECT, or `—` when it sent none.
    pub client_id: String,
    /// The device's address and port.
    pub from: String,
    pub ok: bool,
    /// `ok`, or the failure code (`policy_denied`, `unknown_issuer`, …).
    pub outcome: String,
    /// The last policy decision (`ALLOWED iot:Publish topic/room/…/hello`: the verdict first, so
    /// a narrow column cuts the topic, not the verdict), else the registry check, else `—`; and
    /// whether it allowed.
    pub decision: String,
    pub decision_ok: Option<bool>,
    /// The outcome's one line for people.
    pub summary: String,
}

impl SessionRow {
    pub fn of(trace: &Trace) -> SessionRow {
        let device = trace
            .certificates
            .iter()
            .find(|c| {
                c.roles.iter().any(|r| {
                    r.side == Side::Device && r.kind == CertRoleKind::Chain && r.index == 0
                })
            })
            .map(|c| crate::pki::subject_cn(&c.der))
            .unwrap_or_else(|| "—".into());
        let client_id = trace
            .mqtt_packets()
            .find(|(e, p)| e.side == Side::Device && p.packet == MqttPacketType::Connect)
            .map(|(_, p)| match p.client_id.as_deref() {
                Some("") => "(empty)".to_string(),
                Some(id) => id.to_string(),
                None => "—".to_string(),
            })
            .unwrap_or_else(|| "—".into());
        let from = trace
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Tcp { device_addr, .. } => Some(device_addr.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "—".into());
        let outcome = if trace.outcome.ok {
            "ok".to_string()
        } else {
            trace
                .outcome
                .failure
                .as_ref()
                .map(|f| f.code.as_str().to_string())
                .unwrap_or_else(|| "failed".into())
        };
        let last_policy = trace.events.iter().rev().find_map(|e| match &e.kind {
            EventKind::Policy(p) => Some((
                format!(
                    "{} {} {}",
                    p.decision,
                    p.action,
                    crate::trace::short_arn(&p.resource)
                ),
                p.decision.allowed(),
            )),
            _ => None,
        });
        let registry = || {
            trace
                .check_by(Side::Broker, crate::trace::CheckId::Registry)
                .and_then(|e| match &e.kind {
                    EventKind::Check { ok, .. } => {
                        Some((format!("registry {}", if *ok { "✔" } else { "✘" }), *ok))
                    }
                    _ => None,
                })
        };
        let (decision, decision_ok) = match last_policy.or_else(registry) {
            Some((d, ok)) => (d, Some(ok)),
            None => ("—".to_string(), None),
        };
        SessionRow {
            time: clock(trace.started_unix),
            device,
            client_id,
            from,
            ok: trace.outcome.ok,
            outcome,
            decision,
            decision_ok,
            summary: trace.outcome.summary.clone(),
        }
    }
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock(unix: u64) -> String {
    let secs = unix % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// A session opened in the tour.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// Which session (an index into [`RoomState::rows`]).
    pub index: usize,
    pub trace: Trace,
    pub app: AppState,
}

/// The state of the room view.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomState {
    /// Where the broker listens, as it said.
    pub listening: String,
    /// A row for every session so far, oldest first.
    pub rows: Vec<SessionRow>,
    /// The traces of the last [`KEPT_TRACES`] sessions (of rows `dropped..`).
    pub traces: std::collections::VecDeque<Trace>,
    /// How many of the oldest sessions' traces were let go.
    pub dropped: usize,
    /// A one-line message for the footer (cleared by the next key).
    pub status: Option<String>,
    /// The selected row.
    pub selected: usize,
    /// The session being stepped through, if one is open.
    pub opened: Option<Opened>,
    /// Set when the broker stopped, with why.
    pub stopped: Option<String>,
    /// Set by `q` (or Ctrl-C); the event loop exits.
    pub quit: bool,
    pub opts: UiOptions,
}

impl RoomState {
    pub fn new(listening: impl Into<String>, opts: UiOptions) -> RoomState {
        RoomState {
            listening: listening.into(),
            rows: Vec::new(),
            traces: std::collections::VecDeque::new(),
            dropped: 0,
            status: None,
            selected: 0,
            opened: None,
            stopped: None,
            quit: false,
            opts,
        }
    }

    /// Take in what the broker sent. A new session goes at the bottom; the selection follows it
    /// when the newest row was selected (so a room left alone always shows the latest session).
    pub fn feed(&mut self, f: Feed) {
        match f {
            Feed::Session(trace) => {
                let follow = self.rows.is_empty() || self.selected + 1 == self.rows.len();
                self.rows.push(SessionRow::of(&trace));
                self.traces.push_back(*trace);
                if self.traces.len() > KEPT_TRACES {
                    self.traces.pop_front();
                    self.dropped += 1;
                }
                if follow {
                    self.selected = self.rows.len() - 1;
                }
            }
            Feed::Stopped(why) => self.stopped = Some(why),
        }
    }

    /// A key press.
    pub fn key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')) {
            self.quit = true;
            return;
        }
        if let Some(open) = &mut self.opened {
            let trace = &open.trace;
            if key.code == KeyCode::Esc && open.app.overlay.is_none() {
                self.opened = None;
                return;
            }
            match action_for_key(key, &open.app) {
                Some(Action::Quit) => self.quit = true,
                Some(Action::Rerun) => {
                    open.app.status = Some(
                        "this session came from a real device: iotls cannot run it again (Esc: back to the room)"
                            .into(),
                    )
                }
                Some(a) => open.app.update(trace, a),
                None => {}
            }
            return;
        }
        self.status = None;
        let last = self.rows.len().saturating_sub(1);
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => self.open(),
            KeyCode::Char('q') => self.quit = true,
            _ => {}
        }
    }

    /// The trace of session `i`, if the room still keeps it.
    pub fn trace(&self, i: usize) -> Option<&Trace> {
        i.checked_sub(self.dropped).and_then(|k| self.traces.get(k))
    }

    /// Open the selected session in the tour.
    pub fn open(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let Some(trace) = self.trace(self.selected).cloned() else {
            self.status = Some(format!(
                "session {} is no longer kept: the room keeps the last {KEPT_TRACES} sessions to open",
                self.selected + 1
            ));
            return;
        };
        let mut app = AppState::new(&trace);
        app.opts = self.opts;
        app.status = Some("Esc: back to the room".into());
        self.opened = Some(Opened {
            index: self.selected,
            trace,
            app,
        });
    }

    /// A mouse event on a screen of `screen`'s size.
    pub fn mouse(&mut self, ev: MouseEvent, screen: Rect) {
        if let Some(open) = &mut self.opened {
            let trace = &open.trace;
            match action_for_mouse(ev, trace, &open.app, screen) {
                Some(Action::Quit) => self.quit = true,
                Some(a) => open.app.update(trace, a),
                None => {}
            }
            return;
        }
        let last = self.rows.len().saturating_sub(1);
        match ev.kind {
            MouseEventKind::ScrollUp => self.selected = self.selected.saturating_sub(1),
            MouseEventKind::ScrollDown => self.selected = (self.selected + 1).min(last),
            MouseEventKind::Down(_) => {
                if let Some(a) = room_areas(screen) {
                    let (offset, _) = table_window(&a, self);
                    // Below the border and the header line.
                    let first = a.table.y + 2;
                    if ev.row >= first && ev.row < a.table.bottom() - 1 {
                        let i = offset + (ev.row - first) as usize;
                        if i < self.rows.len() {
                            self.selected = i;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Where the room's parts go on a screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomAreas {
    pub title: Rect,
    /// The bordered session table (header on its first inner line).
    pub table: Rect,
    /// The selected session's summary.
    pub summary: Rect,
    pub footer: Rect,
}

/// The room's layout, or `None` below [`ROOM_MIN_WIDTH`]×[`ROOM_MIN_HEIGHT`].
pub fn room_areas(area: Rect) -> Option<RoomAreas> {
    if area.width < ROOM_MIN_WIDTH || area.height < ROOM_MIN_HEIGHT {
        return None;
    }
    let summary_h = if area.height >= 24 { 5 } else { 3 };
    let title = Rect { height: 1, ..area };
    let footer = Rect {
        y: area.bottom() - 1,
        height: 1,
        ..area
    };
    let summary = Rect {
        y: footer.y - summary_h,
        height: summary_h,
        ..area
    };
    let table = Rect {
        y: area.y + 1,
        height: summary.y - (area.y + 1),
        ..area
    };
    Some(RoomAreas {
        title,
        table,
        summary,
        footer,
    })
}

/// The first row shown and how many rows fit in the table.
fn table_window(a: &RoomAreas, state: &RoomState) -> (usize, usize) {
    // Borders (2) and the header line (1).
    let height = a.table.height.saturating_sub(3) as usize;
    (
        scroll_offset(state.selected, height, state.rows.len()),
        height,
    )
}

/// Draw the room, or the opened session's tour.
pub fn render_room(buf: &mut Buffer, area: Rect, state: &RoomState) {
    if let Some(open) = &state.opened {
        render_buffer(buf, area, &open.trace, &open.app);
        // The tour's footer lists its own keys; say how to get back, at its right end.
        if super::view::areas(area).is_some() {
            let styles = Styles::new(state.opts);
            let hint = " Esc room ";
            let w = hint.chars().count() as u16;
            let x = area.right().saturating_sub(w);
            let y = area.bottom() - 1;
            // Only where the footer left room: never over one of the tour's own hints.
            if (x..area.right()).all(|c| buf[(c, y)].symbol() == " ") {
                buf.set_string(x, y, hint, styles.key);
            }
        }
        return;
    }
    let styles = Styles::new(state.opts);
    buf.set_style(area, styles.base);
    let Some(a) = room_areas(area) else {
        chrome::too_small(buf, area, &styles);
        return;
    };
    title(buf, a.title, state, &styles);
    table(buf, &a, state, &styles);
    summary(buf, a.summary, state, &styles);
    footer(buf, a.footer, state, &styles);
}

fn title(buf: &mut Buffer, area: Rect, state: &RoomState, styles: &Styles) {
    buf.set_style(area, styles.title);
    let ok = state.rows.iter().filter(|r| r.ok).count();
    let failed = state.rows.len() - ok;
    let left = format!(
        " iotls room — listening on {} — {} session{}: {ok} ✔ {failed} ✘",
        state.listening,
        state.rows.len(),
        if state.rows.len() == 1 { "" } else { "s" }
    );
    let w = area.width as usize;
    buf.set_string(area.x, area.y, fit(&left, w), styles.title);
    if let Some(why) = &state.stopped {
        let right = format!(" {why} ");
        let used = left.chars().count() + 2;
        if used < w {
            let right = fit(&right, w - used);
            let x = area.right() - right.chars().count() as u16;
            buf.set_string(x, area.y, right, styles.title_fail);
        }
    }
}

fn table(buf: &mut Buffer, a: &RoomAreas, state: &RoomState, styles: &Styles) {
    let block = Block::bordered()
        .border_style(styles.border_focus)
        .title(Span::styled(
            " Sessions (newest at the bottom) ",
            styles.phase,
        ));
    let inner = block.inner(a.table);
    block.render(a.table, buf);
    if state.rows.is_empty() {
        let text = format!(
            "Waiting for the first device. Devices connect to {} with mutual TLS 1.2 and MQTT (3.1.1 or 5); each session appears here when it ends.",
            state.listening
        );
        for (k, l) in wrap(&text, inner.width.saturating_sub(2) as usize)
            .into_iter()
            .take(inner.height as usize)
            .enumerate()
        {
            buf.set_string(inner.x + 1, inner.y + k as u16, l, styles.dim);
        }
        return;
    }
    let wide = inner.width >= 100;
    let mark = |ok: bool| if ok { "✔ " } else { "✘ " };
    let style = |ok: Option<bool>| match ok {
        Some(true) => styles.ok,
        Some(false) => styles.fail,
        None => styles.dim,
    };
    // (header, cell text and style per row, widest it may get); the last column takes the rest.
    type Column<'a> = (&'a str, Vec<(String, Style)>, usize);
    let plain = |f: fn(&SessionRow) -> &String| -> Vec<(String, Style)> {
        state
            .rows
            .iter()
            .map(|r| (f(r).clone(), styles.base))
            .collect()
    };
    let mut columns: Vec<Column> = vec![
        ("time UTC", plain(|r| &r.time), 8),
        ("device", plain(|r| &r.device), 20),
        ("client id", plain(|r| &r.client_id), 20),
    ];
    if wide {
        columns.push(("from", plain(|r| &r.from), 21));
    }
    columns.push((
        "outcome",
        state
            .rows
            .iter()
            .map(|r| (format!("{}{}", mark(r.ok), r.outcome), style(Some(r.ok))))
            .collect(),
        24,
    ));
    columns.push((
        "last decision",
        state
            .rows
            .iter()
            .map(|r| match r.decision_ok {
                Some(ok) => (format!("{}{}", mark(ok), r.decision), style(Some(ok))),
                None => (r.decision.clone(), style(None)),
            })
            .collect(),
        usize::MAX,
    ));
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|(h, cells, cap)| {
            if *cap == usize::MAX {
                return Constraint::Fill(1);
            }
            let widest = cells
                .iter()
                .map(|(t, _)| t.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0);
            Constraint::Length(widest.min(*cap) as u16)
        })
        .collect();
    let header = Row::new(columns.iter().map(|(h, _, _)| *h)).style(styles.label);
    let rows = (0..state.rows.len()).map(|i| {
        Row::new(
            columns
                .iter()
                .map(|(_, cells, _)| Cell::from(cells[i].0.clone()).style(cells[i].1)),
        )
    });
    let (offset, _) = table_window(a, state);
    let mut ts = TableState::default()
        .with_offset(offset)
        .with_selected(Some(state.selected));
    StatefulWidget::render(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(2)
            .row_highlight_style(styles.selected)
            .highlight_symbol("▶ "),
        inner,
        buf,
        &mut ts,
    );
}

fn summary(buf: &mut Buffer, area: Rect, state: &RoomState, styles: &Styles) {
    let Some(row) = state.rows.get(state.selected) else {
        return;
    };
    let failing = !row.ok;
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(if failing { styles.fail } else { styles.border })
        .title(Span::styled(
            format!(" Session {} of {} ", state.selected + 1, state.rows.len()),
            if failing { styles.fail } else { styles.phase },
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    let width = inner.width.saturating_sub(2) as usize;
    let lines = wrap(&row.summary, width);
    let n = lines.len();
    for (k, l) in lines.into_iter().take(inner.height as usize).enumerate() {
        let l = if k + 1 == inner.height as usize && n > inner.height as usize {
            fit(&format!("{l} …"), width)
        } else {
            l
        };
        buf.set_string(inner.x + 1, inner.y + k as u16, l, styles.base);
    }
}

fn footer(buf: &mut Buffer, area: Rect, state: &RoomState, styles: &Styles) {
    let mut hints = vec![("↑↓", "select")];
    if !state.rows.is_empty() {
        hints.push(("Enter", "step through it"));
    }
    hints.extend([("Home/End", "oldest/newest"), ("q", "quit")]);
    let mut spans = Vec::new();
    if let Some(status) = &state.status {
        spans.push(Span::styled(
            fit(&format!(" {status} "), area.width as usize / 2),
            styles.warn,
        ));
    }
    for (k, d) in hints {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(k, styles.key));
        spans.push(Span::styled(format!(" {d}"), styles.key_desc));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

/// Run the room on the real terminal until the person quits. `feed` brings each finished session
/// (and the broker's stop); `listening` is the broker's address.
pub fn run(listening: String, feed: Receiver<Feed>, opts: UiOptions) -> io::Result<()> {
    let mut state = RoomState::new(listening, opts);
    install_panic_hook();
    let _guard = Guard::enter()?;
    let _signals = signals::Handlers::install();
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut dirty = true;
    let mut connected = true;
    loop {
        while connected {
            match feed.try_recv() {
                Ok(f) => {
                    state.feed(f);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    connected = false;
                    if state.stopped.is_none() {
                        state.stopped = Some("the broker stopped".into());
                        dirty = true;
                    }
                }
            }
        }
        if dirty {
            terminal.draw(|f| {
                let area = f.area();
                render_room(f.buffer_mut(), area, &state)
            })?;
            dirty = false;
        }
        if signals::received() || state.quit {
            break;
        }
        if !event::poll(POLL)? {
            continue;
        }
        // Handle every event already waiting before drawing again; a signal or an endless burst
        // (a terminal that went away) ends it.
        let mut burst = 0;
        loop {
            let size = terminal.size()?;
            let screen = Rect::new(0, 0, size.width, size.height);
            match event::read()? {
                Event::Key(k) => state.key(k),
                Event::Mouse(m) => state.mouse(m, screen),
                Event::Resize(..) => terminal.autoresize()?,
                _ => {}
            }
            if let Some(open) = &mut state.opened {
                open.app
                    .clamp_overlay(super::view::overlay_max_scroll(&open.app, screen));
            }
            dirty = true;
            burst += 1;
            if state.quit
                || signals::received()
                || burst >= super::terminal::MAX_BURST
                || !event::poll(Duration::ZERO)?
            {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;
    use crate::ui::Theme;
    use ratatui::backend::TestBackend;

    fn screen(state: &RoomState, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| {
            let area = f.area();
            render_room(f.buffer_mut(), area, state)
        })
        .unwrap();
        term.backend().to_string()
    }

    fn press(state: &mut RoomState, code: KeyCode) {
        state.key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    fn room(traces: Vec<Trace>) -> RoomState {
        let mut s = RoomState::new("127.0.0.1:8883", UiOptions::default());
        for t in traces {
            s.feed(Feed::Session(Box::new(t)));
        }
        s
    }

    #[test]
    fn a_row_says_who_connected_how_it_ended_and_the_last_decision() {
        let ok = SessionRow::of(&sample::pizza());
        assert_eq!(ok.device, "pizza-button-1");
        assert_eq!(ok.client_id, "pizza-button-1");
        assert!(ok.ok);
        assert_eq!(ok.outcome, "ok");
        assert!(ok.from.starts_with("127.0.0.1:"), "{ok:?}");
        assert!(
            ok.decision
                .starts_with("ALLOWED iot:Publish topic/iotbutton/"),
            "{ok:?}"
        );
        assert_eq!(ok.decision_ok, Some(true));

        let bad = SessionRow::of(&sample::unknown_ca());
        assert!(!bad.ok);
        assert_eq!(bad.outcome, "unknown_issuer");
        assert_eq!(bad.client_id, "—", "the handshake failed: no CONNECT");
        assert_eq!(bad.decision, "—", "no registry check, no policy decision");
        assert_eq!(clock(86_400 + 3600 + 62), "01:01:02");
    }

    #[test]
    fn the_room_lists_sessions_newest_at_the_bottom_and_follows_the_newest() {
        let mut s = room(vec![sample::pizza(), sample::unknown_ca()]);
        assert_eq!(s.selected, 1, "the newest is selected");
        let text = screen(&s, 120, 35);
        assert!(text.contains("2 sessions: 1 ✔ 1 ✘"), "{text}");
        let ok_at = text.find("✔ ok").expect("the ok row");
        let bad_at = text.find("✘ unknown_issuer").expect("the failed row");
        assert!(ok_at < bad_at, "older above newer:\n{text}");
        assert!(
            text.contains("from"),
            "wide screens show the address:\n{text}"
        );

        // Selecting an older row stops following; a new session keeps the selection.
        press(&mut s, KeyCode::Up);
        assert_eq!(s.selected, 0);
        s.feed(Feed::Session(Box::new(sample::pizza())));
        assert_eq!(s.selected, 0);
        press(&mut s, KeyCode::End);
        s.feed(Feed::Session(Box::new(sample::pizza())));
        assert_eq!(s.selected, 3, "back at the newest, it follows again");
        assert_eq!(s.rows.len(), 4);

        s.feed(Feed::Stopped("served 4 sessions".into()));
        let text = screen(&s, 120, 35);
        assert!(text.contains("served 4 sessions"), "{text}");
    }

    #[test]
    fn only_the_last_traces_are_kept_and_older_rows_say_so() {
        let pizza = sample::pizza();
        let mut s = room(vec![]);
        for _ in 0..KEPT_TRACES + 2 {
            s.feed(Feed::Session(Box::new(pizza.clone())));
        }
        assert_eq!(s.rows.len(), KEPT_TRACES + 2, "every session keeps its row");
        assert_eq!(s.traces.len(), KEPT_TRACES);
        press(&mut s, KeyCode::Home);
        press(&mut s, KeyCode::Enter);
        assert!(s.opened.is_none());
        let text = screen(&s, 120, 35);
        assert!(text.contains("no longer kept"), "{text}");
        let title = format!("Session 1 of {}", KEPT_TRACES + 2);
        assert!(text.contains(&title), "{text}");
        press(&mut s, KeyCode::Down);
        press(&mut s, KeyCode::Down);
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.opened.as_ref().map(|o| o.index), Some(2));
    }

    #[test]
    fn enter_opens_the_tour_esc_comes_back_and_q_quits() {
        let mut s = room(vec![sample::pizza()]);
        press(&mut s, KeyCode::Enter);
        let text = screen(&s, 120, 35);
        assert!(text.contains("step 1/"), "{text}");
        assert!(text.contains("ClientHello"), "{text}");
        assert!(
            text.contains("Esc: back to the room"),
            "the footer says how to come back:\n{text}"
        );

        // The tour's keys work; re-running a device's session is explained, not attempted.
        press(&mut s, KeyCode::Right);
        assert_eq!(s.opened.as_ref().map(|o| o.app.step), Some(1));
        press(&mut s, KeyCode::Char('r'));
        let open = s.opened.as_ref().expect("still open");
        assert!(!open.app.rerun_requested);
        assert!(open
            .app
            .status
            .as_deref()
            .unwrap_or("")
            .contains("real device"));

        press(&mut s, KeyCode::Esc);
        assert!(s.opened.is_none());
        assert!(!s.quit);
        // A click on a row selects it: the first session is on the line below the header.
        s.feed(Feed::Session(Box::new(sample::unknown_ca())));
        assert_eq!(s.selected, 1);
        let screen_rect = Rect::new(0, 0, 120, 35);
        let header_y = room_areas(screen_rect).expect("fits").table.y + 1;
        let click = |row| MouseEvent {
            kind: MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: 10,
            row,
            modifiers: KeyModifiers::NONE,
        };
        s.mouse(click(header_y), screen_rect);
        assert_eq!(s.selected, 1, "a click on the header selects nothing");
        s.mouse(click(header_y + 1), screen_rect);
        assert_eq!(s.selected, 0);
        assert!(screen(&s, 120, 35).contains("Sessions"));

        // Esc in the room does not quit; q does, also from inside a tour.
        press(&mut s, KeyCode::Esc);
        assert!(!s.quit);
        press(&mut s, KeyCode::Enter);
        press(&mut s, KeyCode::Char('q'));
        assert!(s.quit);
    }

    #[test]
    fn the_room_renders_at_every_size_and_theme() {
        let mut s = room(vec![sample::pizza(), sample::unknown_ca(), sample::empty()]);
        for theme in [Theme::Default, Theme::Projector] {
            for no_color in [false, true] {
                s.opts = UiOptions {
                    theme,
                    no_color,
                    replayed: false,
                };
                for (w, h) in [(80, 24), (120, 35), (60, 10), (59, 10), (20, 5), (1, 1)] {
                    let text = screen(&s, w, h);
                    if w >= ROOM_MIN_WIDTH && h >= ROOM_MIN_HEIGHT {
                        assert!(text.contains("iotls room"), "{w}×{h}:\n{text}");
                    }
                }
            }
        }
        // The projector theme draws the title in its own colours.
        let styled = |theme| {
            let mut s = s.clone();
            s.opts = UiOptions {
                theme,
                no_color: false,
                replayed: false,
            };
            let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
            term.draw(|f| {
                let area = f.area();
                render_room(f.buffer_mut(), area, &s)
            })
            .unwrap();
            term.backend().buffer()[(0, 0)].style()
        };
        assert_ne!(styled(Theme::Default), styled(Theme::Projector));
        let empty = RoomState::new("0.0.0.0:8883", UiOptions::default());
        assert!(screen(&empty, 80, 24).contains("Waiting for the first device"));
    }
}
