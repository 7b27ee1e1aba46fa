//! Certificates to variables, the registry, and `iotls policy test` / `lint`, from a user's side.

use std::path::PathBuf;

use clap::Parser;
use iotls::policy::cli::{execute, PolicyCommand};
use iotls::policy::{certificate_id, Action, CertStatus, CertVars, Registry, PIZZA_POLICY_NAME};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SerialNumber};

/// A self-signed button certificate: CN = thing, serialNumber = the printed serial, a DNS SAN.
fn button_cert(thing: &str, serial: &str) -> (Vec<u8>, String) {
    let mut p = CertificateParams::new(vec!["button.pizza.example".to_string()]).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Pizza Shop customers");
    dn.push(DnType::CommonName, thing);
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(serial.try_into().unwrap()),
    );
    p.distinguished_name = dn;
    p.serial_number = Some(SerialNumber::from(vec![0x01, 0x00, 0x01]));
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.der().to_vec(), cert.pem())
}

#[test]
fn every_certificate_variable_comes_from_the_der() {
    let (der, _) = button_cert("pizza-button-1", "G030JF055364XVRB");
    let v = CertVars::from_der(&der).unwrap();
    assert_eq!(v.subject["SerialNumber"], vec!["G030JF055364XVRB"]);
    assert_eq!(v.subject["CommonName"], vec!["pizza-button-1"]);
    assert_eq!(v.subject["Organization"], vec!["Pizza Shop customers"]);
    assert_eq!(v.issuer["CommonName"], vec!["pizza-button-1"]); // self-signed
    assert_eq!(v.subject_alt["DNSName"], vec!["button.pizza.example"]);
    assert_eq!(v.serial_number, "65537"); // 0x010001, in decimal
    assert_eq!(v.certificate_id, certificate_id(&der));
    assert_eq!(v.certificate_id.len(), 64);
    assert!(CertVars::from_der(b"not a certificate").is_err());
}

