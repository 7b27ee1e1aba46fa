//! MQTT packets for the trace: [`MqttStream`] cuts one direction's plaintext into packets,
//! decodes each with this crate's codec, and turns it into a [`trace::MqttPacket`] with its fields
//! and their byte offsets.
//!
//! A malformed packet becomes a packet named `MALFORMED` with the reason in `code`, and that
//! stream stops decoding (after a framing error there is no way to find the next packet).

use super::packet::{Packet, PacketType};
use super::{connect, frame, reason, Version, MAX_PACKET};
use crate::trace::{self, Field, MqttPacket, MqttPacketType};

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
            if avail.is_empty() {
                break;
            }
            let offset = start.saturating_sub(carried);
            match frame(avail, MAX_PACKET) {
                Ok(None) => break,
                Err(e) => {
                    let reason = e.to_string();
                    out.push(malformed(avail, offset, &reason));
                    self.stop(reason);
                    return out;
                }
                Ok(Some(total)) => {
                    let bytes = self.buf[start..start + total].to_vec();
                    start += total;
                    match self.decode(&bytes, offset) {
                        Ok(packet) => out.push(packet),
                        Err(reason) => {
                            out.push(malformed(&bytes, offset, &reason));
                            self.stop(reason);
                            return out;
                        }
                    }
                }
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Decodes one complete packet; a CONNECT sets the stream's version.
    fn decode(&mut self, bytes: &[u8], offset: usize) -> Result<MqttPacket, String> {
        if bytes.first().map(|b| b >> 4) == Some(PacketType::Connect as u8) {
            let v = connect::protocol_version(bytes).map_err(|e| e.to_string())?;
            self.level = Some(v.level());
        }
        let version = match self.level {
            Some(5) => Version::V5,
            _ => Version::V4,
        };
        let (packet, fields) = Packet::decode(bytes, version).map_err(|e| e.to_string())?;
        let mut p = to_trace(&packet, version, bytes, offset, fields.0);
        p.level = self.level;
        Ok(p)
    }
}

/// The trace's packet type: the one place a codec [`PacketType`] becomes the trace's.
fn trace_type(t: PacketType) -> MqttPacketType {
    MqttPacketType::from_nibble(t as u8).unwrap_or_default()
}

/// A decoded packet as the trace shows it. `code` is the words of its return or reason codes,
/// as they appear in its fields (none when the packet left them out).
///
/// The codes are also kept as values (`reason_code`, `reason_codes`): the outcome is computed
/// from those, never from the words. MQTT 3.1.1 acknowledgements carry no code at all.
fn to_trace(
    packet: &Packet,
    version: Version,
    bytes: &[u8],
    offset: usize,
    fields: Vec<Field>,
) -> MqttPacket {
    let v5 = version == Version::V5;
    let code: Vec<&str> = fields
        .iter()
        .filter(|f| f.name == "reason code" || f.name == "return code")
        .map(|f| f.value.as_str())
        .collect();
    let mut p = MqttPacket {
        packet: trace_type(packet.packet_type()),
        hex: bytes.to_vec(),
        offset,
        code: (!code.is_empty()).then(|| code.join(", ")),
        ..Default::default()
    };
    match packet {
        Packet::Connect(c) => p.client_id = Some(c.client_id.clone()),
        Packet::Publish(x) => {
            p.topic = Some(x.topic.clone());
            p.payload = String::from_utf8(x.payload.clone()).ok();
            p.qos = Some(x.qos as u8);
            p.pkid = (x.qos as u8 > 0).then_some(x.pkid);
            p.retain = Some(x.retain);
        }
        Packet::PubAck(x) => (p.pkid, p.reason_code) = (Some(x.pkid), v5.then_some(x.reason)),
        Packet::PubRec(x) => (p.pkid, p.reason_code) = (Some(x.pkid), v5.then_some(x.reason)),
        Packet::PubRel(x) => (p.pkid, p.reason_code) = (Some(x.pkid), v5.then_some(x.reason)),
        Packet::PubComp(x) => (p.pkid, p.reason_code) = (Some(x.pkid), v5.then_some(x.reason)),
        Packet::Subscribe(x) => {
            p.pkid = Some(x.pkid);
            p.filters = x.filters.iter().map(|f| f.filter.clone()).collect();
            p.topic = Some(p.filters.join(", "));
        }
        Packet::SubAck(x) => (p.pkid, p.reason_codes) = (Some(x.pkid), x.codes.clone()),
        Packet::Unsubscribe(x) => {
            p.pkid = Some(x.pkid);
            p.filters = x.filters.clone();
            p.topic = Some(x.filters.join(", "));
        }
        Packet::UnsubAck(x) => (p.pkid, p.reason_codes) = (Some(x.pkid), x.codes.clone()),
        Packet::ConnAck(c) => p.reason_code = Some(c.code),
        Packet::Disconnect(d) => p.reason_code = v5.then_some(d.reason),
        Packet::PingReq(_) | Packet::PingResp(_) | Packet::Auth(_) => {}
    }
    p.fields = fields;
    p
}

/// `MALFORMED` packet with the reason in `code`.
fn malformed(bytes: &[u8], offset: usize, reason: &str) -> trace::MqttPacket {
    MqttPacket {
        packet: MqttPacketType::Malformed,
        hex: bytes[..bytes.len().min(MAX_MALFORMED_HEX)].to_vec(),
        offset,
        code: Some(reason.to_string()),
        ..Default::default()
    }
}

fn version(v5: bool) -> Version {
    if v5 {
        Version::V5
    } else {
        Version::V4
    }
}

/// CONNACK return code (3.1.1) or reason code (5), in words.
pub fn connack_code(code: u8, v5: bool) -> String {
    reason::words(code, PacketType::ConnAck, version(v5))
}

/// SUBACK return code (3.1.1) or reason code (5), in words.
pub fn suback_code(code: u8, v5: bool) -> String {
    reason::words(code, PacketType::SubAck, version(v5))
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
    fn a_field_running_past_the_packet_is_malformed() {
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
