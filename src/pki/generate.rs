//! The embedded default PKI, generated in memory at start-up: a root CA, an issuing CA, the broker's
//! certificate and the pizza-order buttons' certificates, all ECDSA P-256, as
//! `walkthroughs/pizza-button.toml` describes them (the constants below name the same cast for
//! the built-in registry; a test checks that they agree). For a workshop room,
//! [`DefaultPki::generate_with`] also issues one device identity per participant and adds the
//! room's addresses to the broker's certificate.

use super::Identity;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use std::fmt;
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// The serial number printed on the default pizza button (and put in its certificate's subject).
pub const BUTTON_SERIAL: &str = "G030JF055364XVRB";
/// The default button's thing name (its certificate's CN and its MQTT client id).
pub const BUTTON_THING: &str = "pizza-button-1";
/// The second button of the "nefarious customer" lessons.
pub const NEIGHBOUR_SERIAL: &str = "G030JF055365XVRC";
pub const NEIGHBOUR_THING: &str = "pizza-button-2";

/// The most room identities `iotls pki init --devices` issues.
pub const MAX_ROOM_DEVICES: u16 = 500;

/// A name the broker's certificate presents (subjectAltName): a host name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerName {
    Dns(String),
    Ip(IpAddr),
}

impl std::str::FromStr for BrokerName {
    type Err = String;

    /// An IP address, or a DNS name as rustls accepts one for a server (`room.example`, `pi-4`).
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(BrokerName::Ip(ip));
        }
        match rustls_pki_types::DnsName::try_from(s) {
            Ok(_) => Ok(BrokerName::Dns(s.to_ascii_lowercase())),
            Err(_) => Err(format!(
                "{s:?} is neither an IP address nor a valid host name (letters, digits, '-' and '.')"
            )),
        }
    }
}

impl fmt::Display for BrokerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerName::Dns(d) => f.write_str(d),
            BrokerName::Ip(ip) => ip.fmt(f),
        }
    }
}

/// What to generate beyond the default PKI.
#[derive(Clone, Debug, Default)]
pub struct PkiOptions {
    /// More names for the broker's certificate (the room's LAN address, a host name).
    pub broker_names: Vec<BrokerName>,
    /// How many room identities to issue (`device-001` …), at most [`MAX_ROOM_DEVICES`].
    pub devices: u16,
}

/// A participant's identity in a workshop room.
#[derive(Clone, Debug)]
pub struct RoomDevice {
    /// The thing name: the certificate's CN and the MQTT client id to connect with (`device-001`).
    pub thing: String,
    /// The certificate's subject serialNumber; the device's own topics are `room/<serial>/…`.
    pub serial: String,
    pub identity: Identity,
}

/// A workshop room: the default PKI (its broker presenting the room's names) and the participants'
/// identities, all issued by the same issuing CA.
#[derive(Clone, Debug)]
pub struct Room {
    pub pki: DefaultPki,
    pub devices: Vec<RoomDevice>,
}

/// Something rcgen refused while generating the PKI.
#[derive(Debug)]
pub struct PkiError(pub String);

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generating the in-memory PKI failed: {}", self.0)
    }
}

impl std::error::Error for PkiError {}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError(e.to_string())
    }
}

/// The whole default PKI of the pizza shop.
#[derive(Clone, Debug)]
pub struct DefaultPki {
    /// The shop's root CA (self-signed): what devices and the broker trust.
    pub root: CertificateDer<'static>,
    /// The issuing CA, signed by the root.
    pub intermediate: CertificateDer<'static>,
    /// The broker: CN `broker.pizza.example`, SAN `localhost` and `127.0.0.1`, chain leaf + issuing CA.
    pub broker: Identity,
    /// The customer's button: CN = thing name, serialNumber = the button's serial.
    pub button: Identity,
    /// A second customer's button (the neighbour in the least-privilege lesson).
    pub neighbour: Identity,
    /// A root nobody trusts, and a button certificate issued by it (the untrusted-device lesson).
    pub rogue_root: CertificateDer<'static>,
    pub rogue_button: Identity,
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    for (t, v) in parts {
        d.push(t.clone(), DnValue::Utf8String((*v).to_string()));
    }
    d
}

fn leaf_params(now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p
}

/// A device certificate: CN = thing name, serialNumber (OID 2.5.4.5) = the printed serial.
fn device_params(org: &str, thing: &str, serial: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = leaf_params(now);
    let mut d = dn(&[(DnType::OrganizationName, org), (DnType::CommonName, thing)]);
    d.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(
            serial
                .try_into()
                .unwrap_or_else(|_| "INVALID".try_into().expect("ascii")),
        ),
    );
    p.distinguished_name = d;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

