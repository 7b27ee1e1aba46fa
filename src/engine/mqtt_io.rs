//! Reading and writing MQTT packets on an async stream, for MQTT 3.1.1 and MQTT 5 (framing and
//! encoding via mqttbytes). The broker and the device speak in [`Msg`], one type for both versions,
//! so their logic is written once; the version decides only the bytes.

use bytes::BytesMut;
use mqttbytes::{v4, v5, QoS};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest packet either side accepts (AWS IoT's limit is 128 KiB).
pub const MAX_PACKET: usize = 128 * 1024;

/// MQTT reason code 0x87, "Not authorized" (MQTT 5).
pub const NOT_AUTHORIZED: u8 = 0x87;

/// The protocol version of a connection, fixed by its CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// The packets iotls's broker and device exchange, whatever the version. Codes are MQTT's reason
/// codes (0 = success; MQTT 3.1.1 has fewer and no reason in PUBACK).
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Connect {
        client_id: String,
        clean_session: bool,
        will_topic: Option<String>,
    },
    ConnAck {
        code: u8,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        pkid: u16,
    },
    PubAck {
        pkid: u16,
        code: u8,
    },
    /// Filters with their requested QoS.
    Subscribe {
        pkid: u16,
        filters: Vec<(String, u8)>,
    },
    /// One code per filter: the granted QoS, or a failure code (0x80, 0x87).
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    PingReq,
    PingResp,
    Disconnect {
        code: u8,
    },
    /// A valid packet iotls does not act on (name).
    Other(String),
}

/// Why reading a packet stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (EOF or close_notify).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// Bytes that are not valid MQTT.
    Protocol(String),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "the peer closed the connection"),
            ReadError::Timeout => write!(f, "no MQTT packet arrived in time"),
            ReadError::Protocol(e) => write!(f, "not a valid MQTT packet: {e}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The protocol level of a CONNECT at the start of `buf`: `Some(None)` when more bytes are needed,
/// `None` when the bytes are not a CONNECT.
fn connect_level(buf: &[u8]) -> Option<Option<u8>> {
    if buf.is_empty() {
        return Some(None);
    }
    if buf[0] != 0x10 {
        return None;
    }
    // Remaining length: 1..4 bytes, high bit = more.
    let mut i = 1;
    while i < buf.len() && i <= 4 && buf[i] & 0x80 != 0 {
        i += 1;
    }
    // Then the protocol name (2-byte length + "MQTT" or "MQIsdp") and the level.
    let name_at = i + 1;
    let Some(len) = buf.get(name_at..name_at + 2) else {
        return Some(None);
    };
    let level_at = name_at + 2 + u16::from_be_bytes([len[0], len[1]]) as usize;
    Some(buf.get(level_at).copied())
}

async fn fill<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<(), ReadError> {
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
    Ok(())
}

/// Read one packet, buffering partial data in `buf`. With `version` unknown (a broker before
/// CONNECT), the CONNECT's protocol level decides it.
pub async fn read_msg<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    version: &mut Option<Version>,
    timeout: Duration,
) -> Result<Msg, ReadError> {
    loop {
        let v = match *version {
            Some(v) => v,
            None => match connect_level(buf) {
                Some(None) => {
                    fill(s, buf, timeout).await?;
                    continue;
                }
                Some(Some(5)) => *version.insert(Version::V5),
                // 3.1.1, or not a CONNECT at all: the v4 reader says what is wrong.
                _ => *version.insert(Version::V4),
            },
        };
        // mqttbytes 0.6's v5 reader rejects the short DISCONNECTs MQTT 5 allows: no reason (0x00),
        // or a reason without properties.
        if v == Version::V5 && buf.starts_with(&[0xE0, 0x00]) {
            let _ = buf.split_to(2);
            return Ok(Msg::Disconnect { code: 0 });
        }
        if v == Version::V5 && buf.len() >= 3 && buf.starts_with(&[0xE0, 0x01]) {
            let code = buf.split_to(3)[2];
            return Ok(Msg::Disconnect { code });
        }
        let parsed = match v {
            Version::V4 => v4::read(buf, MAX_PACKET).map(from_v4),
            Version::V5 => v5::read(buf, MAX_PACKET).map(from_v5),
        };
        match parsed {
            Ok(m) => return Ok(m),
            Err(mqttbytes::Error::InsufficientBytes(_)) => fill(s, buf, timeout).await?,
            Err(e) => return Err(ReadError::Protocol(format!("{e:?}"))),
        }
    }
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn from_v4(p: v4::Packet) -> Msg {
    use v4::Packet as P;
    match p {
        P::Connect(c) => Msg::Connect {
            client_id: c.client_id,
            clean_session: c.clean_session,
            will_topic: c.last_will.map(|w| w.topic),
        },
        P::ConnAck(c) => Msg::ConnAck { code: c.code as u8 },
        P::Publish(p) => Msg::Publish {
            topic: p.topic,
            payload: p.payload.to_vec(),
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
        },
        P::PubAck(a) => Msg::PubAck {
            pkid: a.pkid,
            code: 0,
        },
        P::Subscribe(s) => Msg::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos as u8))
                .collect(),
        },
        P::SubAck(s) => Msg::SubAck {
            pkid: s.pkid,
            codes: s
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => q as u8,
                    v4::SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        },
        P::PingReq => Msg::PingReq,
        P::PingResp => Msg::PingResp,
        P::Disconnect => Msg::Disconnect { code: 0 },
        other => Msg::Other(format!("{other:?}")),
    }
}

