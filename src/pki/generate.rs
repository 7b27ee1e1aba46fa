//! The embedded default PKI, generated in memory at start-up: a root CA, an issuing CA, the broker's
//! certificate and the pizza-order buttons' certificates, all ECDSA P-256.

use super::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;
use time::{Duration, OffsetDateTime};

/// The serial number printed on the default pizza button (and put in its certificate's subject).
pub const BUTTON_SERIAL: &str = "G030JF055364XVRB";
/// The default button's thing name (its certificate's CN and its MQTT client id).
pub const BUTTON_THING: &str = "pizza-button-1";
/// The second button of the "nefarious customer" lessons.
pub const NEIGHBOUR_SERIAL: &str = "G030JF055365XVRC";
pub const NEIGHBOUR_THING: &str = "pizza-button-2";

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

fn ca_params(cn: &str, pathlen: Option<u8>, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(&[
        (DnType::OrganizationName, "Pizza Shop"),
        (DnType::CommonName, cn),
    ]);
    p.is_ca = match pathlen {
        Some(n) => IsCa::Ca(BasicConstraints::Constrained(n)),
        None => IsCa::Ca(BasicConstraints::Unconstrained),
    };
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    p
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
pub fn button_params(thing: &str, serial: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = leaf_params(now);
    let mut d = dn(&[
        (DnType::OrganizationName, "Pizza Shop customers"),
        (DnType::CommonName, thing),
    ]);
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

fn key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

fn private(k: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()))
}

impl DefaultPki {
    /// Generate fresh keys and certificates (a few milliseconds).
    pub fn generate() -> Result<Self, PkiError> {
        let now = OffsetDateTime::now_utc();
        let root =
            CertifiedIssuer::self_signed(ca_params("Pizza Shop Root CA", None, now), key()?)?;
        let inter = CertifiedIssuer::signed_by(
            ca_params("Pizza Shop Issuing CA 1", Some(0), now),
            key()?,
            &root,
        )?;

        let mut bp = leaf_params(now);
        bp.distinguished_name = dn(&[
            (DnType::OrganizationName, "Pizza Shop"),
            (DnType::CommonName, "broker.pizza.example"),
        ]);
        bp.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::DnsName("broker.pizza.example".try_into()?),
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        ];
        bp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let broker = leaf(bp, &inter)?;
        let button = leaf(button_params(BUTTON_THING, BUTTON_SERIAL, now), &inter)?;
        let neighbour = leaf(
            button_params(NEIGHBOUR_THING, NEIGHBOUR_SERIAL, now),
            &inter,
        )?;

        let rogue = CertifiedIssuer::self_signed(
            ca_params("Counterfeit Button Factory CA", None, now),
            key()?,
        )?;
        let rogue_button = leaf(button_params(BUTTON_THING, BUTTON_SERIAL, now), &rogue)?;

        Ok(DefaultPki {
            root: root.der().clone(),
            intermediate: inter.der().clone(),
            broker,
            button,
            neighbour,
            rogue_root: rogue.der().clone(),
            rogue_button,
        })
    }
}

/// Issue a leaf signed by `issuer`; the chain is leaf + issuer (not the root: a root is trusted, not sent).
fn leaf(
    params: CertificateParams,
    issuer: &CertifiedIssuer<'_, KeyPair>,
) -> Result<Identity, PkiError> {
    let k = key()?;
    let cert = params.signed_by(&k, issuer)?;
    let mut chain = vec![cert.der().clone()];
    // A self-signed issuer is a root: trusted by the peer, never sent.
    let issuer_der = issuer.der().clone();
    let self_signed = x509_parser::parse_x509_certificate(&issuer_der)
        .map(|(_, c)| c.subject() == c.issuer())
        .unwrap_or(false);
    if !self_signed {
        chain.push(issuer_der);
    }
    Ok(Identity {
        chain,
        key: private(&k),
    })
}
