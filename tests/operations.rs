//! The lessons made of operations (`iotls::engine::operations`): each runs for real, its trace
//! round-trips through JSON, its outcome is ok, and what it claims is checked here with code of the
//! test's own: signatures verified again, the CSR and the certificate parsed with x509-parser,
//! record headers read byte by byte, certificate bytes searched for on the wire.

use iotls::engine::operations::{self, Operations};
use iotls::trace::{Actor, EventKind, OpValue, Operation, OperationKind, Trace};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use x509_parser::prelude::{FromDer, X509Certificate};

fn run(kind: Operations) -> Trace {
    operations::run(kind).unwrap_or_else(|e| panic!("{}: {e}", kind.id()))
}

fn ops(t: &Trace) -> Vec<&Operation> {
    t.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Operation(o) => Some(o.as_ref()),
            _ => None,
        })
        .collect()
}

/// The first operation of this kind by this actor whose summary contains `needle`.
fn find<'t>(t: &'t Trace, op: OperationKind, actor: Actor, needle: &str) -> &'t Operation {
    ops(t)
        .into_iter()
        .find(|o| o.op == op && o.actor == actor && o.summary.contains(needle))
        .unwrap_or_else(|| panic!("no {op:?} by {actor:?} with {needle:?} in {}", t.scenario))
}

fn value<'o>(vals: &'o [OpValue], prefix: &str) -> &'o OpValue {
    vals.iter()
        .find(|v| v.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no value {prefix:?} in {vals:?}"))
}

fn bytes<'o>(vals: &'o [OpValue], prefix: &str) -> &'o [u8] {
    value(vals, prefix)
        .as_bytes()
        .unwrap_or_else(|| panic!("{prefix:?} is not bytes"))
}

fn text<'o>(vals: &'o [OpValue], prefix: &str) -> &'o str {
    value(vals, prefix)
        .as_text()
        .unwrap_or_else(|| panic!("{prefix:?} is not text"))
}

fn spki_of_cert(der: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(der).expect("a certificate x509-parser reads");
    c.tbs_certificate.subject_pki.raw.to_vec()
}

fn point_of_cert(der: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(der).expect("a certificate x509-parser reads");
    c.tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ids_are_unique_and_round_trip() {
    for k in Operations::ALL {
        assert_eq!(Operations::from_id(k.id()), Some(k));
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", k.id()), "serde name is the id");
        assert!(!k.title().is_empty());
    }
    assert_eq!(Operations::from_id("pizza-button"), None);
}

#[test]
fn every_lesson_runs_round_trips_and_reads_in_80_columns() {
    for k in Operations::ALL {
        let t = run(k);
        assert_eq!(t.format, iotls::trace::FORMAT);
        assert_eq!(t.scenario, k.id());
        assert!(t.outcome.ok, "{}: {}", k.id(), t.outcome.summary);
        assert_eq!(t.outcome.exit_code(), 0);
        assert!(!t.events.is_empty());
        assert!(
            t.events
                .iter()
                .all(|e| matches!(e.kind, EventKind::Operation(_))),
            "{}: only operations",
            k.id()
        );
        // Every operation answered what the lesson shows.
        assert!(ops(&t).iter().all(|o| o.as_expected()));
        // No private key in the trace: every value named "private …" is a sentence, not bytes.
        for o in ops(&t) {
            for (_, v) in o.values() {
                if v.name.to_lowercase().contains("private") {
                    assert!(v.as_text().is_some(), "{}: {} is bytes", k.id(), v.name);
                }
            }
        }
        let json = iotls::render::json(&t);
        assert!(
            json.contains("\"kind\": \"operation\"") || json.contains("\"kind\":\"operation\"")
        );
        let back: Trace = serde_json::from_str(&json).expect("the JSON trace reads back");
        assert_eq!(back, t, "{}", k.id());

        let plain = iotls::render::plain::render(&t);
        for line in plain.lines() {
            assert!(
                line.chars().count() <= 80,
                "{}: a line wider than 80 columns: {line:?}",
                k.id()
            );
        }
        assert!(plain.contains(&format!("session {}", k.id())));
        assert!(plain.lines().last().unwrap().starts_with("OK:"), "{plain}");
    }
}

#[test]
fn public_key_basics_signature_verifies_here_and_the_tampered_one_does_not() {
    let t = run(Operations::PublicKeyBasics);
    let gen = find(&t, OperationKind::GenerateKey, Actor::Device, "ECDSA");
    let public = bytes(&gen.outputs, "public key");
    assert_eq!(public.len(), 65);
    assert_eq!(public[0], 0x04, "an uncompressed P-256 point");
    let sign = find(&t, OperationKind::Sign, Actor::Device, "order");
    let message = text(&sign.inputs, "message");
    let sig = bytes(&sign.outputs, "signature");
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public);
    key.verify(message.as_bytes(), sig)
        .expect("the recorded signature verifies over the recorded order");
    let order: serde_json::Value = serde_json::from_str(message).expect("the order is JSON");
    assert_eq!(order["serialNumber"], iotls::pki::BUTTON_SERIAL);

    let tamper = find(&t, OperationKind::Tamper, Actor::Attacker, "bit");
    let tampered = text(&tamper.outputs, "tampered");
    let diff: Vec<(u8, u8)> = message
        .bytes()
        .zip(tampered.bytes())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(diff.len(), 1, "one byte changed");
    assert_eq!((diff[0].0 ^ diff[0].1).count_ones(), 1, "one bit changed");
    assert!(key.verify(tampered.as_bytes(), sig).is_err());
    let verdicts: Vec<(bool, bool)> = ops(&t)
        .iter()
        .filter(|o| o.op == OperationKind::Verify)
        .map(|o| {
            let v = o.verdict.as_ref().unwrap();
            (v.ok, v.expected)
        })
        .collect();
    assert_eq!(verdicts, vec![(true, true), (false, false)]);

    // RSA: the public key is a 2048-bit RSA key, the ciphertext one modulus long.
    let rsa_gen = find(&t, OperationKind::GenerateKey, Actor::Broker, "RSA");
    let spki = bytes(&rsa_gen.outputs, "public key");
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).unwrap();
    match info.parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 2048),
        other => panic!("not RSA: {other:?}"),
    }
    let enc = find(&t, OperationKind::Encrypt, Actor::Device, "PUBLIC");
    let ct = bytes(&enc.outputs, "ciphertext");
    assert_eq!(ct.len(), 256);
    let plaintext = text(&enc.inputs, "plaintext");
    assert!(!contains(ct, plaintext.as_bytes()));
    let dec = find(&t, OperationKind::Decrypt, Actor::Broker, "PRIVATE");
    assert_eq!(bytes(&dec.inputs, "ciphertext"), ct);
    assert_eq!(text(&dec.outputs, "plaintext"), plaintext);

    let plain = iotls::render::plain::render(&t);
    for needle in [
        "sign with the PRIVATE key, verify with the PUBLIC key",
        "encrypt with the PUBLIC key, decrypt with the PRIVATE key",
        "signature invalid",
        "OAEP",
    ] {
        assert!(plain.contains(needle), "{needle:?} missing:\n{plain}");
    }
}

