//! PUBLISH (MQTT 3.1.1 §3.3, MQTT 5 §3.3): an application message, in either direction.

use super::data::{put_packet_id, put_string, string, text, topic_name_problem};
use super::error::{refuse, EncodeError};
use super::fixed_header::{open, publish_flags, write};
use super::properties::{Place, Properties, PropertyId};
use super::{DecodeError, PacketType, Problem, QoS, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publish {
    /// A re-delivery of an earlier attempt (QoS > 0 only).
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in MQTT 5 when a topic alias stands for it.
    pub topic: String,
    /// Packet identifier; only QoS 1 and 2 carry one (0 here for QoS 0).
    pub pkid: u16,
    /// PUBLISH properties (MQTT 5 §3.3.2.3); always empty in MQTT 3.1.1.
    pub properties: Properties,
    pub payload: Vec<u8>,
}

const TY: PacketType = PacketType::Publish;

impl Publish {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Publish, Fields), DecodeError> {
        let mut f = Fields::default();
        let (h, mut r) = open(bytes, TY, version, &mut f)?;
        let qos = QoS::from_u8((h.flags >> 1) & 3).unwrap_or_default();
        let (o, l, topic) = string(&mut r, "topic")?;
        if let Some(rule) = topic_name_problem(topic, version) {
            return Err(DecodeError::new("topic", o, Problem::Rule(rule)));
        }
        f.add("topic", o, l, text(topic), 0);
        let pkid = match qos {
            QoS::AtMostOnce => 0,
            _ => super::data::packet_id(&mut r, &mut f)?,
        };
        let properties = match version {
            Version::V4 => Properties::default(),
            Version::V5 => Properties::decode(&mut r, Place::Packet(TY), &mut f, "properties")?,
        };
        if topic.is_empty() && properties.get(PropertyId::TopicAlias).is_none() {
            return Err(DecodeError::new(
                "topic",
                o,
                Problem::Rule("an empty topic name needs a topic alias"),
            ));
        }
        let o = r.offset();
        let payload = r.rest();
        let value = match std::str::from_utf8(payload) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("{} bytes (binary)", payload.len()),
        };
        f.add("payload", o, payload.len(), value, 0);
        let p = Publish {
            dup: h.flags & 0x08 != 0,
            qos,
            retain: h.flags & 1 != 0,
            topic: topic.to_string(),
            pkid,
            properties,
            payload: payload.to_vec(),
        };
        Ok((p, f))
    }

    /// The packet identifier is written only for QoS 1 and 2 (and must not be 0 then).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.dup && self.qos == QoS::AtMostOnce {
            return refuse("fixed header", "the DUP flag must be 0 on a QoS 0 PUBLISH");
        }
        if let Some(rule) = topic_name_problem(&self.topic, version) {
            return refuse("topic", rule);
        }
        if self.topic.is_empty() && self.properties.get(PropertyId::TopicAlias).is_none() {
            return refuse("topic", "an empty topic name needs a topic alias");
        }
        let mut b = Vec::with_capacity(self.topic.len() + self.payload.len() + 8);
        put_string(&mut b, &self.topic, "topic")?;
        if self.qos != QoS::AtMostOnce {
            put_packet_id(&mut b, self.pkid)?;
        }
        match version {
            Version::V5 => self.properties.encode(Place::Packet(TY), &mut b)?,
            Version::V4 if !self.properties.is_empty() => {
                return refuse("properties", "MQTT 3.1.1 has no properties")
            }
            Version::V4 => {}
        }
        b.extend_from_slice(&self.payload);
        write(TY, publish_flags(self.dup, self.qos, self.retain), &b, out)
    }
}
