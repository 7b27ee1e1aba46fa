//! Reading and writing MQTT 3.1.1 packets on an async stream (framing via mqttbytes).

use bytes::BytesMut;
use mqttbytes::v4::{self, Packet};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest packet either side accepts (AWS IoT's limit is 128 KiB).
pub const MAX_PACKET: usize = 128 * 1024;

/// Why reading a packet stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (EOF or close_notify).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// Bytes that are not valid MQTT 3.1.1.
    Protocol(String),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "the peer closed the connection"),
            ReadError::Timeout => write!(f, "no MQTT packet arrived in time"),
            ReadError::Protocol(e) => write!(f, "not a valid MQTT 3.1.1 packet: {e}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Read one packet, buffering partial data in `buf`.
pub async fn read_packet<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Packet, ReadError> {
    loop {
        match v4::read(buf, MAX_PACKET) {
            Ok(p) => return Ok(p),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(ReadError::Protocol(format!("{e:?}"))),
        }
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout(timeout, s.read(&mut chunk)).await {
            Err(_) => return Err(ReadError::Timeout),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ReadError::Closed)
            }
            Ok(Err(e)) => return Err(ReadError::Io(e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Encode one packet into a fresh buffer (mqttbytes corrupts a CONNECT written into a non-empty one)
/// and write it in one go, so it travels in one TLS record.
pub async fn write_packet<S: AsyncWrite + Unpin>(s: &mut S, p: &Packet) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    let r = match p {
        Packet::Connect(c) => c.write(&mut b),
        Packet::ConnAck(c) => c.write(&mut b),
        Packet::Publish(c) => c.write(&mut b),
        Packet::PubAck(c) => c.write(&mut b),
        Packet::Subscribe(c) => c.write(&mut b),
        Packet::SubAck(c) => c.write(&mut b),
        Packet::PingReq => v4::PingReq.write(&mut b),
        Packet::PingResp => v4::PingResp.write(&mut b),
        Packet::Disconnect => v4::Disconnect.write(&mut b),
        other => {
            return Err(std::io::Error::other(format!(
                "iotls does not send {other:?}"
            )))
        }
    };
    r.map_err(|e| std::io::Error::other(format!("encoding MQTT packet: {e:?}")))?;
    s.write_all(&b).await?;
    s.flush().await
}
