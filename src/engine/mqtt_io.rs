//! Reading and writing MQTT packets on an async stream, for MQTT 3.1.1 and MQTT 5, with the
//! codec in [`crate::mqtt`]. The broker and the device speak in [`Msg`], one type for both
//! versions, so their logic is written once; the version decides only the bytes.

use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::mqtt::{self, connect, frame, Packet, PacketType, QoS};
pub use crate::mqtt::{Version, MAX_PACKET};

/// MQTT reason code 0x87, "Not authorized" (MQTT 5).
pub const NOT_AUTHORIZED: u8 = 0x87;

/// A CONNECT's Last Will: published by the broker if the connection ends without DISCONNECT.
#[derive(Clone, Debug, PartialEq)]
pub struct WillMsg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// The packets iotls's broker and device exchange, whatever the version. Codes are MQTT's reason
/// codes (0 = success; MQTT 3.1.1 has fewer and no reason in PUBACK).
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Connect {
        client_id: String,
        clean_session: bool,
        /// Seconds; 0 = no keep-alive.
        keep_alive: u16,
        will: Option<WillMsg>,
    },
    /// The broker's answer. In MQTT 5 it also says Maximum QoS = 1: iotls's broker, like AWS IoT,
    /// does not support QoS 2.
    ConnAck {
        code: u8,
        session_present: bool,
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
    PubRec {
        pkid: u16,
    },
    PubRel {
        pkid: u16,
    },
    PubComp {
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
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    /// MQTT 5: one code per filter (0x00, or 0x11 no subscription existed); none in 3.1.1.
    UnsubAck {
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

async fn fill<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<(), ReadError> {
    // Each poll reads into a buffer on the stack of that poll, and what arrived is appended to
    // `buf`: while nothing arrives, a waiting connection holds no read buffer at all (neither in
    // its future nor in `buf`, which [`read_msg`] lets go once it is empty).
    let read = std::future::poll_fn(|cx| {
        let mut chunk = [0u8; READ_CHUNK];
        let mut rb = tokio::io::ReadBuf::new(&mut chunk);
        match std::pin::Pin::new(&mut *s).poll_read(cx, &mut rb) {
            std::task::Poll::Ready(Ok(())) => {
                buf.extend_from_slice(rb.filled());
                std::task::Poll::Ready(Ok(rb.filled().len()))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    });
    let n = match tokio::time::timeout(timeout, read).await {
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
    Ok(())
}

/// The most one read takes: MQTT packets of devices are small; a larger one takes several reads.
const READ_CHUNK: usize = 4096;

/// Read one packet, buffering partial data in `buf` (never more than [`MAX_PACKET`] of one
/// packet: a larger one is refused from its fixed header). With `version` unknown (a broker
/// before CONNECT), the CONNECT's protocol level decides it; anything else first is read as
/// MQTT 3.1.1.
pub async fn read_msg<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    version: &mut Option<Version>,
    timeout: Duration,
) -> Result<Msg, ReadError> {
    let protocol = |e: mqtt::DecodeError| ReadError::Protocol(e.to_string());
    loop {
        let Some(len) = frame(buf, MAX_PACKET).map_err(protocol)? else {
            fill(s, buf, timeout).await?;
            continue;
        };
        let bytes = buf.split_to(len);
        if buf.is_empty() {
            // Nothing of a next packet yet: give the allocation back with the packet.
            *buf = BytesMut::new();
        }
        let v = if bytes[0] >> 4 == PacketType::Connect as u8 {
            let v = connect::protocol_version(&bytes).map_err(protocol)?;
            version.get_or_insert(v);
            v
        } else {
            *version.get_or_insert(Version::V4)
        };
        let (packet, _) = Packet::decode(&bytes, v).map_err(protocol)?;
        return Ok(to_msg(packet));
    }
}

fn to_msg(p: Packet) -> Msg {
    match p {
        Packet::Connect(c) => Msg::Connect {
            client_id: c.client_id,
            clean_session: c.clean_start,
            keep_alive: c.keep_alive,
            will: c.will.map(|w| WillMsg {
                topic: w.topic,
                payload: w.payload,
                qos: w.qos as u8,
                retain: w.retain,
            }),
        },
        Packet::ConnAck(c) => Msg::ConnAck {
            code: c.code,
            session_present: c.session_present,
        },
        Packet::Publish(p) => Msg::Publish {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
        },
        Packet::PubAck(a) => Msg::PubAck {
            pkid: a.pkid,
            code: a.reason,
        },
        Packet::PubRec(a) => Msg::PubRec { pkid: a.pkid },
        Packet::PubRel(a) => Msg::PubRel { pkid: a.pkid },
        Packet::PubComp(a) => Msg::PubComp {
            pkid: a.pkid,
            code: a.reason,
        },
        Packet::Subscribe(s) => Msg::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.filter, f.qos as u8))
                .collect(),
        },
        Packet::SubAck(s) => Msg::SubAck {
            pkid: s.pkid,
            codes: s.codes,
        },
        Packet::Unsubscribe(u) => Msg::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        Packet::UnsubAck(u) => Msg::UnsubAck {
            pkid: u.pkid,
            codes: u.codes,
        },
        Packet::PingReq(_) => Msg::PingReq,
        Packet::PingResp(_) => Msg::PingResp,
        Packet::Disconnect(d) => Msg::Disconnect { code: d.reason },
        other => Msg::Other(other.packet_type().name().to_string()),
    }
}

fn qos(q: u8) -> QoS {
    QoS::from_u8(q.min(2)).unwrap_or_default()
}

/// A reason code as this version can say it in a packet of type `ty`: MQTT 5 keeps any code the
/// packet defines and says 0x80 "Unspecified error" for others; MQTT 3.1.1 has no reason codes in
/// these packets.
fn v5_reason(version: Version, ty: PacketType, code: u8) -> u8 {
    match version {
        Version::V4 => 0,
        Version::V5 if mqtt::reason::name(code, ty, version).is_some() => code,
        Version::V5 => 0x80,
    }
}

fn to_packet(m: &Msg, v: Version) -> Result<Packet, String> {
    Ok(match m {
        Msg::Connect {
            client_id,
            clean_session,
            keep_alive,
            will,
        } => Packet::Connect(mqtt::Connect {
            client_id: client_id.clone(),
            keep_alive: *keep_alive,
            clean_start: *clean_session,
            will: will.as_ref().map(|w| mqtt::Will {
                topic: w.topic.clone(),
                payload: w.payload.clone(),
                qos: qos(w.qos),
                retain: w.retain,
                ..mqtt::Will::default()
            }),
            ..mqtt::Connect::default()
        }),
        Msg::ConnAck {
            code,
            session_present,
        } => Packet::ConnAck(mqtt::ConnAck {
            code: match (v, code) {
                (_, 0) => 0,
                // 3.1.1's return codes 1..5 pass through; any other refusal is 0x05 "not
                // authorized", the one 3.1.1 has for policy.
                (Version::V4, 1..=5) => *code,
                (Version::V4, _) => 0x05,
                (Version::V5, _) => v5_reason(v, PacketType::ConnAck, *code),
            },
            // MQTT 3.1.1 §3.2.2.2: session present is 0 when the CONNACK refuses.
            session_present: *session_present && *code == 0,
            properties: match v {
                Version::V5 => mqtt::Properties(vec![mqtt::Property::new(
                    mqtt::PropertyId::MaximumQos,
                    mqtt::Value::Byte(1),
                )]),
                Version::V4 => mqtt::Properties::default(),
            },
        }),
        Msg::Publish {
            topic,
            payload,
            qos: q,
            retain,
            pkid,
        } => Packet::Publish(mqtt::Publish {
            qos: qos(*q),
            retain: *retain,
            topic: topic.clone(),
            pkid: *pkid,
            payload: payload.clone(),
            ..mqtt::Publish::default()
        }),
        Msg::PubAck { pkid, code } => Packet::PubAck(mqtt::PubAck {
            pkid: *pkid,
            reason: v5_reason(v, PacketType::PubAck, *code),
            ..mqtt::PubAck::default()
        }),
        Msg::PubRec { pkid } => Packet::PubRec(mqtt::PubRec {
            pkid: *pkid,
            ..mqtt::PubRec::default()
        }),
        Msg::PubRel { pkid } => Packet::PubRel(mqtt::PubRel {
            pkid: *pkid,
            ..mqtt::PubRel::default()
        }),
        Msg::PubComp { pkid, code } => Packet::PubComp(mqtt::PubComp {
            pkid: *pkid,
            reason: v5_reason(v, PacketType::PubComp, *code),
            ..mqtt::PubComp::default()
        }),
        Msg::Subscribe { pkid, filters } => Packet::Subscribe(mqtt::Subscribe {
            pkid: *pkid,
            filters: filters
                .iter()
                .map(|(f, q)| mqtt::Subscription {
                    filter: f.clone(),
                    qos: qos(*q),
                    ..mqtt::Subscription::default()
                })
                .collect(),
            ..mqtt::Subscribe::default()
        }),
        Msg::SubAck { pkid, codes } => Packet::SubAck(mqtt::SubAck {
            pkid: *pkid,
            codes: codes
                .iter()
                .map(|&c| match (v, c) {
                    (_, 0..=2) => c,
                    (Version::V4, _) => 0x80,
                    (Version::V5, _) => v5_reason(v, PacketType::SubAck, c),
                })
                .collect(),
            ..mqtt::SubAck::default()
        }),
        Msg::Unsubscribe { pkid, filters } => Packet::Unsubscribe(mqtt::Unsubscribe {
            pkid: *pkid,
            filters: filters.clone(),
            ..mqtt::Unsubscribe::default()
        }),
        Msg::UnsubAck { pkid, codes } => Packet::UnsubAck(mqtt::UnsubAck {
            pkid: *pkid,
            codes: match v {
                Version::V4 => Vec::new(),
                Version::V5 => codes
                    .iter()
                    .map(|&c| v5_reason(v, PacketType::UnsubAck, c))
                    .collect(),
            },
            ..mqtt::UnsubAck::default()
        }),
        Msg::PingReq => Packet::PingReq(mqtt::PingReq),
        Msg::PingResp => Packet::PingResp(mqtt::PingResp),
        Msg::Disconnect { code } => Packet::Disconnect(mqtt::Disconnect {
            reason: v5_reason(v, PacketType::Disconnect, *code),
            ..mqtt::Disconnect::default()
        }),
        Msg::Other(name) => return Err(format!("iotls does not send {name}")),
    })
}

/// Encode one packet and write it in one go, so it travels in one TLS record.
pub async fn write_msg<S: AsyncWrite + Unpin>(
    s: &mut S,
    version: Version,
    m: &Msg,
) -> std::io::Result<()> {
    let mut b = Vec::new();
    to_packet(m, version)
        .and_then(|p| p.encode(version, &mut b).map_err(|e| e.to_string()))
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
                keep_alive: 30,
                will: Some(WillMsg {
                    topic: "wills/pizza-button-1".into(),
                    payload: b"gone".to_vec(),
                    qos: 1,
                    retain: false,
                }),
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
                Msg::ConnAck {
                    code: 0,
                    session_present: true,
                },
                Msg::PubRel { pkid: 4 },
                Msg::Unsubscribe {
                    pkid: 5,
                    filters: vec!["iotbutton/#".into()],
                },
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
                    code: NOT_AUTHORIZED,
                    session_present: false,
                }
            )
            .await,
            Msg::ConnAck {
                code: 0x87,
                session_present: false
            }
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
            matches!(&r, Err(ReadError::Protocol(e)) if e.contains("protocol level 9")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_packet_over_the_limit_is_refused_from_its_header_without_waiting_for_it() {
        // PUBLISH claiming 256 MiB; the peer stays connected and sends nothing more.
        let (mut device, mut broker) = tokio::io::duplex(64);
        device
            .write_all(&[0x30, 0xff, 0xff, 0xff, 0x7f])
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let r = read_msg(
            &mut broker,
            &mut buf,
            &mut Some(Version::V4),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(&r, Err(ReadError::Protocol(e)) if e.contains("131072")),
            "{r:?}"
        );
        assert_eq!(buf.len(), 5, "only the fixed header was buffered");
    }

    #[tokio::test]
    async fn mqtt5_short_disconnects_and_several_packets_in_one_read() {
        // DISCONNECT 0x00 (no body), DISCONNECT 0x87 (no properties), PUBACK 0x87 (no properties).
        let wire = [0xe0, 0x00, 0xe0, 0x01, 0x87, 0x40, 0x03, 0x00, 0x05, 0x87];
        let mut src = &wire[..];
        let mut buf = BytesMut::new();
        let mut v = Some(Version::V5);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(
                read_msg(&mut src, &mut buf, &mut v, Duration::from_secs(1))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            got,
            [
                Msg::Disconnect { code: 0 },
                Msg::Disconnect { code: 0x87 },
                Msg::PubAck {
                    pkid: 5,
                    code: 0x87
                }
            ]
        );
        let r = read_msg(&mut src, &mut buf, &mut v, Duration::from_secs(1)).await;
        assert!(matches!(r, Err(ReadError::Closed)), "{r:?}");
    }
}
