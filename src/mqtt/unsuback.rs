//! UNSUBACK (MQTT 3.1.1 §3.11, MQTT 5 §3.11): the packet identifier and, in MQTT 5, properties
//! and one reason code per filter of the UNSUBSCRIBE.

use super::data::{codes_to_end, packet_id, put_codes, put_packet_id};
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::{Place, Properties};
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsubAck {
    pub pkid: u16,
    /// MQTT 5 properties; always empty in MQTT 3.1.1.
    pub properties: Properties,
    /// MQTT 5: at least one; MQTT 3.1.1: none.
    pub codes: Vec<u8>,
}

const TY: PacketType = PacketType::UnsubAck;

impl UnsubAck {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(UnsubAck, Fields), DecodeError> {
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, TY, version, &mut f)?;
        let pkid = packet_id(&mut r, &mut f)?;
        let mut p = UnsubAck {
            pkid,
            ..UnsubAck::default()
        };
        if version == Version::V5 {
            p.properties = Properties::decode(&mut r, Place::Packet(TY), &mut f, "properties")?;
            p.codes = codes_to_end(&mut r, &mut f, "reason code", TY, version)?;
        }
        finish(&r)?;
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut b = Vec::new();
        put_packet_id(&mut b, self.pkid)?;
        match version {
            Version::V4 if !self.properties.is_empty() || !self.codes.is_empty() => {
                return refuse("reason code", "an MQTT 3.1.1 UNSUBACK has only a packet id")
            }
            Version::V4 => {}
            Version::V5 => {
                self.properties.encode(Place::Packet(TY), &mut b)?;
                let why = (
                    "reason code",
                    "an MQTT 5 UNSUBACK needs at least one",
                    "not defined for UNSUBACK",
                );
                put_codes(&mut b, &self.codes, why, TY, version)?;
            }
        }
        write(TY, 0, &b, out)
    }
}
