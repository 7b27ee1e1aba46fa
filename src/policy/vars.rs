//! Policy variables: what they are called, where their values come from, and how they resolve.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The 13 distinguished-name attributes AWS IoT documents, with their X.500 OIDs.
pub(crate) const DN_ATTRIBUTES: [(&str, &str); 13] = [
    ("DistinguishedNameQualifier", "2.5.4.46"),
    ("Country", "2.5.4.6"),
    ("Organization", "2.5.4.10"),
    ("OrganizationalUnit", "2.5.4.11"),
    ("State", "2.5.4.8"),
    ("CommonName", "2.5.4.3"),
    ("SerialNumber", "2.5.4.5"),
    ("Title", "2.5.4.12"),
    ("Surname", "2.5.4.4"),
    ("GivenName", "2.5.4.42"),
    ("Initials", "2.5.4.43"),
    ("Pseudonym", "2.5.4.65"),
    ("GenerationQualifier", "2.5.4.44"),
];

/// The five alternative-name kinds AWS IoT documents.
pub(crate) const ALT_NAMES: [&str; 5] = [
    "RFC822Name",
    "DNSName",
    "DirectoryName",
    "UniformResourceIdentifier",
    "IPAddress",
];

/// AWS: "Certificate attributes that contain arrays are limited to five items. Additional items
/// are ignored."
pub(crate) const MAX_ARRAY_ITEMS: usize = 5;
/// AWS: string values longer than 1024 characters are not substituted.
pub(crate) const MAX_STRING_LEN: usize = 1024;
/// AWS: a certificate value containing one of these is not substituted.
pub(crate) const CERT_WILDCARD_CHARS: [char; 5] = ['*', '$', '+', '?', '#'];

/// Everything the certificate policy variables can say about one certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertVars {
    /// `iot:CertificateId`: lower-case hex SHA-256 of the DER.
    pub certificate_id: String,
    /// `iot:Certificate.SerialNumber`: the certificate serial, decimal.
    pub serial_number: String,
    /// Subject attributes by AWS name (`CommonName`, `SerialNumber`, …), values in certificate order.
    pub subject: BTreeMap<String, Vec<String>>,
    /// Issuer attributes by AWS name.
    pub issuer: BTreeMap<String, Vec<String>>,
    /// Subject alternative names by kind (`DNSName`, `IPAddress`, …).
    pub subject_alt: BTreeMap<String, Vec<String>>,
    /// Issuer alternative names by kind.
    pub issuer_alt: BTreeMap<String, Vec<String>>,
}

/// `iot:CertificateId` of a DER certificate: lower-case hex SHA-256.
pub fn certificate_id(der: &[u8]) -> String {
    crate::trace::hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

impl CertVars {
    /// Reads every variable from one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertVars, String> {
        use x509_parser::prelude::*;
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut v = CertVars {
            certificate_id: certificate_id(der),
            serial_number: decimal(cert.raw_serial()),
            subject: dn_map(cert.subject()),
            issuer: dn_map(cert.issuer()),
            ..CertVars::default()
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    v.subject_alt = alt_map(&san.general_names)
                }
                ParsedExtension::IssuerAlternativeName(ian) => {
                    v.issuer_alt = alt_map(&ian.general_names)
                }
                _ => {}
            }
        }
        Ok(v)
    }

    /// Reads the first certificate of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<(CertVars, Vec<u8>), String> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        if p.label != "CERTIFICATE" {
            return Err(format!("PEM block is {:?}, expected CERTIFICATE", p.label));
        }
        Ok((CertVars::from_der(&p.contents)?, p.contents))
    }

    /// The names of the variables that have a value (`iot:Certificate.AvailableKeys`).
    pub fn available_keys(&self) -> Vec<String> {
        let mut keys = vec![
            "iot:Certificate.SerialNumber".to_string(),
            "iot:CertificateId".to_string(),
        ];
        for (side, map) in [("Subject", &self.subject), ("Issuer", &self.issuer)] {
            for (k, vals) in map {
                if !vals.is_empty() {
                    keys.push(format!("iot:Certificate.{side}.{k}"));
                }
            }
        }
        for (side, map) in [("Subject", &self.subject_alt), ("Issuer", &self.issuer_alt)] {
            for (k, vals) in map {
                if !vals.is_empty() {
                    keys.push(format!("iot:Certificate.{side}.AlternativeName.{k}"));
                }
            }
        }
        keys
    }
}

