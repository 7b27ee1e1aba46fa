//! CONNECT (MQTT 3.1.1 §3.1, MQTT 5 §3.1): the client's first packet. Its protocol level fixes
//! the version of the whole connection.

use super::data::{binary, put_binary, put_string, qos, string, text};
use super::error::{refuse, EncodeError};
use super::fixed_header::{finish, open, write};
use super::properties::{Place, Properties};
use super::{DecodeError, PacketType, Problem, QoS, Version};
use crate::trace::Fields;
use crate::wire::Reader;

/// A will: the message the broker publishes if the client vanishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (MQTT 5 §3.1.3.2); always empty in MQTT 3.1.1.
    pub properties: Properties,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connect {
    /// May be empty (the broker then assigns one, or refuses).
    pub client_id: String,
    /// Seconds; 0 = no keep-alive.
    pub keep_alive: u16,
    /// "Clean Session" in MQTT 3.1.1, "Clean Start" in MQTT 5.
    pub clean_start: bool,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// CONNECT properties (MQTT 5 §3.1.2.11); always empty in MQTT 3.1.1.
    pub properties: Properties,
}

/// The version a complete CONNECT asks for, from its protocol name and level.
pub fn protocol_version(bytes: &[u8]) -> Result<Version, DecodeError> {
    let mut f = Fields::default();
    // Either version reads the fixed header and the protocol name the same way.
    let (_, mut r) = open(bytes, PacketType::Connect, Version::V5, &mut f)?;
    read_level(&mut r, &mut f)
}

/// Reads the protocol name and level; adds their fields.
fn read_level(r: &mut Reader<'_>, f: &mut Fields) -> Result<Version, DecodeError> {
    let (o, l, name) = string(r, "protocol name")?;
    if name != "MQTT" {
        return Err(DecodeError::new("protocol name", o, Problem::ProtocolName));
    }
    f.add("protocol name", o, l, text(name), 0);
    let o = r.offset();
    let level = r.u8("protocol level")?;
    let version = match level {
        4 => Version::V4,
        5 => Version::V5,
        _ => {
            return Err(DecodeError::new(
                "protocol level",
                o,
                Problem::ProtocolLevel(level),
            ))
        }
    };
    let shown = match version {
        Version::V4 => "4 (MQTT 3.1.1)",
        Version::V5 => "5 (MQTT 5)",
    };
    f.add("protocol level", o, 1, shown, 0);
    Ok(version)
}

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_FLAG: u8 = 0x04;
const CLEAN: u8 = 0x02;

