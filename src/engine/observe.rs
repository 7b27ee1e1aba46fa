//! Observation without simulation: a tap that records every byte a transport carries, verifier
//! wrappers that record rustls's real verdicts, and a key log.
//!
//! Everything goes into one [`Recorder`] in the order it happens. Sessions run on a current-thread
//! runtime, so that order is causal: a verdict is recorded after the bytes it judged.

use super::bound::Bound;
use super::verdict::{Evidence, Pending, Verdict};
use crate::pki::rfc3339;
use crate::trace::{EventKind, Failure, FailureCode, GapSide, Phase, Side};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One raw observation.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Bytes sent by `from`, as seen by the tap.
    Bytes {
        from: Side,
        data: Vec<u8>,
        t_us: u64,
    },
    /// An event recorded by a hook (verifier, key log, broker, device). Boxed, like the other
    /// large observations: a held connection's list of raws stays a list of pointers.
    Event {
        phase: Phase,
        side: Side,
        kind: Box<EventKind>,
        t_us: u64,
    },
    /// A verifier's verdict, with the raw evidence it judged; worked out into a `check` event
    /// (reason and facts) after the session, off the handshake's path.
    Pending {
        phase: Phase,
        side: Side,
        check: Box<Pending>,
        t_us: u64,
    },
    /// A policy decision the broker enforced; its explanation is worked out after the session.
    Policy {
        decision: Box<super::authz::PendingPolicy>,
        t_us: u64,
    },
    /// A key-log line.
    Key {
        client_random: Box<[u8; 32]>,
        master_secret: Vec<u8>,
    },
    /// What a bounded recording left out (`serve`, [`super::bound`]), where it was: the device's
    /// records, then the broker's.
    Gap {
        sides: Box<[GapSide; 2]>,
        events: u64,
        t_us: u64,
    },
}

// Every observation of a held connection is one entry of its list: the rare, larger ones (key,
// gap, events, verdicts) are boxed so an entry stays the size of `Bytes`.
const _: () = assert!(std::mem::size_of::<Raw>() <= 40);

/// Pushes onto a recording's list, growing it by a quarter (at least 8 entries) instead of
/// doubling: a held session's list of about 20 entries then keeps a few spare slots, not a dozen.
fn grow_push(raws: &mut Vec<Raw>, raw: Raw) {
    if raws.len() == raws.capacity() {
        raws.reserve_exact((raws.capacity() / 4).max(8));
    }
    raws.push(raw);
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    raws: Vec<Raw>,
    /// `serve`'s bound: `raws` is then the head of the recording (see [`super::bound`]).
    bound: Option<Bound>,
}

