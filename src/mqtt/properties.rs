//! MQTT 5 properties (MQTT 5 §2.2.2): a Variable Byte Integer length, then identifier–value
//! pairs. Each packet (and a CONNECT's will) allows its own set; only User Property, and
//! Subscription Identifier in PUBLISH, may repeat.

use super::data::{binary, put_binary, put_string, string, text};
use super::error::{refuse, EncodeError};
use super::{DecodeError, PacketType, Problem};
use crate::trace::Fields;
use crate::wire::{put_varint, Reader};

/// How a property's value is encoded (MQTT 5 §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Byte,
    TwoByte,
    FourByte,
    Varint,
    Utf8,
    Binary,
    Pair,
}

macro_rules! property_ids {
    ($($variant:ident = $id:literal, $name:literal, $kind:ident;)*) => {
        /// MQTT 5 property identifiers (MQTT 5 §2.2.2.2, Table 2-4).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum PropertyId {
            $($variant = $id,)*
        }

        impl PropertyId {
            pub fn from_u8(id: u8) -> Option<PropertyId> {
                match id {
                    $($id => Some(PropertyId::$variant),)*
                    _ => None,
                }
            }

            /// The specification's name, in lower case: `session expiry interval`, …
            pub fn name(self) -> &'static str {
                match self {
                    $(PropertyId::$variant => $name,)*
                }
            }

            pub fn kind(self) -> Kind {
                match self {
                    $(PropertyId::$variant => Kind::$kind,)*
                }
            }
        }
    };
}

property_ids! {
    PayloadFormatIndicator = 0x01, "payload format indicator", Byte;
    MessageExpiryInterval = 0x02, "message expiry interval", FourByte;
    ContentType = 0x03, "content type", Utf8;
    ResponseTopic = 0x08, "response topic", Utf8;
    CorrelationData = 0x09, "correlation data", Binary;
    SubscriptionIdentifier = 0x0b, "subscription identifier", Varint;
    SessionExpiryInterval = 0x11, "session expiry interval", FourByte;
    AssignedClientIdentifier = 0x12, "assigned client identifier", Utf8;
    ServerKeepAlive = 0x13, "server keep alive", TwoByte;
    AuthenticationMethod = 0x15, "authentication method", Utf8;
    AuthenticationData = 0x16, "authentication data", Binary;
    RequestProblemInformation = 0x17, "request problem information", Byte;
    WillDelayInterval = 0x18, "will delay interval", FourByte;
    RequestResponseInformation = 0x19, "request response information", Byte;
    ResponseInformation = 0x1a, "response information", Utf8;
    ServerReference = 0x1c, "server reference", Utf8;
    ReasonString = 0x1f, "reason string", Utf8;
    ReceiveMaximum = 0x21, "receive maximum", TwoByte;
    TopicAliasMaximum = 0x22, "topic alias maximum", TwoByte;
    TopicAlias = 0x23, "topic alias", TwoByte;
    MaximumQos = 0x24, "maximum QoS", Byte;
    RetainAvailable = 0x25, "retain available", Byte;
    UserProperty = 0x26, "user property", Pair;
    MaximumPacketSize = 0x27, "maximum packet size", FourByte;
    WildcardSubscriptionAvailable = 0x28, "wildcard subscription available", Byte;
    SubscriptionIdentifierAvailable = 0x29, "subscription identifier available", Byte;
    SharedSubscriptionAvailable = 0x2a, "shared subscription available", Byte;
}

/// Where a property block sits: in a packet, or in a CONNECT's will.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Packet(PacketType),
    Will,
}

