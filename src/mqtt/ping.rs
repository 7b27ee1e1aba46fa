//! PINGREQ and PINGRESP (MQTT 3.1.1 §3.12–3.13, MQTT 5 §3.12–3.13): keep-alive, no body.

use super::error::EncodeError;
use super::fixed_header::{finish, open, write};
use super::{DecodeError, PacketType, Version};
use crate::trace::Fields;

/// The client checks the broker is there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PingReq;

/// The broker answers a PINGREQ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PingResp;

fn decode(bytes: &[u8], version: Version, ty: PacketType) -> Result<Fields, DecodeError> {
    let mut f = Fields::default();
    let (_, r) = open(bytes, ty, version, &mut f)?;
    finish(&r)?;
    Ok(f)
}

impl PingReq {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(PingReq, Fields), DecodeError> {
        Ok((PingReq, decode(bytes, version, PacketType::PingReq)?))
    }

    pub fn encode(&self, _version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write(PacketType::PingReq, 0, &[], out)
    }
}

impl PingResp {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(PingResp, Fields), DecodeError> {
        Ok((PingResp, decode(bytes, version, PacketType::PingResp)?))
    }

    pub fn encode(&self, _version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write(PacketType::PingResp, 0, &[], out)
    }
}
