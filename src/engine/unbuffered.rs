//! A TLS server stream over rustls's unbuffered API, for the connections `iotls serve` holds.
//!
//! rustls's buffered `ServerConnection` (what tokio-rustls drives) keeps a receive buffer of at
//! least 4 KiB for as long as a connection lives, even while the device says nothing. Here the
//! caller owns the buffers ([`rustls::server::UnbufferedServerConnection`]): what came from the
//! socket and is not yet processed, TLS records not yet written, and plaintext not yet read. Each
//! is freed as soon as it is empty, so an idle held connection keeps none of them.
//!
//! What the peer sees is what tokio-rustls would have sent: the same records (rustls encodes
//! them), a flight written to the socket as one write, a plaintext write of at most 64 KiB taken
//! at a time (rustls's buffered limit), the alert rustls queued when it refuses the peer (written
//! once, as a last gasp, before the error is returned), close_notify on shutdown. Errors are the
//! ones tokio-rustls gives: a rustls error as `InvalidData` wrapping it, `tls handshake eof`, and
//! rustls's own message for a TCP close without close_notify.

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::ServerConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket per read (rustls's buffered connection reads 4 KiB at a time too).
/// On the stack, only for the duration of one poll: a waiting connection keeps none of it.
const READ_SIZE: usize = 4096;

/// The most unprocessed TLS bytes kept: rustls's buffered limit for a handshake message that spans
/// records (64 KiB); a record after the handshake is far smaller, and rustls refuses a larger one.
const MAX_INCOMING: usize = 0xffff;

/// The most plaintext one write takes (what rustls's buffered connection accepts at once).
const MAX_WRITE: usize = 64 * 1024;

/// rustls's words for a TCP close without close_notify (its buffered reader's `UnexpectedEof`).
const UNEXPECTED_EOF: &str = "peer closed connection without sending TLS close_notify: \
https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof";

/// A server-side TLS stream whose buffers are its own and empty (capacity 0) when idle.
pub struct UnbufferedTls<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// Received from the socket, not yet processed by rustls (a partial record at most, once
    /// processed).
    incoming: Vec<u8>,
    /// Encoded records not yet written; `out_pos` of them are.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// Decrypted application data not yet read; `plain_pos` of it is.
    plain: Vec<u8>,
    plain_pos: usize,
    /// The peer's close_notify arrived: no more application data.
    peer_closed: bool,
    /// The socket reached its end.
    eof: bool,
    /// close_notify is queued (shutdown).
    close_sent: bool,
    /// rustls refused the connection: every later read or write fails with this.
    failed: Option<rustls::Error>,
}

/// Where rustls stopped after everything it could do with what it had.
#[derive(Debug, PartialEq)]
enum Rest {
    /// The handshake needs more bytes from the peer.
    Handshaking,
    /// Application data may flow.
    Traffic,
    /// Both sides sent close_notify.
    Closed,
}

/// What to do once rustls lets application data flow.
enum Act<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// `required_size` of rustls's "buffer too small" answers.
fn needed_encode(e: EncodeError) -> Result<usize, rustls::Error> {
    match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => Ok(required_size),
        EncodeError::AlreadyEncoded => Err(rustls::Error::General(e.to_string())),
    }
}

fn needed_encrypt(e: EncryptError) -> Result<usize, rustls::Error> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Ok(required_size)
        }
        EncryptError::EncryptExhausted => Err(rustls::Error::EncryptError),
    }
}

/// Append to `out` what `f` writes into a slice, growing `out` by exactly what `f` asks for.
fn append<E>(
    out: &mut Vec<u8>,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needed: impl Fn(E) -> Result<usize, rustls::Error>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    let n = match f(&mut []) {
        Ok(n) => n,
        Err(e) => {
            out.resize(start + needed(e)?, 0);
            f(&mut out[start..]).map_err(|e| match needed(e) {
                Ok(n) => rustls::Error::General(format!("TLS output needs {n} bytes")),
                Err(e) => e,
            })?
        }
    };
    out.truncate(start + n);
    Ok(())
}

