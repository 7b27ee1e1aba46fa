//! Why a packet could not be decoded or encoded.

use std::fmt;

use super::PacketType;
use crate::wire;

/// A packet that is not valid MQTT: which field, where in the packet, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The field being read, e.g. `topic`, `remaining length`.
    pub field: &'static str,
    /// Byte offset in the packet (0 = the fixed header's first byte).
    pub offset: usize,
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The field needs `needed` bytes; only `left` remain.
    Truncated { needed: usize, left: usize },
    /// A Variable Byte Integer continues past 4 bytes.
    VarintTooLong,
    /// A Variable Byte Integer uses more bytes than its value needs (MQTT 5 §1.5.5).
    VarintNotMinimal,
    /// The packet is larger than the limit.
    TooLarge { size: usize, max: usize },
    /// Packet type 0 (and 15 in MQTT 3.1.1) is reserved.
    ReservedType(u8),
    /// A decoder for one packet type was given another.
    WrongType { expected: PacketType, found: u8 },
    /// The fixed header's flags are not the ones the specification fixes for this type.
    ReservedFlags { flags: u8, expected: u8 },
    /// QoS 3 does not exist.
    InvalidQos(u8),
    /// A string that is not well-formed UTF-8.
    NotUtf8,
    /// A string containing U+0000, which MQTT forbids (MQTT 5 §1.5.4).
    NulCharacter,
    /// Packet identifier 0 where a non-zero one is required (MQTT 5 §2.2.1).
    PacketIdZero,
    /// Bytes left over after the last field.
    Trailing(usize),
    /// The protocol name of a CONNECT is not "MQTT".
    ProtocolName,
    /// A protocol level other than 4 (MQTT 3.1.1) and 5 (MQTT 5), or not the one expected.
    ProtocolLevel(u8),
    /// A return or reason code this packet type cannot carry.
    ReasonCode(u8),
    /// An MQTT 5 property identifier that does not exist.
    UnknownProperty(u32),
    /// A property this packet (or a will) may not carry.
    PropertyNotAllowed(&'static str),
    /// A property that may appear only once appears again.
    DuplicateProperty(&'static str),
    /// Any other rule of the specification, in words.
    Rule(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DecodeError { field, offset, .. } = self;
        write!(f, "{field} at offset {offset}: ")?;
        match &self.problem {
            Problem::Truncated { needed, left } => {
                write!(f, "needs {needed} bytes, but only {left} are left")
            }
            Problem::VarintTooLong => {
                write!(f, "continues past 4 bytes (MQTT allows at most 4)")
            }
            Problem::VarintNotMinimal => write!(f, "uses more bytes than its value needs"),
            Problem::TooLarge { size, max } => write!(
                f,
                "the packet claims {size} bytes, more than the {max} bytes iotls accepts"
            ),
            Problem::ReservedType(t) => {
                write!(f, "packet type {t} is reserved: this is not an MQTT packet")
            }
            Problem::WrongType { expected, found } => {
                write!(f, "packet type {found} is not {}", expected.name())
            }
            Problem::ReservedFlags { flags, expected } => write!(
                f,
                "flags {flags:04b} where the specification fixes {expected:04b}"
            ),
            Problem::InvalidQos(q) => write!(f, "QoS {q} does not exist (only 0, 1 and 2 do)"),
            Problem::NotUtf8 => write!(f, "not valid UTF-8"),
            Problem::NulCharacter => write!(f, "contains the null character U+0000"),
            Problem::PacketIdZero => write!(f, "packet identifier 0 is not allowed"),
            Problem::Trailing(n) => write!(f, "{n} bytes follow the last field"),
            Problem::ProtocolName => write!(f, "the protocol name is not \"MQTT\""),
            Problem::ProtocolLevel(l) => write!(
                f,
                "protocol level {l} is not the expected 4 (MQTT 3.1.1) or 5 (MQTT 5)"
            ),
            Problem::ReasonCode(c) => write!(f, "code 0x{c:02x} is not defined for this packet"),
            Problem::UnknownProperty(id) => write!(f, "property 0x{id:02x} does not exist"),
            Problem::PropertyNotAllowed(p) => write!(f, "{p} is not allowed here"),
            Problem::DuplicateProperty(p) => write!(f, "{p} appears more than once"),
            Problem::Rule(r) => write!(f, "{r}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<wire::Error> for DecodeError {
    fn from(e: wire::Error) -> Self {
        let problem = match e.kind {
            wire::ErrorKind::Truncated { needed, left } => Problem::Truncated { needed, left },
            wire::ErrorKind::VarintTooLong => Problem::VarintTooLong,
            wire::ErrorKind::VarintNotMinimal => Problem::VarintNotMinimal,
        };
        DecodeError {
            field: e.what,
            offset: e.offset,
            problem,
        }
    }
}

impl DecodeError {
    pub(crate) fn new(field: &'static str, offset: usize, problem: Problem) -> Self {
        DecodeError {
            field,
            offset,
            problem,
        }
    }
}

/// A packet value that has no encoding (a string over 65,535 bytes, QoS 3, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    pub field: &'static str,
    pub problem: &'static str,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode {}: {}", self.field, self.problem)
    }
}

impl std::error::Error for EncodeError {}

/// Shorthand for an [`EncodeError`].
pub(crate) fn refuse<T>(field: &'static str, problem: &'static str) -> Result<T, EncodeError> {
    Err(EncodeError { field, problem })
}