#[test]
fn csr_to_certificate_keeps_the_device_key() {
    let t = run(Operations::CsrToCertificate);
    let csr_op = find(
        &t,
        OperationKind::CreateCsr,
        Actor::Device,
        "signing request",
    );
    let csr_der = bytes(&csr_op.outputs, "CSR");
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr_der).unwrap();
    csr.verify_signature()
        .expect("proof of possession: the CSR's signature verifies with its own key");
    let subject = csr.certification_request_info.subject.to_string();
    assert!(subject.contains(iotls::pki::BUTTON_THING), "{subject}");
    assert!(subject.contains(iotls::pki::BUTTON_SERIAL), "{subject}");

    let issue = find(&t, OperationKind::IssueCertificate, Actor::Ca, "signs");
    let cert_der = bytes(&issue.outputs, "certificate");
    let ca_der = bytes(&issue.inputs, "issuing CA certificate");
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let (_, ca) = X509Certificate::from_der(ca_der).unwrap();
    assert_eq!(
        cert.tbs_certificate.subject_pki.raw, csr.certification_request_info.subject_pki.raw,
        "the certificate carries the CSR's public key"
    );
    assert_eq!(cert.subject(), &csr.certification_request_info.subject);
    assert_eq!(cert.issuer(), ca.subject(), "issuer = the CA");
    cert.verify_signature(Some(ca.public_key()))
        .expect("the CA's signature verifies");
    let eku = cert
        .extended_key_usage()
        .unwrap()
        .expect("an EKU extension");
    assert!(eku.value.client_auth && !eku.value.server_auth);
    assert!(cert.validity().is_valid());

    let gen = find(&t, OperationKind::GenerateKey, Actor::Device, "key pair");
    assert_eq!(
        bytes(&gen.outputs, "public key"),
        spki_of_cert(cert_der).as_slice()
    );
    let plain = iotls::render::plain::render(&t);
    for needle in ["proof of possession", "never left the device", "clientAuth"] {
        assert!(plain.contains(needle), "{needle:?} missing:\n{plain}");
    }
}