/// Letters and digits that cannot be misread for each other (no I, O, 0, 1): 32 of them, so a
/// random byte modulo 32 picks one uniformly.
const SERIAL_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Six random characters naming one room, so that two rooms' serials differ.
fn room_tag() -> Result<String, PkiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 6];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError("the system random generator failed".into()))?;
    Ok(bytes
        .iter()
        .map(|b| SERIAL_ALPHABET[(*b % 32) as usize] as char)
        .collect())
}

impl DefaultPki {
    /// Generate fresh keys and certificates (a few milliseconds).
    pub fn generate() -> Result<Self, PkiError> {
        Ok(Self::generate_with(&PkiOptions::default())?.pki)
    }

    /// Generate the default PKI with the broker's extra names, and `devices` room identities
    /// (`device-001` …, serialNumber `<room tag>-001` …) issued by the issuing CA.
    pub fn generate_with(o: &PkiOptions) -> Result<Room, PkiError> {
        if o.devices > MAX_ROOM_DEVICES {
            return Err(PkiError(format!(
                "{} devices asked for; a room has at most {MAX_ROOM_DEVICES}",
                o.devices
            )));
        }
        let now = OffsetDateTime::now_utc();
        // The pizza shop's cast is walkthroughs/pizza-button.toml; the room's names join the
        // broker's certificate.
        let mut lesson =
            crate::walkthrough::load("pizza-button", &[]).map_err(|e| PkiError(e.to_string()))?;
        if let Some(broker) = lesson.spec.pki.as_mut().and_then(|p| p.get_mut("broker")) {
            let san = broker.san.get_or_insert_with(Vec::new);
            for name in &o.broker_names {
                let n = name.to_string();
                if !san.contains(&n) {
                    san.push(n);
                }
            }
        }
        let cast = lesson.pki().map_err(|e| PkiError(e.to_string()))?;
        let cert = |name: &str| {
            cast.der(name).ok_or_else(|| {
                PkiError(format!(
                    "walkthroughs/pizza-button.toml has no [pki.{name}]"
                ))
            })
        };
        let identity = |name: &str| {
            cast.identity(name).ok_or_else(|| {
                PkiError(format!(
                    "walkthroughs/pizza-button.toml has no [pki.{name}] with a key"
                ))
            })
        };

        let mut devices = Vec::with_capacity(o.devices as usize);
        if o.devices > 0 {
            let tag = room_tag()?;
            for i in 1..=o.devices {
                let thing = format!("device-{i:03}");
                let serial = format!("{tag}-{i:03}");
                let params = device_params("iotls workshop room", &thing, &serial, now);
                devices.push(RoomDevice {
                    identity: cast.issue("issuing", params).map_err(PkiError)?,
                    thing,
                    serial,
                });
            }
        }

        Ok(Room {
            pki: DefaultPki {
                root: cert("root")?,
                intermediate: cert("issuing")?,
                broker: identity("broker")?,
                button: identity("button")?,
                neighbour: identity("neighbour")?,
                rogue_root: cert("rogue-root")?,
                rogue_button: identity("rogue-button")?,
            },
            devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(der: &[u8], attr: &str) -> String {
        crate::policy::CertVars::from_der(der).unwrap().subject[attr][0].clone()
    }

    #[test]
    fn the_cast_of_the_lesson_file_is_the_cast_the_constants_name() {
        let room = DefaultPki::generate_with(&PkiOptions {
            broker_names: vec!["room.example".parse().unwrap()],
            devices: 2,
        })
        .unwrap();
        let p = &room.pki;
        assert_eq!(subject(p.button.leaf(), "SerialNumber"), BUTTON_SERIAL);
        assert_eq!(subject(p.button.leaf(), "CommonName"), BUTTON_THING);
        assert_eq!(
            subject(p.neighbour.leaf(), "SerialNumber"),
            NEIGHBOUR_SERIAL
        );
        assert_eq!(subject(p.neighbour.leaf(), "CommonName"), NEIGHBOUR_THING);
        // Leaf and issuing CA; the root is trusted, never sent.
        assert_eq!(p.button.chain.len(), 2);
        assert_eq!(p.button.chain[1], p.intermediate);
        assert_eq!(p.rogue_button.chain.len(), 1);
        let vars = crate::policy::CertVars::from_der(p.broker.leaf()).unwrap();
        let dns = &vars.subject_alt["DNSName"];
        assert!(
            dns.contains(&"localhost".to_string()) && dns.contains(&"room.example".to_string())
        );
        // Room devices come from the same issuing CA.
        assert_eq!(room.devices.len(), 2);
        assert_eq!(room.devices[0].identity.chain[1], p.intermediate);
        assert_eq!(
            subject(room.devices[1].identity.leaf(), "CommonName"),
            "device-002"
        );
    }
}
