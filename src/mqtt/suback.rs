//! SUBACK (MQTT 3.1.1 §3.9, MQTT 5 §3.9): one code per filter of the SUBSCRIBE, the QoS granted
//! or a refusal.

use super::data::{codes_to_end, id_and_properties, put_codes, put_id_and_properties};
use super::error::EncodeError;
use super::fixed_header::{open, write};
use super::properties::Properties;
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
        let (pkid, properties) = id_and_properties(&mut r, &mut f, TY, version)?;
        let codes = codes_to_end(&mut r, &mut f, "return code", TY, version)?;
        let p = SubAck {
            pkid,
            properties,
            codes,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut b = Vec::new();
        put_id_and_properties(&mut b, self.pkid, &self.properties, TY, version)?;
        let why = (
            "return code",
            "a SUBACK needs at least one",
            "not defined for SUBACK in this version",
        );
        put_codes(&mut b, &self.codes, why, TY, version)?;
        write(TY, 0, &b, out)
    }
}