impl PropertyId {
    /// Whether a property may appear at `place` (MQTT 5 §2.2.2.2, Table 2-4).
    pub fn allowed(self, place: Place) -> bool {
        use PacketType as T;
        use PropertyId::*;
        let Place::Packet(ty) = place else {
            return matches!(
                self,
                PayloadFormatIndicator
                    | MessageExpiryInterval
                    | ContentType
                    | ResponseTopic
                    | CorrelationData
                    | WillDelayInterval
                    | UserProperty
            );
        };
        match self {
            UserProperty => !matches!(ty, T::PingReq | T::PingResp),
            ReasonString => matches!(
                ty,
                T::ConnAck
                    | T::PubAck
                    | T::PubRec
                    | T::PubRel
                    | T::PubComp
                    | T::SubAck
                    | T::UnsubAck
                    | T::Disconnect
                    | T::Auth
            ),
            PayloadFormatIndicator
            | MessageExpiryInterval
            | ContentType
            | ResponseTopic
            | CorrelationData
            | TopicAlias => ty == T::Publish,
            SubscriptionIdentifier => matches!(ty, T::Publish | T::Subscribe),
            SessionExpiryInterval => matches!(ty, T::Connect | T::ConnAck | T::Disconnect),
            AuthenticationMethod | AuthenticationData => {
                matches!(ty, T::Connect | T::ConnAck | T::Auth)
            }
            RequestProblemInformation | RequestResponseInformation => ty == T::Connect,
            ReceiveMaximum | TopicAliasMaximum | MaximumPacketSize => {
                matches!(ty, T::Connect | T::ConnAck)
            }
            AssignedClientIdentifier
            | ServerKeepAlive
            | ResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => ty == T::ConnAck,
            ServerReference => matches!(ty, T::ConnAck | T::Disconnect),
            WillDelayInterval => false,
        }
    }

    /// Whether it may appear more than once at `place`.
    pub fn repeatable(self, place: Place) -> bool {
        self == PropertyId::UserProperty
            || (self == PropertyId::SubscriptionIdentifier
                && place == Place::Packet(PacketType::Publish))
    }
}

/// A property's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    TwoByte(u16),
    FourByte(u32),
    Varint(u32),
    Utf8(String),
    Binary(Vec<u8>),
    Pair(String, String),
}

impl Value {
    fn kind(&self) -> Kind {
        match self {
            Value::Byte(_) => Kind::Byte,
            Value::TwoByte(_) => Kind::TwoByte,
            Value::FourByte(_) => Kind::FourByte,
            Value::Varint(_) => Kind::Varint,
            Value::Utf8(_) => Kind::Utf8,
            Value::Binary(_) => Kind::Binary,
            Value::Pair(..) => Kind::Pair,
        }
    }

    /// The value as a number, for the integer kinds.
    pub fn number(&self) -> Option<u32> {
        match *self {
            Value::Byte(v) => Some(v.into()),
            Value::TwoByte(v) => Some(v.into()),
            Value::FourByte(v) | Value::Varint(v) => Some(v),
            _ => None,
        }
    }
}

/// One property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub id: PropertyId,
    pub value: Value,
}

impl Property {
    pub fn new(id: PropertyId, value: Value) -> Property {
        Property { id, value }
    }

    /// What the specification forbids in this value, if anything.
    fn value_problem(&self) -> Option<&'static str> {
        use PropertyId::*;
        let n = self.value.number();
        match self.id {
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable
                if n > Some(1) =>
            {
                Some("this property is 0 or 1")
            }
            ReceiveMaximum | MaximumPacketSize | TopicAlias | SubscriptionIdentifier
                if n == Some(0) =>
            {
                Some("this property may not be 0")
            }
            _ => None,
        }
    }

    /// The value as shown in a field.
    fn shown(&self) -> String {
        use PropertyId::*;
        let yes_no = |v: u32| if v == 0 { "0 (no)" } else { "1 (yes)" };
        match (&self.value, self.id) {
            (Value::Byte(v), PayloadFormatIndicator) => match v {
                0 => "0 (unspecified bytes)".to_string(),
                _ => "1 (UTF-8 text)".to_string(),
            },
            (
                Value::Byte(v),
                RetainAvailable
                | WildcardSubscriptionAvailable
                | SubscriptionIdentifierAvailable
                | SharedSubscriptionAvailable
                | RequestProblemInformation
                | RequestResponseInformation,
            ) => yes_no((*v).into()).to_string(),
            (Value::FourByte(u32::MAX), SessionExpiryInterval) => {
                "4294967295 s (never expires)".to_string()
            }
            (Value::FourByte(v), MaximumPacketSize) => format!("{v} bytes"),
            (Value::FourByte(v), _) => format!("{v} s"),
            (Value::TwoByte(v), ServerKeepAlive) => format!("{v} s"),
            (Value::Byte(v), _) => v.to_string(),
            (Value::TwoByte(v), _) => v.to_string(),
            (Value::Varint(v), _) => v.to_string(),
            (Value::Utf8(s), _) => text(s),
            (Value::Binary(b), _) => format!("{} bytes", b.len()),
            (Value::Pair(k, v), _) => format!("{} = {}", text(k), text(v)),
        }
    }
}

/// A block of properties, in wire order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties(pub Vec<Property>);