/// Shared, ordered record of one session's observations.
#[derive(Clone, Debug)]
pub struct Recorder(Arc<Mutex<Inner>>);

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder(Arc::new(Mutex::new(Inner {
            start: Instant::now(),
            raws: Vec::new(),
            bound: None,
        })))
    }

    /// A recorder that keeps the handshake, the first and the last records of each direction and
    /// stands for the rest with a gap (`serve`; see [`super::bound`]).
    pub fn bounded() -> Self {
        let r = Self::new();
        r.lock().bound = Some(Bound::default());
        r
    }

    /// Pushes a raw that is not bytes, through the bound when there is one.
    fn push(g: &mut Inner, raw: Raw) {
        let raw = match g.bound.as_mut() {
            None => raw,
            Some(b) => match b.other(raw) {
                Some(raw) => raw,
                None => return,
            },
        };
        grow_push(&mut g.raws, raw);
    }

    /// Appends bytes to the list, merging consecutive chunks in the same direction: chunking is
    /// an artefact of buffers.
    fn append_bytes(raws: &mut Vec<Raw>, from: Side, data: &[u8], t_us: u64) {
        if data.is_empty() {
            return;
        }
        if let Some(Raw::Bytes {
            from: f, data: d, ..
        }) = raws.last_mut()
        {
            if *f == from {
                d.extend_from_slice(data);
                return;
            }
        }
        // A new entry: the one before it is complete and never grows again, so it gives back what
        // doubling reserved (a held connection keeps its handshake for its life).
        if let Some(Raw::Bytes { data: d, .. }) = raws
            .iter_mut()
            .rev()
            .find(|r| matches!(r, Raw::Bytes { .. }))
        {
            d.shrink_to_fit();
        }
        grow_push(
            raws,
            Raw::Bytes {
                from,
                data: data.to_vec(),
                t_us,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another task panicked mid-push; the Vec is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_us(inner: &Inner) -> u64 {
        inner.start.elapsed().as_micros() as u64
    }

    pub fn bytes(&self, from: Side, data: &[u8]) {
        let mut g = self.lock();
        let t_us = Self::now_us(&g);
        let Inner { raws, bound, .. } = &mut *g;
        match bound {
            Some(b) => b.bytes(from, data, t_us, |head| {
                Self::append_bytes(raws, from, head, t_us)
            }),
            None => Self::append_bytes(raws, from, data, t_us),
        }
    }

    pub fn event(&self, phase: Phase, side: Side, kind: EventKind) {
        let mut g = self.lock();
        let t_us = Self::now_us(&g);
        let raw = Raw::Event {
            phase,
            side,
            kind: Box::new(kind),
            t_us,
        };
        Self::push(&mut g, raw);
    }

    /// Record a policy decision (see [`Raw::Policy`]).
    pub fn policy(&self, decision: Box<super::authz::PendingPolicy>) {
        let mut g = self.lock();
        let t_us = Self::now_us(&g);
        // Through the bound like any other event: a ping-pong of allowed publishes is as long as
        // the records that carry it.
        Self::push(&mut g, Raw::Policy { decision, t_us });
    }

    /// Record a verifier's verdict with its evidence (see [`Raw::Pending`]).
    pub fn pending(&self, check: Pending) {
        let mut g = self.lock();
        let t_us = Self::now_us(&g);
        let (phase, side) = check.kind.at();
        let raw = Raw::Pending {
            phase,
            side,
            check: Box::new(check),
            t_us,
        };
        Self::push(&mut g, raw);
    }

    pub fn key(&self, client_random: [u8; 32], master_secret: &[u8]) {
        grow_push(
            &mut self.lock().raws,
            Raw::Key {
                client_random: Box::new(client_random),
                master_secret: master_secret.to_vec(),
            },
        );
    }

    /// Everything recorded so far (with a bound: the head, the gap, the tail).
    pub fn take(&self) -> Vec<Raw> {
        let mut g = self.lock();
        let t_us = Self::now_us(&g);
        let mut raws = std::mem::take(&mut g.raws);
        if let Some(b) = g.bound.as_mut() {
            raws.extend(b.take(t_us));
        }
        raws
    }

    /// A copy of everything recorded so far (a live session's UI reads it while it runs).
    pub fn snapshot(&self) -> Vec<Raw> {
        self.lock().raws.clone()
    }

    /// How many observations, and how many bytes the last one holds: changes with every record.
    pub fn size(&self) -> (usize, usize) {
        let g = self.lock();
        let last = match g.raws.last() {
            Some(Raw::Bytes { data, .. }) => data.len(),
            _ => 0,
        };
        (g.raws.len(), last)
    }

    pub fn elapsed_us(&self) -> u64 {
        Self::now_us(&self.lock())
    }
}

/// Which bytes of a transport are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapMode {
    /// None (another tap records this connection).
    Off,
    /// What this side writes (both ends are iotls's own: each records its own writes).
    WritesOnly,
    /// Both directions (the other end is not iotls's).
    Both,
}

/// A transport wrapper recording the bytes a side writes and (optionally) reads. `me` is the side
/// that owns the transport: what it writes was sent by `me`, what it reads was sent by the peer.
///
/// When both ends are iotls's own (the tour), each end records only what it *writes*: every byte
/// on the wire is then recorded exactly once, when it was sent — including a last close_notify the
/// other side never reads. When only one end is iotls's (`connect`, `serve`), that end records both
/// directions.
pub struct Tap<S> {
    inner: S,
    me: Side,
    rec: Recorder,
    mode: TapMode,
}

impl<S> Tap<S> {
    pub fn new(inner: S, me: Side, rec: Recorder, mode: TapMode) -> Self {
        Tap {
            inner,
            me,
            rec,
            mode,
        }
    }

    fn reads(&self) -> bool {
        self.mode == TapMode::Both
    }

    fn writes(&self) -> bool {
        self.mode != TapMode::Off
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.reads() {
            return r;
        }
        if let Poll::Ready(Ok(())) = r {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                self.rec.bytes(self.me.peer(), got);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if !self.writes() {
            return r;
        }
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                self.rec.bytes(self.me, &data[..n]);
            }
        }
        r
    }
    /// rustls writes a whole flight as one vectored write; passing it on as one keeps the tap
    /// transparent (separate small writes would meet Nagle's algorithm and delayed ACKs).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if !self.writes() {
            return r;
        }
        if let Poll::Ready(Ok(n)) = r {
            let mut left = n;
            for b in bufs {
                if left == 0 {
                    break;
                }
                let take = left.min(b.len());
                self.rec.bytes(self.me, &b[..take]);
                left -= take;
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// rustls's key log, into the recorder.
#[derive(Debug)]
pub struct RecordingKeyLog {
    pub rec: Sink,
    pub side: Side,
}

/// Where a hook rustls calls during a handshake (a verifier, the key log) records: into the
/// recording it was made for (a TLS configuration made for one connection), or into the
/// recording of the connection whose handshake this thread is advancing right now ([`Scoped`]).
/// `serve` shares one configuration between all its connections that way: a configuration per
/// connection was half a KiB more for every connection held.
#[derive(Clone, Debug)]
pub enum Sink {
    Own(Recorder),
    Current,
}

thread_local! {
    /// The recording of the handshake being polled on this thread (see [`Scoped`]).
    static CURRENT: std::cell::RefCell<Option<Recorder>> = const { std::cell::RefCell::new(None) };
}

impl Sink {
    fn with(&self, f: impl FnOnce(&Recorder)) {
        match self {
            Sink::Own(r) => f(r),
            Sink::Current => CURRENT.with(|c| match c.borrow().as_ref() {
                Some(r) => f(r),
                // rustls calls these hooks only while a handshake is polled, and `serve` polls
                // every handshake inside a `Scoped`.
                None => debug_assert!(false, "a scoped TLS hook was called outside a handshake"),
            }),
        }
    }

    pub fn pending(&self, check: Pending) {
        self.with(|r| r.pending(check))
    }

    pub fn key(&self, client_random: [u8; 32], master_secret: &[u8]) {
        self.with(|r| r.key(client_random, master_secret))
    }

    pub fn event(&self, phase: Phase, side: Side, kind: EventKind) {
        self.with(|r| r.event(phase, side, kind))
    }
}

/// A future polled with `rec` as this thread's current recording: the hooks of a shared TLS
/// configuration ([`Sink::Current`]) that rustls calls while it is polled record into `rec`.
pub struct Scoped<F> {
    pub rec: Recorder,
    pub fut: F,
}

impl<F: std::future::Future + Unpin> std::future::Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Puts the previous recording back, also if the poll panics.
        struct Restore(Option<Recorder>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let this = &mut *self;
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(this.rec.clone()))));
        Pin::new(&mut this.fut).poll(cx)
    }
}