impl Connect {
    /// Decodes a CONNECT of a connection speaking `version`; a CONNECT naming another level is
    /// an error (learn the level first with [`protocol_version`]).
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Connect, Fields), DecodeError> {
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, PacketType::Connect, version, &mut f)?;
        if read_level(&mut r, &mut f)? != version {
            return Err(DecodeError::new(
                "protocol level",
                r.offset() - 1,
                Problem::Rule("this CONNECT names the other MQTT version"),
            ));
        }
        let v5 = version == Version::V5;

        let o = r.offset();
        let cf = r.u8("connect flags")?;
        if cf & 0x01 != 0 {
            return Err(DecodeError::new(
                "connect flags",
                o,
                Problem::Rule("the reserved bit 0 of the connect flags must be 0"),
            ));
        }
        let will_flag = cf & WILL_FLAG != 0;
        let will_qos = qos((cf >> 3) & 3, "connect flags", o)?;
        if !will_flag && (will_qos != QoS::AtMostOnce || cf & WILL_RETAIN != 0) {
            return Err(DecodeError::new(
                "connect flags",
                o,
                Problem::Rule("will QoS and will retain must be 0 without a will"),
            ));
        }
        if !v5 && cf & PASSWORD != 0 && cf & USERNAME == 0 {
            return Err(DecodeError::new(
                "connect flags",
                o,
                Problem::Rule("in MQTT 3.1.1 a password needs a user name"),
            ));
        }
        let clean = if v5 { "clean start" } else { "clean session" };
        let mut names: Vec<String> = [
            (USERNAME, "username"),
            (PASSWORD, "password"),
            (WILL_RETAIN, "will retain"),
            (WILL_FLAG, "will flag"),
            (CLEAN, clean),
        ]
        .iter()
        .filter(|(bit, _)| cf & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
        if will_flag {
            names.push(format!("will QoS {}", will_qos as u8));
        }
        let list = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        f.add("connect flags", o, 1, format!("0x{cf:02x}: {list}"), 0);

        let o = r.offset();
        let keep_alive = r.u16("keep alive")?;
        f.add("keep alive", o, 2, format!("{keep_alive} s"), 0);
        let properties = if v5 {
            Properties::decode(
                &mut r,
                Place::Packet(PacketType::Connect),
                &mut f,
                "properties",
            )?
        } else {
            Properties::default()
        };

        let (o, l, client_id) = string(&mut r, "client id")?;
        f.add("client id", o, l, text(client_id), 0);
        let will = if will_flag {
            let properties = if v5 {
                Properties::decode(&mut r, Place::Will, &mut f, "will properties")?
            } else {
                Properties::default()
            };
            let (o, l, topic) = string(&mut r, "will topic")?;
            if let Some(rule) = super::data::topic_name_problem(topic, Version::V4) {
                return Err(DecodeError::new("will topic", o, Problem::Rule(rule)));
            }
            f.add("will topic", o, l, text(topic), 0);
            let (o, l, payload) = binary(&mut r, "will message")?;
            f.add("will message", o, l, format!("{} bytes", payload.len()), 0);
            Some(Will {
                topic: topic.to_string(),
                payload: payload.to_vec(),
                qos: will_qos,
                retain: cf & WILL_RETAIN != 0,
                properties,
            })
        } else {
            None
        };
        let username = if cf & USERNAME != 0 {
            let (o, l, u) = string(&mut r, "username")?;
            f.add("username", o, l, text(u), 0);
            Some(u.to_string())
        } else {
            None
        };
        let password = if cf & PASSWORD != 0 {
            let (o, l, p) = binary(&mut r, "password")?;
            f.add("password", o, l, format!("{} bytes", p.len()), 0);
            Some(p.to_vec())
        } else {
            None
        };
        finish(&r)?;
        let c = Connect {
            client_id: client_id.to_string(),
            keep_alive,
            clean_start: cf & CLEAN != 0,
            will,
            username,
            password,
            properties,
        };
        Ok((c, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let v5 = version == Version::V5;
        let mut b = Vec::new();
        put_string(&mut b, "MQTT", "protocol name")?;
        b.push(version.level());
        let mut cf = 0;
        if self.username.is_some() {
            cf |= USERNAME;
        }
        if self.password.is_some() {
            if !v5 && self.username.is_none() {
                return refuse("password", "in MQTT 3.1.1 a password needs a user name");
            }
            cf |= PASSWORD;
        }
        if let Some(w) = &self.will {
            cf |= WILL_FLAG | ((w.qos as u8) << 3);
            if w.retain {
                cf |= WILL_RETAIN;
            }
        }
        if self.clean_start {
            cf |= CLEAN;
        }
        b.push(cf);
        b.extend_from_slice(&self.keep_alive.to_be_bytes());
        if v5 {
            self.properties
                .encode(Place::Packet(PacketType::Connect), &mut b)?;
        } else if !self.properties.is_empty() {
            return refuse("properties", "MQTT 3.1.1 has no properties");
        }
        put_string(&mut b, &self.client_id, "client id")?;
        if let Some(w) = &self.will {
            if v5 {
                w.properties.encode(Place::Will, &mut b)?;
            } else if !w.properties.is_empty() {
                return refuse("will properties", "MQTT 3.1.1 has no properties");
            }
            if let Some(rule) = super::data::topic_name_problem(&w.topic, Version::V4) {
                return refuse("will topic", rule);
            }
            put_string(&mut b, &w.topic, "will topic")?;
            put_binary(&mut b, &w.payload, "will message")?;
        }
        if let Some(u) = &self.username {
            put_string(&mut b, u, "username")?;
        }
        if let Some(p) = &self.password {
            put_binary(&mut b, p, "password")?;
        }
        write(PacketType::Connect, 0, &b, out)
    }
}
