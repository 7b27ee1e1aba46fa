//! What PUBACK, PUBREC, PUBREL and PUBCOMP share (MQTT 3.1.1 §3.4–3.7, MQTT 5 §3.4–3.7): a
//! packet identifier and, in MQTT 5, a reason code and properties, both of which may be left
//! out (MQTT 5 §3.4.2.1: remaining length 2 means reason 0x00 Success and no properties; 3
//! means no properties).

use super::data::{packet_id, put_packet_id, put_reason_and_properties, reason_and_properties};
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::Properties;
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

/// The decoded body of an acknowledgement.
pub(crate) struct Ack {
    pub pkid: u16,
    pub reason: u8,
    pub properties: Properties,
}

pub(crate) fn decode(
    bytes: &[u8],
    version: Version,
    ty: PacketType,
) -> Result<(Ack, Fields), DecodeError> {
    let mut f = Fields::default();
    let (_, mut r) = open(bytes, ty, version, &mut f)?;
    let pkid = packet_id(&mut r, &mut f)?;
    let (reason, properties) = reason_and_properties(&mut r, &mut f, ty, version)?;
    finish(&r)?;
    let ack = Ack {
        pkid,
        reason,
        properties,
    };
    Ok((ack, f))
}

/// Writes the shortest form that says it all.
pub(crate) fn encode(
    ty: PacketType,
    pkid: u16,
    reason_code: u8,
    properties: &Properties,
    version: Version,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut b = Vec::with_capacity(4);
    put_packet_id(&mut b, pkid)?;
    match version {
        Version::V4 if reason_code != 0 => {
            return refuse("reason code", "MQTT 3.1.1 acknowledgements carry no reason")
        }
        Version::V4 if !properties.is_empty() => {
            return refuse("properties", "MQTT 3.1.1 has no properties")
        }
        Version::V4 => {}
        Version::V5 => put_reason_and_properties(&mut b, reason_code, properties, ty)?,
    }
    write(ty, ty.fixed_flags(), &b, out)
}

/// One acknowledgement packet type over [`decode`] and [`encode`]: the struct, its `decode` and
/// its `encode` (each packet keeps its own file and type; only the body is shared).
macro_rules! ack_packet {
    ($name:ident) => {
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub pkid: u16,
            /// MQTT 5 reason code (0 = success); always 0 in MQTT 3.1.1.
            pub reason: u8,
            /// MQTT 5 properties (reason string, user properties); always empty in MQTT 3.1.1.
            pub properties: $crate::mqtt::properties::Properties,
        }

        impl $name {
            pub fn decode(
                bytes: &[u8],
                version: $crate::mqtt::Version,
            ) -> Result<($name, $crate::trace::Fields), $crate::mqtt::DecodeError> {
                let (a, f) =
                    $crate::mqtt::ack::decode(bytes, version, $crate::mqtt::PacketType::$name)?;
                let p = $name {
                    pkid: a.pkid,
                    reason: a.reason,
                    properties: a.properties,
                };
                Ok((p, f))
            }

            pub fn encode(
                &self,
                version: $crate::mqtt::Version,
                out: &mut Vec<u8>,
            ) -> Result<(), $crate::mqtt::error::EncodeError> {
                $crate::mqtt::ack::encode(
                    $crate::mqtt::PacketType::$name,
                    self.pkid,
                    self.reason,
                    &self.properties,
                    version,
                    out,
                )
            }
        }
    };
}
pub(crate) use ack_packet;
