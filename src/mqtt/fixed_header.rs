//! The fixed header every packet starts with (MQTT 3.1.1 §2.2, MQTT 5 §2.1): the packet type in
//! the high four bits of the first byte, flags in the low four, then the remaining length as a
//! Variable Byte Integer. [`frame`] cuts packets out of a byte stream.

use super::error::{refuse, EncodeError};
use super::{DecodeError, PacketType, Problem, QoS, Version};
use crate::trace::Fields;
use crate::wire::{self, Reader};

/// A parsed fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    /// The low four bits of the first byte.
    pub flags: u8,
    /// Bytes after the fixed header.
    pub remaining: usize,
    /// Bytes of the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// The whole packet's length.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining
    }

    /// Parses the fixed header at the start of `buf`: `Ok(None)` when more bytes are needed to
    /// know it. A packet longer than `max` is refused here, from its header alone, before
    /// anything of its body has to be buffered.
    pub fn parse(buf: &[u8], max: usize) -> Result<Option<FixedHeader>, DecodeError> {
        let mut r = Reader::new(buf);
        let Ok(first) = r.u8("fixed header") else {
            return Ok(None);
        };
        let Some(packet_type) = PacketType::from_u8(first >> 4) else {
            return Err(DecodeError::new(
                "fixed header",
                0,
                Problem::ReservedType(first >> 4),
            ));
        };
        let remaining = match r.varint("remaining length") {
            Ok(n) => n as usize,
            Err(wire::Error {
                kind: wire::ErrorKind::Truncated { .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let header = FixedHeader {
            packet_type,
            flags: first & 0x0f,
            remaining,
            header_len: r.offset(),
        };
        if header.packet_len() > max {
            return Err(DecodeError::new(
                "remaining length",
                1,
                Problem::TooLarge {
                    size: header.packet_len(),
                    max,
                },
            ));
        }
        Ok(Some(header))
    }
}

/// The length of the first packet in `buf` once all of it is there (`Ok(None)` until then).
pub fn frame(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    Ok(FixedHeader::parse(buf, max)?
        .map(|h| h.packet_len())
        .filter(|&n| buf.len() >= n))
}

/// Starts decoding one complete packet of type `ty`: checks its fixed header (type, the flags the
/// specification fixes, that `bytes` is exactly one packet), records the `fixed header` and
/// `remaining length` fields, and returns a reader over the body.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    ty: PacketType,
    version: Version,
    f: &mut Fields,
) -> Result<(FixedHeader, Reader<'a>), DecodeError> {
    let mut r = Reader::new(bytes);
    let first = r.u8("fixed header")?;
    if first >> 4 != ty as u8 {
        let problem = match first >> 4 {
            0 => Problem::ReservedType(0),
            found => Problem::WrongType {
                expected: ty,
                found,
            },
        };
        return Err(DecodeError::new("fixed header", 0, problem));
    }
    let remaining = r.varint("remaining length")? as usize;
    let h = FixedHeader {
        packet_type: ty,
        flags: first & 0x0f,
        remaining,
        header_len: r.offset(),
    };
    if ty == PacketType::Auth && version == Version::V4 {
        return Err(DecodeError::new(
            "fixed header",
            0,
            Problem::ReservedType(15),
        ));
    }
    let flags = h.flags;
    if ty == PacketType::Publish {
        let qos = (flags >> 1) & 3;
        if qos == 3 {
            return Err(DecodeError::new("fixed header", 0, Problem::InvalidQos(3)));
        }
        if qos == 0 && flags & 0x08 != 0 {
            return Err(DecodeError::new(
                "fixed header",
                0,
                Problem::Rule("the DUP flag must be 0 on a QoS 0 PUBLISH"),
            ));
        }
    } else if flags != ty.fixed_flags() {
        return Err(DecodeError::new(
            "fixed header",
            0,
            Problem::ReservedFlags {
                flags,
                expected: ty.fixed_flags(),
            },
        ));
    }
    let name = ty.name();
    let header_value = if ty == PacketType::Publish {
        format!(
            "{name} (type 3), dup={} qos={} retain={}",
            (flags >> 3) & 1,
            (flags >> 1) & 3,
            flags & 1
        )
    } else {
        format!("{name} (type {}), flags {flags:04b}", ty as u8)
    };
    f.add("fixed header", 0, 1, header_value, 0);
    f.add(
        "remaining length",
        1,
        h.header_len - 1,
        format!("{} bytes", h.remaining),
        0,
    );
    let total = h.packet_len();
    if bytes.len() < total {
        return Err(DecodeError::new(
            "remaining length",
            1,
            Problem::Truncated {
                needed: h.remaining,
                left: bytes.len() - h.header_len,
            },
        ));
    }
    if bytes.len() > total {
        return Err(DecodeError::new(
            "end of packet",
            total,
            Problem::Trailing(bytes.len() - total),
        ));
    }
    Ok((h, Reader::starting_at(bytes, h.header_len)))
}

/// Ends decoding: every byte of the packet must have been read.
pub(crate) fn finish(r: &Reader<'_>) -> Result<(), DecodeError> {
    match r.left() {
        0 => Ok(()),
        n => Err(DecodeError::new(
            "end of packet",
            r.offset(),
            Problem::Trailing(n),
        )),
    }
}

/// Writes a whole packet: the first byte (type and flags), the remaining length, the body.
pub(crate) fn write(
    ty: PacketType,
    flags: u8,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(((ty as u8) << 4) | (flags & 0x0f));
    if wire::put_varint(out, body.len()).is_none() {
        out.truncate(start);
        return refuse("remaining length", "the packet is over 256 MiB");
    }
    out.extend_from_slice(body);
    Ok(())
}

/// The flags of a PUBLISH's fixed header.
pub(crate) fn publish_flags(dup: bool, qos: QoS, retain: bool) -> u8 {
    (u8::from(dup) << 3) | ((qos as u8) << 1) | u8::from(retain)
}
