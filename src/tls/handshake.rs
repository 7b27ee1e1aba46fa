//! The fields of TLS 1.2 handshake messages (RFC 5246 §7.4, RFC 8422 for ECDHE), with the byte
//! offset and length of each inside the message (offset 0 = the message's type byte).
//!
//! Decoding never panics: when a length overruns the message, a `malformed` field marks where
//! decoding stopped and the fields before it are kept.

use x509_parser::prelude::FromDer;

use super::names;
use crate::trace::{hex, Field, Fields};
use crate::wire::{Error, Reader};

type R<T> = Result<T, Error>;

/// What the dissector needs from a message besides its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// ClientHello / ServerHello random.
    pub random: Option<[u8; 32]>,
    /// ServerHello cipher suite.
    pub cipher_suite: Option<u16>,
    /// ServerHello legacy version, or its supported_versions extension.
    pub version: Option<u16>,
    /// The hello carried extended_master_secret.
    pub extended_master_secret: bool,
    /// ClientHello server_name (host_name).
    pub sni: Option<String>,
    /// ALPN protocol names: those the ClientHello offers, or the one the ServerHello chose.
    pub alpn: Vec<String>,
    /// ServerKeyExchange named curve.
    pub named_group: Option<u16>,
    /// Finished verify_data.
    pub verify_data: Option<Vec<u8>>,
}

/// A decoded handshake message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// RFC 5246 name, or `Unknown(N)`.
    pub name: String,
    pub msg_type: u8,
    pub fields: Vec<Field>,
    pub facts: Facts,
}

/// Decodes one complete handshake message (4-byte header included).
pub fn decode(msg: &[u8]) -> Message {
    let msg_type = msg.first().copied().unwrap_or(0);
    let name = names::handshake_name(msg_type);
    let mut f = Fields(Vec::new());
    let mut facts = Facts::default();
    let mut r = Reader::new(msg);
    let ok = (|| -> R<()> {
        r.u8("msg_type")?;
        f.add("msg_type", 0, 1, format!("{name} ({msg_type})"), 0);
        let len = r.u24("length")?;
        f.add("length", 1, 3, format!("{len} bytes"), 0);
        match msg_type {
            1 => client_hello(&mut r, &mut f, &mut facts),
            2 => server_hello(&mut r, &mut f, &mut facts),
            4 => new_session_ticket(&mut r, &mut f),
            11 => certificate(&mut r, &mut f),
            12 => server_key_exchange(&mut r, &mut f, &mut facts),
            13 => certificate_request(&mut r, &mut f),
            14 => Ok(()),
            15 => certificate_verify(&mut r, &mut f),
            16 => {
                let (o, l, point) = r.lp8("ecdh_Yc")?;
                f.add(
                    "ecdh_Yc (client ECDHE public key)",
                    o,
                    l,
                    point_value(point),
                    0,
                );
                Ok(())
            }
            20 => {
                let o = r.offset();
                let vd = r.rest();
                f.add("verify_data", o, vd.len(), hex(vd), 0);
                facts.verify_data = Some(vd.to_vec());
                Ok(())
            }
            _ => {
                let o = r.offset();
                let body = r.rest();
                f.add("body", o, body.len(), short_hex(body), 0);
                Ok(())
            }
        }
    })()
    .is_ok();
    if !ok {
        f.add(
            "malformed",
            r.offset().min(msg.len()),
            msg.len().saturating_sub(r.offset()),
            "a length field runs past the end of the message; decoding stopped here",
            0,
        );
    } else if r.left() > 0 {
        f.add(
            "trailing bytes",
            r.offset(),
            r.left(),
            short_hex(&msg[r.offset()..]),
            0,
        );
    }
    Message {
        name,
        msg_type,
        fields: f.0,
        facts,
    }
}

/// Hex, shortened after 64 bytes.
fn short_hex(b: &[u8]) -> String {
    if b.is_empty() {
        "(empty)".to_string()
    } else if b.len() <= 64 {
        hex(b)
    } else {
        format!("{}… ({} bytes)", hex(&b[..64]), b.len())
    }
}

fn point_value(p: &[u8]) -> String {
    let form = match (p.len(), p.first()) {
        (32, _) => "x25519 key",
        (_, Some(4)) => "uncompressed point",
        _ => "point",
    };
    format!("{} bytes, {form}: {}", p.len(), hex(p))
}