#[test]
fn identity_options_three_ways_and_webpki_verdicts() {
    let t = run(Operations::IdentityOptions);
    let chains: Vec<(bool, bool, &str)> = ops(&t)
        .iter()
        .filter(|o| o.op == OperationKind::VerifyChain)
        .map(|o| {
            let v = o.verdict.as_ref().unwrap();
            (v.ok, v.expected, v.reason.as_str())
        })
        .collect();
    assert_eq!(chains.len(), 4, "{chains:?}");
    assert!(chains[0].0 && chains[1].0 && chains[3].0, "{chains:?}");
    assert!(!chains[2].0 && !chains[2].1);
    assert!(chains[2].2.contains("UnknownIssuer"), "{chains:?}");

    // (a): the private key travelled, (b) and (c): it did not.
    let travel = find(&t, OperationKind::Transfer, Actor::Ca, "private key");
    assert!(text(&travel.outputs, "private key").contains("travelled"));
    // (c): the certificate's issuer is the registered CA, and its signature verifies with it.
    let own = find(&t, OperationKind::IssueCertificate, Actor::OwnCa, "own CA");
    let own_der = bytes(&own.outputs, "CA certificate");
    let leaf_op = find(&t, OperationKind::IssueCertificate, Actor::OwnCa, "line");
    let (_, own_ca) = X509Certificate::from_der(own_der).unwrap();
    let (_, leaf) = X509Certificate::from_der(bytes(&leaf_op.outputs, "certificate")).unwrap();
    assert_eq!(leaf.issuer(), own_ca.subject());
    leaf.verify_signature(Some(own_ca.public_key())).unwrap();
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(bytes(
        &leaf_op.inputs,
        "CSR",
    ))
    .unwrap();
    assert_eq!(
        csr.certification_request_info.subject_pki.raw,
        leaf.tbs_certificate.subject_pki.raw
    );
}

#[test]
fn files_on_the_device_key_matches_certificate() {
    let t = run(Operations::FilesOnTheDevice);
    let cert_op = find(
        &t,
        OperationKind::InspectCertificate,
        Actor::Device,
        "button.pem",
    );
    let cert = bytes(&cert_op.inputs, "certificate");
    let sign = find(&t, OperationKind::Sign, Actor::Device, "button.key");
    let msg = text(&sign.inputs, "message");
    let sig = bytes(&sign.outputs, "signature");
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point_of_cert(cert));
    key.verify(msg.as_bytes(), sig)
        .expect("button.key's signature verifies with button.pem's public key");
    let wrong = find(&t, OperationKind::Verify, Actor::Iotls, "WRONG");
    assert!(key
        .verify(
            msg.as_bytes(),
            bytes(&wrong.inputs, "signature by the other key")
        )
        .is_err());
    let inspect_key = find(&t, OperationKind::InspectKey, Actor::Device, "button.key");
    // The key file was written by pki init's writer and read back: mode 0600 on disk.
    #[cfg(unix)]
    assert!(
        text(&inspect_key.inputs, "file").contains("mode 0600"),
        "{:?}",
        inspect_key.inputs
    );
    assert_eq!(
        bytes(&inspect_key.outputs, "its public half"),
        spki_of_cert(cert).as_slice()
    );
    let root = find(
        &t,
        OperationKind::InspectCertificate,
        Actor::Device,
        "root.pem",
    );
    let (_, r) = X509Certificate::from_der(bytes(&root.inputs, "certificate")).unwrap();
    assert_eq!(r.subject(), r.issuer(), "the root is self-signed");
    assert!(r.is_ca());
    let chains: Vec<bool> = ops(&t)
        .iter()
        .filter(|o| o.op == OperationKind::VerifyChain)
        .map(|o| o.verdict.as_ref().unwrap().ok)
        .collect();
    assert_eq!(chains, vec![true, false]);
    let plain = iotls::render::plain::render(&t);
    for needle in [
        "button.pem",
        "button.key",
        "root.pem",
        "Missing:",
        "never shown",
    ] {
        assert!(plain.contains(needle), "{needle:?} missing:\n{plain}");
    }
}

