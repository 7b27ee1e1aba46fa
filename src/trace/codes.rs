//! Wire values as types: handshake message types and alerts are their byte in memory and their RFC
//! name in JSON (`"ClientHello"`, `"unknown_ca"`), so no consumer compares names; bytes are
//! `Vec<u8>` in memory and lower-case hex in JSON.

use crate::tls::names;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A TLS handshake message type (RFC 5246 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandshakeType(pub u8);

impl HandshakeType {
    pub const CLIENT_HELLO: Self = Self(1);
    pub const SERVER_HELLO: Self = Self(2);
    pub const NEW_SESSION_TICKET: Self = Self(4);
    pub const CERTIFICATE: Self = Self(11);
    pub const SERVER_KEY_EXCHANGE: Self = Self(12);
    pub const CERTIFICATE_REQUEST: Self = Self(13);
    pub const SERVER_HELLO_DONE: Self = Self(14);
    pub const CERTIFICATE_VERIFY: Self = Self(15);
    pub const CLIENT_KEY_EXCHANGE: Self = Self(16);
    pub const FINISHED: Self = Self(20);

    /// RFC name, e.g. `ClientHello`, or `Unknown(N)`.
    pub fn name(self) -> String {
        names::handshake_name(self.0)
    }
}

impl fmt::Display for HandshakeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An alert level (1 warning, 2 fatal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertLevel(pub u8);

impl AlertLevel {
    pub const WARNING: Self = Self(1);
    pub const FATAL: Self = Self(2);

    pub fn name(self) -> String {
        names::alert_level(self.0)
    }
}

/// An alert description (RFC 5246 §7.2, RFC 8446 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    pub const CLOSE_NOTIFY: Self = Self(0);
    pub const UNEXPECTED_MESSAGE: Self = Self(10);
    pub const BAD_RECORD_MAC: Self = Self(20);
    pub const HANDSHAKE_FAILURE: Self = Self(40);
    pub const BAD_CERTIFICATE: Self = Self(42);
    pub const UNSUPPORTED_CERTIFICATE: Self = Self(43);
    pub const CERTIFICATE_REVOKED: Self = Self(44);
    pub const CERTIFICATE_EXPIRED: Self = Self(45);
    pub const CERTIFICATE_UNKNOWN: Self = Self(46);
    pub const UNKNOWN_CA: Self = Self(48);
    pub const ACCESS_DENIED: Self = Self(49);
    pub const DECODE_ERROR: Self = Self(50);
    pub const DECRYPT_ERROR: Self = Self(51);
    pub const PROTOCOL_VERSION: Self = Self(70);
    pub const INSUFFICIENT_SECURITY: Self = Self(71);
    pub const UNRECOGNIZED_NAME: Self = Self(112);
    pub const CERTIFICATE_REQUIRED: Self = Self(116);
    pub const NO_APPLICATION_PROTOCOL: Self = Self(120);

    /// RFC name, e.g. `unknown_ca`.
    pub fn name(self) -> String {
        names::alert_name(self.0)
    }
}

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Serialize a byte newtype as its name, and read it back from that name.
macro_rules! by_name_serde {
    ($ty:ident, $name:path, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$name(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                by_name(&s, $name)
                    .map($ty)
                    .ok_or_else(|| serde::de::Error::custom(format!(concat!($what, " {:?}"), s)))
            }
        }
    };
}

by_name_serde!(
    HandshakeType,
    names::handshake_name,
    "unknown handshake message"
);
by_name_serde!(AlertLevel, names::alert_level, "unknown alert level");
by_name_serde!(AlertDescription, names::alert_name, "unknown alert");

/// The byte whose name is `s` in a total naming function.
fn by_name(s: &str, name: impl Fn(u8) -> String) -> Option<u8> {
    (0..=u8::MAX).find(|b| name(*b) == s)
}

/// `Vec<u8>` as lower-case hex in JSON: `#[serde(with = "crate::trace::hexbytes")]`.
pub mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::hex(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::super::unhex(&s).ok_or_else(|| serde::de::Error::custom("malformed hex"))
    }

    /// `Option<Vec<u8>>` as hex or null.
    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match b {
                Some(b) => s.serialize_str(&super::super::super::hex(b)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::super::unhex(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("malformed hex")),
            }
        }
    }
}