fn random(r: &mut Reader<'_>, f: &mut Fields, facts: &mut Facts) -> R<()> {
    let o = r.offset();
    let rnd = r.take(32, "random")?;
    f.add("random", o, 32, hex(rnd), 0);
    let mut a = [0u8; 32];
    a.copy_from_slice(rnd);
    facts.random = Some(a);
    Ok(())
}

fn session_id(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    let (o, l, id) = r.lp8("session_id")?;
    let v = if id.is_empty() {
        "(empty)".to_string()
    } else {
        hex(id)
    };
    f.add("session_id", o, l, v, 0);
    Ok(())
}

fn client_hello(r: &mut Reader<'_>, f: &mut Fields, facts: &mut Facts) -> R<()> {
    let o = r.offset();
    let v = r.u16("client_version")?;
    f.add("client_version", o, 2, names::version(v), 0);
    random(r, f, facts)?;
    session_id(r, f)?;

    let o = r.offset();
    let n = usize::from(r.u16("cipher_suites")?);
    let mut s = r.sub(n, "cipher_suites")?;
    f.add("cipher_suites", o, 2 + n, format!("{} suites", n / 2), 0);
    while s.left() >= 2 {
        let q = s.offset();
        let c = s.u16("cipher_suite")?;
        f.add("cipher_suite", q, 2, names::cipher_suite(c), 1);
    }

    let (o, l, methods) = r.lp8("compression_methods")?;
    f.add(
        "compression_methods",
        o,
        l,
        format!("{} method(s)", methods.len()),
        0,
    );
    for (i, m) in methods.iter().enumerate() {
        let v = match m {
            0 => "null (0)".to_string(),
            1 => "DEFLATE (1)".to_string(),
            x => format!("unknown ({x})"),
        };
        f.add("compression_method", o + 1 + i, 1, v, 1);
    }
    if r.left() > 0 {
        extensions(r, f, facts, true)?;
    }
    Ok(())
}

fn server_hello(r: &mut Reader<'_>, f: &mut Fields, facts: &mut Facts) -> R<()> {
    let o = r.offset();
    let v = r.u16("server_version")?;
    f.add("server_version", o, 2, names::version(v), 0);
    facts.version = Some(v);
    random(r, f, facts)?;
    session_id(r, f)?;
    let o = r.offset();
    let c = r.u16("cipher_suite")?;
    f.add("cipher_suite", o, 2, names::cipher_suite(c), 0);
    facts.cipher_suite = Some(c);
    let o = r.offset();
    let m = r.u8("compression_method")?;
    f.add(
        "compression_method",
        o,
        1,
        if m == 0 {
            "null (0)".into()
        } else {
            format!("{m}")
        },
        0,
    );
    if r.left() > 0 {
        extensions(r, f, facts, false)?;
    }
    Ok(())
}

fn extensions(r: &mut Reader<'_>, f: &mut Fields, facts: &mut Facts, client: bool) -> R<()> {
    let o = r.offset();
    let n = usize::from(r.u16("extensions")?);
    let mut s = r.sub(n, "extensions")?;
    let head = f.open("extensions", o, 2 + n, 0);
    let mut count = 0;
    while s.left() > 0 {
        let q = s.offset();
        let t = s.u16("extension_type")?;
        let len = usize::from(s.u16("extension_data")?);
        let mut d = s.sub(len, "extension_data")?;
        let i = f.open(&names::extension_field(t), q, 4 + len, 1);
        count += 1;
        let value = extension(t, &mut d, f, facts, client)
            .unwrap_or_else(|_| format!("malformed: {}", short_hex(&d.bytes()[q + 4..])));
        f.set(i, value);
    }
    f.set(head, format!("{count} extensions"));
    Ok(())
}

