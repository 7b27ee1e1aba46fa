//! PUBCOMP (MQTT 3.1.1 §3.7, MQTT 5 §3.7): the last step of QoS 2, "complete".

use super::error::EncodeError;
use super::properties::Properties;
use super::{ack, DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PubComp {
    pub pkid: u16,
    /// MQTT 5 reason code (0 = success); always 0 in MQTT 3.1.1.
    pub reason: u8,
    /// MQTT 5 properties (reason string, user properties); always empty in MQTT 3.1.1.
    pub properties: Properties,
}

impl PubComp {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(PubComp, Fields), DecodeError> {
        let (a, f) = ack::decode(bytes, version, PacketType::PubComp)?;
        let p = PubComp {
            pkid: a.pkid,
            reason: a.reason,
            properties: a.properties,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (id, code, props) = (self.pkid, self.reason, &self.properties);
        ack::encode(PacketType::PubComp, id, code, props, version, out)
    }
}
