//! What PUBACK, PUBREC, PUBREL and PUBCOMP share (MQTT 3.1.1 §3.4–3.7, MQTT 5 §3.4–3.7): a
//! packet identifier and, in MQTT 5, a reason code and properties, both of which may be left
//! out (MQTT 5 §3.4.2.1: remaining length 2 means reason 0x00 Success and no properties; 3
//! means no properties).

use super::data::{code, packet_id, put_packet_id};
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::{Place, Properties};
use super::reason;
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
    let mut ack = Ack {
        pkid,
        reason: 0,
        properties: Properties::default(),
    };
    if version == Version::V5 && !r.is_empty() {
        ack.reason = code(&mut r, &mut f, "reason code", |c| {
            reason::name(c, ty, version)
        })?
        .0;
        if !r.is_empty() {
            ack.properties = Properties::decode(&mut r, Place::Packet(ty), &mut f, "properties")?;
        }
    }
    finish(&r)?;
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
        Version::V5 => {
            if reason::name(reason_code, ty, version).is_none() {
                return refuse("reason code", "not defined for this packet");
            }
            if reason_code != 0 || !properties.is_empty() {
                b.push(reason_code);
            }
            if !properties.is_empty() {
                properties.encode(Place::Packet(ty), &mut b)?;
            }
        }
    }
    write(ty, ty.fixed_flags(), &b, out)
}
