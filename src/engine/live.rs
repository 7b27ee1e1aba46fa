//! Live mode: the session advances when the learner steps.
//!
//! rustls computes a whole flight at once (ClientHello; ServerHello … ServerHelloDone; Certificate
//! … Finished; ChangeCipherSpec + Finished; then each MQTT packet), so single messages cannot be
//! paused, but flights can. Each end's transport is wrapped in a [`Gated`] stream *above* its
//! [`Tap`](super::observe::Tap): what rustls writes is accepted and held in the [`Gated`] buffer
//! while the [`Gate`] is closed for that side, and only a release writes it to the tap and the
//! socket. The tap therefore records a flight when it really went on the wire, and its time is
//! that moment: the learner's pauses show in the trace.
//!
//! A flight ends when its side waits for the other (reads). The handshake is ping-pong and each
//! MQTT packet is answered, so "release the next held flight" is all the learner needs
//! ([`Gate::step`]). The device's actions wait for the button ([`Gate::press`]); its keep-alive
//! pings pass without the learner ([`Gate::ping_pass`]), as MQTT intends.
//!
//! [`LiveSession`] runs one session on a thread of its own and lets a UI step it, press the
//! button, read fresh traces, and quit (both sides then close their TCP connections).

use super::observe::{Raw, Recorder, TapMode};
use super::{anchors, broker, device, Broker, DeviceReport, EngineError, Scenario};
use crate::trace::{CertRole, CloseCause, EventKind, Phase, Side, Trace};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The deadlines of a live session, for both sides: the TLS handshake, the CONNECT after it, each
/// answer the device waits for, and a delivery the broker writes. A person reads each step; half
/// an hour per flight is generous. (`serve`, `connect` and every non-interactive output keep the
/// real deadlines: [`broker::IDLE_TIMEOUT`], [`device::ANSWER_TIMEOUT`].)
pub const LIVE_DEADLINE: Duration = Duration::from_secs(30 * 60);

fn ix(side: Side) -> usize {
    match side {
        Side::Device => 0,
        _ => 1,
    }
}

#[derive(Debug, Default)]
struct SideState {
    /// The flight this side's rustls made and the gate holds: (bytes, order it started holding).
    holding: Option<(usize, u64)>,
    /// What the held flight's records are, as iotls reads them.
    what: Vec<String>,
    /// Flights that may pass without waiting for the learner.
    tokens: u32,
    waker: Option<Waker>,
    /// Flights released to the wire.
    released: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Every flight passes at once (the gate is open: a benchmark's reference).
    open: bool,
    sides: [SideState; 2],
    seq: u64,
    presses: u32,
    used: u32,
    /// What the device will do when the button is pressed, while it waits for it.
    awaiting: Option<String>,
    button_waker: Option<Waker>,
    quit: bool,
    quit_waker: Option<Waker>,
    /// Bumped on every change a UI may want to show.
    version: u64,
}

/// The gate between the two ends of a live session; shared by the UI thread and the engine.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<Mutex<State>>);

/// What the gate holds right now, for the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The side whose rustls made the bytes (they are not on the wire to the other side yet).
    pub side: Side,
    pub bytes: usize,
    /// The flight's records as iotls reads them: handshake messages by name while they are in
    /// the clear, "an encrypted record" after the side's ChangeCipherSpec.
    pub records: Vec<String>,
}

impl Gate {
    /// A closed gate: every flight waits for [`Gate::step`].
    pub fn closed() -> Gate {
        Gate::default()
    }