impl Properties {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first property with this identifier.
    pub fn get(&self, id: PropertyId) -> Option<&Value> {
        self.0.iter().find(|p| p.id == id).map(|p| &p.value)
    }

    /// Reads a property block at `place`, adding a field `name` (`properties`, `will
    /// properties`) for the whole block and one field per property under it.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        place: Place,
        f: &mut Fields,
        name: &'static str,
    ) -> Result<Properties, DecodeError> {
        let start = r.offset();
        let len = r.varint("property length")? as usize;
        let head_len = r.offset() - start;
        let mut s = r.sub(len, name)?;
        f.add(name, start, head_len + len, format!("{len} bytes"), 0);
        let mut props: Vec<Property> = Vec::new();
        while !s.is_empty() {
            let o = s.offset();
            let raw = s.varint("property identifier")?;
            let id = u8::try_from(raw)
                .ok()
                .and_then(PropertyId::from_u8)
                .ok_or_else(|| {
                    DecodeError::new("property identifier", o, Problem::UnknownProperty(raw))
                })?;
            let what = id.name();
            if !id.allowed(place) {
                return Err(DecodeError::new(what, o, Problem::PropertyNotAllowed(what)));
            }
            if !id.repeatable(place) && props.iter().any(|p| p.id == id) {
                return Err(DecodeError::new(what, o, Problem::DuplicateProperty(what)));
            }
            let value = match id.kind() {
                Kind::Byte => Value::Byte(s.u8(what)?),
                Kind::TwoByte => Value::TwoByte(s.u16(what)?),
                Kind::FourByte => Value::FourByte(s.u32(what)?),
                Kind::Varint => Value::Varint(s.varint(what)?),
                Kind::Utf8 => Value::Utf8(string(&mut s, what)?.2.to_string()),
                Kind::Binary => Value::Binary(binary(&mut s, what)?.2.to_vec()),
                Kind::Pair => {
                    let k = string(&mut s, "user property name")?.2.to_string();
                    let v = string(&mut s, "user property value")?.2.to_string();
                    Value::Pair(k, v)
                }
            };
            let p = Property { id, value };
            if let Some(rule) = p.value_problem() {
                return Err(DecodeError::new(what, o, Problem::Rule(rule)));
            }
            f.add(what, o, s.offset() - o, p.shown(), 1);
            props.push(p);
        }
        let has = |id| props.iter().any(|p| p.id == id);
        if has(PropertyId::AuthenticationData) && !has(PropertyId::AuthenticationMethod) {
            return Err(DecodeError::new(
                "authentication data",
                start,
                Problem::Rule("authentication data needs an authentication method"),
            ));
        }
        Ok(Properties(props))
    }

    /// Writes the block (its length, then each property) for `place`, refusing what decoding
    /// would refuse.
    pub(crate) fn encode(&self, place: Place, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut body = Vec::new();
        for (i, p) in self.0.iter().enumerate() {
            let what = p.id.name();
            if p.value.kind() != p.id.kind() {
                return refuse(what, "the value is not of this property's type");
            }
            if !p.id.allowed(place) {
                return refuse(what, "this property is not allowed here");
            }
            if !p.id.repeatable(place) && self.0[..i].iter().any(|q| q.id == p.id) {
                return refuse(what, "this property may appear only once");
            }
            if let Some(rule) = p.value_problem() {
                return refuse(what, rule);
            }
            body.push(p.id as u8);
            match &p.value {
                Value::Byte(v) => body.push(*v),
                Value::TwoByte(v) => body.extend_from_slice(&v.to_be_bytes()),
                Value::FourByte(v) => body.extend_from_slice(&v.to_be_bytes()),
                Value::Varint(v) => {
                    if put_varint(&mut body, *v as usize).is_none() {
                        return refuse(what, "over 268,435,455");
                    }
                }
                Value::Utf8(s) => put_string(&mut body, s, what)?,
                Value::Binary(b) => put_binary(&mut body, b, what)?,
                Value::Pair(k, v) => {
                    put_string(&mut body, k, "user property name")?;
                    put_string(&mut body, v, "user property value")?;
                }
            }
        }
        if self.get(PropertyId::AuthenticationData).is_some()
            && self.get(PropertyId::AuthenticationMethod).is_none()
        {
            return refuse(
                "authentication data",
                "authentication data needs an authentication method",
            );
        }
        if put_varint(out, body.len()).is_none() {
            return refuse("properties", "over 268,435,455 bytes");
        }
        out.extend_from_slice(&body);
        Ok(())
    }
}
