//! MQTT packet decoding for the trace: frames a byte stream into control packets, validates and
//! decodes each with `mqttbytes` (3.1.1 = v4, 5 = v5), and adds field offsets for the hex view.
//!
//! `mqttbytes` gives the meaning (client id, topic, QoS, …) but no byte positions, so a small
//! walker here ([`packet_fields`]) records where every field sits in the packet. Both work on one
//! complete frame at a time; the frame is cut out by this module's own fixed-header parser, which
//! also bounds memory ([`MAX_PACKET`]).
//!
//! A malformed packet becomes a packet named `MALFORMED` with the reason in `code`, and that
//! stream stops decoding (after a framing error there is no way to find the next packet).

use bytes::BytesMut;

use crate::trace::{Field, Fields, MqttPacket, MqttPacketType};

/// Largest packet (fixed header included) this decoder buffers. MQTT allows 256 MiB; an IoT
/// session in this program never comes close, and a bound keeps a hostile peer from making the
/// dissector allocate without limit.
pub const MAX_PACKET: usize = 1 << 20;

/// How many bytes of an undecodable packet are kept in its `hex`.
const MAX_MALFORMED_HEX: usize = 4096;

/// One direction of an MQTT conversation (device → broker, or broker → device).
#[derive(Debug, Default, Clone)]
pub struct MqttStream {
    buf: Vec<u8>,
    level: Option<u8>,
    stopped: Option<String>,
}

