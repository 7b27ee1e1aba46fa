//! The fifteen packet types, and [`Packet`]: any one packet, decoded or to be encoded.

use super::{
    Auth, ConnAck, Connect, DecodeError, Disconnect, EncodeError, PingReq, PingResp, Problem,
    PubAck, PubComp, PubRec, PubRel, SubAck, Subscribe, UnsubAck, Unsubscribe, Version,
};
use crate::trace::Fields;

/// MQTT control packet types (MQTT 5 §2.1.2; AUTH exists only in MQTT 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type in the high four bits of a fixed header; `None` for the reserved 0.
    pub fn from_u8(t: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match t {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The specification's name: `CONNECT`, `PUBACK`, …
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// The fixed-header flags the specification prescribes (MQTT 5 §2.1.3); PUBLISH's carry
    /// DUP, QoS and RETAIN instead.
    pub fn fixed_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// Any one packet.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(super::publish::Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq(PingReq),
    PingResp(PingResp),
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq(_) => PacketType::PingReq,
            Packet::PingResp(_) => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes one complete packet (exactly one: trailing bytes are an error) of a connection
    /// that speaks `version`. A CONNECT must name that version; to learn a connection's version
    /// from its CONNECT, see [`protocol_version`](super::connect::protocol_version).
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Packet, Fields), DecodeError> {
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::new(
                "fixed header",
                0,
                Problem::Truncated { needed: 2, left: 0 },
            ));
        };
        let Some(ty) = PacketType::from_u8(first >> 4) else {
            return Err(DecodeError::new(
                "fixed header",
                0,
                Problem::ReservedType(first >> 4),
            ));
        };
        fn wrap<T>(
            r: Result<(T, Fields), DecodeError>,
            f: fn(T) -> Packet,
        ) -> Result<(Packet, Fields), DecodeError> {
            r.map(|(p, fields)| (f(p), fields))
        }
        let b = bytes;
        let v = version;
        match ty {
            PacketType::Connect => wrap(Connect::decode(b, v), Packet::Connect),
            PacketType::ConnAck => wrap(ConnAck::decode(b, v), Packet::ConnAck),
            PacketType::Publish => wrap(super::publish::Publish::decode(b, v), Packet::Publish),
            PacketType::PubAck => wrap(PubAck::decode(b, v), Packet::PubAck),
            PacketType::PubRec => wrap(PubRec::decode(b, v), Packet::PubRec),
            PacketType::PubRel => wrap(PubRel::decode(b, v), Packet::PubRel),
            PacketType::PubComp => wrap(PubComp::decode(b, v), Packet::PubComp),
            PacketType::Subscribe => wrap(Subscribe::decode(b, v), Packet::Subscribe),
            PacketType::SubAck => wrap(SubAck::decode(b, v), Packet::SubAck),
            PacketType::Unsubscribe => wrap(Unsubscribe::decode(b, v), Packet::Unsubscribe),
            PacketType::UnsubAck => wrap(UnsubAck::decode(b, v), Packet::UnsubAck),
            PacketType::PingReq => wrap(PingReq::decode(b, v), Packet::PingReq),
            PacketType::PingResp => wrap(PingResp::decode(b, v), Packet::PingResp),
            PacketType::Disconnect => wrap(Disconnect::decode(b, v), Packet::Disconnect),
            PacketType::Auth => wrap(Auth::decode(b, v), Packet::Auth),
        }
    }

    /// Appends the packet's bytes to `out` (nothing is appended on error).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = match self {
            Packet::Connect(p) => p.encode(version, out),
            Packet::ConnAck(p) => p.encode(version, out),
            Packet::Publish(p) => p.encode(version, out),
            Packet::PubAck(p) => p.encode(version, out),
            Packet::PubRec(p) => p.encode(version, out),
            Packet::PubRel(p) => p.encode(version, out),
            Packet::PubComp(p) => p.encode(version, out),
            Packet::Subscribe(p) => p.encode(version, out),
            Packet::SubAck(p) => p.encode(version, out),
            Packet::Unsubscribe(p) => p.encode(version, out),
            Packet::UnsubAck(p) => p.encode(version, out),
            Packet::PingReq(p) => p.encode(version, out),
            Packet::PingResp(p) => p.encode(version, out),
            Packet::Disconnect(p) => p.encode(version, out),
            Packet::Auth(p) => p.encode(version, out),
        };
        if r.is_err() {
            out.truncate(start);
        }
        r
    }
}
