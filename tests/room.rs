//! A workshop room (docs/workshop.md): `iotls pki init DIR --devices N` writes one identity per
//! participant and a registry; `iotls serve` admits them all at once, each only on its own topics;
//! `--san` puts the room's address in the broker's certificate; `pki init` never writes through a
//! symbolic link; `serve --ca-mode` admits any certificate a registered CA issued; `serve --ui`
//! shows the room in a real terminal (tmux, on a tmux server of this test's own).
//!
//! Peers: `mosquitto_pub` (20 participants at once) and `tmux` (the room view). The other tests
//! run iotls alone.

mod common;

use common::peer_available;
use common::peers::*;
use common::tmux::Tmux;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// `iotls pki init DIR --devices n` into a new directory; the directory.
fn room(name: &str, n: u16, extra: &[&str]) -> PathBuf {
    let dir = tempdir(name).join("room");
    let n = n.to_string();
    let mut args = vec![
        "pki",
        "init",
        dir.to_str().expect("utf-8 path"),
        "--devices",
        &n,
    ];
    args.extend(extra);
    let r = iotls(&args);
    assert_eq!(r.code, Some(0), "pki init:\n{}", r.show());
    assert!(
        !r.stdout.contains("PRIVATE KEY"),
        "paths only, never key material"
    );
    dir
}

/// The DER of the first certificate in a PEM file.
fn der(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pem::parse_many(text).expect("PEM")[0].contents().to_vec()
}

/// (CN, subject serialNumber, issuer DN) of a certificate.
fn subject(der: &[u8]) -> (String, String, String) {
    let (_, c) = X509Certificate::from_der(der).expect("X.509");
    let attr = |oid: &str| {
        c.subject()
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == oid)
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (attr("2.5.4.3"), attr("2.5.4.5"), c.issuer().to_string())
}

fn device(i: usize) -> String {
    format!("device-{i:03}")
}

/// The serialNumber of `device-NNN.pem` in `dir`.
fn serial(dir: &Path, i: usize) -> String {
    subject(&der(&dir.join(format!("{}.pem", device(i))))).1
}