/// Decodes one extension's data; returns its display value and adds depth-2 fields.
fn extension(
    t: u16,
    d: &mut Reader<'_>,
    f: &mut Fields,
    facts: &mut Facts,
    client: bool,
) -> R<String> {
    if d.left() == 0 {
        let v = match t {
            0 => "(empty: the server acknowledges the name)",
            5 => "(empty: the server will staple an OCSP response)",
            18 => "(empty: asks for Signed Certificate Timestamps)",
            22 => "(empty: encrypt-then-MAC supported)",
            23 => {
                facts.extended_master_secret = true;
                "(empty: the master secret will cover the whole handshake, RFC 7627)"
            }
            35 => "(empty: no ticket)",
            49 => "(empty: post-handshake auth supported)",
            _ => "(empty)",
        };
        return Ok(v.to_string());
    }
    match t {
        0 => {
            let (_, _, list) = d.lp16("server_name_list")?;
            let mut l = Reader::starting_at(d.bytes(), d.offset() - list.len());
            let mut hosts = Vec::new();
            while l.offset() < d.offset() {
                let q = l.offset();
                let nt = l.u8("name_type")?;
                let (_, nl, name) = l.lp16("host_name")?;
                let host = String::from_utf8_lossy(name).into_owned();
                let label = if nt == 0 { "host_name" } else { "name" };
                f.add(label, q, 1 + nl, host.clone(), 2);
                if nt == 0 {
                    if client && facts.sni.is_none() {
                        facts.sni = Some(host.clone());
                    }
                    hosts.push(host);
                }
            }
            Ok(hosts.join(", "))
        }
        10 => {
            let (o, _, list) = d.lp16("named_group_list")?;
            let mut out = Vec::new();
            for (i, c) in list.chunks_exact(2).enumerate() {
                let g = u16::from_be_bytes([c[0], c[1]]);
                f.add("group", o + 2 + 2 * i, 2, names::group(g), 2);
                out.push(names::group_name(g).to_string());
            }
            Ok(out.join(", "))
        }
        11 => {
            let (o, _, list) = d.lp8("ec_point_format_list")?;
            let mut out = Vec::new();
            for (i, p) in list.iter().enumerate() {
                f.add("format", o + 1 + i, 1, names::ec_point_format(*p), 2);
                out.push(names::ec_point_format(*p));
            }
            Ok(out.join(", "))
        }
        13 | 50 => {
            let (o, _, list) = d.lp16("supported_signature_algorithms")?;
            let mut out = Vec::new();
            for (i, c) in list.chunks_exact(2).enumerate() {
                let s = u16::from_be_bytes([c[0], c[1]]);
                f.add(
                    "signature_scheme",
                    o + 2 + 2 * i,
                    2,
                    names::signature_scheme(s),
                    2,
                );
                out.push(names::signature_scheme_name(s).to_string());
            }
            Ok(format!("{} schemes: {}", out.len(), out.join(", ")))
        }
        0xff01 => {
            let (_, _, data) = d.lp8("renegotiated_connection")?;
            Ok(if data.is_empty() {
                "empty (initial handshake, no renegotiation)".to_string()
            } else {
                format!("renegotiated: {}", hex(data))
            })
        }
        35 => Ok(format!("{} bytes of ticket", d.left())),
        5 if client => {
            let q = d.offset();
            let st = d.u8("status_type")?;
            let kind = if st == 1 {
                "ocsp (1)".to_string()
            } else {
                format!("unknown ({st})")
            };
            f.add("status_type", q, 1, kind.clone(), 2);
            Ok(kind)
        }
        16 => {
            let (_, _, list) = d.lp16("protocol_name_list")?;
            let mut l = Reader::starting_at(d.bytes(), d.offset() - list.len());
            let mut out = Vec::new();
            while l.offset() < d.offset() {
                let (q, pl, p) = l.lp8("protocol_name")?;
                let name = String::from_utf8_lossy(p).into_owned();
                f.add("protocol", q, pl, name.clone(), 2);
                facts.alpn.push(name.clone());
                out.push(name);
            }
            Ok(out.join(", "))
        }
        43 if client => {
            let (o, _, list) = d.lp8("supported_versions")?;
            let mut out = Vec::new();
            for (i, c) in list.chunks_exact(2).enumerate() {
                let v = u16::from_be_bytes([c[0], c[1]]);
                f.add("version", o + 1 + 2 * i, 2, names::version(v), 2);
                out.push(names::version(v));
            }
            Ok(out.join(", "))
        }
        43 => {
            let v = d.u16("selected_version")?;
            facts.version = Some(v);
            Ok(names::version(v))
        }
        _ => {
            let rest = d.rest();
            Ok(format!("{} bytes: {}", rest.len(), short_hex(rest)))
        }
    }
}

