//! AUTH (MQTT 5 §3.15; MQTT 3.1.1 has no such packet): a step of extended authentication.
//! `F0 00` means 0x00 Success without properties.

use super::disconnect::{decode_reason, encode_reason};
use super::error::{refuse, EncodeError};
use super::properties::Properties;
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication, 0x19 Re-authenticate.
    pub reason: u8,
    /// Authentication method and data, reason string, user properties.
    pub properties: Properties,
}

const TY: PacketType = PacketType::Auth;

impl Auth {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Auth, Fields), DecodeError> {
        let (reason, properties, f) = decode_reason(bytes, version, TY)?;
        Ok((Auth { reason, properties }, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if version == Version::V4 {
            return refuse("fixed header", "MQTT 3.1.1 has no AUTH packet");
        }
        encode_reason(TY, self.reason, &self.properties, version, out)
    }
}
