//! The dissector against REAL sessions: a rustls 0.23 client (the device) and server (the broker),
//! TLS 1.2 only, mutual authentication with rcgen ECDSA P-256 certificates, bytes pumped between
//! them in memory and captured per direction together with both key logs. Every assertion here is
//! about bytes rustls really produced.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use iotls::tls::dissect::{Decoded, Dissector, KeyLogEntry};
use iotls::trace::{EventKind, Field, HandshakeType, MqttPacket, Phase, Side};
use rustls::client::Resumption;
use rustls::crypto::{ring as provider, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
    SupportedCipherSuite,
};

const BROKER_NAME: &str = "broker.iotls.test";

/// Collects the CLIENT_RANDOM lines rustls exports.
#[derive(Debug, Default)]
struct CaptureKeyLog(Mutex<Vec<KeyLogEntry>>);

impl rustls::KeyLog for CaptureKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label == "CLIENT_RANDOM" && client_random.len() == 32 {
            let mut cr = [0u8; 32];
            cr.copy_from_slice(client_random);
            self.0.lock().unwrap().push(KeyLogEntry {
                client_random: cr,
                master_secret: secret.to_vec(),
            });
        }
    }
}

struct Pki {
    ca: CertificateDer<'static>,
    broker: (CertificateDer<'static>, Vec<u8>),
    device: (CertificateDer<'static>, Vec<u8>),
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "iotls test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |cn: &str, sans: Vec<String>, eku| {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![eku];
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.der().clone(), key.serialize_der())
    };
    Pki {
        ca: ca.der().clone(),
        broker: leaf(
            BROKER_NAME,
            vec![BROKER_NAME.to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        device: leaf("device-001", vec![], ExtendedKeyUsagePurpose::ClientAuth),
    }
}

/// A recorded session: every chunk in the order it was sent, and the key-log lines.
struct Session {
    chunks: Vec<(Side, Vec<u8>)>,
    keys: Vec<KeyLogEntry>,
    pki: Pki,
    suite_name: String,
    /// What each side wrote as application data, in order.
    device_wrote: Vec<u8>,
    broker_wrote: Vec<u8>,
}

fn transfer_all(
    c: &mut ClientConnection,
    s: &mut ServerConnection,
    chunks: &mut Vec<(Side, Vec<u8>)>,
) {
    loop {
        let mut progressed = false;
        while c.wants_write() {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            let mut rest = &buf[..];
            while !rest.is_empty() {
                s.read_tls(&mut rest).unwrap();
                s.process_new_packets().unwrap();
            }
            chunks.push((Side::Device, buf));
            progressed = true;
        }
        while s.wants_write() {
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            let mut rest = &buf[..];
            while !rest.is_empty() {
                c.read_tls(&mut rest).unwrap();
                c.process_new_packets().unwrap();
            }
            chunks.push((Side::Broker, buf));
            progressed = true;
        }
        if !progressed {
            return;
        }
    }
}

fn read_plain(r: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

// MQTT 3.1.1 packets the session carries.
const CONNECT: &[u8] = &[
    0x10, // CONNECT
    0x16, // remaining length 22
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // level 4 = 3.1.1
    0x02, // flags: clean session
    0x00, 0x3c, // keep alive 60 s
    0x00, 0x0a, b'd', b'e', b'v', b'i', b'c', b'e', b'-', b'0', b'0', b'1', // client id
];
const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00]; // CONNACK, not present, accepted
const PUBLISH: &[u8] = &[
    0x32, // PUBLISH qos 1
    0x1c, // remaining length 28
    0x00, 0x0c, b'p', b'i', b'z', b'z', b'a', b'/', b'o', b'r', b'd', b'e', b'r',
    b's', // topic
    0x00, 0x01, // packet id 1
    b'{', b'"', b'p', b'i', b'z', b'z', b'a', b'"', b':', b'1', b'}', b'!', // payload
];
const PUBACK: &[u8] = &[0x40, 0x02, 0x00, 0x01]; // PUBACK packet id 1

fn session(suite: SupportedCipherSuite, kx: &'static dyn SupportedKxGroup) -> Session {
    let pki = pki();
    let mut p = provider::default_provider();
    p.cipher_suites = vec![suite];
    p.kx_groups = vec![kx];
    let p: Arc<CryptoProvider> = Arc::new(p);

    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let roots = Arc::new(roots);

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), p.clone())
        .build()
        .unwrap();
    let key = |k: &Vec<u8>| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.clone()));
    let mut sc = ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.broker.0.clone()], key(&pki.broker.1))
        .unwrap();
    let server_log = Arc::new(CaptureKeyLog::default());
    sc.key_log = server_log.clone();

    let mut cc = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![pki.device.0.clone()], key(&pki.device.1))
        .unwrap();
    cc.resumption = Resumption::disabled();
    let client_log = Arc::new(CaptureKeyLog::default());
    cc.key_log = client_log.clone();

    let mut client =
        ClientConnection::new(Arc::new(cc), ServerName::try_from(BROKER_NAME).unwrap()).unwrap();
    let mut server = ServerConnection::new(Arc::new(sc)).unwrap();
    let mut chunks = Vec::new();
    transfer_all(&mut client, &mut server, &mut chunks);
    assert!(!client.is_handshaking() && !server.is_handshaking());

    let mut device_wrote = Vec::new();
    let mut broker_wrote = Vec::new();
    let mut broker_got = Vec::new();
    let mut device_got = Vec::new();

    client.writer().write_all(CONNECT).unwrap();
    device_wrote.extend_from_slice(CONNECT);
    transfer_all(&mut client, &mut server, &mut chunks);
    broker_got.extend(read_plain(&mut server.reader()));
    server.writer().write_all(CONNACK).unwrap();
    broker_wrote.extend_from_slice(CONNACK);
    transfer_all(&mut client, &mut server, &mut chunks);
    // The PUBLISH goes out in two writes, so it spans two records.
    client.writer().write_all(&PUBLISH[..10]).unwrap();
    transfer_all(&mut client, &mut server, &mut chunks);
    client.writer().write_all(&PUBLISH[10..]).unwrap();
    device_wrote.extend_from_slice(PUBLISH);
    transfer_all(&mut client, &mut server, &mut chunks);
    broker_got.extend(read_plain(&mut server.reader()));
    server.writer().write_all(PUBACK).unwrap();
    broker_wrote.extend_from_slice(PUBACK);
    transfer_all(&mut client, &mut server, &mut chunks);
    device_got.extend(read_plain(&mut client.reader()));
    client.send_close_notify();
    transfer_all(&mut client, &mut server, &mut chunks);

    // rustls itself delivered what was written.
    assert_eq!(broker_got, device_wrote);
    assert_eq!(device_got, broker_wrote);

    let suite_name = client
        .negotiated_cipher_suite()
        .unwrap()
        .suite()
        .as_str()
        .unwrap()
        .to_string();
    let mut keys = client_log.0.lock().unwrap().clone();
    keys.extend(server_log.0.lock().unwrap().iter().cloned());
    Session {
        chunks,
        keys,
        pki,
        suite_name,
        device_wrote,
        broker_wrote,
    }
}