fn certificate(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    let o = r.offset();
    let n = r.u24("certificate_list")? as usize;
    let mut s = r.sub(n, "certificate_list")?;
    let head = f.open("certificate_list", o, 3 + n, 0);
    let mut i = 0;
    while s.left() > 0 {
        let q = s.offset();
        let l = s.u24("certificate")? as usize;
        let der = s.take(l, "certificate")?;
        f.add(
            &format!("certificate[{i}]"),
            q,
            3 + l,
            describe_cert(der),
            1,
        );
        i += 1;
    }
    f.set(
        head,
        match i {
            0 => "0 certificates (empty: no certificate offered)".to_string(),
            1 => "1 certificate".to_string(),
            _ => format!("{i} certificates"),
        },
    );
    Ok(())
}

/// `CN=device-001 (issuer CN=iotls CA, 412 bytes DER)`.
pub fn describe_cert(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let cn = |n: &x509_parser::x509::X509Name<'_>| {
                n.iter_common_name()
                    .next()
                    .and_then(|a| a.as_str().ok())
                    .map(|s| format!("CN={s}"))
                    .unwrap_or_else(|| n.to_string())
            };
            format!(
                "{} (issuer {}, {} bytes DER)",
                cn(cert.subject()),
                cn(cert.issuer()),
                der.len()
            )
        }
        Err(e) => format!(
            "{} bytes, not a parseable X.509 certificate ({e})",
            der.len()
        ),
    }
}

fn server_key_exchange(r: &mut Reader<'_>, f: &mut Fields, facts: &mut Facts) -> R<()> {
    let params_start = r.offset();
    let params = f.open("ECDHE parameters (signed)", params_start, 0, 0);
    let o = r.offset();
    let ct = r.u8("curve_type")?;
    let ctv = if ct == 3 {
        "named_curve (3)".to_string()
    } else {
        format!("unknown ({ct})")
    };
    f.add("curve_type", o, 1, ctv, 1);
    if ct != 3 {
        let o = r.offset();
        let rest = r.rest();
        f.add(
            "parameters (not ECDHE named_curve)",
            o,
            rest.len(),
            short_hex(rest),
            1,
        );
        return Ok(());
    }
    let o = r.offset();
    let g = r.u16("named_curve")?;
    f.add("named_curve", o, 2, names::group(g), 1);
    facts.named_group = Some(g);
    let (o, l, point) = r.lp8("public")?;
    f.add(
        "public (server ECDHE public key)",
        o,
        l,
        point_value(point),
        1,
    );
    if let Some(p) = f.0.get_mut(params) {
        p.len = r.offset() - params_start;
        p.value = format!("{}, {}-byte public key", names::group_name(g), point.len());
    }
    signature(r, f)
}

fn signature(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    let o = r.offset();
    let s = r.u16("signature_algorithm")?;
    f.add("signature_algorithm", o, 2, names::signature_scheme(s), 0);
    let (o, l, sig) = r.lp16("signature")?;
    f.add(
        "signature",
        o,
        l,
        format!("{} bytes: {}", sig.len(), hex(sig)),
        0,
    );
    Ok(())
}

fn certificate_request(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    let (o, l, types) = r.lp8("certificate_types")?;
    f.add(
        "certificate_types",
        o,
        l,
        format!("{} types", types.len()),
        0,
    );
    for (i, t) in types.iter().enumerate() {
        f.add(
            "certificate_type",
            o + 1 + i,
            1,
            names::client_cert_type(*t),
            1,
        );
    }
    let (o, l, algs) = r.lp16("supported_signature_algorithms")?;
    f.add(
        "supported_signature_algorithms",
        o,
        l,
        format!("{} schemes", algs.len() / 2),
        0,
    );
    for (i, c) in algs.chunks_exact(2).enumerate() {
        let s = u16::from_be_bytes([c[0], c[1]]);
        f.add(
            "signature_scheme",
            o + 2 + 2 * i,
            2,
            names::signature_scheme(s),
            1,
        );
    }
    let o = r.offset();
    let n = usize::from(r.u16("certificate_authorities")?);
    let mut s = r.sub(n, "certificate_authorities")?;
    let head = f.open("certificate_authorities", o, 2 + n, 0);
    let mut count = 0;
    while s.left() > 0 {
        let (q, l, dn) = s.lp16("distinguished_name")?;
        let v = match x509_parser::x509::X509Name::from_der(dn) {
            Ok((_, name)) => name.to_string(),
            Err(_) => format!("unparseable name: {}", short_hex(dn)),
        };
        f.add("distinguished_name", q, l, v, 1);
        count += 1;
    }
    f.set(head, format!("{count} acceptable CAs"));
    Ok(())
}