impl MqttStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Protocol level in use (4 = MQTT 3.1.1, 5 = MQTT 5): learned from a CONNECT on this stream
    /// or set with [`Self::set_protocol_level`]. Unknown means 3.1.1.
    pub fn protocol_level(&self) -> Option<u8> {
        self.level
    }

    /// Tells a broker→device stream which protocol the device's CONNECT asked for.
    pub fn set_protocol_level(&mut self, level: u8) {
        self.level = Some(level);
    }

    /// Why this stream stopped decoding, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Stops decoding (e.g. because a record in between could not be decrypted and the stream
    /// lost its place). Later pushes return nothing.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.stopped = Some(reason.into());
        self.buf.clear();
    }

    /// Bytes received that do not yet form a complete packet.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Feeds the next plaintext bytes of this direction (one record's worth) and returns the
    /// packets completed by them. `offset` of each packet is where it starts in `plaintext`;
    /// for a packet that began in an earlier push it is 0.
    pub fn push(&mut self, plaintext: &[u8]) -> Vec<MqttPacket> {
        let mut out = Vec::new();
        if self.stopped.is_some() {
            return out;
        }
        let carried = self.buf.len();
        self.buf.extend_from_slice(plaintext);
        let mut start = 0;
        loop {
            let avail = &self.buf[start..];
            match frame(avail) {
                Frame::Incomplete => break,
                Frame::Bad(reason) => {
                    let offset = start.saturating_sub(carried);
                    out.push(malformed(avail, offset, &reason));
                    self.stop(reason);
                    return out;
                }
                Frame::Complete(total) => {
                    let offset = start.saturating_sub(carried);
                    let bytes = self.buf[start..start + total].to_vec();
                    let packet = self.decode(&bytes, offset);
                    start += total;
                    if packet.packet == MqttPacketType::Malformed {
                        let reason = packet.code.clone().unwrap_or_default();
                        out.push(packet);
                        self.stop(reason);
                        return out;
                    }
                    out.push(packet);
                }
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Decodes one complete frame.
    fn decode(&mut self, bytes: &[u8], offset: usize) -> MqttPacket {
        let ptype = bytes[0] >> 4;
        if ptype == 1 {
            if let Some(level) = connect_level(bytes) {
                self.level = Some(level);
            }
        }
        let v5 = self.level == Some(5);
        let name = packet_name(ptype);
        let hdr_len = 1 + remaining_length(bytes).map(|(n, _)| n).unwrap_or(1);

        let mut p = MqttPacket {
            packet: MqttPacketType::from_nibble(ptype).unwrap_or_default(),
            hex: bytes.to_vec(),
            offset,
            level: self.level,
            ..Default::default()
        };

        if bytes.len() == hdr_len {
            // mqttbytes rejects an empty MQTT 5 DISCONNECT, which the standard allows.
            match ptype {
                12..=14 => {}
                _ => {
                    return malformed(
                        bytes,
                        offset,
                        &format!("a {name} packet needs a body, but its remaining length is 0"),
                    )
                }
            }
        } else if v5 && ptype == 14 && bytes.len() == hdr_len + 1 {
            // A DISCONNECT with a reason code and no properties, which the standard allows
            // (MQTT 5 §3.14.2.2) and mqttbytes 0.6 rejects; the fields walker reads the reason.
        } else if v5 {
            let mut b = BytesMut::from(bytes);
            match mqttbytes::v5::read(&mut b, MAX_PACKET) {
                Ok(pkt) => fill_v5(&mut p, pkt),
                Err(e) => return malformed(bytes, offset, &describe_error(e)),
            }
        } else {
            let mut b = BytesMut::from(bytes);
            match mqttbytes::v4::read(&mut b, MAX_PACKET) {
                Ok(pkt) => fill_v4(&mut p, pkt),
                Err(e) => return malformed(bytes, offset, &describe_error(e)),
            }
        }
        let (fields, code) = packet_fields(bytes, v5);
        p.fields = fields;
        p.code = code;
        typed_codes(&mut p, &bytes[hdr_len.min(bytes.len())..], v5);
        p
    }
}

/// The reason / return codes and subscription filters of a packet, as values (`body` is the
/// packet after its fixed header; the packet has already been validated).
fn typed_codes(p: &mut MqttPacket, body: &[u8], v5: bool) {
    // An MQTT 5 property block: a variable byte integer length, then that many bytes.
    let skip_props = |at: usize| -> Option<usize> {
        let mut len = 0usize;
        for i in 0..4 {
            let b = *body.get(at + i)?;
            len |= ((b & 0x7f) as usize) << (7 * i);
            if b & 0x80 == 0 {
                return Some(at + i + 1 + len);
            }
        }
        None
    };
    match p.packet {
        MqttPacketType::ConnAck => p.reason_code = body.get(1).copied(),
        MqttPacketType::PubAck
        | MqttPacketType::PubRec
        | MqttPacketType::PubRel
        | MqttPacketType::PubComp
            if v5 =>
        {
            p.reason_code = Some(body.get(2).copied().unwrap_or(0));
        }
        MqttPacketType::Disconnect if v5 => {
            p.reason_code = Some(body.first().copied().unwrap_or(0))
        }
        MqttPacketType::SubAck => {
            let at = if v5 { skip_props(2) } else { Some(2) };
            if let Some(codes) = at.and_then(|a| body.get(a..)) {
                p.reason_codes = codes.to_vec();
            }
        }
        MqttPacketType::Subscribe | MqttPacketType::Unsubscribe => {
            let mut at = if v5 { skip_props(2) } else { Some(2) };
            while let Some(a) = at {
                let Some(len) = body.get(a..a + 2) else { break };
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let Some(f) = body.get(a + 2..a + 2 + len) else {
                    break;
                };
                p.filters.push(String::from_utf8_lossy(f).into_owned());
                // SUBSCRIBE has an options byte after each filter.
                let opts = usize::from(p.packet == MqttPacketType::Subscribe);
                at = Some(a + 2 + len + opts).filter(|n| *n < body.len());
            }
        }
        _ => {}
    }
}

fn fill_v4(p: &mut MqttPacket, pkt: mqttbytes::v4::Packet) {
    use mqttbytes::v4::Packet as P;
    match pkt {
        P::Connect(c) => p.client_id = Some(c.client_id),
        P::Publish(x) => {
            p.topic = Some(x.topic);
            p.payload = String::from_utf8(x.payload.to_vec()).ok();
            p.qos = Some(x.qos as u8);
            p.pkid = (x.qos as u8 > 0).then_some(x.pkid);
            p.retain = Some(x.retain);
        }
        P::PubAck(x) => p.pkid = Some(x.pkid),
        P::PubRec(x) => p.pkid = Some(x.pkid),
        P::PubRel(x) => p.pkid = Some(x.pkid),
        P::PubComp(x) => p.pkid = Some(x.pkid),
        P::Subscribe(x) => {
            p.pkid = Some(x.pkid);
            p.topic = Some(
                x.filters
                    .iter()
                    .map(|f| f.path.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        P::SubAck(x) => p.pkid = Some(x.pkid),
        P::Unsubscribe(x) => {
            p.pkid = Some(x.pkid);
            p.topic = Some(x.topics.join(", "));
        }
        P::UnsubAck(x) => p.pkid = Some(x.pkid),
        P::ConnAck(_) | P::PingReq | P::PingResp | P::Disconnect => {}
    }
}

fn fill_v5(p: &mut MqttPacket, pkt: mqttbytes::v5::Packet) {
    use mqttbytes::v5::Packet as P;
    match pkt {
        P::Connect(c) => p.client_id = Some(c.client_id),
        P::Publish(x) => {
            p.topic = Some(x.topic);
            p.payload = String::from_utf8(x.payload.to_vec()).ok();
            p.qos = Some(x.qos as u8);
            p.pkid = (x.qos as u8 > 0).then_some(x.pkid);
            p.retain = Some(x.retain);
        }
        P::PubAck(x) => p.pkid = Some(x.pkid),
        P::PubRec(x) => p.pkid = Some(x.pkid),
        P::PubRel(x) => p.pkid = Some(x.pkid),
        P::PubComp(x) => p.pkid = Some(x.pkid),
        P::Subscribe(x) => {
            p.pkid = Some(x.pkid);
            p.topic = Some(
                x.filters
                    .iter()
                    .map(|f| f.path.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        P::SubAck(x) => p.pkid = Some(x.pkid),
        P::Unsubscribe(x) => {
            p.pkid = Some(x.pkid);
            p.topic = Some(x.filters.join(", "));
        }
        P::UnsubAck(x) => p.pkid = Some(x.pkid),
        P::ConnAck(_) | P::PingReq | P::PingResp | P::Disconnect(_) => {}
    }
}

/// `MALFORMED` packet with the reason in `code`.
fn malformed(bytes: &[u8], offset: usize, reason: &str) -> MqttPacket {
    MqttPacket {
        packet: MqttPacketType::Malformed,
        hex: bytes[..bytes.len().min(MAX_MALFORMED_HEX)].to_vec(),
        offset,
        code: Some(reason.to_string()),
        ..Default::default()
    }
}

/// `mqttbytes::Error` in words (it implements neither `std::error::Error` nor a useful Display).
fn describe_error(e: mqttbytes::Error) -> String {
    use mqttbytes::Error as E;
    match e {
        E::InvalidProtocol => "the protocol name is not \"MQTT\"".to_string(),
        E::InvalidProtocolLevel(n) => {
            format!("protocol level {n} is neither 4 (MQTT 3.1.1) nor 5 (MQTT 5)")
        }
        E::IncorrectPacketFormat | E::MalformedPacket => {
            "a field runs past the end of the packet".to_string()
        }
        E::BoundaryCrossed(n) => {
            format!("a length-prefixed field claims {n} bytes, more than the packet has left")
        }
        E::TopicNotUtf8 => "a string field is not valid UTF-8".to_string(),
        E::InvalidQoS(q) => format!("QoS {q} does not exist (only 0, 1 and 2 do)"),
        E::PacketIdZero => "packet identifier 0 is not allowed when QoS > 0".to_string(),
        E::PayloadRequired => "this packet type needs a body, but it has none".to_string(),
        E::InvalidConnectReturnCode(c) => format!("CONNACK return code 0x{c:02x} is not defined"),
        E::InvalidSubscribeReasonCode(c) => {
            format!("SUBACK return code 0x{c:02x} is not defined")
        }
        E::InvalidReason(c) => format!("reason code 0x{c:02x} is not defined"),
        E::InvalidPropertyType(t) => format!("MQTT 5 property 0x{t:02x} is not defined"),
        E::InvalidPacketType(t) => format!("packet type {t} is reserved"),
        E::MalformedRemainingLength => {
            "the remaining length continues past 4 bytes (MQTT allows at most 4)".to_string()
        }
        E::PayloadSizeLimitExceeded(n) => format!("the packet is {n} bytes, over the limit"),
        other => format!("mqttbytes rejected the packet: {other:?}"),
    }
}

enum Frame {
    Incomplete,
    Complete(usize),
    Bad(String),
}

/// Parses the remaining-length varint after the first byte: `(bytes used, value)`.
/// `None` when more bytes are needed; `Some(Err)` when it is malformed.
fn remaining_length(b: &[u8]) -> Option<(usize, usize)> {
    match varint(b.get(1..)?) {
        Some(Ok(v)) => Some(v),
        _ => None,
    }
}

/// MQTT Variable Byte Integer: `(bytes used, value)`; `None` = need more bytes.
fn varint(b: &[u8]) -> Option<Result<(usize, usize), String>> {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = *b.get(i)?;
        value |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(Ok((i + 1, value)));
        }
    }
    Some(Err(
        "the remaining length continues past 4 bytes (MQTT allows at most 4)".to_string(),
    ))
}

fn frame(b: &[u8]) -> Frame {
    let Some(&first) = b.first() else {
        return Frame::Incomplete;
    };
    let ptype = first >> 4;
    if ptype == 0 {
        return Frame::Bad(format!(
            "packet type 0 is reserved (first byte 0x{first:02x}): this is not an MQTT packet"
        ));
    }
    if ptype == 15 {
        return Frame::Bad("AUTH packets (type 15) are not decoded by iotls".to_string());
    }
    let (n, len) = match varint(&b[1..]) {
        None => return Frame::Incomplete,
        Some(Err(reason)) => return Frame::Bad(reason),
        Some(Ok(v)) => v,
    };
    let total = 1 + n + len;
    if total > MAX_PACKET {
        return Frame::Bad(format!(
            "the packet claims {total} bytes, more than the {MAX_PACKET} bytes iotls will buffer"
        ));
    }
    if b.len() < total {
        Frame::Incomplete
    } else {
        Frame::Complete(total)
    }
}

fn packet_name(t: u8) -> &'static str {
    match t {
        1 => "CONNECT",
        2 => "CONNACK",
        3 => "PUBLISH",
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        8 => "SUBSCRIBE",
        9 => "SUBACK",
        10 => "UNSUBSCRIBE",
        11 => "UNSUBACK",
        12 => "PINGREQ",
        13 => "PINGRESP",
        14 => "DISCONNECT",
        15 => "AUTH",
        _ => "RESERVED",
    }
}

/// The protocol level byte of a complete CONNECT frame, if it can be found.
fn connect_level(bytes: &[u8]) -> Option<u8> {
    let (n, _) = remaining_length(bytes)?;
    let at = 1 + n;
    let name_len = u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]) as usize;
    bytes.get(at + 2 + name_len).copied()
}

/// CONNACK return code (3.1.1) or reason code (5), in words.
pub fn connack_code(code: u8, v5: bool) -> String {
    let words = if v5 {
        match code {
            0x00 => "Success",
            0x80 => "Unspecified error",
            0x81 => "Malformed Packet",
            0x82 => "Protocol Error",
            0x83 => "Implementation specific error",
            0x84 => "Unsupported Protocol Version",
            0x85 => "Client Identifier not valid",
            0x86 => "Bad User Name or Password",
            0x87 => "Not authorized",
            0x88 => "Server unavailable",
            0x89 => "Server busy",
            0x8a => "Banned",
            0x8c => "Bad authentication method",
            0x90 => "Topic Name invalid",
            0x95 => "Packet too large",
            0x97 => "Quota exceeded",
            0x99 => "Payload format invalid",
            0x9a => "Retain not supported",
            0x9b => "QoS not supported",
            0x9c => "Use another server",
            0x9d => "Server moved",
            0x9f => "Connection rate exceeded",
            _ => "unknown",
        }
    } else {
        match code {
            0x00 => "Connection Accepted",
            0x01 => "Connection Refused, unacceptable protocol version",
            0x02 => "Connection Refused, identifier rejected",
            0x03 => "Connection Refused, Server unavailable",
            0x04 => "Connection Refused, bad user name or password",
            0x05 => "Connection Refused, not authorized",
            _ => "unknown",
        }
    };
    format!("0x{code:02x} {words}")
}

/// SUBACK return code (3.1.1) or reason code (5), in words.
pub fn suback_code(code: u8, v5: bool) -> String {
    let words = match (code, v5) {
        (0x00, false) => "Success - Maximum QoS 0",
        (0x01, false) => "Success - Maximum QoS 1",
        (0x02, false) => "Success - Maximum QoS 2",
        (0x80, false) => "Failure",
        (0x00, true) => "Granted QoS 0",
        (0x01, true) => "Granted QoS 1",
        (0x02, true) => "Granted QoS 2",
        (0x80, true) => "Unspecified error",
        (0x83, true) => "Implementation specific error",
        (0x87, true) => "Not authorized",
        (0x8f, true) => "Topic Filter invalid",
        (0x91, true) => "Packet Identifier in use",
        (0x97, true) => "Quota exceeded",
        (0x9e, true) => "Shared Subscriptions not supported",
        (0xa1, true) => "Subscription Identifiers not supported",
        (0xa2, true) => "Wildcard Subscriptions not supported",
        _ => "unknown",
    };
    format!("0x{code:02x} {words}")
}

/// Reason code of MQTT 5 acknowledgements and DISCONNECT, in words (the common ones).
fn reason_code(code: u8) -> String {
    let words = match code {
        0x00 => "Success",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x87 => "Not authorized",
        0x8b => "Server shutting down",
        0x8d => "Keep Alive timeout",
        0x8e => "Session taken over",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x95 => "Packet too large",
        0x97 => "Quota exceeded",
        0x99 => "Payload format invalid",
        _ => "unknown",
    };
    format!("0x{code:02x} {words}")
}

/// Cursor over one packet; positions are offsets into the packet.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let v = u16::from_be_bytes([*self.b.get(self.pos)?, *self.b.get(self.pos + 1)?]);
        self.pos += 2;
        Some(v)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    /// Length-prefixed (u16) bytes: `(start, total len incl. prefix, bytes)`.
    fn lp(&mut self) -> Option<(usize, usize, &'a [u8])> {
        let start = self.pos;
        let n = self.u16()? as usize;
        let s = self.take(n)?;
        Some((start, 2 + n, s))
    }
    fn left(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }
}

fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("(not UTF-8) {}", crate::trace::hex(b)),
    }
}