/// The checks and decisions of a trace, for assertion messages and lookups.
fn events<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn fact(e: &Value, name: &str) -> String {
    e["facts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn registry_check(t: &Value) -> Option<&Value> {
    events(t, "check")
        .into_iter()
        .find(|e| e["check"] == "registry")
}

/// (action, resource without the ARN prefix, decision) of every policy decision.
fn decisions(t: &Value) -> Vec<(String, String, String)> {
    events(t, "policy")
        .iter()
        .map(|e| {
            let r = e["resource"].as_str().unwrap_or_default();
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                r.splitn(6, ':').nth(5).unwrap_or(r).to_string(),
                e["decision"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn client_id(t: &Value) -> String {
    events(t, "app_data")
        .iter()
        .filter(|e| e["side"] == "device")
        .flat_map(|e| e["mqtt"].as_array().into_iter().flatten())
        .find(|p| p["packet"] == "CONNECT")
        .and_then(|p| p["client_id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// `mosquitto_pub` as room device `i` of `dir`, to `addr`, with client id `id`, on `topic`.
fn mosquitto_pub(dir: &Path, addr: &str, i: usize, id: &str, topic: &str) -> Owned {
    let port = addr.rsplit(':').next().expect("port");
    let f = |name: String| dir.join(name);
    let child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", port, "--cafile"])
        .arg(f("root.pem".into()))
        .arg("--cert")
        .arg(f(format!("{}.pem", device(i))))
        .arg("--key")
        .arg(f(format!("{}.key", device(i))))
        .args([
            "-i",
            id,
            "-t",
            topic,
            "-m",
            "hello from the room",
            "-q",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    Owned(child)
}

/// Wait for a mosquitto_pub; its exit code and stderr.
fn finish(p: &mut Owned) -> (Option<i32>, String) {
    let st = wait_bounded(&mut p.0, SESSION);
    let mut err = String::new();
    if let Some(mut e) = p.0.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (st.and_then(|s| s.code()), err)
}

#[test]
fn pki_init_devices_writes_one_identity_per_participant_and_a_registry() {
    let dir = room("devices", 20, &[]);
    let ca = der(&dir.join("issuing-ca.pem"));
    let (_, ca_cert) = X509Certificate::from_der(&ca).expect("issuing CA");
    let ca_subject = ca_cert.subject().to_string();

    let mut cns = BTreeSet::new();
    let mut serials = BTreeSet::new();
    for i in 1..=20 {
        let name = device(i);
        let cert = der(&dir.join(format!("{name}.pem")));
        let (cn, serial, issuer) = subject(&cert);
        assert_eq!(cn, name, "the CN is the thing name");
        assert!(!serial.is_empty(), "{name} has a subject serialNumber");
        assert_eq!(issuer, ca_subject, "{name} is issued by the issuing CA");
        cns.insert(cn);
        serials.insert(serial);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(format!("{name}.key")))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}.key is private");
        }
    }
    assert_eq!(cns.len(), 20, "distinct thing names");
    assert_eq!(serials.len(), 20, "distinct serialNumbers: {serials:?}");
    assert!(!dir.join("device-021.pem").exists());
    // Today's files are still written.
    for f in [
        "root.pem",
        "broker.pem",
        "broker.key",
        "button.pem",
        "neighbour.key",
        "rogue-button.pem",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }

    // The registry: each room certificate ACTIVE, attached to its own thing and the room policy.
    let reg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("registry.json")).unwrap())
            .expect("registry.json is JSON");
    let certs = reg["certificates"].as_array().expect("certificates");
    for i in 1..=20 {
        let c = certs
            .iter()
            .find(|c| c["pem"] == format!("{}.pem", device(i)))
            .unwrap_or_else(|| panic!("{} is registered: {reg}", device(i)));
        assert_eq!(c["status"], "ACTIVE");
        assert_eq!(c["things"], serde_json::json!([device(i)]));
        assert_eq!(c["policies"], serde_json::json!(["RoomDevicePolicy"]));
    }
    // The handout lists every device with its serial and topics.
    let csv = std::fs::read_to_string(dir.join("devices.csv")).unwrap();
    let s7 = serial(&dir, 7);
    assert!(
        csv.contains(&format!(
            "device-007,{s7},device-007.pem,device-007.key,room/{s7}/#"
        )),
        "{csv}"
    );

    // The room policy passes the audit checks and gives each device its own topics only.
    let policy = dir.join("room-policy.json");
    let lint = iotls(["policy", "lint", policy.to_str().unwrap()]);
    assert_eq!(lint.code, Some(0), "no findings:\n{}", lint.show());
    let decide = |action: &str, resource: &str, client: &str| {
        let r = iotls([
            "policy",
            "test",
            "--policy",
            policy.to_str().unwrap(),
            "--cert",
            dir.join("device-007.pem").to_str().unwrap(),
            "--client-id",
            client,
            "--thing-name",
            "device-007",
            "--action",
            action,
            "--resource",
            resource,
            "--json",
        ]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.show()));
        v["decision"].as_str().unwrap_or_default().to_string()
    };
    let s8 = serial(&dir, 8);
    assert_eq!(decide("iot:Connect", "device-007", "device-007"), "ALLOWED");
    assert_eq!(
        decide("iot:Connect", "device-008", "device-008"),
        "IMPLICIT_DENY"
    );
    // A second connection of the same device (a subscriber next to a publisher).
    assert_eq!(
        decide("iot:Connect", "device-007-sub", "device-007-sub"),
        "ALLOWED"
    );
    assert_eq!(
        decide("iot:Connect", "device-008-sub", "device-008-sub"),
        "IMPLICIT_DENY"
    );
    assert_eq!(
        decide("iot:Connect", "device-0071", "device-0071"),
        "IMPLICIT_DENY"
    );
    assert_eq!(
        decide("iot:Publish", &format!("room/{s7}/hello"), "device-007"),
        "ALLOWED"
    );
    assert_eq!(
        decide("iot:Publish", &format!("room/{s8}/hello"), "device-007"),
        "IMPLICIT_DENY"
    );
    assert_eq!(
        decide("iot:Subscribe", "room/+/status", "device-007"),
        "ALLOWED"
    );
    assert_eq!(
        decide("iot:Subscribe", "room/#", "device-007"),
        "IMPLICIT_DENY"
    );
    assert_eq!(
        decide("iot:Receive", &format!("room/{s8}/status"), "device-007"),
        "ALLOWED"
    );
    assert_eq!(
        decide("iot:Receive", &format!("room/{s8}/hello"), "device-007"),
        "IMPLICIT_DENY"
    );
}

#[test]
fn twenty_participants_at_once_all_end_ok_and_a_neighbours_topic_is_refused() {
    if !peer_available("mosquitto_pub", "twenty_participants_at_once") {
        return;
    }
    let dir = room("twenty", 20, &[]);
    let registry = dir.join("registry.json");
    let mut serve = Serve::start_with(&dir, 20, &["--registry".as_ref(), registry.as_os_str()]);
    let serials: Vec<String> = (1..=20).map(|i| serial(&dir, i)).collect();
    // All twenty at once, each on its own topic.
    let mut pubs: Vec<Owned> = (1..=20)
        .map(|i| {
            let topic = format!("room/{}/hello", serials[i - 1]);
            mosquitto_pub(&dir, &serve.addr, i, &device(i), &topic)
        })
        .collect();
    for (i, p) in pubs.iter_mut().enumerate() {
        let (code, err) = finish(p);
        assert_eq!(
            code,
            Some(0),
            "mosquitto_pub {}: {err}\n{}",
            device(i + 1),
            serve.show_now()
        );
    }
    let code = serve.finish(SESSION);
    let traces = serve.traces();
    assert_eq!(traces.len(), 20, "{}", serve.show());
    assert_eq!(code, Some(0), "every session ok:\n{}", serve.show());
    let mut ids = BTreeSet::new();
    for t in &traces {
        assert_eq!(t["outcome"]["ok"], true, "{}", brief(t));
        let id = client_id(t);
        let i: usize = id
            .trim_start_matches("device-")
            .parse()
            .expect("a room client id");
        assert!(
            decisions(t).contains(&(
                "iot:Publish".into(),
                format!("topic/room/{}/hello", serials[i - 1]),
                "ALLOWED".into()
            )),
            "{}",
            brief(t)
        );
        ids.insert(id);
    }
    assert_eq!(ids, (1..=20).map(device).collect::<BTreeSet<_>>());

    // Least privilege: device 1 on device 2's topic, and device 1 posing as device 2.
    let mut serve = Serve::start_with(&dir, 2, &["--registry".as_ref(), registry.as_os_str()]);
    let mut p = mosquitto_pub(
        &dir,
        &serve.addr,
        1,
        "device-001",
        &format!("room/{}/hello", serials[1]),
    );
    let (code, _) = finish(&mut p);
    assert_ne!(
        code,
        Some(0),
        "mosquitto_pub sees the refusal as a closed connection"
    );
    let mut p = mosquitto_pub(
        &dir,
        &serve.addr,
        1,
        "device-002",
        &format!("room/{}/hello", serials[0]),
    );
    let (code, _) = finish(&mut p);
    assert_ne!(code, Some(0));
    let code = serve.finish(SESSION);
    let traces = serve.traces();
    assert_eq!(traces.len(), 2, "{}", serve.show());
    assert_eq!(code, Some(5), "an MQTT refusal:\n{}", serve.show());
    let topic = traces
        .iter()
        .find(|t| client_id(t) == "device-001")
        .expect("the neighbour's-topic session");
    assert_eq!(
        topic["outcome"]["failure"]["code"],
        "policy_denied",
        "{}",
        brief(topic)
    );
    assert!(decisions(topic).contains(&(
        "iot:Publish".into(),
        format!("topic/room/{}/hello", serials[1]),
        "IMPLICIT_DENY".into()
    )));
    let posing = traces
        .iter()
        .find(|t| client_id(t) == "device-002")
        .expect("the posing session");
    assert_eq!(
        decisions(posing),
        vec![(
            "iot:Connect".into(),
            "client/device-002".into(),
            "IMPLICIT_DENY".into()
        )],
        "{}",
        brief(posing)
    );
}

#[test]
fn san_puts_the_rooms_address_in_the_brokers_certificate() {
    let dir = room("san", 1, &["--san", "192.0.2.10", "--san", "Room.Example"]);
    let cert = der(&dir.join("broker.pem"));
    let (_, c) = X509Certificate::from_der(&cert).expect("broker certificate");
    let san = c
        .subject_alternative_name()
        .expect("valid extension")
        .expect("a SAN");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|g| match g {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(ip) => match <[u8; 4]>::try_from(*ip) {
                Ok(a) => format!("IP:{}", std::net::Ipv4Addr::from(a)),
                Err(_) => format!("IP:{ip:?}"),
            },
            other => format!("{other:?}"),
        })
        .collect();
    for want in [
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:192.0.2.10",
        "DNS:room.example",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }

    let bad = iotls([
        "pki",
        "init",
        tempdir("san-bad").join("r").to_str().unwrap(),
        "--san",
        "not a name",
    ]);
    assert_eq!(bad.code, Some(2), "{}", bad.show());
    assert!(
        bad.stderr.contains("--san") && bad.stderr.contains("not a name"),
        "{}",
        bad.show()
    );
    let many = iotls([
        "pki",
        "init",
        tempdir("san-bad").join("r").to_str().unwrap(),
        "--devices",
        "501",
    ]);
    assert_eq!(many.code, Some(2), "{}", many.show());
}

#[test]
fn pki_init_never_writes_through_a_symbolic_link() {
    let base = tempdir("symlink");
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let target = outside.join("precious.txt");
    std::fs::write(&target, "not a key\n").unwrap();
    let dir = base.join("room");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("button.key")).unwrap();

    for force in [false, true] {
        let mut args = vec!["pki", "init", dir.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        let r = iotls(&args);
        assert_eq!(r.code, Some(3), "force={force}: {}", r.show());
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.show());
        assert!(
            r.stderr.contains("button.key") && r.stderr.contains("symbolic link"),
            "{}",
            r.show()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not a key\n");
        // Every file is checked before any is written: the directory is as it was.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("button.key")]);
    }

    // --force replaces a file by removing it first: a hard link's other name keeps its bytes,
    // and the new key is created 0600 whatever mode the old file had.
    std::fs::remove_file(dir.join("button.key")).unwrap();
    let shared = outside.join("shared.txt");
    std::fs::write(&shared, "shared\n").unwrap();
    std::fs::hard_link(&shared, dir.join("neighbour.key")).unwrap();
    std::fs::write(dir.join("broker.key"), "old\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("broker.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let r = iotls(["pki", "init", dir.to_str().unwrap()]);
    assert_eq!(r.code, Some(3), "existing files need --force: {}", r.show());
    assert!(r.stderr.contains("--force"), "{}", r.show());
    let r = iotls(["pki", "init", dir.to_str().unwrap(), "--force"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), "shared\n");
    let key = std::fs::read_to_string(dir.join("neighbour.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("broker.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A PKI of the test's own, with its CA keys in hand: `root.pem`, `issuing-ca.pem` ("Lab Issuing
/// CA"), `broker.pem/.key` (SAN localhost), `sensor.pem/.key` (CN `lab-sensor-7`, serialNumber
/// `LAB-7`, issued by the issuing CA and registered nowhere), and `rogue.pem/.key` (the same CN,
/// issued by a CA nobody registered).
fn lab_pki(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
    };
    let now = time::OffsetDateTime::now_utc();
    let key = || KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let dn = |cn: &str, serial: Option<&str>| {
        let mut d = DistinguishedName::new();
        d.push(DnType::OrganizationName, DnValue::Utf8String("Lab".into()));
        d.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
        if let Some(s) = serial {
            d.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                DnValue::PrintableString(s.try_into().expect("printable")),
            );
        }
        d
    };
    let ca = |cn: &str| {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, None);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
        p
    };
    let leaf = |cn: &str, serial: Option<&str>, eku| {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, serial);
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
        p
    };
    let root = CertifiedIssuer::self_signed(ca("Lab Root CA"), key()).expect("root");
    let issuing = CertifiedIssuer::signed_by(ca("Lab Issuing CA"), key(), &root).expect("CA");
    let rogue = CertifiedIssuer::self_signed(ca("Nobody's CA"), key()).expect("rogue CA");
    let write = |name: &str, p: CertificateParams, by: &CertifiedIssuer<'_, KeyPair>| {
        let k = key();
        let cert = p.signed_by(&k, by).expect("leaf");
        std::fs::write(
            dir.join(format!("{name}.pem")),
            format!("{}{}", cert.pem(), by.pem()),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.key")), k.serialize_pem()).unwrap();
    };
    let mut broker = leaf("broker.lab", None, ExtendedKeyUsagePurpose::ServerAuth);
    broker.subject_alt_names = vec![SanType::DnsName("localhost".try_into().expect("dns"))];
    write("broker", broker, &issuing);
    let sensor = || {
        leaf(
            "lab-sensor-7",
            Some("LAB-7"),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    };
    write("sensor", sensor(), &issuing);
    write("rogue", sensor(), &rogue);
    std::fs::write(dir.join("root.pem"), root.pem()).unwrap();
    std::fs::write(dir.join("issuing-ca.pem"), issuing.pem()).unwrap();
}

/// `iotls serve` in CA mode for `sessions` sessions on the lab PKI written into `dir`: the lab
/// broker's identity, the issuing CA registered, the room policy.
fn serve_lab_ca_mode(dir: &std::path::Path, sessions: u32) -> Serve {
    lab_pki(dir);
    let policy = dir.join("room-policy.json");
    std::fs::write(&policy, iotls::pki::ROOM_POLICY_JSON).unwrap();
    let arg = |f: &str| dir.join(f).into_os_string();
    let extra = [
        "--cert".into(),
        arg("broker.pem"),
        "--key".into(),
        arg("broker.key"),
        "--ca".into(),
        arg("issuing-ca.pem"),
        "--ca-mode".into(),
        "--policy".into(),
        policy.into_os_string(),
    ];
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|s| s.as_os_str()).collect();
    Serve::start_with(dir, sessions, &extra)
}

#[test]
fn ca_mode_admits_what_a_registered_ca_issued_and_refuses_the_rest() {
    let dir = tempdir("ca-mode");
    let mut serve = serve_lab_ca_mode(&dir, 2);
    let ok = iotls_connect(
        &dir,
        &serve.addr,
        "sensor",
        &["--topic", "room/LAB-7/hello", "--json"],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.show());
    let rogue = iotls_connect(&dir, &serve.addr, "rogue", &["--topic", "room/LAB-7/hello"]);
    assert_eq!(
        rogue.code,
        Some(4),
        "refused in the handshake: {}",
        rogue.show()
    );
    let code = serve.finish(SESSION);
    let traces = serve.traces();
    assert_eq!(traces.len(), 2, "{}", serve.show());
    assert_eq!(code, Some(4), "{}", serve.show());

    let admitted = traces
        .iter()
        .find(|t| t["outcome"]["ok"] == true)
        .expect("an ok session");
    let check = registry_check(admitted).expect("a registry check");
    assert_eq!(check["ok"], true);
    assert!(
        fact(check, "registered CA").contains("Lab Issuing CA"),
        "{check}"
    );
    assert_eq!(fact(check, "thing"), "lab-sensor-7");
    assert_eq!(
        decisions(admitted),
        vec![
            (
                "iot:Connect".into(),
                "client/lab-sensor-7".into(),
                "ALLOWED".into()
            ),
            (
                "iot:Publish".into(),
                "topic/room/LAB-7/hello".into(),
                "ALLOWED".into()
            ),
        ]
    );
    let refused = traces
        .iter()
        .find(|t| t["outcome"]["ok"] == false)
        .expect("a refused session");
    assert_eq!(
        refused["outcome"]["failure"]["code"],
        "unknown_issuer",
        "{}",
        brief(refused)
    );
    assert!(registry_check(refused).is_none(), "TLS stopped it first");
}

#[test]
fn ca_mode_with_the_default_pki_registers_its_issuing_ca_and_names_the_ca_it_needs() {
    let dir = room("ca-mode-default", 1, &[]);
    let policy = dir.join("room-policy.json");
    let ca_mode = [
        "--ca-mode".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ];
    let mut serve = Serve::start_with(&dir, 2, &ca_mode);
    let s1 = serial(&dir, 1);
    let ok = iotls_connect(
        &dir,
        &serve.addr,
        "device-001",
        &["--topic", &format!("room/{s1}/hello")],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.show());
    let rogue = iotls_connect(&dir, &serve.addr, "rogue-button", &["--tls-only"]);
    assert_eq!(rogue.code, Some(4), "{}", rogue.show());
    assert_eq!(serve.finish(SESSION), Some(4), "{}", serve.show());
    let traces = serve.traces();
    let check = registry_check(&traces[0]).expect("registry check");
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        fact(check, "registered CA").contains("Pizza Shop Issuing CA 1"),
        "{check}"
    );

    // Registering the root instead: the device's chain is trusted in the handshake, but the root
    // did not sign its certificate, so the registry check refuses it and says which CA did.
    let root = dir.join("root.pem");
    let mut extra = ca_mode.to_vec();
    extra.extend(["--ca".as_ref(), root.as_os_str()]);
    let mut serve = Serve::start_with(&dir, 1, &extra);
    let r = iotls_connect(
        &dir,
        &serve.addr,
        "device-001",
        &["--topic", &format!("room/{s1}/hello")],
    );
    assert_eq!(r.code, Some(5), "{}", r.show());
    assert_eq!(serve.finish(SESSION), Some(5));
    let t = &serve.traces()[0];
    let check = registry_check(t).expect("registry check");
    assert_eq!(check["ok"], false);
    assert_eq!(
        t["outcome"]["failure"]["code"],
        "unregistered",
        "{}",
        brief(t)
    );
    let reason = check["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not issued by a registered CA")
            && reason.contains("Pizza Shop Issuing CA 1"),
        "{reason}"
    );

    // Usage: --ca-mode needs --policy, and does not take a registry.
    let d = dir.to_str().unwrap();
    let r = iotls(["serve", "--pki", d, "--port", "0", "--ca-mode"]);
    assert_eq!(r.code, Some(2), "{}", r.show());
    let reg = dir.join("registry.json");
    let r = iotls([
        "serve",
        "--pki",
        d,
        "--port",
        "0",
        "--ca-mode",
        "--policy",
        policy.to_str().unwrap(),
        "--registry",
        reg.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.show());
    let r = iotls([
        "serve",
        "--pki",
        d,
        "--port",
        "0",
        "--ca-mode",
        "--policy",
        dir.join("missing.json").to_str().unwrap(),
        "--sessions",
        "1",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(
        r.stderr.contains("missing.json") && r.stderr.lines().count() == 1,
        "{}",
        r.show()
    );
}

// ---------------------------------------------------------------------------------------------
// The room view in a real terminal
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_ui_lists_each_session_opens_it_in_the_tour_and_quits_cleanly() {
    if !peer_available("tmux", "serve_ui_lists_each_session") {
        return;
    }
    let dir = tempdir("room-ui");
    default_pki(&dir);
    let bin = env!("CARGO_BIN_EXE_iotls");
    let cmd = format!(
        "{bin} serve --pki {} --port 0 --ui; echo IOTLS-EXITED-$?; sleep 30",
        dir.display()
    );
    let tmux = Tmux::start("room", 120, 35, &cmd);

    let first = tmux.wait_for("listening on 127.0.0.1:", Duration::from_secs(15), |s| {
        s.contains("listening on 127.0.0.1:")
    });
    assert!(first.contains("Waiting for the first device"), "{first}");
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the address in the title")
        .to_string();

    // One session: the pizza button orders on its own topic.
    let r = iotls_connect(
        &dir,
        &addr,
        "button",
        &[
            "--topic",
            &format!("iotbutton/{}", iotls::pki::BUTTON_SERIAL),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    let listed = tmux.wait_for("1 session: 1 ✔ 0 ✘", Duration::from_secs(15), |s| {
        s.contains("1 session: 1 ✔ 0 ✘")
    });
    let row = listed
        .lines()
        .find(|l| l.contains("pizza-button-1"))
        .unwrap_or_else(|| panic!("a row for the button:\n{listed}"));
    assert!(row.contains("✔ ok"), "{row}");
    assert!(row.contains("ALLOWED iot:Publish"), "{row}");

    // Enter opens it in the tour; Esc comes back to the room.
    tmux.key("Enter");
    let tour = tmux.wait_for("step 1/", Duration::from_secs(15), |s| {
        s.contains("step 1/")
    });
    assert!(tour.contains("ClientHello"), "{tour}");
    tmux.key("Escape");
    tmux.wait_for(
        "Sessions (newest at the bottom)",
        Duration::from_secs(15),
        |s| s.contains("Sessions (newest at the bottom)"),
    );

    // q quits with 0 and gives the terminal back.
    tmux.key("q");
    let after = tmux.wait_for("IOTLS-EXITED-", Duration::from_secs(15), |s| {
        s.contains("IOTLS-EXITED-")
    });
    assert!(after.contains("IOTLS-EXITED-0"), "{after}");
    assert_eq!(tmux.alternate_on(), "0");
    assert!(
        !after.contains("Sessions (newest"),
        "the room view was cleared:\n{after}"
    );
}

/// Lesson words come from the lesson: a device that is not the pizza shop's button, served by
/// `iotls serve`, is narrated in neutral words (no button, no pizza), while the pizza tour's
/// narration still presses the button. The served session's narration is read back with
/// `replay --plain`, which renders the trace serve printed the way serve narrates it.
#[test]
fn a_served_device_that_is_not_the_button_is_not_narrated_as_one() {
    let dir = tempdir("serve-words");
    let mut serve = serve_lab_ca_mode(&dir, 1);
    let ok = iotls_connect(
        &dir,
        &serve.addr,
        "sensor",
        &["--topic", "room/LAB-7/hello"],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.show());
    serve.finish(SESSION);
    let lines = serve.trace_lines();
    assert_eq!(lines.len(), 1, "{}", serve.show());
    let trace: Value = serde_json::from_str(&lines[0]).expect("a JSON trace");
    assert!(trace.get("words").is_none(), "serve has no lesson words");
    let file = dir.join("served.json");
    std::fs::write(&file, &lines[0]).unwrap();
    let plain = iotls(["replay", file.to_str().unwrap(), "--plain"]);
    assert_eq!(plain.code, Some(0), "{}", plain.show());
    assert!(
        plain.stdout.contains("The device publishes"),
        "{}",
        plain.stdout
    );
    let lower = plain.stdout.to_lowercase();
    assert!(
        !lower.contains("pizza") && !lower.contains("button"),
        "{}",
        plain.stdout
    );

    let tour = iotls(["tour", "pizza-button", "--plain"]);
    assert!(
        tour.stdout
            .contains("The button is pressed: the device publishes"),
        "{}",
        tour.stdout
    );
}