impl rustls::KeyLog for RecordingKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if let Ok(cr) = <[u8; 32]>::try_from(client_random) {
            if label == "CLIENT_RANDOM" {
                self.rec.key(cr, secret);
            }
        }
        self.rec.event(
            Phase::KeyExchange,
            self.side,
            EventKind::Secret {
                label: label.to_string(),
                client_random: client_random.to_vec(),
                secret: secret.to_vec(),
            },
        );
    }
    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// The words for a rustls error, with the context rustls gives (dates as dates, names as names).
pub fn explain_error(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => {
                "the chain does not lead to any trusted root (rustls: UnknownIssuer)".to_string()
            }
            CertificateError::NotValidForName => "the certificate is not valid for the name asked for (rustls: NotValidForName)".to_string(),
            CertificateError::NotValidForNameContext { expected, presented } => format!(
                "the certificate is for {} but the device asked for {} (rustls: NotValidForName)",
                if presented.is_empty() { "no names".to_string() } else { presented.iter().map(|p| plain_name(p)).collect::<Vec<_>>().join(", ") },
                server_name_text(expected)
            ),
            CertificateError::Expired => "the certificate has expired (rustls: Expired)".to_string(),
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the certificate expired on {} (checked at {}) (rustls: Expired)",
                rfc3339(not_after.as_secs() as i64),
                rfc3339(time.as_secs() as i64)
            ),
            CertificateError::NotValidYet => "the certificate is not valid yet (rustls: NotValidYet)".to_string(),
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "the certificate is valid only from {} (checked at {}) (rustls: NotValidYet)",
                rfc3339(not_before.as_secs() as i64),
                rfc3339(time.as_secs() as i64)
            ),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the certificate's extended key usage does not allow this use (rustls: InvalidPurpose)".to_string()
            }
            CertificateError::BadSignature => "a signature in the chain does not verify (rustls: BadSignature)".to_string(),
            CertificateError::BadEncoding => "the certificate is not valid DER (rustls: BadEncoding)".to_string(),
            CertificateError::Revoked => "the certificate is revoked (rustls: Revoked)".to_string(),
            other => format!("rustls: {other:?}"),
        },
        Error::AlertReceived(a) => format!(
            "the peer sent the fatal alert {}",
            crate::trace::AlertDescription(u8::from(*a)).name()
        ),
        other => format!("rustls: {other}"),
    }
}

