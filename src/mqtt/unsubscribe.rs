//! UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10): topic filters to forget.

use super::data::{
    id_and_properties, put_id_and_properties, put_string, string, text, topic_filter_problem,
};
use super::error::{refuse, EncodeError};
use super::fixed_header::{open, write};
use super::properties::Properties;
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
        let (pkid, properties) = id_and_properties(&mut r, &mut f, TY, version)?;
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
        put_id_and_properties(&mut b, self.pkid, &self.properties, TY, version)?;
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
