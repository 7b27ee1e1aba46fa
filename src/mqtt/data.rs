//! MQTT's data representations (MQTT 3.1.1 §1.5, MQTT 5 §1.5): UTF-8 strings and binary data
//! with a two-byte length, packet identifiers, topic names and filters — read with their offsets
//! and written back.

use super::error::{refuse, EncodeError};
use super::properties::{Place, Properties};
use super::{DecodeError, PacketType, Problem, QoS, Version};
use crate::trace::Fields;
use crate::wire::Reader;

/// A string as shown in a field: quoted and escaped.
pub fn text(s: &str) -> String {
    format!("{s:?}")
}

/// A UTF-8 string (MQTT 5 §1.5.4): `(offset, length with its prefix, the string)`. Ill-formed
/// UTF-8 and U+0000 are rejected.
pub(crate) fn string<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<(usize, usize, &'a str), DecodeError> {
    let (o, l, bytes) = r.lp16(what)?;
    let s = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::new(what, o + 2 + e.valid_up_to(), Problem::NotUtf8))?;
    if let Some(i) = s.find('\0') {
        return Err(DecodeError::new(what, o + 2 + i, Problem::NulCharacter));
    }
    Ok((o, l, s))
}

/// Binary data (MQTT 5 §1.5.6): `(offset, length with its prefix, the bytes)`.
pub(crate) fn binary<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<(usize, usize, &'a [u8]), DecodeError> {
    Ok(r.lp16(what)?)
}

/// A packet identifier, which must not be 0 (MQTT 5 §2.2.1); adds the `packet id` field.
pub(crate) fn packet_id(r: &mut Reader<'_>, f: &mut Fields) -> Result<u16, DecodeError> {
    let o = r.offset();
    let id = r.u16("packet id")?;
    if id == 0 {
        return Err(DecodeError::new("packet id", o, Problem::PacketIdZero));
    }
    f.add("packet id", o, 2, id.to_string(), 0);
    Ok(id)
}

/// A return or reason code, checked with `name` (which gives its words, or `None` when this
/// packet cannot carry it); adds a field named `field`. Returns the code and its words.
pub(crate) fn code(
    r: &mut Reader<'_>,
    f: &mut Fields,
    field: &'static str,
    name: impl Fn(u8) -> Option<&'static str>,
) -> Result<(u8, String), DecodeError> {
    let o = r.offset();
    let c = r.u8(field)?;
    let Some(words) = name(c) else {
        return Err(DecodeError::new(field, o, Problem::ReasonCode(c)));
    };
    let shown = format!("0x{c:02x} {words}");
    f.add(field, o, 1, shown.clone(), 0);
    Ok((c, shown))
}

/// The variable header SUBSCRIBE, SUBACK and UNSUBSCRIBE share: a packet identifier, then (MQTT
/// 5 only) the properties.
pub(crate) fn id_and_properties(
    r: &mut Reader<'_>,
    f: &mut Fields,
    ty: PacketType,
    version: Version,
) -> Result<(u16, Properties), DecodeError> {
    let pkid = packet_id(r, f)?;
    let properties = match version {
        Version::V4 => Properties::default(),
        Version::V5 => Properties::decode(r, Place::Packet(ty), f, "properties")?,
    };
    Ok((pkid, properties))
}

/// Writes [`id_and_properties`]; MQTT 3.1.1 has no properties to write.
pub(crate) fn put_id_and_properties(
    b: &mut Vec<u8>,
    pkid: u16,
    properties: &Properties,
    ty: PacketType,
    version: Version,
) -> Result<(), EncodeError> {
    put_packet_id(b, pkid)?;
    match version {
        Version::V5 => properties.encode(Place::Packet(ty), b),
        Version::V4 if !properties.is_empty() => {
            refuse("properties", "MQTT 3.1.1 has no properties")
        }
        Version::V4 => Ok(()),
    }
}

/// The optional MQTT 5 tail of acknowledgements, DISCONNECT and AUTH: a reason code, then
/// properties, either of which may be left out (the packet ends early). MQTT 3.1.1: neither.
pub(crate) fn reason_and_properties(
    r: &mut Reader<'_>,
    f: &mut Fields,
    ty: PacketType,
    version: Version,
) -> Result<(u8, Properties), DecodeError> {
    let mut reason_code = 0;
    let mut properties = Properties::default();
    if version == Version::V5 && !r.is_empty() {
        reason_code = code(r, f, "reason code", |c| super::reason::name(c, ty, version))?.0;
        if !r.is_empty() {
            properties = Properties::decode(r, Place::Packet(ty), f, "properties")?;
        }
    }
    Ok((reason_code, properties))
}