/// rustls's error as tokio-rustls gives it.
fn io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> UnbufferedTls<S> {
    /// The rustls connection (certificates, ALPN, cipher suite).
    pub fn conn(&self) -> &UnbufferedServerConnection {
        &self.conn
    }

    /// The allocation for received TLS not yet processed (0 once everything received was).
    pub fn incoming_capacity(&self) -> usize {
        self.incoming.capacity()
    }

    /// Capacity of the stream's three buffers together (received TLS, TLS not yet written,
    /// plaintext not yet read).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.plain.capacity()
    }

    /// Let rustls process what was received, queue what it has to send, and, once application
    /// data may flow, do `act`. Decrypted data goes to `plain`.
    fn advance(&mut self, mut act: Act<'_>) -> Result<Rest, rustls::Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let status = self.conn.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let step = match status.state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    let mut got = Ok(None);
                    while let Some(rec) = r.next_record() {
                        match rec {
                            Ok(rec) => {
                                discard += rec.discard;
                                self.plain.extend_from_slice(rec.payload);
                            }
                            Err(e) => {
                                got = Err(e);
                                break;
                            }
                        }
                    }
                    got
                }
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    append(&mut self.outgoing, |b| enc.encode(b), needed_encode).map(|_| None)
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // Written before the next read (`poll_flush_out`), all of a flight at once.
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Ok(Some(Rest::Closed))
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Rest::Handshaking)),
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    let done = match std::mem::replace(&mut act, Act::Nothing) {
                        Act::Nothing => Ok(()),
                        Act::Encrypt(data) => {
                            append(&mut self.outgoing, |b| w.encrypt(data, b), needed_encrypt)
                        }
                        Act::CloseNotify => append(
                            &mut self.outgoing,
                            |b| w.queue_close_notify(b),
                            needed_encrypt,
                        ),
                    };
                    done.map(|_| Some(Rest::Traffic))
                }
                Ok(other) => Err(rustls::Error::General(format!(
                    "unexpected TLS state {other:?}"
                ))),
            };
            self.discard(discard);
            match step {
                Ok(None) => continue,
                Ok(Some(rest)) => return Ok(rest),
                Err(e) => {
                    self.fail(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// rustls refused the connection: keep the error and queue the alert rustls prepared.
    fn fail(&mut self, e: rustls::Error) {
        self.failed = Some(e);
        // What rustls queued (its fatal alert) comes out before anything else it would process;
        // with nothing more to process, it then waits.
        for _ in 0..16 {
            match self.conn.process_tls_records(&mut []).state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    if append(&mut self.outgoing, |b| enc.encode(b), needed_encode).is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
                _ => break,
            }
        }
        self.incoming = Vec::new();
    }

    /// Drop `n` processed bytes from the front of `incoming`; free it when nothing is left.
    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if n >= self.incoming.len() {
            self.incoming = Vec::new();
        } else {
            self.incoming.drain(..n);
        }
    }

    /// Write what is queued, as one write where the socket takes it; free the buffer when done.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// The last gasp after rustls refused the peer: its alert, if the socket takes it now.
    fn poll_alert(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_flush_out(cx);
    }

    /// Read once from the socket into `incoming` (0: the socket's end).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.incoming.len() >= MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message buffer full",
            )));
        }
        let mut chunk = [0u8; READ_SIZE];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let got = buf.filled();
        if got.is_empty() {
            self.eof = true;
        }
        self.incoming.extend_from_slice(got);
        Poll::Ready(Ok(got.len()))
    }

    /// Drive the handshake to its end (the last flight written).
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_flush_out(cx))?;
            match self.advance(Act::Nothing) {
                Err(e) => {
                    self.poll_alert(cx);
                    return Poll::Ready(Err(io_error(e)));
                }
                Ok(Rest::Traffic) if self.outgoing.is_empty() => return Poll::Ready(Ok(())),
                Ok(Rest::Traffic) => continue,
                Ok(Rest::Closed) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tls handshake eof",
                    )))
                }
                Ok(Rest::Handshaking) => {
                    if !self.outgoing.is_empty() {
                        continue;
                    }
                    if self.eof {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "tls handshake eof",
                        )));
                    }
                    ready!(self.poll_fill(cx))?;
                }
            }
        }
    }
}