/// Field positions of one complete packet, and its return/reason code(s) in words.
pub fn packet_fields(bytes: &[u8], v5: bool) -> (Vec<Field>, Option<String>) {
    let mut f = Fields(Vec::new());
    let mut code = None;
    let _ = walk(bytes, v5, &mut f, &mut code);
    (f.0, code)
}

fn walk(bytes: &[u8], v5: bool, f: &mut Fields, code: &mut Option<String>) -> Option<()> {
    let first = *bytes.first()?;
    let ptype = first >> 4;
    let flags = first & 0x0f;
    let name = packet_name(ptype);
    let header_value = if ptype == 3 {
        format!(
            "{name} (type 3), dup={} qos={} retain={}",
            (flags >> 3) & 1,
            (flags >> 1) & 3,
            flags & 1
        )
    } else {
        format!("{name} (type {ptype}), flags {flags:04b}")
    };
    f.add("fixed header", 0, 1, header_value, 0);
    let (n, rem) = remaining_length(bytes)?;
    f.add("remaining length", 1, n, format!("{rem} bytes"), 0);
    let mut c = Cur {
        b: bytes,
        pos: 1 + n,
    };
    let qos = (flags >> 1) & 3;

    match ptype {
        1 => {
            let (o, l, pname) = c.lp()?;
            f.add("protocol name", o, l, text(pname), 0);
            let o = c.pos;
            let level = c.u8()?;
            let lv = match level {
                3 => "3 (MQTT 3.1)",
                4 => "4 (MQTT 3.1.1)",
                5 => "5 (MQTT 5)",
                _ => "unknown",
            };
            f.add("protocol level", o, 1, lv, 0);
            let o = c.pos;
            let cf = c.u8()?;
            let mut names = Vec::new();
            for (bit, n) in [
                (7, "username"),
                (6, "password"),
                (5, "will retain"),
                (2, "will flag"),
                (1, "clean session"),
            ] {
                if cf & (1 << bit) != 0 {
                    names.push(n.to_string());
                }
            }
            if cf & 0x04 != 0 {
                names.push(format!("will QoS {}", (cf >> 3) & 3));
            }
            let list = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            f.add("connect flags", o, 1, format!("0x{cf:02x}: {list}"), 0);
            let o = c.pos;
            let ka = c.u16()?;
            f.add("keep alive", o, 2, format!("{ka} s"), 0);
            if v5 {
                properties(&mut c, f)?;
            }
            let (o, l, id) = c.lp()?;
            f.add("client id", o, l, text(id), 0);
            if cf & 0x04 != 0 {
                if v5 {
                    properties(&mut c, f)?;
                }
                let (o, l, t) = c.lp()?;
                f.add("will topic", o, l, text(t), 0);
                let (o, l, m) = c.lp()?;
                f.add("will message", o, l, format!("{} bytes", m.len()), 0);
            }
            if cf & 0x80 != 0 {
                let (o, l, u) = c.lp()?;
                f.add("username", o, l, text(u), 0);
            }
            if cf & 0x40 != 0 {
                let (o, l, p) = c.lp()?;
                f.add("password", o, l, format!("{} bytes", p.len()), 0);
            }
        }
        2 => {
            let o = c.pos;
            let ack = c.u8()?;
            let sp = if ack & 1 != 0 { "yes" } else { "no" };
            f.add(
                "acknowledge flags",
                o,
                1,
                format!("session present: {sp}"),
                0,
            );
            let o = c.pos;
            let rc = c.u8()?;
            let words = connack_code(rc, v5);
            f.add(
                if v5 { "reason code" } else { "return code" },
                o,
                1,
                words.clone(),
                0,
            );
            *code = Some(words);
            if v5 && c.left() > 0 {
                properties(&mut c, f)?;
            }
        }
        3 => {
            let (o, l, t) = c.lp()?;
            f.add("topic", o, l, text(t), 0);
            if qos > 0 {
                let o = c.pos;
                let id = c.u16()?;
                f.add("packet id", o, 2, id.to_string(), 0);
            }
            if v5 {
                properties(&mut c, f)?;
            }
            let o = c.pos;
            let payload = c.take(c.left())?;
            let value = match std::str::from_utf8(payload) {
                Ok(s) => format!("{s:?}"),
                Err(_) => format!("{} bytes (binary)", payload.len()),
            };
            f.add("payload", o, payload.len(), value, 0);
        }
        4..=7 | 11 => {
            let o = c.pos;
            let id = c.u16()?;
            f.add("packet id", o, 2, id.to_string(), 0);
            if v5 && c.left() > 0 {
                if ptype == 11 {
                    properties(&mut c, f)?;
                    let mut codes = Vec::new();
                    while c.left() > 0 {
                        let o = c.pos;
                        let rc = reason_code(c.u8()?);
                        f.add("reason code", o, 1, rc.clone(), 0);
                        codes.push(rc);
                    }
                    *code = Some(codes.join(", "));
                } else {
                    let o = c.pos;
                    let rc = reason_code(c.u8()?);
                    f.add("reason code", o, 1, rc.clone(), 0);
                    *code = Some(rc);
                    if c.left() > 0 {
                        properties(&mut c, f)?;
                    }
                }
            }
        }
        8 | 10 => {
            let o = c.pos;
            let id = c.u16()?;
            f.add("packet id", o, 2, id.to_string(), 0);
            if v5 {
                properties(&mut c, f)?;
            }
            while c.left() > 0 {
                let start = c.pos;
                let (o, l, t) = c.lp()?;
                if ptype == 8 {
                    let oo = c.pos;
                    let opts = c.u8()?;
                    f.add(
                        "subscription",
                        start,
                        l + 1,
                        format!("{} (QoS {})", text(t), opts & 3),
                        0,
                    );
                    f.add("topic filter", o, l, text(t), 1);
                    let ov = if v5 {
                        format!(
                            "0x{opts:02x}: QoS {}, no local {}, retain as published {}, retain handling {}",
                            opts & 3,
                            (opts >> 2) & 1,
                            (opts >> 3) & 1,
                            (opts >> 4) & 3
                        )
                    } else {
                        format!("QoS {}", opts & 3)
                    };
                    f.add(
                        if v5 {
                            "subscription options"
                        } else {
                            "requested QoS"
                        },
                        oo,
                        1,
                        ov,
                        1,
                    );
                } else {
                    f.add("topic filter", o, l, text(t), 0);
                }
            }
        }
        9 => {
            let o = c.pos;
            let id = c.u16()?;
            f.add("packet id", o, 2, id.to_string(), 0);
            if v5 {
                properties(&mut c, f)?;
            }
            let mut codes = Vec::new();
            while c.left() > 0 {
                let o = c.pos;
                let rc = suback_code(c.u8()?, v5);
                f.add("return code", o, 1, rc.clone(), 0);
                codes.push(rc);
            }
            *code = Some(codes.join(", "));
        }
        14 if v5 && c.left() > 0 => {
            let o = c.pos;
            let rc = reason_code(c.u8()?);
            f.add("reason code", o, 1, rc.clone(), 0);
            *code = Some(rc);
            if c.left() > 0 {
                properties(&mut c, f)?;
            }
        }
        _ => {}
    }
    Some(())
}