fn certificate_verify(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    signature(r, f)
}

fn new_session_ticket(r: &mut Reader<'_>, f: &mut Fields) -> R<()> {
    let o = r.offset();
    let hint = r.u32("ticket_lifetime_hint")?;
    f.add("ticket_lifetime_hint", o, 4, format!("{hint} s"), 0);
    let (o, l, t) = r.lp16("ticket")?;
    f.add("ticket", o, l, format!("{} bytes", t.len()), 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_messages_never_panic_and_mark_malformed() {
        // A ClientHello whose cipher_suites length (0xffff) overruns the message.
        let mut m = vec![1, 0, 0, 40, 3, 3];
        m.extend_from_slice(&[0xab; 32]);
        m.extend_from_slice(&[0, 0xff, 0xff]);
        let d = decode(&m);
        assert_eq!(d.name, "ClientHello");
        assert_eq!(d.facts.random, Some([0xab; 32]));
        let last = d.fields.last().unwrap();
        assert_eq!(last.name, "malformed");
        // Every prefix of it, for every message type, decodes without panicking.
        for t in 0..=255u8 {
            m[0] = t;
            for end in 0..m.len() {
                let _ = decode(&m[..end]);
            }
        }
    }

    #[test]
    fn finished_and_unknown() {
        let mut m = vec![20, 0, 0, 12];
        m.extend_from_slice(&[7; 12]);
        let d = decode(&m);
        assert_eq!(d.name, "Finished");
        assert_eq!(d.facts.verify_data, Some(vec![7; 12]));
        let vd = d.fields.iter().find(|f| f.name == "verify_data").unwrap();
        assert_eq!((vd.offset, vd.len), (4, 12));
        let u = decode(&[99, 0, 0, 1, 5]);
        assert_eq!(u.name, "Unknown(99)");
    }

    /// A hello with the given extensions block.
    fn hello(msg_type: u8, exts: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]);
        body.push(0); // session_id
        if msg_type == 1 {
            body.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]); // one suite, null compression
        } else {
            body.extend_from_slice(&[0xc0, 0x2b, 0]);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let mut m = vec![msg_type, 0, 0, 0];
        m[1..4].copy_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend(body);
        m
    }

    /// The ALPN extension (16) with these protocol names.
    fn alpn(names: &[&str]) -> Vec<u8> {
        let list: Vec<u8> = names
            .iter()
            .flat_map(|n| std::iter::once(n.len() as u8).chain(n.bytes()))
            .collect();
        let mut e = vec![0, 16];
        e.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        e.extend_from_slice(&(list.len() as u16).to_be_bytes());
        e.extend(list);
        e
    }

    #[test]
    fn alpn_offer_and_choice_are_fields_and_facts() {
        let ch = decode(&hello(1, &alpn(&["x-amzn-mqtt-ca", "mqtt"])));
        assert_eq!(ch.facts.alpn, ["x-amzn-mqtt-ca", "mqtt"]);
        let ext = ch
            .fields
            .iter()
            .find(|f| f.name == "extension application_layer_protocol_negotiation")
            .expect("the ALPN extension is a field");
        assert_eq!(ext.value, "x-amzn-mqtt-ca, mqtt");
        let protocols: Vec<(&str, usize, usize)> = ch
            .fields
            .iter()
            .filter(|f| f.name == "protocol")
            .map(|f| (f.value.as_str(), f.offset, f.len))
            .collect();
        // Each name with its length byte: 15 bytes, then 5, after the two list-length bytes.
        let first = protocols[0].1;
        assert_eq!(
            protocols,
            [("x-amzn-mqtt-ca", first, 15), ("mqtt", first + 15, 5)]
        );
        let raw = hello(1, &alpn(&["x-amzn-mqtt-ca", "mqtt"]));
        assert_eq!(&raw[first + 1..first + 15], b"x-amzn-mqtt-ca");
        assert!(!ch.fields.iter().any(|f| f.name == "malformed"));

        let sh = decode(&hello(2, &alpn(&["x-amzn-mqtt-ca"])));
        assert_eq!(sh.facts.alpn, ["x-amzn-mqtt-ca"]);
        // No extension, no protocol.
        assert!(decode(&hello(2, &[])).facts.alpn.is_empty());
    }
}