/// Accept a TLS connection on `io` with `config`; on failure, the error (as tokio-rustls gives
/// it) and the transport, with the alert rustls sent already written if the socket took it.
pub async fn accept<S>(config: Arc<ServerConfig>, io: S) -> Result<UnbufferedTls<S>, (io::Error, S)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = match UnbufferedServerConnection::new(config) {
        Ok(c) => c,
        Err(e) => return Err((io_error(e), io)),
    };
    let mut tls = UnbufferedTls {
        io,
        conn,
        incoming: Vec::new(),
        outgoing: Vec::new(),
        out_pos: 0,
        plain: Vec::new(),
        plain_pos: 0,
        peer_closed: false,
        eof: false,
        close_sent: false,
        failed: None,
    };
    match std::future::poll_fn(|cx| tls.poll_handshake(cx)).await {
        Ok(()) => Ok(tls),
        Err(e) => Err((e, tls.io)),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for UnbufferedTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_pos < this.plain.len() {
                let left = &this.plain[this.plain_pos..];
                let n = left.len().min(buf.remaining());
                buf.put_slice(&left[..n]);
                this.plain_pos += n;
                if this.plain_pos == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            match this.advance(Act::Nothing) {
                Err(e) => {
                    this.poll_alert(cx);
                    return Poll::Ready(Err(io_error(e)));
                }
                Ok(Rest::Closed) => return Poll::Ready(Ok(())),
                Ok(_) => {}
            }
            if !this.plain.is_empty() || this.peer_closed {
                continue;
            }
            // Anything rustls queued on its own goes out when the socket takes it.
            if let Poll::Ready(Err(e)) = this.poll_flush_out(cx) {
                return Poll::Ready(Err(e));
            }
            if this.eof {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    UNEXPECTED_EOF,
                )));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for UnbufferedTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Nothing more is taken while earlier records wait for the socket: a reader that stopped
        // reading holds the writer here, not in a growing buffer.
        ready!(this.poll_flush_out(cx))?;
        if this.close_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS close_notify already sent",
            )));
        }
        let n = data.len().min(MAX_WRITE);
        match this.advance(Act::Encrypt(&data[..n])) {
            Ok(Rest::Traffic) => {}
            Ok(rest) => {
                return Poll::Ready(Err(io::Error::other(format!(
                    "TLS connection not writable ({rest:?})"
                ))))
            }
            Err(e) => {
                this.poll_alert(cx);
                return Poll::Ready(Err(io_error(e)));
            }
        }
        if let Poll::Ready(Err(e)) = this.poll_flush_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            ready!(this.poll_flush_out(cx))?;
            this.close_sent = true;
            // A refused connection has sent its alert; there is no close_notify after it.
            let _ = this.advance(Act::CloseNotify);
        }
        ready!(this.poll_flush_out(cx))?;
        Poll::Ready(match ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::broker::SharedTls;
    use crate::engine::device;
    use crate::engine::observe::Recorder;
    use crate::engine::scenario::Scenario;
    use crate::pki::DefaultPki;
    use rustls::AlertDescription;
    use rustls_pki_types::ServerName;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const LIMIT: Duration = Duration::from_secs(20);

    /// A transport that counts the writes made on it (a flight should be one).
    struct Counting<S> {
        inner: S,
        writes: Arc<AtomicUsize>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, data);
            if let Poll::Ready(Ok(n)) = r {
                if n > 0 {
                    self.writes.fetch_add(1, Ordering::SeqCst);
                }
            }
            r
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// The default scenario's broker configuration and a connected pair of TCP streams.
    async fn setup(s: &Scenario) -> (Arc<ServerConfig>, TcpStream, TcpStream) {
        let cfg = SharedTls::new(&s.broker)
            .unwrap()
            .config(&Recorder::new())
            .unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), l.accept());
        (cfg, client.unwrap(), server.unwrap().0)
    }

    async fn client(
        s: &Scenario,
        tcp: TcpStream,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let cfg = device::tls_config(&s.device, &Recorder::new()).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
    }

    fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
    }

    #[tokio::test]
    async fn a_device_handshakes_exchanges_data_and_gets_close_notify() {
        let pki = DefaultPki::generate().unwrap();
        let mut s = Scenario::from_pki(&pki);
        s.broker.alpn = vec!["x-amzn-mqtt-ca".into()];
        s.device.alpn = vec!["x-amzn-mqtt-ca".into()];
        let (cfg, c, srv) = setup(&s).await;
        let writes = Arc::new(AtomicUsize::new(0));
        let counted = Counting {
            inner: srv,
            writes: writes.clone(),
        };
        let server = async {
            let mut tls = accept(cfg, counted).await.map_err(|(e, _)| e)?;
            // ServerHello..ServerHelloDone, then ChangeCipherSpec + Finished: two writes.
            let handshake_writes = writes.load(Ordering::SeqCst);
            let cert = tls.conn().peer_certificates().unwrap()[0].clone();
            let alpn = tls.conn().alpn_protocol().map(|p| p.to_vec());
            let mut got = [0u8; 5];
            tls.read_exact(&mut got).await?;
            tls.write_all(b"world").await?;
            tls.flush().await?;
            tls.shutdown().await?;
            io::Result::Ok((handshake_writes, cert, alpn, got))
        };
        let device = async {
            let mut tls = client(&s, c).await?;
            tls.write_all(b"hello").await?;
            tls.flush().await?;
            let mut got = Vec::new();
            // Ends with Ok: the broker's close_notify, not a bare TCP close.
            tls.read_to_end(&mut got).await?;
            io::Result::Ok(got)
        };
        let (srv, dev) = tokio::time::timeout(LIMIT, async { tokio::join!(server, device) })
            .await
            .unwrap();
        let (handshake_writes, cert, alpn, got) = srv.unwrap();
        assert_eq!(
            handshake_writes, 2,
            "each flight of the broker is one write"
        );
        assert_eq!(cert, pki.button.chain[0]);
        assert_eq!(alpn.as_deref(), Some(&b"x-amzn-mqtt-ca"[..]));
        assert_eq!(&got, b"hello");
        assert_eq!(dev.unwrap(), b"world");
    }

    /// The broker refuses the device; what each side sees.
    async fn refused(s: &Scenario) -> (io::Error, io::Error) {
        let (cfg, c, srv) = setup(s).await;
        let server = async {
            match accept(cfg, srv).await {
                Ok(_) => panic!("the broker accepted a device it should refuse"),
                Err((e, mut io)) => {
                    io.flush().await.unwrap();
                    e
                }
            }
        };
        let device = async {
            let mut tls = client(s, c).await?;
            // TLS 1.2 with a client certificate: the device's handshake ends before the broker
            // has judged it; the alert comes on the first read.
            let mut b = [0u8; 1];
            tls.read(&mut b).await.map(|_| tls)
        };
        let (srv, dev) = tokio::time::timeout(LIMIT, async { tokio::join!(server, device) })
            .await
            .unwrap();
        (srv, dev.expect_err("the device saw the refusal"))
    }

    #[tokio::test]
    async fn an_untrusted_device_gets_rustls_unknown_ca_alert() {
        let pki = DefaultPki::generate().unwrap();
        let mut s = Scenario::from_pki(&pki);
        s.device.identity = pki.rogue_button.clone();
        let (srv, dev) = refused(&s).await;
        assert!(
            matches!(
                rustls_error(&srv),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "broker: {srv}"
        );
        assert!(
            matches!(
                rustls_error(&dev),
                Some(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
            ),
            "device: {dev}"
        );
    }

    #[tokio::test]
    async fn a_device_without_the_brokers_protocol_gets_no_application_protocol() {
        let pki = DefaultPki::generate().unwrap();
        let mut s = Scenario::from_pki(&pki);
        s.broker.alpn = vec!["x-amzn-mqtt-ca".into()];
        s.device.alpn = vec!["mqtt".into()];
        let (srv, dev) = refused(&s).await;
        assert!(
            matches!(
                rustls_error(&srv),
                Some(rustls::Error::NoApplicationProtocol)
            ),
            "broker: {srv}"
        );
        assert!(
            matches!(
                rustls_error(&dev),
                Some(rustls::Error::AlertReceived(
                    AlertDescription::NoApplicationProtocol
                ))
            ),
            "device: {dev}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_that_closes_mid_handshake_is_tls_handshake_eof() {
        let pki = DefaultPki::generate().unwrap();
        let s = Scenario::from_pki(&pki);
        let (cfg, c, srv) = setup(&s).await;
        drop(c);
        let e = match tokio::time::timeout(LIMIT, accept(cfg, srv)).await.unwrap() {
            Ok(_) => panic!("a handshake without a peer succeeded"),
            Err((e, _)) => e,
        };
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(e.to_string(), "tls handshake eof");
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn large_writes_and_reads_cross_record_boundaries() {
        // 200,000 bytes: 13 records of 16 KiB and more than one 64 KiB write each way.
        const N: usize = 200_000;
        let pki = DefaultPki::generate().unwrap();
        let s = Scenario::from_pki(&pki);
        let (cfg, c, srv) = setup(&s).await;
        let server = async {
            let mut tls = accept(cfg, srv).await.map_err(|(e, _)| e)?;
            // Read in small pieces: a record's rest waits in the stream for the next read.
            let mut got = Vec::with_capacity(N);
            let mut piece = [0u8; 1000];
            while got.len() < N {
                let n = tls.read(&mut piece).await?;
                assert!(n > 0, "the device's data ended early, at {}", got.len());
                got.extend_from_slice(&piece[..n]);
            }
            tls.write_all(&pattern(N, 7)).await?;
            tls.shutdown().await?;
            io::Result::Ok(got)
        };
        let device = async {
            let mut tls = client(&s, c).await?;
            tls.write_all(&pattern(N, 3)).await?;
            tls.flush().await?;
            let mut got = Vec::new();
            tls.read_to_end(&mut got).await?;
            io::Result::Ok(got)
        };
        let (srv, dev) = tokio::time::timeout(LIMIT, async { tokio::join!(server, device) })
            .await
            .unwrap();
        assert!(
            srv.unwrap() == pattern(N, 3),
            "the broker read what was sent"
        );
        assert!(
            dev.unwrap() == pattern(N, 7),
            "the device read what was sent"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_keeps_no_buffers_after_a_complete_read() {
        let pki = DefaultPki::generate().unwrap();
        let s = Scenario::from_pki(&pki);
        let (cfg, c, srv) = setup(&s).await;
        let (to_server, mut sent) = tokio::sync::mpsc::channel::<()>(1);
        let server = async {
            let mut tls = accept(cfg, srv).await.map_err(|(e, _)| e)?;
            sent.recv().await;
            // 20,000 bytes: records of 16 KiB and the rest, read exactly.
            let mut got = vec![0u8; 20_000];
            tls.read_exact(&mut got).await?;
            let after_read = (tls.incoming_capacity(), tls.buffered_capacity());
            tls.write_all(b"ok").await?;
            tls.flush().await?;
            let after_write = tls.buffered_capacity();
            // Idle: a read that waits for the device keeps nothing either.
            let mut b = [0u8; 1];
            let waited = tokio::time::timeout(Duration::from_millis(100), tls.read(&mut b)).await;
            assert!(waited.is_err(), "the device sent nothing more");
            let while_waiting = tls.buffered_capacity();
            io::Result::Ok((got, after_read, after_write, while_waiting))
        };
        let device = async {
            let mut tls = client(&s, c).await?;
            tls.write_all(&pattern(20_000, 1)).await?;
            tls.flush().await?;
            to_server.send(()).await.unwrap();
            let mut ok = [0u8; 2];
            tls.read_exact(&mut ok).await?;
            io::Result::Ok((tls, ok))
        };
        let (srv, dev) = tokio::time::timeout(LIMIT, async { tokio::join!(server, device) })
            .await
            .unwrap();
        let (got, after_read, after_write, while_waiting) = srv.unwrap();
        assert!(got == pattern(20_000, 1));
        assert_eq!(&dev.unwrap().1, b"ok");
        assert_eq!(after_read, (0, 0), "(incoming, all buffers) after the read");
        assert_eq!(after_write, 0, "buffers after the write was flushed");
        assert_eq!(while_waiting, 0, "buffers while waiting for the device");
    }
}