#[test]
fn pizza_registry_allows_own_topic_and_refuses_the_neighbours() {
    let (der, _) = button_cert("pizza-button-1", "G030JF055364XVRB");
    let (other, _) = button_cert("pizza-button-2", "G030JF055365XVRC");
    let mut r = Registry::pizza_default(&der, "pizza-button-1");
    let id = certificate_id(&der);
    assert_eq!(r.certificate_status(&id), Some(CertStatus::Active));
    assert!(r.check_certificate(&der).ok);
    assert!(
        !r.check_certificate(&other).ok,
        "an unregistered certificate is refused"
    );
    assert_eq!(
        r.policies_for(&id)
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec![PIZZA_POLICY_NAME]
    );

    let ctx = r.context_for(&der, "pizza-button-1", Some("192.0.2.10".parse().unwrap()));
    let decide = |r: &Registry, action, value| {
        let arn = iotls::policy::resource_arn(&r.region, &r.account, action, value);
        iotls::policy::evaluate(&r.policies_for(&id), action, &arn, &ctx)
            .kind
            .as_str()
    };
    assert_eq!(decide(&r, Action::Connect, "pizza-button-1"), "ALLOWED");
    assert_eq!(
        decide(&r, Action::Publish, "iotbutton/G030JF055364XVRB"),
        "ALLOWED"
    );
    assert_eq!(
        decide(&r, Action::Publish, "iotbutton/G030JF055365XVRC"),
        "IMPLICIT_DENY"
    );
    assert_eq!(
        decide(&r, Action::Subscribe, "iotbutton/#"),
        "IMPLICIT_DENY"
    );
    // Connecting under another client id: no thing of that name is attached.
    let ctx2 = r.context_for(&der, "pizza-button-2", None);
    let arn = iotls::policy::resource_arn(&r.region, &r.account, Action::Connect, "pizza-button-2");
    assert_eq!(
        iotls::policy::evaluate(&r.policies_for(&id), Action::Connect, &arn, &ctx2)
            .kind
            .as_str(),
        "IMPLICIT_DENY"
    );
    // Revoked: the registry check fails before any policy.
    r.set_certificate_status(&id, CertStatus::Revoked);
    let c = r.check_certificate(&der);
    assert!(!c.ok && c.reason.contains("REVOKED"), "{}", c.reason);
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iotls-policy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn registry_file_format() {
    let dir = tmp("registry");
    let (der, pem) = button_cert("pizza-button-1", "G030JF055364XVRB");
    std::fs::write(dir.join("button.pem"), pem).unwrap();
    std::fs::write(dir.join("pizza.json"), iotls::policy::PIZZA_POLICY_JSON).unwrap();
    let ca = "cd".repeat(32);
    std::fs::write(
        dir.join("registry.json"),
        format!(
            r#"{{
  "region": "us-east-1", "account": "123456789012",
  "policies": [{{"name": "PizzaButtonPolicy", "file": "pizza.json"}},
               {{"name": "Inline", "document": {{"Version": "2012-10-17", "Statement": {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*"}}}}}}],
  "things": [{{"name": "pizza-button-1", "type": "IoTButton", "attributes": {{"customer": "42"}}}}],
  "cas": [{{"id": "{ca}", "status": "INACTIVE"}}],
  "certificates": [{{"pem": "button.pem", "status": "ACTIVE", "things": ["pizza-button-1"], "policies": ["PizzaButtonPolicy"], "ca": "{ca}"}}]
}}"#
        ),
    )
    .unwrap();
    let r = Registry::load(dir.join("registry.json")).unwrap();
    let id = certificate_id(&der);
    assert_eq!(r.certificate(&id).unwrap().things, vec!["pizza-button-1"]);
    assert_eq!(
        r.thing("pizza-button-1").unwrap().attributes["customer"],
        "42"
    );
    let check = r.check_certificate(&der);
    assert!(
        !check.ok && check.reason.contains("CA"),
        "an INACTIVE CA fails the check: {}",
        check.reason
    );
    // Errors name the file, line and column, or what is wrong.
    let e = Registry::from_json("reg.json", "{\n  \"things\": [ {\"name\": 1} ]\n}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("reg.json:2:"), "{e}");
    let e = Registry::from_json(
        "reg.json",
        r#"{"certificates":[{"id":"abc","status":"ACTIVE"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("64 hex digits"), "{e}");
    let e = Registry::from_json(
        "reg.json",
        r#"{"certificates":[{"id":"ab","status":"ENABLED"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ENABLED"), "{e}");
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: PolicyCommand,
}

fn run(args: &[&str]) -> iotls::policy::cli::Output {
    let cli = Cli::try_parse_from(std::iter::once("policy").chain(args.iter().copied())).unwrap();
    execute(cli.cmd)
}

#[test]
fn policy_test_command() {
    let dir = tmp("cli");
    let (_, pem) = button_cert("pizza-button-1", "G030JF055364XVRB");
    let cert = dir.join("button.pem");
    std::fs::write(&cert, pem).unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/pizza-button.json");
    let hard = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/pizza-button-hardcoded.json"
    );
    let cert = cert.to_str().unwrap();
    let base = [
        "test",
        "--policy",
        policy,
        "--cert",
        cert,
        "--client-id",
        "pizza-button-1",
        "--thing-name",
        "pizza-button-1",
    ];

    let out = run(&[
        &base[..],
        &[
            "--action",
            "iot:Publish",
            "--resource",
            "iotbutton/G030JF055364XVRB",
        ],
    ]
    .concat());
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("→ ALLOWED"), "{}", out.stdout);

    let out = run(&[
        &base[..],
        &[
            "--action",
            "iot:Publish",
            "--resource",
            "iotbutton/G030JF055365XVRC",
            "--json",
        ],
    ]
    .concat());
    assert_eq!(out.code, 0, "an evaluated deny still exits 0");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["decision"], "IMPLICIT_DENY");

    let out = run(&[
        &base[..],
        &[
            "--not-attached",
            "--action",
            "Connect",
            "--resource",
            "pizza-button-1",
        ],
    ]
    .concat());
    assert!(
        out.stdout.contains("IMPLICIT_DENY") && out.stdout.contains("not attached"),
        "{}",
        out.stdout
    );

    let out = run(&[
        &base[..],
        &[
            "--action",
            "iot:Connect",
            "--resource",
            "arn:aws:iot:us-east-1:123456789012:client/pizza-button-1",
        ],
    ]
    .concat());
    assert!(out.stdout.contains("→ ALLOWED"), "{}", out.stdout);

    // The hard-coded policy serves button 1 only.
    let out = run(&[
        "test",
        "--policy",
        hard,
        "--cert",
        cert,
        "--client-id",
        "pizza-button-1",
        "--action",
        "iot:Publish",
        "--resource",
        "iotbutton/G030JF055364XVRB",
    ]);
    assert!(out.stdout.contains("→ ALLOWED"), "{}", out.stdout);

    // Bad input: exit 2, with the reason.
    let out = run(&[&base[..], &["--action", "iot:Fly", "--resource", "x"]].concat());
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown action `iot:Fly`"),
        "{}",
        out.stderr
    );
    let out = run(&[
        &base[..],
        &[
            "--action",
            "iot:Publish",
            "--resource",
            "arn:aws:iot:us-east-1:client/x",
        ],
    ]
    .concat());
    assert_eq!(out.code, 2, "{}", out.stderr);
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\"Version\": \"2012-10-17\",\n \"Statement\": [\n  {\"Effect\": \"Allow\",}\n ]}",
    )
    .unwrap();
    let out = run(&[
        "test",
        "--policy",
        bad.to_str().unwrap(),
        "--cert",
        cert,
        "--client-id",
        "c",
        "--action",
        "iot:Connect",
        "--resource",
        "c",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bad.json:3:"), "{}", out.stderr);
    let out = run(&[
        "test",
        "--policy",
        policy,
        "--cert",
        policy,
        "--client-id",
        "c",
        "--action",
        "iot:Connect",
        "--resource",
        "c",
    ]);
    assert_eq!(out.code, 2, "a policy is not a certificate: {}", out.stderr);
}

#[test]
fn policy_lint_command() {
    let dir = tmp("lint");
    let f = dir.join("wide.json");
    std::fs::write(&f, r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#).unwrap();
    let out = run(&["lint", f.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("statement 1 (Sid \"All\")") && out.stdout.contains("fix:"),
        "{}",
        out.stdout
    );
    let out = run(&[
        "lint",
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies/pizza-button.json"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = run(&[
        "lint",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/pizza-button-hardcoded.json"
        ),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn a_policy_with_a_duplicate_key_is_refused_with_file_and_line() {
    // With plain JSON parsing the second `Effect` would win silently and this would be an Allow.
    let dir = tmp("dup");
    let file = dir.join("dup.json");
    std::fs::write(
        &file,
        "{\"Version\":\"2012-10-17\",\"Statement\":{\n \"Effect\":\"Deny\",\n \"Effect\":\"Allow\",\n \"Action\":\"iot:Publish\",\"Resource\":\"*\"}}",
    )
    .unwrap();
    let out = run(&["lint", file.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let text = out.stderr;
    assert!(
        text.contains("dup.json:3:") && text.contains("`Effect` appears twice"),
        "{text}"
    );
}
