//! DISCONNECT (MQTT 3.1.1 §3.14, MQTT 5 §3.14): the end of a connection. In MQTT 3.1.1 it has no
//! body; in MQTT 5 it may carry a reason code and properties, both of which may be left out
//! (`E0 00` = 0x00 Normal disconnection, `E0 01 87` = 0x87 without properties).

use super::data::{put_reason_and_properties, reason_and_properties};
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::Properties;
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// MQTT 5 reason code (0 = normal disconnection); always 0 in MQTT 3.1.1.
    pub reason: u8,
    /// MQTT 5 properties; always empty in MQTT 3.1.1.
    pub properties: Properties,
}

const TY: PacketType = PacketType::Disconnect;

/// Decodes a packet made of an optional reason code and optional properties (DISCONNECT, AUTH).
pub(crate) fn decode_reason(
    bytes: &[u8],
    version: Version,
    ty: PacketType,
) -> Result<(u8, Properties, Fields), DecodeError> {
    let mut f = Fields::default();
    let (_, mut r) = open(bytes, ty, version, &mut f)?;
    let (reason_code, properties) = reason_and_properties(&mut r, &mut f, ty, version)?;
    finish(&r)?;
    Ok((reason_code, properties, f))
}

/// Writes such a packet in its shortest form.
pub(crate) fn encode_reason(
    ty: PacketType,
    reason_code: u8,
    properties: &Properties,
    version: Version,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut b = Vec::new();
    match version {
        Version::V4 if reason_code != 0 || !properties.is_empty() => {
            return refuse("reason code", "an MQTT 3.1.1 DISCONNECT has no body")
        }
        Version::V4 => {}
        Version::V5 => put_reason_and_properties(&mut b, reason_code, properties, ty)?,
    }
    write(ty, 0, &b, out)
}

impl Disconnect {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Disconnect, Fields), DecodeError> {
        let (reason, properties, f) = decode_reason(bytes, version, TY)?;
        Ok((Disconnect { reason, properties }, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_reason(TY, self.reason, &self.properties, version, out)
    }
}