fn from_v5(p: v5::Packet) -> Msg {
    use v5::Packet as P;
    match p {
        P::Connect(c) => Msg::Connect {
            client_id: c.client_id,
            clean_session: c.clean_session,
            will_topic: c.last_will.map(|w| w.topic),
        },
        P::ConnAck(c) => Msg::ConnAck { code: c.code as u8 },
        P::Publish(p) => Msg::Publish {
            topic: p.topic,
            payload: p.payload.to_vec(),
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
        },
        P::PubAck(a) => Msg::PubAck {
            pkid: a.pkid,
            code: a.reason as u8,
        },
        P::Subscribe(s) => Msg::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos as u8))
                .collect(),
        },
        P::SubAck(s) => Msg::SubAck {
            pkid: s.pkid,
            codes: s.return_codes.into_iter().map(|c| c as u8).collect(),
        },
        P::PingReq => Msg::PingReq,
        P::PingResp => Msg::PingResp,
        P::Disconnect(d) => Msg::Disconnect {
            code: d.reason_code as u8,
        },
        other => Msg::Other(format!("{other:?}")),
    }
}

fn encode_v4(m: &Msg, b: &mut BytesMut) -> Result<usize, String> {
    let r = match m {
        Msg::Connect {
            client_id,
            clean_session,
            ..
        } => {
            let mut c = v4::Connect::new(client_id.clone());
            c.keep_alive = 30;
            c.clean_session = *clean_session;
            c.write(b)
        }
        Msg::ConnAck { code } => {
            let code = match code {
                0 => v4::ConnectReturnCode::Success,
                _ => v4::ConnectReturnCode::NotAuthorized,
            };
            v4::ConnAck::new(code, false).write(b)
        }
        Msg::Publish {
            topic,
            payload,
            qos: q,
            retain,
            pkid,
        } => {
            let mut p = v4::Publish::new(topic.clone(), qos(*q), payload.clone());
            p.retain = *retain;
            p.pkid = *pkid;
            p.write(b)
        }
        Msg::PubAck { pkid, .. } => v4::PubAck::new(*pkid).write(b),
        Msg::Subscribe { pkid, filters } => {
            let mut s = v4::Subscribe::new_many(
                filters
                    .iter()
                    .map(|(f, q)| v4::SubscribeFilter::new(f.clone(), qos(*q))),
            );
            s.pkid = *pkid;
            s.write(b)
        }
        Msg::SubAck { pkid, codes } => {
            let codes = codes
                .iter()
                .map(|c| match c {
                    0..=2 => v4::SubscribeReasonCode::Success(qos(*c)),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect();
            v4::SubAck::new(*pkid, codes).write(b)
        }
        Msg::PingReq => v4::PingReq.write(b),
        Msg::PingResp => v4::PingResp.write(b),
        Msg::Disconnect { .. } => v4::Disconnect.write(b),
        Msg::Other(name) => return Err(format!("iotls does not send {name}")),
    };
    r.map_err(|e| format!("{e:?}"))
}

fn encode_v5(m: &Msg, b: &mut BytesMut) -> Result<usize, String> {
    let r = match m {
        Msg::Connect {
            client_id,
            clean_session,
            ..
        } => {
            let mut c = v5::Connect::new(client_id.clone());
            c.keep_alive = 30;
            c.clean_session = *clean_session;
            c.write(b)
        }
        Msg::ConnAck { code } => {
            let code = match code {
                0 => v5::ConnectReturnCode::Success,
                &NOT_AUTHORIZED => v5::ConnectReturnCode::NotAuthorized,
                _ => v5::ConnectReturnCode::UnspecifiedError,
            };
            let mut c = v5::ConnAck::new(code, false);
            // mqttbytes 0.6 omits the (required) property length unless properties are present.
            c.properties = Some(v5::ConnAckProperties::new());
            c.write(b)
        }
        Msg::Publish {
            topic,
            payload,
            qos: q,
            retain,
            pkid,
        } => {
            let mut p = v5::Publish::new(topic.clone(), qos(*q), payload.clone());
            p.retain = *retain;
            p.pkid = *pkid;
            p.write(b)
        }
        Msg::PubAck { pkid, code } => {
            let mut a = v5::PubAck::new(*pkid);
            a.reason = match code {
                0 => v5::PubAckReason::Success,
                &NOT_AUTHORIZED => v5::PubAckReason::NotAuthorized,
                _ => v5::PubAckReason::UnspecifiedError,
            };
            a.write(b)
        }
        Msg::Subscribe { pkid, filters } => {
            let mut s = v5::Subscribe::new_many(
                filters
                    .iter()
                    .map(|(f, q)| v5::SubscribeFilter::new(f.clone(), qos(*q))),
            );
            s.pkid = *pkid;
            s.write(b)
        }
        Msg::SubAck { pkid, codes } => {
            let codes = codes
                .iter()
                .map(|c| match c {
                    0 => v5::SubscribeReasonCode::QoS0,
                    1 => v5::SubscribeReasonCode::QoS1,
                    2 => v5::SubscribeReasonCode::QoS2,
                    &NOT_AUTHORIZED => v5::SubscribeReasonCode::NotAuthorized,
                    _ => v5::SubscribeReasonCode::Unspecified,
                })
                .collect();
            v5::SubAck::new(*pkid, codes).write(b)
        }
        Msg::PingReq => v5::PingReq.write(b),
        Msg::PingResp => v5::PingResp.write(b),
        Msg::Disconnect { code } => {
            let mut d = v5::Disconnect::new();
            d.reason_code = match code {
                0 => v5::DisconnectReasonCode::NormalDisconnection,
                &NOT_AUTHORIZED => v5::DisconnectReasonCode::NotAuthorized,
                _ => v5::DisconnectReasonCode::UnspecifiedError,
            };
            d.write(b)
        }
        Msg::Other(name) => return Err(format!("iotls does not send {name}")),
    };
    r.map_err(|e| format!("{e:?}"))
}

/// Encode one packet into a fresh buffer (mqttbytes corrupts a CONNECT written into a non-empty one)
/// and write it in one go, so it travels in one TLS record.
pub async fn write_msg<S: AsyncWrite + Unpin>(
    s: &mut S,
    version: Version,
    m: &Msg,
) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    match version {
        Version::V4 => encode_v4(m, &mut b),
        Version::V5 => encode_v5(m, &mut b),
    }
    .map_err(|e| std::io::Error::other(format!("encoding MQTT packet: {e}")))?;
    s.write_all(&b).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(v: Version, m: Msg) -> Msg {
        let mut wire = Vec::new();
        write_msg(&mut wire, v, &m).await.unwrap();

        let mut buf = BytesMut::new();
        let mut version = if matches!(m, Msg::Connect { .. }) {
            None
        } else {
            Some(v)
        };
        let got = read_msg(
            &mut wire.as_slice(),
            &mut buf,
            &mut version,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(version, Some(v), "the version is learnt from CONNECT");
        got
    }

    #[tokio::test]
    async fn every_packet_round_trips_in_both_versions() {
        for v in [Version::V4, Version::V5] {
            let connect = Msg::Connect {
                client_id: "pizza-button-1".into(),
                clean_session: true,
                will_topic: None,
            };
            assert_eq!(round_trip(v, connect.clone()).await, connect);
            let publish = Msg::Publish {
                topic: "iotbutton/G030".into(),
                payload: b"{}".to_vec(),
                qos: 1,
                retain: false,
                pkid: 7,
            };
            assert_eq!(round_trip(v, publish.clone()).await, publish);
            let sub = Msg::Subscribe {
                pkid: 3,
                filters: vec![("iotbutton/#".into(), 1)],
            };
            assert_eq!(round_trip(v, sub.clone()).await, sub);
            for m in [
                Msg::PingReq,
                Msg::PingResp,
                Msg::Disconnect { code: 0 },
                Msg::ConnAck { code: 0 },
            ] {
                assert_eq!(round_trip(v, m.clone()).await, m);
            }
        }
    }

    #[tokio::test]
    async fn mqtt5_carries_not_authorized_and_311_cannot() {
        let v5 = Version::V5;
        assert_eq!(
            round_trip(
                v5,
                Msg::PubAck {
                    pkid: 1,
                    code: NOT_AUTHORIZED
                }
            )
            .await,
            Msg::PubAck {
                pkid: 1,
                code: 0x87
            }
        );
        assert_eq!(
            round_trip(
                v5,
                Msg::ConnAck {
                    code: NOT_AUTHORIZED
                }
            )
            .await,
            Msg::ConnAck { code: 0x87 }
        );
        assert_eq!(
            round_trip(
                v5,
                Msg::SubAck {
                    pkid: 2,
                    codes: vec![1, NOT_AUTHORIZED]
                }
            )
            .await,
            Msg::SubAck {
                pkid: 2,
                codes: vec![1, 0x87]
            }
        );
        assert_eq!(
            round_trip(
                v5,
                Msg::Disconnect {
                    code: NOT_AUTHORIZED
                }
            )
            .await,
            Msg::Disconnect { code: 0x87 }
        );
        // MQTT 3.1.1's PUBACK has no reason code: the refusal is lost on the wire.
        assert_eq!(
            round_trip(
                Version::V4,
                Msg::PubAck {
                    pkid: 1,
                    code: NOT_AUTHORIZED
                }
            )
            .await,
            Msg::PubAck { pkid: 1, code: 0 }
        );
    }

    #[tokio::test]
    async fn a_connect_for_an_unknown_protocol_level_is_a_protocol_error() {
        // CONNECT, "MQTT", level 9.
        let wire = [
            0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x09, 0x02, 0x00, 0x1e, 0x00, 0x01,
            b'a',
        ];
        let mut buf = BytesMut::new();
        let mut version = None;
        let r = read_msg(
            &mut &wire[..],
            &mut buf,
            &mut version,
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(&r, Err(ReadError::Protocol(e)) if e.contains("InvalidProtocolLevel(9)")),
            "{r:?}"
        );
    }
}