fn dissect(
    chunks: &[(Side, Vec<u8>)],
    keys: Vec<KeyLogEntry>,
    piece: usize,
) -> (Vec<Decoded>, Dissector) {
    let mut d = Dissector::new(keys);
    let mut out = Vec::new();
    for (side, bytes) in chunks {
        for c in bytes.chunks(piece) {
            out.extend(d.push(*side, c));
        }
    }
    out.extend(d.finish());
    (out, d)
}

fn handshakes(out: &[Decoded]) -> Vec<(Side, String, Phase)> {
    out.iter()
        .filter_map(|e| match &e.kind {
            EventKind::Handshake { msg, .. } => Some((e.side, msg.name(), e.phase)),
            _ => None,
        })
        .collect()
}

fn message<'a>(out: &'a [Decoded], side: Side, name: &str) -> (Vec<u8>, &'a [Field], u32) {
    out.iter()
        .find_map(|e| match &e.kind {
            EventKind::Handshake {
                msg,
                hex,
                fields,
                record,
                ..
            } if e.side == side && msg.name() == name => {
                Some((hex.clone(), fields.as_slice(), *record))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {name} from {side:?}"))
}

fn field<'a>(fields: &'a [Field], name: &str) -> &'a Field {
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}: {fields:#?}"))
}

/// Bytes of a `<0..2^16-1>` vector field, without its length prefix.
fn vec16(msg: &[u8], f: &Field) -> Vec<u8> {
    msg[f.offset + 2..f.offset + f.len].to_vec()
}

fn mqtt(out: &[Decoded], side: Side) -> Vec<MqttPacket> {
    out.iter()
        .filter(|e| e.side == side)
        .flat_map(|e| match &e.kind {
            EventKind::AppData { mqtt, .. } => mqtt.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn plaintext(out: &[Decoded], side: Side) -> Vec<u8> {
    out.iter()
        .filter(|e| e.side == side)
        .flat_map(|e| match &e.kind {
            EventKind::AppData {
                plaintext: Some(p), ..
            } => p.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn x509_public_key(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

/// The whole story for one cipher suite.
fn full_session_decodes(
    suite: SupportedCipherSuite,
    kx: &'static dyn SupportedKxGroup,
    kx_name: &str,
) {
    let s = session(suite, kx);
    let (out, d) = dissect(&s.chunks, s.keys.clone(), usize::MAX);

    // No byte went undecoded.
    for e in &out {
        assert!(!matches!(e.kind, EventKind::Undecodable { .. }), "{e:?}");
    }

    // The handshake, in order, with its teaching phases.
    use Phase::*;
    use Side::*;
    let expected = [
        (Device, "ClientHello", Hello),
        (Broker, "ServerHello", Hello),
        (Broker, "Certificate", ServerAuth),
        (Broker, "ServerKeyExchange", ServerAuth),
        (Broker, "CertificateRequest", ClientAuth),
        (Broker, "ServerHelloDone", ClientAuth),
        (Device, "Certificate", ClientAuth),
        (Device, "ClientKeyExchange", KeyExchange),
        (Device, "CertificateVerify", HandshakeSignature),
        (Device, "Finished", Finished),
        (Broker, "Finished", Finished),
    ];
    let got = handshakes(&out);
    let want: Vec<_> = expected
        .iter()
        .map(|(s, m, p)| (*s, m.to_string(), *p))
        .collect();
    assert_eq!(got, want);
    assert_eq!(d.handshake_messages().len(), 11);

    // rustls packs the broker's first flight into one record.
    let records: Vec<u32> = [
        "ServerHello",
        "Certificate",
        "ServerKeyExchange",
        "CertificateRequest",
        "ServerHelloDone",
    ]
    .iter()
    .map(|m| message(&out, Broker, m).2)
    .collect();
    assert_eq!(records, [0, 0, 0, 0, 0]);

    // Both ChangeCipherSpecs, then encrypted Finished messages carrying their ciphertext.
    let ccs: Vec<Side> = out
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ChangeCipherSpec { .. }))
        .map(|e| e.side)
        .collect();
    assert_eq!(ccs, [Device, Broker]);
    for e in &out {
        if let EventKind::Handshake {
            msg,
            encrypted,
            ciphertext,
            hex,
            ..
        } = &e.kind
        {
            assert_eq!(*encrypted, *msg == HandshakeType::FINISHED, "{msg}");
            if *msg == HandshakeType::FINISHED {
                assert_eq!(hex.len(), 16, "Finished is 4 + 12 bytes");
                let ct = ciphertext.clone().unwrap();
                assert_eq!(ct[0], 22, "a handshake record");
                assert_ne!(&ct[5..], &hex[..], "the record is not the plaintext");
            }
        }
    }

    // Both Finished checks pass, each made by the receiver.
    let checks: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Check {
                check,
                ok,
                facts,
                about,
                ..
            } => Some((e.side, *check, *ok, facts.clone(), *about)),
            _ => None,
        })
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        (checks[0].0, checks[0].1.as_str(), checks[0].2),
        (Side::Iotls, "client_finished", true)
    );
    assert_eq!(
        (checks[1].0, checks[1].1.as_str(), checks[1].2),
        (Side::Iotls, "server_finished", true)
    );
    for (_, _, _, facts, about) in &checks {
        assert_eq!(*about, Some(HandshakeType::FINISHED));
        let fact = |n: &str| facts.iter().find(|f| f.name == n).unwrap().value.clone();
        assert_eq!(fact("expected_verify_data"), fact("received_verify_data"));
        assert_eq!(fact("expected_verify_data").len(), 24);
    }

    // The transcript is right: the device's CertificateVerify signature verifies over the raw
    // concatenation ClientHello … ClientKeyExchange with the device certificate's key.
    let transcript: Vec<u8> = d.handshake_messages()[..8]
        .iter()
        .flat_map(|(_, m)| m.clone())
        .collect();
    let (cv, cv_fields, _) = message(&out, Device, "CertificateVerify");
    assert_eq!(
        field(cv_fields, "signature_algorithm").value,
        "ecdsa_secp256r1_sha256 (0x0403)"
    );
    let sig = vec16(&cv, field(cv_fields, "signature"));
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        x509_public_key(&s.pki.device.0),
    )
    .verify(&transcript, &sig)
    .expect("CertificateVerify signature over the dissected transcript");

    // The ServerKeyExchange signature covers client_random ‖ server_random ‖ the ECDHE params.
    let (ch, ch_fields, _) = message(&out, Device, "ClientHello");
    let (sh, sh_fields, _) = message(&out, Broker, "ServerHello");
    let (ske, ske_fields, _) = message(&out, Broker, "ServerKeyExchange");
    let rnd = |m: &[u8], f: &[Field]| {
        let r = field(f, "random");
        m[r.offset..r.offset + r.len].to_vec()
    };
    let params = field(ske_fields, "ECDHE parameters (signed)");
    let mut signed = rnd(&ch, ch_fields);
    signed.extend(rnd(&sh, sh_fields));
    signed.extend_from_slice(&ske[params.offset..params.offset + params.len]);
    let sig = vec16(&ske, field(ske_fields, "signature"));
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        x509_public_key(&s.pki.broker.0),
    )
    .verify(&signed, &sig)
    .expect("ServerKeyExchange signature over the dissected fields");
    assert!(field(ske_fields, "named_curve").value.starts_with(kx_name));

    // Fields a learner looks at.
    let sni: Vec<_> = ch_fields
        .iter()
        .filter(|f| f.name == "extension server_name")
        .collect();
    assert_eq!(sni.len(), 1);
    assert_eq!(sni[0].value, BROKER_NAME);
    let sni_host = field(ch_fields, "host_name");
    assert_eq!(
        &ch[sni_host.offset + 3..sni_host.offset + sni_host.len],
        BROKER_NAME.as_bytes()
    );
    assert_eq!(
        field(sh_fields, "cipher_suite")
            .value
            .split(' ')
            .next()
            .unwrap(),
        s.suite_name
    );
    let (_, cert_fields, _) = message(&out, Broker, "Certificate");
    assert!(field(cert_fields, "certificate[0]")
        .value
        .starts_with(&format!("CN={BROKER_NAME} (issuer CN=iotls test CA")));
    let (dcert, dcert_fields, _) = message(&out, Device, "Certificate");
    let c0 = field(dcert_fields, "certificate[0]");
    assert!(c0.value.starts_with("CN=device-001"));
    assert_eq!(
        &dcert[c0.offset + 3..c0.offset + c0.len],
        &s.pki.device.0[..],
        "certificate offsets point at the DER"
    );
    let (_, cr_fields, _) = message(&out, Broker, "CertificateRequest");
    assert_eq!(
        field(cr_fields, "distinguished_name").value,
        "CN=iotls test CA"
    );
    // Every field of every message lies inside it, and no decoding stopped early.
    for e in &out {
        if let EventKind::Handshake {
            hex, fields, msg, ..
        } = &e.kind
        {
            for f in fields {
                assert!(f.offset + f.len <= hex.len(), "{msg}: {f:?}");
                assert_ne!(f.name, "malformed", "{msg}: {f:?}");
                assert!(!f.name.starts_with("trailing"), "{msg}: {f:?}");
            }
        }
    }

    // Summary.
    let sum = d.summary().unwrap();
    assert_eq!(sum.version, "TLSv1.2");
    assert_eq!(sum.cipher_suite, s.suite_name);
    assert_eq!(sum.kx_group.as_deref(), Some(kx_name));
    assert!(sum.extended_master_secret, "rustls offers and accepts EMS");
    assert_eq!(sum.sni.as_deref(), Some(BROKER_NAME));

    // Application data: the exact plaintext, and the MQTT packets in it.
    assert_eq!(plaintext(&out, Device), s.device_wrote);
    assert_eq!(plaintext(&out, Broker), s.broker_wrote);
    let dev = mqtt(&out, Device);
    let names: Vec<_> = dev.iter().map(|p| p.packet.name()).collect();
    assert_eq!(names, ["CONNECT", "PUBLISH"]);
    assert_eq!(dev[0].client_id.as_deref(), Some("device-001"));
    assert_eq!(dev[1].topic.as_deref(), Some("pizza/orders"));
    assert_eq!(dev[1].payload.as_deref(), Some("{\"pizza\":1}!"));
    assert_eq!((dev[1].qos, dev[1].pkid), (Some(1), Some(1)));
    assert_eq!(
        dev[1].hex,
        PUBLISH.to_vec(),
        "the PUBLISH spanning two records is whole"
    );
    let brk = mqtt(&out, Broker);
    assert_eq!(brk[0].packet.name(), "CONNACK");
    assert_eq!(brk[0].code.as_deref(), Some("0x00 Connection Accepted"));
    assert_eq!((brk[1].packet.name(), brk[1].pkid), ("PUBACK", Some(1)));
    for e in &out {
        if let EventKind::AppData { .. } = e.kind {
            assert_eq!(e.phase, Mqtt);
        }
    }

    // The session ends with the device's encrypted close_notify.
    let last = out.last().unwrap();
    match &last.kind {
        EventKind::Alert {
            level,
            description,
            encrypted,
            ..
        } => {
            assert_eq!(
                (
                    level.name().as_str(),
                    description.name().as_str(),
                    *encrypted
                ),
                ("warning", "close_notify", true)
            );
            assert_eq!((last.side, last.phase), (Device, Close));
        }
        other => panic!("{other:?}"),
    }

    // Any chunking gives the same events: one byte at a time, 7 bytes, 1000 bytes.
    for piece in [1, 7, 1000] {
        let (again, _) = dissect(&s.chunks, s.keys.clone(), piece);
        assert_eq!(again, out, "chunks of {piece}");
    }
}

#[test]
fn ecdhe_ecdsa_aes128gcm_x25519() {
    full_session_decodes(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::kx_group::X25519,
        "x25519",
    );
}

#[test]
fn ecdhe_ecdsa_aes256gcm_sha384_secp256r1() {
    full_session_decodes(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        provider::kx_group::SECP256R1,
        "secp256r1",
    );
}

#[test]
fn ecdhe_ecdsa_chacha20_poly1305() {
    full_session_decodes(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        provider::kx_group::X25519,
        "x25519",
    );
}

/// Index of the chunk holding the `n`-th application-data record sent by `side`.
fn app_data_chunk(chunks: &[(Side, Vec<u8>)], side: Side, n: usize) -> usize {
    chunks
        .iter()
        .enumerate()
        .filter(|(_, (s, b))| *s == side && b[0] == 23)
        .nth(n)
        .map(|(i, _)| i)
        .unwrap()
}

#[test]
fn tampered_record_fails_to_decrypt_without_panic() {
    let s = session(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::kx_group::X25519,
    );
    let mut chunks = s.chunks.clone();
    // The device's first application-data record carries the CONNECT; flip one ciphertext byte.
    let i = app_data_chunk(&chunks, Side::Device, 0);
    chunks[i].1[5 + 8 + 3] ^= 0x01;
    let (out, _) = dissect(&chunks, s.keys.clone(), usize::MAX);
    let dev: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AppData {
                plaintext, mqtt, ..
            } if e.side == Side::Device => Some((plaintext.is_some(), mqtt.len())),
            _ => None,
        })
        .collect();
    // The tampered record: no plaintext, no MQTT. Later records still decrypt (each record has
    // its own tag), but the device's MQTT stream lost its place and decodes nothing more.
    assert_eq!(dev[0], (false, 0));
    assert!(dev[1..].iter().all(|(p, n)| *p && *n == 0), "{dev:?}");
    // The other direction is untouched, and the handshake checks still pass.
    let brk = mqtt(&out, Side::Broker);
    assert_eq!(brk.len(), 2);
    assert_eq!(
        out.iter()
            .filter(|e| matches!(&e.kind, EventKind::Check { ok: true, .. }))
            .count(),
        2
    );
}

