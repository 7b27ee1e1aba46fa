//! SUBACK (MQTT 3.1.1 §3.9, MQTT 5 §3.9): one code per filter of the SUBSCRIBE, the QoS granted
//! or a refusal.

use super::data::{code, packet_id, put_packet_id};
use super::error::{refuse, EncodeError};
use super::fixed_header::{open, write};
use super::properties::{Place, Properties};
use super::reason;
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    /// MQTT 5 properties (reason string, user properties); always empty in MQTT 3.1.1.
    pub properties: Properties,
    /// 0–2 = granted QoS; 0x80 and above = refused (MQTT 3.1.1 knows only 0x80).
    pub codes: Vec<u8>,
}

const TY: PacketType = PacketType::SubAck;

impl SubAck {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(SubAck, Fields), DecodeError> {
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, TY, version, &mut f)?;
        let pkid = packet_id(&mut r, &mut f)?;
        let properties = match version {
            Version::V4 => Properties::default(),
            Version::V5 => Properties::decode(&mut r, Place::Packet(TY), &mut f, "properties")?,
        };
        let mut codes = Vec::new();
        loop {
            let (c, _) = code(&mut r, &mut f, "return code", |c| {
                reason::name(c, TY, version)
            })?;
            codes.push(c);
            if r.is_empty() {
                break;
            }
        }
        let p = SubAck {
            pkid,
            properties,
            codes,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut b = Vec::new();
        put_packet_id(&mut b, self.pkid)?;
        match version {
            Version::V5 => self.properties.encode(Place::Packet(TY), &mut b)?,
            Version::V4 if !self.properties.is_empty() => {
                return refuse("properties", "MQTT 3.1.1 has no properties")
            }
            Version::V4 => {}
        }
        if self.codes.is_empty() {
            return refuse("return code", "a SUBACK needs at least one");
        }
        for &c in &self.codes {
            if reason::name(c, TY, version).is_none() {
                return refuse("return code", "not defined for SUBACK in this version");
            }
            b.push(c);
        }
        write(TY, 0, &b, out)
    }
}
