//! CONNACK (MQTT 3.1.1 §3.2, MQTT 5 §3.2): the broker's answer to CONNECT.

use super::data::code;
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::{Place, Properties};
use super::reason;
use super::{DecodeError, PacketType, Problem, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// The broker kept a session for this client.
    pub session_present: bool,
    /// Return code (MQTT 3.1.1: 0–5) or reason code (MQTT 5); 0 = accepted.
    pub code: u8,
    /// CONNACK properties (MQTT 5 §3.2.2.3); always empty in MQTT 3.1.1.
    pub properties: Properties,
}

const TY: PacketType = PacketType::ConnAck;

impl ConnAck {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(ConnAck, Fields), DecodeError> {
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, TY, version, &mut f)?;
        let o = r.offset();
        let flags = r.u8("acknowledge flags")?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::new(
                "acknowledge flags",
                o,
                Problem::Rule("bits 7-1 of the acknowledge flags are reserved and must be 0"),
            ));
        }
        let session_present = flags & 1 != 0;
        let sp = if session_present { "yes" } else { "no" };
        f.add(
            "acknowledge flags",
            o,
            1,
            format!("session present: {sp}"),
            0,
        );
        let field = match version {
            Version::V4 => "return code",
            Version::V5 => "reason code",
        };
        let at = r.offset();
        let (c, _) = code(&mut r, &mut f, field, |c| reason::name(c, TY, version))?;
        if c != 0 && session_present {
            return Err(DecodeError::new(
                "acknowledge flags",
                at - 1,
                Problem::Rule("session present must be 0 when the connection is refused"),
            ));
        }
        let properties = match version {
            Version::V4 => Properties::default(),
            Version::V5 => Properties::decode(&mut r, Place::Packet(TY), &mut f, "properties")?,
        };
        finish(&r)?;
        let p = ConnAck {
            session_present,
            code: c,
            properties,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if reason::name(self.code, TY, version).is_none() {
            return refuse("return code", "not defined for CONNACK in this version");
        }
        if self.code != 0 && self.session_present {
            return refuse(
                "acknowledge flags",
                "session present must be 0 when the connection is refused",
            );
        }
        let mut b = vec![u8::from(self.session_present), self.code];
        match version {
            Version::V5 => self.properties.encode(Place::Packet(TY), &mut b)?,
            Version::V4 if !self.properties.is_empty() => {
                return refuse("properties", "MQTT 3.1.1 has no properties")
            }
            Version::V4 => {}
        }
        write(TY, 0, &b, out)
    }
}