#[test]
fn tampered_finished_fails_to_decrypt() {
    let s = session(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        provider::kx_group::X25519,
    );
    let mut chunks = s.chunks.clone();
    // The device's Finished is the last record of its second flight; its last byte is in the tag.
    let (i, _) = chunks
        .iter()
        .enumerate()
        .rfind(|(_, (side, b))| *side == Side::Device && b[0] == 22)
        .unwrap();
    let last = chunks[i].1.len() - 1;
    chunks[i].1[last] ^= 0x80;
    let (out, _) = dissect(&chunks, s.keys.clone(), usize::MAX);
    let undecodable: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Undecodable { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(undecodable.len(), 1, "{undecodable:?}");
    assert!(
        undecodable[0].contains("authentication tag"),
        "{}",
        undecodable[0]
    );
    let checks: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Check { check, .. } => Some(check.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(checks, ["server_finished"]);
}

#[test]
fn without_the_key_log_nothing_is_decrypted_and_nothing_panics() {
    let s = session(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        provider::kx_group::X25519,
    );
    let (out, d) = dissect(&s.chunks, Vec::new(), usize::MAX);
    // The plaintext handshake still decodes; the encrypted Finished messages cannot.
    assert_eq!(handshakes(&out).len(), 9);
    let reasons: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Undecodable { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    // Both Finished records and the encrypted close_notify alert.
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("handshake:") && reasons[0].contains("no key-log line"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].starts_with("handshake:"), "{}", reasons[1]);
    assert!(reasons[2].starts_with("alert:"), "{}", reasons[2]);
    for e in &out {
        if let EventKind::AppData {
            plaintext, mqtt, ..
        } = &e.kind
        {
            assert!(plaintext.is_none() && mqtt.is_empty());
        }
    }
    assert!(d.summary().is_some());
    // A wrong master secret: decryption fails too.
    let mut wrong = s.keys.clone();
    for k in &mut wrong {
        k.master_secret[0] ^= 1;
    }
    let (out, _) = dissect(&s.chunks, wrong, usize::MAX);
    assert!(out.iter().all(|e| !matches!(
        &e.kind,
        EventKind::AppData {
            plaintext: Some(_),
            ..
        }
    )));
}

#[test]
fn garbage_after_a_real_client_hello_is_undecodable() {
    let s = session(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::kx_group::X25519,
    );
    let mut d = Dissector::new(s.keys.clone());
    // The broker answers a real ClientHello with an HTTP response.
    let hello = d.push(Side::Device, &s.chunks[0].1);
    assert_eq!(handshakes(&hello).len(), 1);
    let out = d.push(Side::Broker, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].phase, Phase::Hello);
    match &out[0].kind {
        EventKind::Undecodable { reason, .. } => {
            assert!(reason.contains("HTTP/1.1 400 Bad Request"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        d.push(Side::Broker, &s.chunks[1].1).is_empty(),
        "that direction is ignored from now on"
    );
    assert!(d.summary().is_none());
}

#[test]
fn an_altered_handshake_byte_makes_both_finished_checks_fail() {
    let s = session(
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::kx_group::X25519,
    );
    let mut chunks = s.chunks.clone();
    // The broker's first flight: record header (5), ServerHello header (4), version (2),
    // random (32), session_id length (1) — then the first session_id byte. Changing it leaves
    // the keys alone (they depend on the randoms) but changes the transcript.
    assert_eq!(chunks[1].0, Side::Broker);
    assert_eq!(chunks[1].1[5], 2, "ServerHello");
    chunks[1].1[5 + 4 + 2 + 32 + 1] ^= 0xff;
    let (out, _) = dissect(&chunks, s.keys.clone(), usize::MAX);
    let checks: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Check {
                check, ok, reason, ..
            } => Some((check.as_str(), *ok, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(checks.len(), 2);
    for (check, ok, reason) in &checks {
        assert!(!ok, "{check}");
        assert!(reason.starts_with("Mismatch"), "{reason}");
    }
    // Decryption still works: the keys did not change.
    assert_eq!(plaintext(&out, Side::Device), s.device_wrote);
}
