//! UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10): topic filters to forget.

use super::data::{packet_id, put_packet_id, put_string, string, text, topic_filter_problem};
use super::error::{refuse, EncodeError};
use super::fixed_header::{open, write};
use super::properties::{Place, Properties};
use super::{DecodeError, PacketType, Problem, Version};
use crate::trace::Fields;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    /// MQTT 5 properties (user properties); always empty in MQTT 3.1.1.
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<String>,
}

const TY: PacketType = PacketType::Unsubscribe;

impl Unsubscribe {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Unsubscribe, Fields), DecodeError> {
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, TY, version, &mut f)?;
        let pkid = packet_id(&mut r, &mut f)?;
        let properties = match version {
            Version::V4 => Properties::default(),
            Version::V5 => Properties::decode(&mut r, Place::Packet(TY), &mut f, "properties")?,
        };
        let mut filters = Vec::new();
        loop {
            let (o, l, filter) = string(&mut r, "topic filter")?;
            if let Some(rule) = topic_filter_problem(filter) {
                return Err(DecodeError::new("topic filter", o, Problem::Rule(rule)));
            }
            f.add("topic filter", o, l, text(filter), 0);
            filters.push(filter.to_string());
            if r.is_empty() {
                break;
            }
        }
        let p = Unsubscribe {
            pkid,
            properties,
            filters,
        };
        Ok((p, f))
    }

    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut b = Vec::new();
        put_packet_id(&mut b, self.pkid)?;
        match version {
            Version::V5 => self.properties.encode(Place::Packet(TY), &mut b)?,
            Version::V4 if !self.properties.is_empty() => {
                return refuse("properties", "MQTT 3.1.1 has no properties")
            }
            Version::V4 => {}
        }
        if self.filters.is_empty() {
            return refuse("topic filter", "an UNSUBSCRIBE needs at least one");
        }
        for filter in &self.filters {
            if let Some(rule) = topic_filter_problem(filter) {
                return refuse("topic filter", rule);
            }
            put_string(&mut b, filter, "topic filter")?;
        }
        write(TY, TY.fixed_flags(), &b, out)
    }
}