    /// An open gate: every flight passes at once and the button is pressed as soon as the device
    /// waits for it (what gating costs when nothing waits).
    pub fn open() -> Gate {
        let g = Gate::default();
        g.lock().open = true;
        g
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Release the next held flight (the one held longest). Returns whose it was, or `None` when
    /// nothing is held (a side is still working, waits for the button, or the session is over).
    pub fn step(&self) -> Option<Side> {
        let mut g = self.lock();
        let i = (0..2)
            .filter_map(|i| g.sides[i].holding.map(|(_, since)| (since, i)))
            .min()?
            .1;
        g.sides[i].tokens += 1;
        g.version += 1;
        if let Some(w) = g.sides[i].waker.take() {
            w.wake();
        }
        Some(if i == 0 { Side::Device } else { Side::Broker })
    }

    /// Press the device's button: when the device waits for it, it carries out its next action
    /// and that flight leaves at once. Returns false when the device is not waiting for it.
    pub fn press(&self) -> bool {
        let mut g = self.lock();
        if g.awaiting.is_none() || g.presses > g.used {
            return false;
        }
        g.presses += 1;
        g.version += 1;
        if let Some(w) = g.button_waker.take() {
            w.wake();
        }
        true
    }

    /// What pressing the button would do now, if the device waits for it.
    pub fn awaiting(&self) -> Option<String> {
        self.lock().awaiting.clone()
    }

    /// The flight held longest, if any.
    pub fn held(&self) -> Option<Held> {
        let g = self.lock();
        (0..2)
            .filter_map(|i| g.sides[i].holding.map(|(bytes, since)| (since, i, bytes)))
            .min()
            .map(|(_, i, bytes)| Held {
                side: if i == 0 { Side::Device } else { Side::Broker },
                bytes,
                records: g.sides[i].what.clone(),
            })
    }

    /// Whether `side` has a flight waiting at the gate.
    pub fn holds(&self, side: Side) -> bool {
        self.lock().sides[ix(side)].holding.is_some()
    }

    /// Flights released to the wire so far, by side (device, broker).
    pub fn released(&self) -> (u32, u32) {
        let g = self.lock();
        (g.sides[0].released, g.sides[1].released)
    }

    /// A number that changes whenever the gate's state does.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// The device's keep-alive PINGREQ passes without the learner; so does the broker's PINGRESP,
    /// unless the broker already holds a flight (the answer then waits behind it: a stream keeps
    /// its order). Returns false if the device itself holds a flight (then it sends nothing).
    pub fn ping_pass(&self) -> bool {
        let mut g = self.lock();
        if g.sides[0].holding.is_some() {
            return false;
        }
        g.sides[0].tokens += 1;
        if g.sides[1].holding.is_none() {
            g.sides[1].tokens += 1;
        }
        true
    }

    /// Ask the session to stop (the learner quit).
    pub fn quit(&self) {
        let mut g = self.lock();
        g.quit = true;
        g.version += 1;
        if let Some(w) = g.quit_waker.take() {
            w.wake();
        }
    }

    /// Resolves once [`Gate::quit`] was called.
    pub fn quitting(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut g = self.lock();
            if g.quit {
                Poll::Ready(())
            } else {
                g.quit_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// The device waits for the button before `what` (e.g. "publish to iotbutton/…"). Resolves
    /// when it is pressed; the device's next flight then passes at once.
    pub fn button<'a>(&'a self, what: &str) -> impl Future<Output = ()> + 'a {
        {
            let mut g = self.lock();
            g.awaiting = Some(what.to_string());
            g.version += 1;
        }
        std::future::poll_fn(move |cx| {
            let mut g = self.lock();
            if g.open || g.presses > g.used {
                g.used += 1;
                g.awaiting = None;
                g.sides[0].tokens += 1;
                g.version += 1;
                Poll::Ready(())
            } else {
                g.button_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// A new flight of `side` starts: does it pass at once? If not, the gate now holds it.
    fn begin(&self, side: Side) -> bool {
        let mut g = self.lock();
        let i = ix(side);
        if g.open {
            g.sides[i].released += 1;
            return true;
        }
        if g.sides[i].tokens > 0 {
            g.sides[i].tokens -= 1;
            g.sides[i].released += 1;
            g.version += 1;
            return true;
        }
        g.seq += 1;
        let seq = g.seq;
        g.sides[i].holding = Some((0, seq));
        g.version += 1;
        false
    }

    fn hold_more(&self, side: Side, held: &[u8], encrypted: bool) {
        let mut g = self.lock();
        let s = &mut g.sides[ix(side)];
        if let Some((bytes, _)) = &mut s.holding {
            *bytes = held.len();
            s.what = describe(held, encrypted).0;
        }
        g.version += 1;
    }

    /// May the held flight of `side` go now? If not, `cx` is woken when it may.
    fn poll_release(&self, side: Side, cx: &mut Context<'_>) -> bool {
        let mut g = self.lock();
        let i = ix(side);
        if g.sides[i].tokens > 0 || g.open {
            if !g.open {
                g.sides[i].tokens -= 1;
            }
            g.sides[i].holding = None;
            g.sides[i].what.clear();
            g.sides[i].released += 1;
            g.version += 1;
            true
        } else {
            g.sides[i].waker = Some(cx.waker().clone());
            false
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    /// No flight in progress: the side last read (waited for the other).
    Idle,
    /// The current flight is held.
    Holding,
    /// The current flight was released; its further writes go straight on.
    Passing,
}

/// A stream whose writes wait at the [`Gate`]: put above the side's tap, so the tap records a
/// flight when it was released to the socket.
pub struct Gated<S> {
    inner: S,
    side: Side,
    gate: Gate,
    flight: Flight,
    held: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    /// This side sent its ChangeCipherSpec: its later records are encrypted.
    encrypted: bool,
}

impl<S> Gated<S> {
    pub fn new(inner: S, side: Side, gate: Gate) -> Self {
        Gated {
            inner,
            side,
            gate,
            flight: Flight::Idle,
            held: Vec::new(),
            out: Vec::new(),
            pos: 0,
            encrypted: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> Gated<S> {
    /// Release the held flight if the gate allows it, and write out what is released. Pending
    /// while the flight is held or the socket is full.
    fn pump(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.flight == Flight::Holding {
            if !self.gate.poll_release(self.side, cx) {
                return Poll::Pending;
            }
            self.encrypted = self.encrypted || has_ccs(&self.held);
            self.out.append(&mut self.held);
            self.flight = Flight::Passing;
        }
        while self.pos < self.out.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.pos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(Err(e)) = this.pump(cx) {
            return Poll::Ready(Err(e));
        }
        // Reading is waiting for the other side: the flight is complete.
        if this.flight == Flight::Passing && this.out.is_empty() {
            this.flight = Flight::Idle;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.flight == Flight::Idle {
            this.flight = if this.gate.begin(this.side) {
                Flight::Passing
            } else {
                Flight::Holding
            };
        }
        match this.flight {
            Flight::Holding => {
                this.held.extend_from_slice(data);
                this.gate.hold_more(this.side, &this.held, this.encrypted);
            }
            _ => {
                this.encrypted = this.encrypted || has_ccs(data);
                this.out.extend_from_slice(data);
            }
        }
        if let Poll::Ready(Err(e)) = this.pump(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // One flight, one buffer: the socket gets it in one write when it is released.
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.poll_write(cx, &all)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.pump(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.pump(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

/// Name the TLS records of a flight as far as iotls can read them without keys: handshake
/// messages and alerts in the clear, ChangeCipherSpec, and after it "an encrypted record". Returns
/// the names and whether the side has sent its ChangeCipherSpec by the end of these bytes.
fn describe(bytes: &[u8], mut encrypted: bool) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let Some(fragment) = rest.get(5..5 + len) else {
            break;
        };
        match rest[0] {
            20 => {
                names.push("ChangeCipherSpec".to_string());
                encrypted = true;
            }
            _ if encrypted => names.push("an encrypted record".to_string()),
            21 => names.push(match fragment.get(1) {
                Some(d) => format!("alert {}", crate::trace::AlertDescription(*d).name()),
                None => "an alert".to_string(),
            }),
            22 => {
                let mut m = fragment;
                while m.len() >= 4 {
                    names.push(crate::tls::names::handshake_name(m[0]));
                    let n =
                        4 + (usize::from(m[1]) << 16 | usize::from(m[2]) << 8 | usize::from(m[3]));
                    m = m.get(n..).unwrap_or_default();
                }
            }
            t => names.push(format!("a record of type {t}")),
        }
        rest = &rest[5 + len..];
    }
    (names, encrypted)
}

/// Whether these records (whole records, as rustls writes them) hold a ChangeCipherSpec.
fn has_ccs(mut rest: &[u8]) -> bool {
    while rest.len() >= 5 {
        if rest[0] == 20 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        rest = rest.get(5 + len..).unwrap_or_default();
    }
    false
}

/// Where a live session is, for a status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveStatus {
    /// The flight held longest: made by its side's rustls, not yet on the wire.
    pub held: Option<Held>,
    /// What the button does now, if the device waits for it.
    pub button: Option<String>,
    /// Both sides are done (or the session could not run: then `error` says why).
    pub finished: bool,
    pub error: Option<String>,
}

struct Shared {
    report: Option<DeviceReport>,
    finished: bool,
    error: Option<String>,
}

/// One live session, run on a thread of its own: the TCP connection opens at once, every flight
/// waits for [`LiveSession::step`], the device's actions for [`LiveSession::press`].
pub struct LiveSession {
    gate: Gate,
    rec: Recorder,
    name: String,
    words: crate::trace::LessonWords,
    started_unix: u64,
    anchors: Vec<(CertRole, Vec<u8>)>,
    interim: DeviceReport,
    shared: Arc<Mutex<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveSession {
    /// Start the session: bind the broker on a free loopback port and connect the device. Returns
    /// once the broker listens; the ClientHello then waits at the gate.
    pub fn start(scenario: &Scenario) -> Result<LiveSession, EngineError> {
        Self::start_with(scenario, Gate::closed(), LIVE_DEADLINE)
    }

    /// [`Self::start`] with a given gate and deadline (tests, benchmarks).
    pub fn start_with(
        scenario: &Scenario,
        gate: Gate,
        deadline: Duration,
    ) -> Result<LiveSession, EngineError> {
        let rec = Recorder::new();
        let shared = Arc::new(Mutex::new(Shared {
            report: None,
            finished: false,
            error: None,
        }));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), EngineError>>();
        let (sc, g, r, sh) = (scenario.clone(), gate.clone(), rec.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("iotls-live".into())
            .spawn(move || {
                let rt = match super::runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let result = rt.block_on(drive(&sc, &g, &r, deadline, ready_tx));
                let mut s = sh.lock().unwrap_or_else(|p| p.into_inner());
                s.finished = true;
                match result {
                    Ok(Some(report)) => s.report = Some(report),
                    Ok(None) => {}
                    Err(e) => s.error = Some(e.to_string()),
                }
                drop(s);
                g.lock().version += 1;
            })
            .map_err(EngineError::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(EngineError::Usage(
                    "the live session's thread ended before the broker listened".into(),
                ));
            }
        }
        Ok(LiveSession {
            gate,
            rec,
            name: scenario.name.clone(),
            words: scenario.words.clone(),
            started_unix: super::unix_now(),
            anchors: anchors(scenario),
            interim: DeviceReport {
                mqtt: true,
                planned: device::planned(&scenario.device),
                ..DeviceReport::default()
            },
            shared,
            thread: Some(thread),
        })
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The trace of what happened so far (assembled from a snapshot of the record).
    pub fn trace(&self) -> Trace {
        let raws = self.rec.snapshot();
        self.assemble(raws)
    }

    fn assemble(&self, raws: Vec<Raw>) -> Trace {
        let report = self.shared().report.clone();
        let mut trace = super::assemble(
            &self.name,
            self.started_unix,
            raws,
            &self.anchors,
            Some(report.as_ref().unwrap_or(&self.interim)),
            super::Observer::BOTH,
        );
        trace.words = self.words.clone();
        trace
    }

    /// A number that changes whenever something was recorded or the gate changed.
    pub fn version(&self) -> (usize, usize, u64) {
        let (n, bytes) = self.rec.size();
        (n, bytes, self.gate.version())
    }

    /// Release the next held flight (see [`Gate::step`]).
    pub fn step(&self) -> Option<Side> {
        self.gate.step()
    }

    /// Press the device's button (see [`Gate::press`]).
    pub fn press(&self) -> bool {
        self.gate.press()
    }

    pub fn status(&self) -> LiveStatus {
        let s = self.shared();
        LiveStatus {
            held: self.gate.held(),
            button: self.gate.awaiting(),
            finished: s.finished,
            error: s.error.clone(),
        }
    }

    pub fn finished(&self) -> bool {
        self.shared().finished
    }

    /// Wait (at most `limit`) until the session's record stops changing for `quiet`: both sides
    /// did what they could without the learner. For tests and the benchmark.
    pub fn settle(&self, quiet: Duration, limit: Duration) {
        let start = std::time::Instant::now();
        let mut last = self.version();
        let mut since = std::time::Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(2));
            let v = self.version();
            if v != last {
                last = v;
                since = std::time::Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
        }
    }

    /// End the session: if it is still running, both sides close their TCP connections (what
    /// is held was never sent and is dropped). Returns the trace of what happened.
    pub fn quit(mut self) -> Trace {
        self.gate.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.trace()
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.gate.quit();
            let _ = t.join();
        }
    }
}

/// Run a session with both ends gated at `gate` on the current runtime and record it, like
/// [`super::record_async`]. With [`Gate::open`] nothing waits: the benchmark's measure of what
/// gating costs, and the check that it changes no byte of the session.
pub async fn record_gated(
    scenario: &Scenario,
    gate: &Gate,
    deadline: Duration,
) -> Result<super::Recording, EngineError> {
    let started_unix = super::unix_now();
    let broker = Broker::bind(
        scenario.broker.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?
    .with_deadline(deadline);
    let addr = broker.local_addr();
    let rec = Recorder::new();
    // The witnesses are not gated: they connect and subscribe at once, and listen until the
    // device is done.
    let witnesses = super::witness::start(&broker, &scenario.witnesses, &rec).await;
    let (b, brec, bgate) = (broker.clone(), rec.clone(), gate.clone());
    let serving = tokio::spawn(async move { b.serve_one_gated(brec, bgate).await });
    let pace = device::Pace {
        answer: deadline,
        gate: Some(gate.clone()),
    };
    let report = device::run_paced(
        &scenario.device,
        addr,
        &rec,
        true,
        TapMode::WritesOnly,
        &pace,
    )
    .await;
    let _ = tokio::time::timeout(deadline, serving).await;
    witnesses.finish().await;
    Ok(super::Recording {
        scenario: scenario.name.clone(),
        words: scenario.words.clone(),
        started_unix,
        raws: rec.take(),
        anchors: anchors(scenario),
        report: report?,
    })
}

/// The session on the engine thread: broker and device, each end's tap under a gated stream.
async fn drive(
    scenario: &Scenario,
    gate: &Gate,
    rec: &Recorder,
    deadline: Duration,
    ready: std::sync::mpsc::Sender<Result<(), EngineError>>,
) -> Result<Option<DeviceReport>, EngineError> {
    let broker = match Broker::bind(
        scenario.broker.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    {
        Ok(b) => b.with_deadline(deadline),
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(None);
        }
    };
    let _ = ready.send(Ok(()));
    let addr = broker.local_addr();
    // The witnesses are not gated: they connect and subscribe at once, and listen until the
    // device is done.
    let witnesses = super::witness::start(&broker, &scenario.witnesses, rec).await;
    let (b, brec, bgate) = (broker.clone(), rec.clone(), gate.clone());
    let serving = tokio::spawn(async move { b.serve_one_gated(brec, bgate).await });
    let pace = device::Pace {
        answer: deadline,
        gate: Some(gate.clone()),
    };
    let abort = serving.abort_handle();
    let session = async {
        let report = device::run_paced(
            &scenario.device,
            addr,
            rec,
            true,
            TapMode::WritesOnly,
            &pace,
        )
        .await;
        let _ = serving.await;
        witnesses.finish().await;
        report
    };
    tokio::select! {
        report = session => report.map(Some),
        () = gate.quitting() => {
            // The device's future is dropped here (its socket closes); the broker's task is
            // aborted, and its socket closes when this thread's runtime is dropped, before
            // `LiveSession::quit` returns.
            abort.abort();
            closed_by_quit(rec);
            Ok(None)
        }
    }
}

/// The learner quit before the session ended: each side that had not closed yet closes its TCP
/// connection now. Recorded as what it is.
fn closed_by_quit(rec: &Recorder) {
    let raws = rec.snapshot();
    for side in [Side::Device, Side::Broker] {
        let done = raws.iter().any(|r| {
            matches!(r, Raw::Event { side: s, kind, .. } if *s == side && matches!(**kind, EventKind::Closed { .. } | EventKind::Error { .. }))
        });
        if !done {
            rec.event(
                Phase::Close,
                side,
                EventKind::Closed {
                    by: Some(side),
                    cause: CloseCause::Interrupted,
                    reason: format!(
                        "the tour was quit before the session ended: the {} closed its TCP \
                         connection (what its rustls had made but the learner had not released \
                         was never sent)",
                        side.name()
                    ),
                    failure: None,
                },
            );
        }
    }
}

// The live deadline is longer than every real one it replaces.
const _: () = assert!(LIVE_DEADLINE.as_secs() > broker::IDLE_TIMEOUT.as_secs());
const _: () = assert!(LIVE_DEADLINE.as_secs() > device::ANSWER_TIMEOUT.as_secs());
