//! Describing a certificate for people: every field a learner checks, via x509-parser.

use crate::trace::{hex, CertInfo, CertRole};
use x509_parser::prelude::*;

/// Describe a DER certificate. `roles` say where it was seen; `now_unix` is the session's start (for
/// days left). A certificate that does not parse is described as such, never a panic.
pub fn describe(der: &[u8], roles: Vec<CertRole>, now_unix: i64) -> CertInfo {
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    describe_fields(
        der,
        CertInfo {
            sha256,
            roles,
            der: der.to_vec(),
            ..CertInfo::default()
        },
        now_unix,
    )
}

/// Seconds since the Unix epoch as RFC 3339 (`2020-01-01T00:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} s after 1970"))
}

/// [`describe`] without the fingerprint and the DER (cheaper: for verdict facts during a handshake).
pub fn describe_brief(der: &[u8]) -> CertInfo {
    describe_fields(der, CertInfo::default(), 0)
}

fn describe_fields(der: &[u8], base: CertInfo, now_unix: i64) -> CertInfo {
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => {
            return CertInfo {
                subject: format!("(not valid X.509: {e})"),
                ..base
            }
        }
    };
    let not_after = cert.validity().not_after.timestamp();
    let mut info = CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: rfc3339(cert.validity().not_before.timestamp()),
        not_after: rfc3339(not_after),
        days_left: (not_after - now_unix).div_euclid(86_400),
        key: key_description(&cert),
        signature_algorithm: sig_alg_name(&cert.signature_algorithm.algorithm.to_id_string()),
        self_signed: cert.subject() == cert.issuer(),
        ..base
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                info.san = san.general_names.iter().map(general_name).collect();
            }
            ParsedExtension::KeyUsage(ku) => {
                info.key_usage = ku.to_string().split(", ").map(str::to_string).collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let mut v = Vec::new();
                if eku.server_auth {
                    v.push("serverAuth".to_string());
                }
                if eku.client_auth {
                    v.push("clientAuth".to_string());
                }
                if eku.code_signing {
                    v.push("codeSigning".to_string());
                }
                if eku.email_protection {
                    v.push("emailProtection".to_string());
                }
                if eku.any {
                    v.push("anyExtendedKeyUsage".to_string());
                }
                v.extend(eku.other.iter().map(|o| o.to_id_string()));
                info.extended_key_usage = v;
            }
            ParsedExtension::BasicConstraints(bc) => {
                info.basic_constraints = Some(match (bc.ca, bc.path_len_constraint) {
                    (true, Some(n)) => format!("CA:TRUE, pathlen:{n}"),
                    (true, None) => "CA:TRUE".to_string(),
                    (false, _) => "CA:FALSE".to_string(),
                });
            }
            _ => {}
        }
    }
    info
}

/// The subject's common name, or the whole subject when it has none.
pub fn subject_cn(der: &[u8]) -> String {
    match X509Certificate::from_der(der) {
        Ok((_, c)) => c
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok().map(str::to_string))
            .unwrap_or_else(|| c.subject().to_string()),
        Err(_) => "(unparseable certificate)".to_string(),
    }
}

fn general_name(g: &GeneralName<'_>) -> String {
    match g {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(ip);
                format!("IP:{}", std::net::Ipv6Addr::from(a))
            }
            _ => format!("IP:{}", hex(ip)),
        },
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        other => format!("{other:?}"),
    }
}

fn key_description(cert: &X509Certificate<'_>) -> String {
    match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => {
            let curve = cert
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| match o.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| format!("{} bits", ec.key_size()));
            format!("ECDSA {curve}")
        }
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::Unknown(_)) | Ok(_) => {
            match cert
                .public_key()
                .algorithm
                .algorithm
                .to_id_string()
                .as_str()
            {
                "1.3.101.112" => "Ed25519".to_string(),
                other => other.to_string(),
            }
        }
        Err(e) => format!("(unparseable key: {e})"),
    }
}

fn sig_alg_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".into(),
        "1.3.101.112" => "Ed25519".into(),
        other => other.into(),
    }
}
