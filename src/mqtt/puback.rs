//! PUBACK (MQTT 3.1.1 §3.4, MQTT 5 §3.4): acknowledges a QoS 1 PUBLISH.

use super::error::EncodeError;
use super::properties::Properties;
use super::{ack, DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PubAck {
    pub pkid: u16,
    /// MQTT 5 reason code (0 = success); always 0 in MQTT 3.1.1.
    pub reason: u8,
    /// MQTT 5 properties (reason string, user properties); always empty in MQTT 3.1.1.
    pub properties: Properties,
}

impl PubAck {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(PubAck, Fields), DecodeError> {
        let (a, f) = ack::decode(bytes, version, PacketType::PubAck)?;
        let p = PubAck {
            pkid: a.pkid,
            reason: a.reason,
            properties: a.properties,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (id, code, props) = (self.pkid, self.reason, &self.properties);
        ack::encode(PacketType::PubAck, id, code, props, version, out)
    }
}