fn dn_map(name: &x509_parser::x509::X509Name<'_>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        if let Some((aws, _)) = DN_ATTRIBUTES.iter().find(|(_, o)| *o == oid) {
            let value = match attr.as_str() {
                Ok(s) => s.to_string(),
                Err(_) => String::from_utf8_lossy(attr.as_slice()).into_owned(),
            };
            m.entry(aws.to_string()).or_default().push(value);
        }
    }
    m
}

fn alt_map(names: &[x509_parser::extensions::GeneralName<'_>]) -> BTreeMap<String, Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in names {
        let (kind, value) = match n {
            GeneralName::RFC822Name(s) => ("RFC822Name", s.to_string()),
            GeneralName::DNSName(s) => ("DNSName", s.to_string()),
            GeneralName::URI(s) => ("UniformResourceIdentifier", s.to_string()),
            GeneralName::DirectoryName(dn) => ("DirectoryName", dn.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => (
                    "IPAddress",
                    IpAddr::from(<[u8; 4]>::try_from(*b).expect("4 bytes")).to_string(),
                ),
                16 => (
                    "IPAddress",
                    IpAddr::from(<[u8; 16]>::try_from(*b).expect("16 bytes")).to_string(),
                ),
                _ => continue,
            },
            _ => continue,
        };
        m.entry(kind.to_string()).or_default().push(value);
    }
    m
}

/// Big-endian unsigned bytes to decimal.
fn decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = vec![0]; // little-endian base-10 digits
    for &b in bytes {
        let mut carry = b as u32;
        for d in digits.iter_mut() {
            let x = *d as u32 * 256 + carry;
            *d = (x % 10) as u8;
            carry = x / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && *digits.last().expect("non-empty") == 0 {
        digits.pop();
    }
    digits.iter().rev().map(|d| (b'0' + d) as char).collect()
}

/// The thing a connection belongs to, as far as the registry knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingContext {
    /// Thing name (AWS takes it from the MQTT client id).
    pub name: String,
    /// Thing type, if it has one.
    pub type_name: Option<String>,
    /// Thing attributes.
    pub attributes: BTreeMap<String, String>,
    /// Whether the certificate that authenticated the connection is attached to the thing.
    pub is_attached: bool,
}

/// Everything one request is evaluated against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    /// MQTT client id of the connection (`iot:ClientId`).
    pub client_id: String,
    /// The certificate that authenticated the connection.
    pub cert: Option<CertVars>,
    /// The thing whose name is the client id, if the registry has one.
    pub thing: Option<ThingContext>,
    /// Peer address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// `iot:ConnectAttributes`: `PersistentConnect` (clean session off) and/or `LastWill`.
    pub connect_attrs: Vec<String>,
    /// Topic of the CONNECT's will message (`iot:LastWillTopic` compares its ARN).
    pub last_will_topic: Option<String>,
    /// Region of the ARNs (for `iot:LastWillTopic`).
    pub region: String,
    /// Account of the ARNs (for `iot:LastWillTopic`).
    pub account: String,
}

impl RequestContext {
    /// A context with only a client id (no certificate, thing or address).
    pub fn new(client_id: &str) -> RequestContext {
        RequestContext {
            client_id: client_id.to_string(),
            cert: None,
            thing: None,
            source_ip: None,
            connect_attrs: Vec::new(),
            last_will_topic: None,
            region: super::DEFAULT_REGION.to_string(),
            account: super::DEFAULT_ACCOUNT.to_string(),
        }
    }
}

/// What one request is evaluated against, borrowed: the fields of a [`RequestContext`], or of a
/// broker connection's [`super::Basis`], whose certificate variables are shared by every
/// connection of that certificate (so the certificate is read once, not at every request).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContextRef<'a> {
    pub client_id: &'a str,
    pub cert: Option<&'a CertVars>,
    pub thing: Option<&'a ThingContext>,
    pub source_ip: Option<IpAddr>,
    pub connect_attrs: &'a [String],
    pub last_will_topic: Option<&'a str>,
    pub region: &'a str,
    pub account: &'a str,
}