#[test]
fn forward_secrecy_rsa_recovers_and_ecdhe_agrees() {
    let t = run(Operations::ForwardSecrecy);
    let enc = find(&t, OperationKind::Encrypt, Actor::Device, "pre-master");
    let pms = bytes(&enc.inputs, "pre-master");
    assert_eq!(pms.len(), 48);
    assert_eq!(&pms[..2], &[3, 3], "client_version TLS 1.2");
    let ct = bytes(&enc.outputs, "ClientKeyExchange");
    assert_eq!(ct.len(), 256);
    assert!(!contains(ct, pms));
    let dec = find(&t, OperationKind::Decrypt, Actor::Attacker, "leaked");
    assert_eq!(bytes(&dec.inputs, "recorded"), ct);
    assert_eq!(bytes(&dec.outputs, "recovered"), pms);

    let agree: Vec<&Operation> = ops(&t)
        .into_iter()
        .filter(|o| o.op == OperationKind::KeyAgreement)
        .collect();
    assert_eq!(agree.len(), 2);
    let (d, b) = (
        bytes(&agree[0].outputs, "shared secret"),
        bytes(&agree[1].outputs, "shared secret"),
    );
    assert_eq!(d, b, "both sides computed the same secret");
    assert_eq!(d.len(), 32);
    let dev_pub = bytes(&agree[1].inputs, "device's public value");
    let brk_pub = bytes(&agree[0].inputs, "broker's public value");
    assert_ne!(dev_pub, brk_pub);
    assert!(!contains(dev_pub, d) && !contains(brk_pub, d));
    let plain = iotls::render::plain::render(&t);
    for needle in [
        "rustls does not implement RSA key transport",
        "What it does not show",
        "forward secrecy",
    ] {
        assert!(plain.contains(needle), "{needle:?} missing:\n{plain}");
    }
}

#[test]
fn tls13_certificates_travel_encrypted_unlike_tls12() {
    let t = run(Operations::Tls13Contrast);
    let session = find(&t, OperationKind::TlsSession, Actor::Iotls, "TLS 1.3");
    assert_eq!(text(&session.outputs, "version"), "TLSv1_3");
    let records: Vec<(Actor, &[u8])> = ops(&t)
        .into_iter()
        .filter(|o| o.op == OperationKind::TlsRecord)
        .map(|o| (o.actor, bytes(&o.outputs, "record as sent")))
        .collect();
    // Each is one whole record: header length = the rest.
    for (_, r) in &records {
        assert_eq!(u16::from_be_bytes([r[3], r[4]]) as usize, r.len() - 5);
    }
    assert_eq!(records[0].0, Actor::Device);
    assert_eq!((records[0].1[0], records[0].1[5]), (22, 1), "ClientHello");
    let sh = records
        .iter()
        .position(|(a, r)| *a == Actor::Broker && r[0] == 22 && r[5] == 2)
        .expect("a ServerHello");
    let mut after = 0;
    for (_, r) in &records[sh + 1..] {
        match r[0] {
            23 => after += 1,
            // The middlebox-compatibility ChangeCipherSpec: one byte, 01.
            20 => assert_eq!(&r[5..], &[1]),
            other => panic!("content type {other} after ServerHello"),
        }
    }
    assert!(after >= 3, "the encrypted flights and the data");
    let wire: Vec<u8> = records.iter().flat_map(|(_, r)| r.to_vec()).collect();
    let certs: Vec<&[u8]> = ops(&t)
        .into_iter()
        .filter(|o| o.op == OperationKind::Compare && o.summary.contains("TLS 1.3 bytes"))
        .map(|o| bytes(&o.inputs, ""))
        .collect();
    assert_eq!(certs.len(), 2);
    for c in &certs {
        X509Certificate::from_der(c).expect("a certificate");
        assert!(!contains(&wire, c), "a certificate in the clear in TLS 1.3");
    }

    // The tour's TLS 1.2 session carries the device's certificate in the clear.
    let scenario = iotls::engine::lessons::scenario("pizza-button").unwrap();
    let leaf = scenario.device.identity.leaf().to_vec();
    let t12 = iotls::engine::run(&scenario).unwrap();
    let wire12: Vec<u8> = t12.records.iter().flat_map(|r| r.bytes.clone()).collect();
    assert!(contains(&wire12, &leaf));
}

#[test]
fn tour_runs_an_operations_lesson_from_the_command_line() {
    let bin = env!("CARGO_BIN_EXE_iotls");
    let out = std::process::Command::new(bin)
        .args(["tour", "public-key-basics", "--plain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("session public-key-basics"), "{s}");
    assert!(s.contains("signature valid"));
    let list = std::process::Command::new(bin)
        .args(["tour", "--list"])
        .output()
        .unwrap();
    let s = String::from_utf8(list.stdout).unwrap();
    for k in Operations::ALL {
        assert!(s.contains(k.id()), "{} not listed", k.id());
    }
    // Nothing to capture: a session's exports are refused with a usage error, no file written.
    let dir = std::env::temp_dir().join(format!("iotls-test-ops-{}", std::process::id()));
    let pcap = dir.join("x.pcapng");
    let out = std::process::Command::new(bin)
        .args(["tour", "forward-secrecy", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a session"));
    assert!(!pcap.exists());
}