/// Writes [`reason_and_properties`] for MQTT 5 in its shortest form: nothing when the reason is
/// 0x00 and there are no properties, the reason alone when there are none.
pub(crate) fn put_reason_and_properties(
    b: &mut Vec<u8>,
    reason_code: u8,
    properties: &Properties,
    ty: PacketType,
) -> Result<(), EncodeError> {
    if super::reason::name(reason_code, ty, Version::V5).is_none() {
        return refuse("reason code", "not defined for this packet");
    }
    if reason_code != 0 || !properties.is_empty() {
        b.push(reason_code);
    }
    if !properties.is_empty() {
        properties.encode(Place::Packet(ty), b)?;
    }
    Ok(())
}

/// One code per filter until the packet ends, at least one (SUBACK; MQTT 5 UNSUBACK).
pub(crate) fn codes_to_end(
    r: &mut Reader<'_>,
    f: &mut Fields,
    field: &'static str,
    ty: PacketType,
    version: Version,
) -> Result<Vec<u8>, DecodeError> {
    let mut codes = Vec::new();
    loop {
        let (c, _) = code(r, f, field, |c| super::reason::name(c, ty, version))?;
        codes.push(c);
        if r.is_empty() {
            return Ok(codes);
        }
    }
}

/// Appends one code per filter; refuses an empty list (`none`) and a code `ty` does not define in
/// `version` (`undefined`).
pub(crate) fn put_codes(
    b: &mut Vec<u8>,
    codes: &[u8],
    (field, none, undefined): (&'static str, &'static str, &'static str),
    ty: PacketType,
    version: Version,
) -> Result<(), EncodeError> {
    if codes.is_empty() {
        return refuse(field, none);
    }
    for &c in codes {
        if super::reason::name(c, ty, version).is_none() {
            return refuse(field, undefined);
        }
        b.push(c);
    }
    Ok(())
}

/// What is wrong with a topic name (MQTT 5 §4.7.3): it may not hold wildcards, and in MQTT 3.1.1
/// it may not be empty (an empty one in MQTT 5 needs a topic alias, checked by PUBLISH).
pub(crate) fn topic_name_problem(topic: &str, version: Version) -> Option<&'static str> {
    if topic.contains(['+', '#']) {
        Some("a topic name may not contain the wildcards + or #")
    } else if topic.is_empty() && version == Version::V4 {
        Some("a topic name must be at least one character long")
    } else {
        None
    }
}

/// What is wrong with a topic filter (MQTT 5 §4.7.1): not empty; `#` only as the whole last
/// level; `+` only as a whole level.
pub(crate) fn topic_filter_problem(filter: &str) -> Option<&'static str> {
    if filter.is_empty() {
        return Some("a topic filter must be at least one character long");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Some("# must be a whole level, and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Some("+ must be a whole level");
        }
    }
    None
}

/// QoS from its two bits; 3 is an error for `field` at `offset`.
pub(crate) fn qos(bits: u8, field: &'static str, offset: usize) -> Result<QoS, DecodeError> {
    QoS::from_u8(bits).ok_or_else(|| DecodeError::new(field, offset, Problem::InvalidQos(bits)))
}

/// Writes a two-byte length and `bytes`.
pub(crate) fn put_binary(
    out: &mut Vec<u8>,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), EncodeError> {
    let Ok(n) = u16::try_from(bytes.len()) else {
        return refuse(what, "longer than 65,535 bytes");
    };
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes a UTF-8 string (U+0000 is refused, as decoding would refuse it).
pub(crate) fn put_string(
    out: &mut Vec<u8>,
    s: &str,
    what: &'static str,
) -> Result<(), EncodeError> {
    if s.contains('\0') {
        return refuse(what, "contains the null character U+0000");
    }
    put_binary(out, s.as_bytes(), what)
}

/// Writes a packet identifier, refusing 0.
pub(crate) fn put_packet_id(out: &mut Vec<u8>, id: u16) -> Result<(), EncodeError> {
    if id == 0 {
        return refuse("packet id", "packet identifier 0 is not allowed");
    }
    out.extend_from_slice(&id.to_be_bytes());
    Ok(())
}