impl<'a> From<&'a RequestContext> for ContextRef<'a> {
    fn from(c: &'a RequestContext) -> Self {
        ContextRef {
            client_id: &c.client_id,
            cert: c.cert.as_ref(),
            thing: c.thing.as_ref(),
            source_ip: c.source_ip,
            connect_attrs: &c.connect_attrs,
            last_will_topic: c.last_will_topic.as_deref(),
            region: &c.region,
            account: &c.account,
        }
    }
}

/// Which value of a multi-valued attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sel {
    /// No suffix: the first value.
    First,
    /// `.N`: the value at zero-based index N (`.1` is the second value).
    Index(usize),
    /// `.List`: all values (conditions only).
    List,
}

/// A parsed variable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    ClientId,
    ThingName,
    ThingTypeName,
    ThingAttr(String),
    IsAttached,
    Dn {
        issuer: bool,
        attr: &'static str,
        sel: Sel,
    },
    Alt {
        issuer: bool,
        kind: &'static str,
        sel: Sel,
    },
    CertSerial,
    CertificateId,
    AvailableKeys,
    SourceIp,
    ConnectAttributes,
    LastWillTopic,
}

/// `${*}`, `${?}`, `${$}`: the literal characters.
pub(crate) fn escape_literal(name: &str) -> Option<char> {
    match name {
        "*" => Some('*'),
        "?" => Some('?'),
        "$" => Some('$'),
        _ => None,
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses a variable / condition-key name. Names are matched without regard to case (IAM condition
/// keys are case-insensitive); thing attribute names keep their case.
pub(crate) fn parse_var(name: &str) -> Result<Var, String> {
    let n = name.trim();
    for (k, v) in [
        ("iot:ClientId", Var::ClientId),
        ("iot:Connection.Thing.ThingName", Var::ThingName),
        ("iot:Connection.Thing.ThingTypeName", Var::ThingTypeName),
        ("iot:Connection.Thing.IsAttached", Var::IsAttached),
        ("iot:Certificate.SerialNumber", Var::CertSerial),
        ("iot:CertificateId", Var::CertificateId),
        ("iot:Certificate.AvailableKeys", Var::AvailableKeys),
        ("aws:SourceIp", Var::SourceIp),
        ("iot:ConnectAttributes", Var::ConnectAttributes),
        ("iot:LastWillTopic", Var::LastWillTopic),
    ] {
        if eq(n, k) {
            return Ok(v);
        }
    }
    let lower = n.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("iot:connection.thing.attributes[") {
        if rest.ends_with(']') && rest.len() > 1 {
            let start = "iot:Connection.Thing.Attributes[".len();
            return Ok(Var::ThingAttr(n[start..n.len() - 1].to_string()));
        }
        return Err(format!(
            "`{n}`: write a thing attribute as iot:Connection.Thing.Attributes[name]"
        ));
    }
    for (prefix, issuer) in [
        ("iot:certificate.subject.", false),
        ("iot:certificate.issuer.", true),
    ] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let original = &n[prefix.len()..];
            let (base, sel) = split_selector(original)?;
            if let Some(kind) = base.strip_prefix("AlternativeName.").or_else(|| {
                base.to_ascii_lowercase()
                    .starts_with("alternativename.")
                    .then(|| &base["AlternativeName.".len()..])
            }) {
                if let Some(k) = ALT_NAMES.iter().find(|k| eq(k, kind)) {
                    return Ok(Var::Alt {
                        issuer,
                        kind: k,
                        sel,
                    });
                }
                return Err(format!(
                    "unknown variable `{n}`: alternative names are {}",
                    ALT_NAMES.join(", ")
                ));
            }
            if let Some((a, _)) = DN_ATTRIBUTES.iter().find(|(a, _)| eq(a, base)) {
                return Ok(Var::Dn {
                    issuer,
                    attr: a,
                    sel,
                });
            }
            let _ = rest;
            return Err(format!(
                "unknown variable `{n}`: certificate attributes are {}",
                DN_ATTRIBUTES
                    .iter()
                    .map(|(a, _)| *a)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let hint = if lower == "iot:thing.thingname" || lower == "iot:thingname" {
        " (did you mean iot:Connection.Thing.ThingName?)"
    } else {
        ""
    };
    Err(format!("unknown variable `{n}`{hint}"))
}

/// Splits `CommonName.2` / `CommonName.List` / `CommonName`.
fn split_selector(s: &str) -> Result<(&str, Sel), String> {
    if let Some((base, last)) = s.rsplit_once('.') {
        if eq(last, "List") {
            return Ok((base, Sel::List));
        }
        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            let i: usize = last
                .parse()
                .map_err(|_| format!("index `{last}` is too large"))?;
            return Ok((base, Sel::Index(i)));
        }
    }
    Ok((s, Sel::First))
}

/// The value of a variable for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    One(String),
    Many(Vec<String>),
    /// The key does not exist for this request (no certificate attribute, no thing, …).
    Absent(String),
    /// The key exists but AWS would not substitute it (wildcard character, too long, bad index).
    Unusable(String),
}

impl Var {
    /// Where the value comes from, for people.
    pub fn source(&self) -> &'static str {
        match self {
            Var::ClientId => "the MQTT CONNECT client id",
            Var::ThingName | Var::ThingTypeName | Var::ThingAttr(_) | Var::IsAttached => {
                "the registry's thing"
            }
            Var::Dn { issuer: false, .. } | Var::Alt { issuer: false, .. } => {
                "the certificate subject"
            }
            Var::Dn { issuer: true, .. } | Var::Alt { issuer: true, .. } => {
                "the certificate issuer"
            }
            Var::CertSerial | Var::CertificateId | Var::AvailableKeys => "the certificate",
            Var::SourceIp => "the TCP peer address",
            Var::ConnectAttributes | Var::LastWillTopic => "the MQTT CONNECT packet",
        }
    }

    pub fn resolve(&self, ctx: ContextRef<'_>) -> Value {
        match self {
            Var::ClientId => Value::One(ctx.client_id.to_string()),
            Var::ThingName | Var::ThingTypeName | Var::ThingAttr(_) => {
                let thing = match attached_thing(ctx) {
                    Ok(t) => t,
                    Err(why) => return Value::Absent(why),
                };
                match self {
                    Var::ThingName => Value::One(thing.name.clone()),
                    Var::ThingTypeName => match &thing.type_name {
                        Some(t) => Value::One(t.clone()),
                        None => Value::Absent(format!("thing `{}` has no thing type", thing.name)),
                    },
                    Var::ThingAttr(a) => match thing.attributes.get(a) {
                        Some(v) => Value::One(v.clone()),
                        None => {
                            Value::Absent(format!("thing `{}` has no attribute `{a}`", thing.name))
                        }
                    },
                    _ => unreachable!(),
                }
            }
            Var::IsAttached => Value::One(attached_thing(ctx).is_ok().to_string()),
            Var::Dn { issuer, attr, sel } => {
                let Some(cert) = ctx.cert else {
                    return Value::Absent("no certificate authenticated this connection".into());
                };
                let map = if *issuer { &cert.issuer } else { &cert.subject };
                let side = if *issuer { "issuer" } else { "subject" };
                cert_values(
                    map.get(*attr),
                    &format!("the certificate {side} has no {attr}"),
                    *sel,
                )
            }
            Var::Alt { issuer, kind, sel } => {
                let Some(cert) = ctx.cert else {
                    return Value::Absent("no certificate authenticated this connection".into());
                };
                let map = if *issuer {
                    &cert.issuer_alt
                } else {
                    &cert.subject_alt
                };
                let side = if *issuer { "issuer" } else { "subject" };
                cert_values(
                    map.get(*kind),
                    &format!("the certificate has no {side} alternative name of type {kind}"),
                    *sel,
                )
            }
            Var::CertSerial | Var::CertificateId | Var::AvailableKeys => {
                let Some(cert) = ctx.cert else {
                    return Value::Absent("no certificate authenticated this connection".into());
                };
                match self {
                    Var::CertSerial => Value::One(cert.serial_number.clone()),
                    Var::CertificateId => Value::One(cert.certificate_id.clone()),
                    _ => Value::Many(cert.available_keys()),
                }
            }
            Var::SourceIp => match ctx.source_ip {
                Some(ip) => Value::One(ip.to_string()),
                None => Value::Absent("the source address is not known".into()),
            },
            Var::ConnectAttributes => Value::Many(ctx.connect_attrs.to_vec()),
            Var::LastWillTopic => match ctx.last_will_topic {
                Some(t) => Value::One(super::resource_arn(
                    ctx.region,
                    ctx.account,
                    super::Action::Publish,
                    t,
                )),
                None => Value::Absent("the CONNECT has no will message".into()),
            },
        }
    }
}

/// The thing the thing variables resolve to: AWS takes the thing name from the client id, and the
/// thing must be attached to the certificate that authenticated the connection.
fn attached_thing(ctx: ContextRef<'_>) -> Result<&ThingContext, String> {
    let Some(thing) = ctx.thing else {
        return Err(format!(
            "no thing named `{}` (the client id) is in the registry",
            ctx.client_id
        ));
    };
    if thing.name != ctx.client_id {
        return Err(format!(
            "the client id `{}` is not the thing name `{}` (AWS takes the thing name from the client id)",
            ctx.client_id, thing.name
        ));
    }
    if !thing.is_attached {
        return Err(format!(
            "thing `{}` is not attached to this certificate",
            thing.name
        ));
    }
    Ok(thing)
}

fn cert_values(vals: Option<&Vec<String>>, absent: &str, sel: Sel) -> Value {
    let Some(vals) = vals.filter(|v| !v.is_empty()) else {
        return Value::Absent(absent.to_string());
    };
    let vals: Vec<&String> = vals.iter().take(MAX_ARRAY_ITEMS).collect();
    let check = |v: &String| -> Result<String, String> {
        if let Some(c) = v.chars().find(|c| CERT_WILDCARD_CHARS.contains(c)) {
            return Err(format!(
                "the certificate value {v:?} contains `{c}`, so AWS does not substitute it"
            ));
        }
        if v.chars().count() > MAX_STRING_LEN {
            return Err(format!(
                "the certificate value is longer than {MAX_STRING_LEN} characters"
            ));
        }
        Ok(v.clone())
    };
    match sel {
        Sel::First => match check(vals[0]) {
            Ok(v) => Value::One(v),
            Err(e) => Value::Unusable(e),
        },
        Sel::Index(i) => match vals.get(i) {
            Some(v) => match check(v) {
                Ok(v) => Value::One(v),
                Err(e) => Value::Unusable(e),
            },
            None => Value::Unusable(format!(
                "index {i} does not exist: the attribute has {} value(s) (indexes count from 0; at most {MAX_ARRAY_ITEMS} are read)",
                vals.len()
            )),
        },
        Sel::List => {
            let mut out = Vec::new();
            for v in vals {
                match check(v) {
                    Ok(v) => out.push(v),
                    Err(e) => return Value::Unusable(e),
                }
            }
            Value::Many(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_serials() {
        assert_eq!(decimal(&[0x00]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            decimal(&[0x92, 0x12, 0x85, 0xcb, 0xb7, 0xa5, 0xe0, 0x86]),
            "10525622389124227206"
        );
    }

    #[test]
    fn variable_names() {
        assert_eq!(parse_var("iot:ClientId"), Ok(Var::ClientId));
        assert_eq!(
            parse_var("iot:Certificate.Subject.CommonName.2"),
            Ok(Var::Dn {
                issuer: false,
                attr: "CommonName",
                sel: Sel::Index(2)
            })
        );
        assert_eq!(
            parse_var("iot:Certificate.Issuer.AlternativeName.DNSName.List"),
            Ok(Var::Alt {
                issuer: true,
                kind: "DNSName",
                sel: Sel::List
            })
        );
        assert_eq!(
            parse_var("iot:Connection.Thing.Attributes[Color]"),
            Ok(Var::ThingAttr("Color".into()))
        );
        assert!(parse_var("iot:Thing.ThingName")
            .unwrap_err()
            .contains("did you mean"));
        assert!(parse_var("iot:Certificate.Subject.Email").is_err());
    }
}