/// rustls's `DnsName("localhost")` / `IpAddress(127.0.0.1)` as people write it.
fn plain_name(p: &str) -> String {
    let inner = p
        .split_once('(')
        .and_then(|(_, r)| r.strip_suffix(')'))
        .unwrap_or(p);
    inner.trim_matches('"').to_string()
}

/// A server name as people write it: `localhost`, `127.0.0.1`.
pub fn server_name_text(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// After saying goodbye (close_notify): read what the peer still sends — its own close_notify —
/// until it closes, for at most `grace`, so the record holds every byte that was on the wire.
pub async fn drain<S: AsyncRead + Unpin>(s: &mut S, grace: std::time::Duration) {
    use tokio::io::AsyncReadExt;
    // On the heap, and only while draining: an array here would be part of every connection's
    // future for as long as the connection is held.
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(grace, async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The typed failure of a rustls error: its code and the values rustls gives with it.
pub fn failure_of(e: &Error) -> Failure {
    use FailureCode as C;
    let mut f = Failure {
        detail: Some(e.to_string()),
        ..Failure::default()
    };
    f.code = match e {
        Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => C::UnknownIssuer,
            CertificateError::NotValidForName => C::NotValidForName,
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                f.expected_name = Some(server_name_text(expected));
                f.presented_names = presented.iter().map(|p| plain_name(p)).collect();
                C::NotValidForName
            }
            CertificateError::Expired => C::Expired,
            CertificateError::ExpiredContext { time, not_after } => {
                f.not_after = Some(rfc3339(not_after.as_secs() as i64));
                f.checked_at = Some(rfc3339(time.as_secs() as i64));
                C::Expired
            }
            CertificateError::NotValidYet => C::NotYetValid,
            CertificateError::NotValidYetContext { time, not_before } => {
                f.not_before = Some(rfc3339(not_before.as_secs() as i64));
                f.checked_at = Some(rfc3339(time.as_secs() as i64));
                C::NotYetValid
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                C::InvalidPurpose
            }
            CertificateError::BadSignature => C::BadSignature,
            CertificateError::BadEncoding => C::BadEncoding,
            CertificateError::Revoked => C::Revoked,
            _ => C::Other,
        },
        Error::NoCertificatesPresented => C::NoCertificate,
        Error::DecryptError => C::FinishedMismatch,
        Error::PeerIncompatible(p) => {
            use rustls::PeerIncompatible as P;
            match p {
                P::ServerDoesNotSupportTls12Or13
                | P::ServerTlsVersionIsDisabledByOurConfig
                | P::SupportedVersionsExtensionRequired
                | P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled
                | P::Tls13RequiredForQuic => C::ProtocolVersion,
                _ => C::NoSharedCipher,
            }
        }
        Error::NoApplicationProtocol => C::NoApplicationProtocol,
        Error::AlertReceived(a) => return failure_of_alert(*a, None),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => C::ProtocolViolation,
        _ => C::Other,
    };
    f
}

/// The failure an alert received from the peer stands for (the peer's check, seen only by its
/// alert). `sender` is the side that sent it.
pub fn failure_of_alert(a: rustls::AlertDescription, sender: Option<Side>) -> Failure {
    use rustls::AlertDescription as A;
    use FailureCode as C;
    let code = match a {
        A::CertificateExpired => C::Expired,
        A::UnknownCA => C::UnknownIssuer,
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => C::Other,
        A::CertificateRevoked => C::Revoked,
        A::CertificateRequired => C::NoCertificate,
        A::ProtocolVersion => C::ProtocolVersion,
        A::HandshakeFailure | A::InsufficientSecurity => C::NoSharedCipher,
        A::NoApplicationProtocol => C::NoApplicationProtocol,
        A::DecryptError => C::BadSignature,
        A::AccessDenied => C::Unregistered,
        A::DecodeError | A::IllegalParameter | A::UnexpectedMessage => C::ProtocolViolation,
        _ => C::Alert,
    };
    Failure {
        side: sender,
        alert: Some(crate::trace::AlertDescription(u8::from(a)).name()),
        detail: Some(format!("received fatal alert {a:?}")),
        ..Failure::new(if code == C::Other { C::Alert } else { code })
    }
}

/// The device's server-certificate verifier: rustls's WebPki verifier, with every verdict recorded.
#[derive(Debug)]
pub struct ObservedServerVerifier {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub roots: Arc<[CertificateDer<'static>]>,
    pub rec: Recorder,
}

impl ServerCertVerifier for ObservedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let chain = Evidence::chain(end_entity, intermediates, &self.roots);
        // webpki checks the chain first, the name second: a name error means the chain was good.
        let name_err = matches!(
            &r,
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        );
        let verdict = r.as_ref().err().cloned();
        if r.is_ok() || name_err {
            let asked = server_name.to_str().to_string();
            self.rec.pending(Pending {
                kind: Verdict::ServerChain {
                    name_failed: name_err,
                },
                error: None,
                evidence: chain.clone(),
            });
            self.rec.pending(Pending {
                kind: Verdict::ServerName { asked },
                error: verdict,
                evidence: chain,
            });
        } else {
            self.rec.pending(Pending {
                kind: Verdict::ServerChain { name_failed: false },
                error: verdict,
                evidence: chain,
            });
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let r = self.inner.verify_tls12_signature(message, cert, dss);
        self.rec.pending(Pending {
            kind: Verdict::ServerKxSignature,
            error: r.as_ref().err().cloned(),
            evidence: Evidence::signature(message, cert, dss),
        });
        r
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The broker's client-certificate verifier: rustls's WebPki verifier, with every verdict recorded.
#[derive(Debug)]
pub struct ObservedClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub roots: Arc<[CertificateDer<'static>]>,
    /// CAs the broker knows (registered CAs) that are not trust anchors by themselves: used only to
    /// tell a missing intermediate from an unknown issuer after rustls said UnknownIssuer.
    pub known_cas: Arc<[CertificateDer<'static>]>,
    pub rec: Sink,
}

impl ClientCertVerifier for ObservedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let r = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        // rustls said UnknownIssuer: would the chain pass with one of the registered CAs added? Then
        // the device left out its intermediate — a different mistake with a different fix.
        let missing = match &r {
            Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                self.known_cas.iter().find_map(|ca| {
                    let mut with: Vec<CertificateDer<'_>> = intermediates.to_vec();
                    with.push(ca.clone());
                    self.inner
                        .verify_client_cert(end_entity, &with, now)
                        .is_ok()
                        .then(|| ca.to_vec())
                })
            }
            _ => None,
        };
        let mut evidence = Evidence::chain(end_entity, intermediates, &self.roots);
        if let (Some(ca), Evidence::Chain { missing_ca, .. }) = (missing, &mut evidence) {
            *missing_ca = Some(ca);
        }
        self.rec.pending(Pending {
            kind: Verdict::ClientChain,
            error: r.as_ref().err().cloned(),
            evidence,
        });
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let r = self.inner.verify_tls12_signature(message, cert, dss);
        self.rec.pending(Pending {
            kind: Verdict::CertificateVerify,
            error: r.as_ref().err().cloned(),
            evidence: Evidence::signature(message, cert, dss),
        });
        r
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
