//! SUBSCRIBE (MQTT 3.1.1 §3.8, MQTT 5 §3.8): topic filters, each with its options.

use super::data::{
    id_and_properties, put_id_and_properties, put_string, qos, string, text, topic_filter_problem,
};
use super::error::{refuse, EncodeError};
use super::fixed_header::{open, write};
use super::properties::Properties;
use super::{DecodeError, PacketType, Problem, QoS, Version};
use crate::trace::Fields;

/// One topic filter and its options (MQTT 5 §3.8.3.1; MQTT 3.1.1 has only the QoS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub filter: String,
    /// The highest QoS the subscriber wants.
    pub qos: QoS,
    /// MQTT 5: do not send back this client's own messages.
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// MQTT 5: 0 = send retained messages, 1 = only on a new subscription, 2 = never.
    pub retain_handling: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    /// SUBSCRIBE properties (MQTT 5 §3.8.2.1); always empty in MQTT 3.1.1.
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<Subscription>,
}

const TY: PacketType = PacketType::Subscribe;

impl Subscription {
    fn options(&self, version: Version) -> Result<u8, EncodeError> {
        if version == Version::V4 {
            if self.no_local || self.retain_as_published || self.retain_handling != 0 {
                return refuse("subscription options", "MQTT 3.1.1 has only the QoS");
            }
            return Ok(self.qos as u8);
        }
        if self.retain_handling > 2 {
            return refuse("subscription options", "retain handling is 0, 1 or 2");
        }
        if self.no_local && self.filter.starts_with("$share/") {
            return refuse("subscription options", "no local on a shared subscription");
        }
        Ok(self.qos as u8
            | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | self.retain_handling << 4)
    }
}

impl Subscribe {
    pub fn decode(bytes: &[u8], version: Version) -> Result<(Subscribe, Fields), DecodeError> {
        let v5 = version == Version::V5;
        let mut f = Fields::default();
        let (_, mut r) = open(bytes, TY, version, &mut f)?;
        let (pkid, properties) = id_and_properties(&mut r, &mut f, TY, version)?;
        let mut filters = Vec::new();
        loop {
            let start = r.offset();
            let (o, l, filter) = string(&mut r, "topic filter")?;
            if let Some(rule) = topic_filter_problem(filter) {
                return Err(DecodeError::new("topic filter", o, Problem::Rule(rule)));
            }
            let oo = r.offset();
            let field = if v5 {
                "subscription options"
            } else {
                "requested QoS"
            };
            let opts = r.u8(field)?;
            let reserved = if v5 { 0xc0 } else { 0xfc };
            if opts & reserved != 0 {
                return Err(DecodeError::new(
                    field,
                    oo,
                    Problem::Rule("reserved bits of the subscription options must be 0"),
                ));
            }
            let sub = Subscription {
                filter: filter.to_string(),
                qos: qos(opts & 3, field, oo)?,
                no_local: opts & 0x04 != 0,
                retain_as_published: opts & 0x08 != 0,
                retain_handling: (opts >> 4) & 3,
            };
            if sub.retain_handling == 3 {
                return Err(DecodeError::new(
                    field,
                    oo,
                    Problem::Rule("retain handling 3 does not exist"),
                ));
            }
            if sub.no_local && filter.starts_with("$share/") {
                return Err(DecodeError::new(
                    field,
                    oo,
                    Problem::Rule("no local may not be set on a shared subscription"),
                ));
            }
            f.add(
                "subscription",
                start,
                l + 1,
                format!("{} (QoS {})", text(filter), opts & 3),
                0,
            );
            f.add("topic filter", o, l, text(filter), 1);
            let shown = if v5 {
                format!(
                    "0x{opts:02x}: QoS {}, no local {}, retain as published {}, retain handling {}",
                    opts & 3,
                    (opts >> 2) & 1,
                    (opts >> 3) & 1,
                    (opts >> 4) & 3
                )
            } else {
                format!("QoS {}", opts & 3)
            };
            f.add(field, oo, 1, shown, 1);
            filters.push(sub);
            if r.is_empty() {
                break;
            }
        }
        let p = Subscribe {
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
            return refuse("topic filter", "a SUBSCRIBE needs at least one");
        }
        for s in &self.filters {
            if let Some(rule) = topic_filter_problem(&s.filter) {
                return refuse("topic filter", rule);
            }
            put_string(&mut b, &s.filter, "topic filter")?;
            b.push(s.options(version)?);
        }
        write(TY, TY.fixed_flags(), &b, out)
    }
}
