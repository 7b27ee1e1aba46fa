//! MQTT 3.1.1 (OASIS 2014) and MQTT 5 (OASIS 2019) control packets: one decoder and encoder,
//! used by the engine (which acts on packets) and by the views (which show every field).
//!
//! Each packet type has its own file with a typed struct, `decode(bytes, version)` — the packet
//! and its [`Fields`](crate::trace::Fields) with byte offsets into the packet — and
//! `encode(&self, version, out)`. [`fixed_header`] frames a byte stream and refuses a packet over
//! a size limit ([`MAX_PACKET`] for the engine and the views) from its header, before its body is
//! buffered; [`properties`] reads MQTT 5 properties; [`codec`] turns packets into trace values.
//!
//! Decoding is total: truncated or malformed input gives a [`DecodeError`] naming the field and
//! its offset, and whatever the specifications forbid is rejected.

mod ack;
pub mod auth;
pub mod codec;
pub mod connack;
pub mod connect;
pub mod data;
pub mod disconnect;
pub mod error;
pub mod fixed_header;
pub mod packet;
pub mod ping;
pub mod properties;
pub mod puback;
pub mod pubcomp;
pub mod publish;
pub mod pubrec;
pub mod pubrel;
pub mod reason;
pub mod suback;
pub mod subscribe;
pub mod topic;
pub mod unsuback;
pub mod unsubscribe;

pub use auth::Auth;
pub use codec::MqttStream;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use error::{DecodeError, EncodeError, Problem};
pub use fixed_header::{frame, FixedHeader};
pub use packet::{Packet, PacketType};
pub use ping::{PingReq, PingResp};
pub use properties::{Properties, Property, PropertyId, Value};
pub use puback::PubAck;
pub use pubcomp::PubComp;
pub use publish::Publish;
pub use pubrec::PubRec;
pub use pubrel::PubRel;
pub use suback::SubAck;
pub use subscribe::{Subscribe, Subscription};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

/// Largest packet (fixed header included) iotls accepts, in the broker, the device and the views:
/// AWS IoT's limit of 128 KiB. MQTT itself allows 256 MiB.
pub const MAX_PACKET: usize = 128 * 1024;

/// The protocol version of a connection, fixed by its CONNECT's protocol level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

impl Version {
    /// The protocol level byte of a CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }
}

/// Quality of service of a message (MQTT 5 §4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// `None` for 3, which does not exist.
    pub fn from_u8(q: u8) -> Option<QoS> {
        match q {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}