/// MQTT 5 properties: one field for the whole block.
fn properties(c: &mut Cur<'_>, f: &mut Fields) -> Option<()> {
    let o = c.pos;
    let (n, len) = varint(c.b.get(c.pos..)?)?.ok()?;
    c.pos += n;
    c.take(len)?;
    f.add("properties", o, n + len, format!("{len} bytes"), 0);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client id "dev1", username "u".
    const CONNECT: &[u8] = &[
        0x10, // CONNECT, flags 0000
        0x13, // remaining length 19
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name "MQTT"
        0x04, // protocol level 4 (3.1.1)
        0x82, // connect flags: username, clean session
        0x00, 0x3c, // keep alive 60
        0x00, 0x04, b'd', b'e', b'v', b'1', // client id "dev1"
        0x00, 0x01, b'u', // username "u"
    ];

    // PUBLISH QoS 1, topic "a/b", packet id 10, payload "hi".
    const PUBLISH_QOS1: &[u8] = &[
        0x32, // PUBLISH, dup 0, qos 1, retain 0
        0x09, // remaining length 9
        0x00, 0x03, b'a', b'/', b'b', // topic "a/b"
        0x00, 0x0a, // packet id 10
        b'h', b'i', // payload "hi"
    ];

    #[test]
    fn connect_fields_and_client_id() {
        let mut s = MqttStream::new();
        let p = s.push(CONNECT);
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.packet.name(), "CONNECT");
        assert_eq!(p.client_id.as_deref(), Some("dev1"));
        assert_eq!(p.hex, CONNECT.to_vec());
        assert_eq!(s.protocol_level(), Some(4));
        let field = |n: &str| p.fields.iter().find(|f| f.name == n).unwrap().clone();
        let id = field("client id");
        assert_eq!((id.offset, id.len, id.value.as_str()), (12, 6, "\"dev1\""));
        let flags = field("connect flags");
        assert_eq!(
            (flags.offset, flags.value.as_str()),
            (9, "0x82: username, clean session")
        );
        assert_eq!(field("keep alive").value, "60 s");
        let u = field("username");
        assert_eq!((u.offset, u.len), (18, 3));
        assert_eq!(field("protocol level").value, "4 (MQTT 3.1.1)");
        // Every field lies inside the packet.
        for f in &p.fields {
            assert!(f.offset + f.len <= CONNECT.len(), "{f:?}");
        }
    }

    #[test]
    fn publish_split_across_two_pushes() {
        let mut s = MqttStream::new();
        assert!(s.push(&PUBLISH_QOS1[..4]).is_empty());
        assert_eq!(s.pending().len(), 4);
        let p = s.push(&PUBLISH_QOS1[4..]);
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.packet.name(), "PUBLISH");
        assert_eq!(p.topic.as_deref(), Some("a/b"));
        assert_eq!(p.payload.as_deref(), Some("hi"));
        assert_eq!((p.qos, p.pkid, p.retain), (Some(1), Some(10), Some(false)));
        assert_eq!(p.offset, 0);
        let payload = p.fields.iter().find(|f| f.name == "payload").unwrap();
        assert_eq!((payload.offset, payload.len), (9, 2));
        assert!(s.pending().is_empty());
    }

    #[test]
    fn two_packets_in_one_push_have_their_offsets() {
        let mut s = MqttStream::new();
        let mut bytes = CONNECT.to_vec();
        bytes.extend_from_slice(PUBLISH_QOS1);
        bytes.extend_from_slice(&[0xc0, 0x00]); // PINGREQ, remaining length 0
        let p = s.push(&bytes);
        let names: Vec<_> = p.iter().map(|p| (p.packet.name(), p.offset)).collect();
        assert_eq!(names, [("CONNECT", 0), ("PUBLISH", 21), ("PINGREQ", 32)]);
    }

    #[test]
    fn connack_and_suback_codes_in_words() {
        let mut s = MqttStream::new();
        let p = s.push(&[
            0x20, 0x02, // CONNACK, remaining length 2
            0x00, // session present: no
            0x05, // return code 5: not authorized
            0x90, 0x04, // SUBACK, remaining length 4
            0x00, 0x07, // packet id 7
            0x01, // granted QoS 1
            0x80, // failure
        ]);
        assert_eq!(
            p[0].code.as_deref(),
            Some("0x05 Connection Refused, not authorized")
        );
        assert_eq!(
            p[1].code.as_deref(),
            Some("0x01 Success - Maximum QoS 1, 0x80 Failure")
        );
        assert_eq!(p[1].pkid, Some(7));
    }

    #[test]
    fn v5_disconnect_with_a_reason_and_no_properties() {
        let mut s = MqttStream::new();
        s.set_protocol_level(5);
        let p = s.push(&[
            0xE0, 0x01, // DISCONNECT, remaining length 1
            0x87, // reason: Not authorized (properties may be omitted)
        ]);
        assert_eq!(p[0].packet.name(), "DISCONNECT");
        assert_eq!(p[0].code.as_deref(), Some("0x87 Not authorized"));
    }

    #[test]
    fn v5_connack_not_authorized() {
        let mut s = MqttStream::new();
        s.set_protocol_level(5);
        let p = s.push(&[
            0x20, 0x03, // CONNACK, remaining length 3
            0x00, // session present: no
            0x87, // reason: Not authorized
            0x00, // properties length 0
        ]);
        assert_eq!(p[0].packet.name(), "CONNACK");
        assert_eq!(p[0].code.as_deref(), Some("0x87 Not authorized"));
    }

    #[test]
    fn subscribe_filters_with_qos() {
        let mut s = MqttStream::new();
        let p = s.push(&[
            0x82, 0x08, // SUBSCRIBE (flags 0010), remaining length 8
            0x00, 0x01, // packet id 1
            0x00, 0x03, b'a', b'/', b'#', // filter "a/#"
            0x01, // requested QoS 1
        ]);
        assert_eq!(p[0].packet.name(), "SUBSCRIBE");
        assert_eq!(p[0].topic.as_deref(), Some("a/#"));
        let sub = p[0]
            .fields
            .iter()
            .find(|f| f.name == "subscription")
            .unwrap();
        assert_eq!(
            (sub.offset, sub.len, sub.value.as_str()),
            (4, 6, "\"a/#\" (QoS 1)")
        );
    }

    #[test]
    fn malformed_remaining_length_stops_the_stream() {
        let mut s = MqttStream::new();
        let p = s.push(&[
            0x30, // PUBLISH
            0xff, 0xff, 0xff,
            0xff, // four continuation bytes: a fifth length byte would follow
            0x01,
        ]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].packet.name(), "MALFORMED");
        assert!(
            p[0].code.as_deref().unwrap().contains("remaining length"),
            "{:?}",
            p[0].code
        );
        assert!(s.stopped().is_some());
        assert!(s.push(PUBLISH_QOS1).is_empty());
    }

    #[test]
    fn malformed_body_reported_by_mqttbytes() {
        let mut s = MqttStream::new();
        let p = s.push(&[
            0x32, 0x04, // PUBLISH qos 1, remaining length 4
            0x00, 0x09, // topic length 9 — but only 2 bytes follow
            b'a', b'b',
        ]);
        assert_eq!(p[0].packet.name(), "MALFORMED");
        assert!(
            p[0].code.as_deref().unwrap().contains("9 bytes"),
            "{:?}",
            p[0].code
        );
    }

    #[test]
    fn non_mqtt_bytes_are_malformed() {
        let mut s = MqttStream::new();
        let p = s.push(b"\x00GET / HTTP/1.1\r\n");
        assert_eq!(p[0].packet.name(), "MALFORMED");
        assert!(p[0].code.as_deref().unwrap().contains("type 0"));
    }

    #[test]
    fn any_single_byte_change_never_panics() {
        let mut all = CONNECT.to_vec();
        all.extend_from_slice(PUBLISH_QOS1);
        for i in 0..all.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff, all[i] ^ 0x40] {
                let mut b = all.clone();
                b[i] = v;
                let mut s = MqttStream::new();
                let _ = s.push(&b);
                let mut s5 = MqttStream::new();
                s5.set_protocol_level(5);
                for chunk in b.chunks(3) {
                    let _ = s5.push(chunk);
                }
            }
        }
    }
}
