//! Real sessions through the engine: what a learner would check in the trace.

mod common;

use common::*;
use iotls::engine::{self, lessons};
use iotls::pki::{BUTTON_SERIAL, BUTTON_THING};
use iotls::trace::{
    CheckId, Decision, Enforcement, EventKind, FailureCode, HandshakeType, PolicyEvent, Side,
    Trace, FORMAT,
};

fn run(lesson: &str) -> Trace {
    engine::run(&lessons::scenario(lesson).expect("lesson")).expect("session runs")
}

fn policies(t: &Trace) -> Vec<&PolicyEvent> {
    t.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Policy(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn pizza_button_session_has_the_mutual_tls_12_message_sequence() {
    let t = run("pizza-button");
    assert!(t.outcome.ok, "outcome: {:?}", t.outcome);
    let tls = t.tls.as_ref().expect("tls summary");
    assert_eq!(tls.version, "TLSv1.2");
    assert!(
        tls.cipher_suite.starts_with("TLS_ECDHE_ECDSA_WITH_"),
        "{}",
        tls.cipher_suite
    );
    assert_eq!(tls.sni.as_deref(), Some("localhost"));
    use Side::*;
    let expected = [
        (Device, "ClientHello"),
        (Broker, "ServerHello"),
        (Broker, "Certificate"),
        (Broker, "ServerKeyExchange"),
        (Broker, "CertificateRequest"),
        (Broker, "ServerHelloDone"),
        (Device, "Certificate"),
        (Device, "ClientKeyExchange"),
        (Device, "CertificateVerify"),
        (Device, "Finished"),
        (Broker, "Finished"),
    ];
    let got = handshake_sequence(&t);
    let got: Vec<(Side, &str)> = got.iter().map(|(s, m)| (*s, m.as_str())).collect();
    assert_eq!(got, expected);
    // Each side's checks passed, as rustls decided them.
    for c in [
        "server_chain",
        "server_name",
        "server_kx_signature",
        "client_chain",
        "certificate_verify",
        "client_finished",
        "server_finished",
    ] {
        assert_eq!(check_ok(&t, c), Some(true), "check {c}");
    }
    // Causal order: the broker's chain check comes after the device's Certificate was on the wire.
    let dev_cert = t
        .events
        .iter()
        .position(|e| {
            e.side == Device
                && matches!(&e.kind, EventKind::Handshake { msg, .. } if *msg == HandshakeType::CERTIFICATE)
        })
        .unwrap();
    let chain_check = t
        .events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Check { check, .. } if check.as_str() == "client_chain"))
        .unwrap();
    assert!(chain_check > dev_cert);
}

#[test]
fn certificate_verify_signs_exactly_the_wire_transcript_and_verifies_with_ring() {
    let t = run("pizza-button");
    let wire = transcript_before_certificate_verify(&t);
    let cv_check = check(&t, "certificate_verify").expect("certificate_verify check");
    let signed = iotls::trace::unhex(&fact(cv_check, "signed_message")).unwrap();
    assert_eq!(wire.len(), signed.len());
    assert!(
        wire == signed,
        "the broker's verifier received different bytes than the wire transcript"
    );
    assert_eq!(fact(cv_check, "signed_len"), wire.len().to_string());

    // Independently of rustls: verify the signature with ring using the device certificate's key.
    let cv = message_bytes(
        t.handshake(Side::Device, HandshakeType::CERTIFICATE_VERIFY)
            .unwrap(),
    );
    let scheme = u16::from_be_bytes([cv[4], cv[5]]);
    assert_eq!(scheme, 0x0403, "ecdsa_secp256r1_sha256");
    let sig_len = u16::from_be_bytes([cv[6], cv[7]]) as usize;
    let sig = &cv[8..8 + sig_len];
    let cert_msg = message_bytes(
        t.handshake(Side::Device, HandshakeType::CERTIFICATE)
            .unwrap(),
    );
    let leaf = iotls::engine::certificate_list(&cert_msg)[0].to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let spki = cert.public_key().subject_public_key.data.to_vec();
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, spki);
    key.verify(&wire, sig)
        .expect("CertificateVerify verifies over the wire transcript");
    // And it fails over a transcript with one byte changed.
    let mut bad = wire.clone();
    bad[10] ^= 1;
    assert!(key.verify(&bad, sig).is_err());
}

#[test]
fn decrypted_mqtt_carries_the_client_id_topic_and_payload() {
    let t = run("pizza-button");
    let packets: Vec<_> = t.mqtt_packets().map(|(e, p)| (e.side, p.clone())).collect();
    let names: Vec<&str> = packets.iter().map(|(_, p)| p.packet.name()).collect();
    assert_eq!(
        names,
        ["CONNECT", "CONNACK", "PUBLISH", "PUBACK", "DISCONNECT"]
    );
    let connect = &packets[0].1;
    assert_eq!(packets[0].0, Side::Device);
    assert_eq!(connect.client_id.as_deref(), Some(BUTTON_THING));
    let publish = &packets[2].1;
    assert_eq!(
        publish.topic.as_deref(),
        Some(format!("iotbutton/{BUTTON_SERIAL}").as_str())
    );
    assert_eq!(publish.qos, Some(1));
    let payload: serde_json::Value =
        serde_json::from_str(publish.payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["serialNumber"], BUTTON_SERIAL);
    assert_eq!(payload["clickType"], "SINGLE");
    // The broker allowed CONNECT and PUBLISH, with the serial substituted from the certificate.
    let p = policies(&t);
    let publish_decision = p
        .iter()
        .find(|p| p.action.iot_name() == "iot:Publish")
        .expect("publish decision");
    assert_eq!(publish_decision.decision, Decision::Allowed);
    assert!(publish_decision
        .resource
        .ends_with(&format!("topic/iotbutton/{BUTTON_SERIAL}")));
    assert!(p
        .iter()
        .any(|p| p.action.iot_name() == "iot:Connect" && p.decision.allowed()));
}

#[test]
fn a_device_certificate_from_an_untrusted_ca_is_refused_by_the_broker() {
    let t = run("untrusted-device");
    assert!(!t.outcome.ok);
    let f = t.outcome.failure.as_ref().expect("a failure");
    assert_eq!(f.check, Some(CheckId::ClientChain));
    assert_eq!(f.side, Some(Side::Broker));
    assert_eq!(f.code, FailureCode::UnknownIssuer);
    assert_eq!(f.alert.as_deref(), Some("unknown_ca"), "{:?}", t.outcome);
    assert_eq!(check_ok(&t, "client_chain"), Some(false));
    // The device's own checks of the broker passed: it is the device that is not trusted.
    assert_eq!(check_ok(&t, "server_chain"), Some(true));
    assert!(
        t.mqtt_packets().next().is_none(),
        "no MQTT after a failed handshake"
    );
    assert!(
        t.outcome
            .summary
            .starts_with("unknown_issuer — the broker refused the device's certificate chain"),
        "{}",
        t.outcome.summary
    );
}

#[test]
fn a_broker_certificate_for_another_host_is_refused_by_the_device() {
    let t = run("wrong-host");
    assert!(!t.outcome.ok);
    let f = t.outcome.failure.as_ref().expect("a failure");
    assert_eq!(f.check, Some(CheckId::ServerName));
    assert_eq!(f.side, Some(Side::Device));
    assert_eq!(f.code, FailureCode::NotValidForName);
    assert_eq!(
        f.alert.as_deref(),
        Some("bad_certificate"),
        "{:?}",
        t.outcome
    );
    assert_eq!(
        t.tls.as_ref().unwrap().sni.as_deref(),
        Some("mqtt.other-shop.example")
    );
    // The device never sent its certificate: it stopped as soon as the broker's name was wrong.
    assert!(t
        .handshake(Side::Device, HandshakeType::CERTIFICATE)
        .is_none());
}

#[test]
fn the_neighbours_button_cannot_order_on_another_buttons_topic() {
    let t = run("neighbour");
    assert!(!t.outcome.ok);
    let p = policies(&t);
    assert!(p
        .iter()
        .any(|p| p.action.iot_name() == "iot:Connect" && p.decision.allowed()));
    let denied = p
        .iter()
        .find(|p| p.action.iot_name() == "iot:Publish")
        .expect("publish decision");
    assert_eq!(denied.decision, Decision::ImplicitDeny);
    assert!(denied
        .resource
        .ends_with(&format!("topic/iotbutton/{BUTTON_SERIAL}")));
    // Disconnected without PUBACK, like AWS IoT on MQTT 3.1.1.
    let names: Vec<String> = t
        .mqtt_packets()
        .map(|(_, p)| p.packet.name().to_string())
        .collect();
    assert!(names.contains(&"PUBLISH".to_string()));
    assert!(!names.contains(&"PUBACK".to_string()), "{names:?}");
}

#[test]
fn an_inactive_certificate_is_refused_after_a_successful_handshake() {
    let t = run("inactive-cert");
    assert!(!t.outcome.ok);
    assert_eq!(check_ok(&t, "certificate_verify"), Some(true));
    assert_eq!(check_ok(&t, "server_finished"), Some(true));
    assert!(
        policies(&t).is_empty(),
        "no policy is evaluated for an inactive certificate"
    );
    assert_eq!(check_ok(&t, "registry"), Some(false));
    assert_eq!(
        t.outcome.failure.as_ref().and_then(|f| f.check),
        Some(CheckId::Registry)
    );
    assert!(
        t.outcome.summary.starts_with("inactive_certificate"),
        "{}",
        t.outcome.summary
    );
    assert!(t.mqtt_packets().all(|(_, p)| p.packet.name() != "CONNACK"));
}

#[test]
fn json_trace_round_trips_and_carries_the_format() {
    let t = run("pizza-button");
    let json = iotls::render::json(&t);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format"], FORMAT);
    assert_eq!(v["tls"]["version"], "TLSv1.2");
    let ev = &v["events"][1];
    for k in ["seq", "phase", "side", "kind"] {
        assert!(ev.get(k).is_some(), "event lacks {k}: {ev}");
    }
    let back: Trace = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
}

#[test]
fn unknown_lesson_names_the_lessons() {
    let e = lessons::scenario("pizza-buton").unwrap_err().to_string();
    assert!(e.contains("unknown lesson \"pizza-buton\""), "{e}");
    assert!(e.contains("pizza-button"), "{e}");
}

#[test]
fn subscribing_to_everything_without_permission_closes_the_connection() {
    let mut s = lessons::scenario("pizza-button").unwrap();
    s.device.actions = vec![engine::DeviceAction::Subscribe { filter: "#".into() }];
    let t = engine::run(&s).unwrap();
    assert!(!t.outcome.ok);
    let p = policies(&t);
    let sub = p
        .iter()
        .find(|p| p.action.iot_name() == "iot:Subscribe")
        .expect("subscribe decision");
    assert_eq!(sub.decision, Decision::ImplicitDeny);
    assert!(sub.resource.ends_with("topicfilter/#"), "{}", sub.resource);
    let names: Vec<String> = t
        .mqtt_packets()
        .map(|(_, p)| p.packet.name().to_string())
        .collect();
    assert!(names.contains(&"SUBSCRIBE".to_string()));
    assert!(!names.contains(&"SUBACK".to_string()), "{names:?}");
}

#[test]
fn the_neighbours_order_never_reaches_the_shops_subscriber() {
    use iotls::engine::policy_authz::PolicyAuthorizer;
    use iotls::engine::{Broker, Recorder};
    use iotls::pki::DefaultPki;
    use iotls::policy::{certificate_id, Policy};
    let pki = DefaultPki::generate().unwrap();
    // The shop listens with button 1's certificate plus a policy that lets it subscribe and receive.
    let mut authz = PolicyAuthorizer::pizza_default(&pki);
    // The shop connects under its own client id: with button 1's (the control's), the control
    // would take its session over.
    let listen = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Subscribe"],
        "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/iotbutton/*"},
        {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/shop"},
        {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:123456789012:topic/iotbutton/*"}]}"#;
    authz
        .registry
        .add_policy(Policy::parse("ShopListens", "test", listen).unwrap());
    assert!(authz
        .registry
        .attach_policy(&certificate_id(pki.button.leaf()), "ShopListens"));
    let mut shop = engine::Scenario::from_pki(&pki);
    shop.broker.authorizer = std::sync::Arc::new(authz);
    shop.device.client_id = "shop".into();
    shop.device.actions = vec![
        engine::DeviceAction::Subscribe {
            filter: format!("iotbutton/{BUTTON_SERIAL}"),
        },
        engine::DeviceAction::Listen { millis: 800 },
    ];
    let mut neighbour = lessons::scenario("neighbour").unwrap();
    neighbour.device.identity = pki.neighbour.clone();
    neighbour.device.trust = vec![pki.root.clone()];
    let control = {
        // A genuine order from button 1 on its own topic, to prove the subscriber does receive.
        let mut s = engine::Scenario::from_pki(&pki);
        s.broker = shop.broker.clone();
        s
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (shop_report, neighbour_trace, control_report) = rt.block_on(async {
        let broker = Broker::bind(shop.broker.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = broker.local_addr();
        for _ in 0..3 {
            let b = broker.clone();
            tokio::spawn(async move { b.serve_one(Recorder::new(), false).await });
        }
        let shop_rec = Recorder::new();
        let listening = {
            let spec = shop.device.clone();
            tokio::spawn(async move { engine::device::run(&spec, addr, &shop_rec, true).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let nrec = Recorder::new();
        let nreport = engine::device::run(&neighbour.device, addr, &nrec, true)
            .await
            .unwrap();
        let ntrace = engine::assemble(
            "neighbour",
            0,
            nrec.take(),
            &[],
            Some(&nreport),
            engine::Observer::BOTH,
        );
        let crec = Recorder::new();
        let creport = engine::device::run(&control.device, addr, &crec, true)
            .await
            .unwrap();
        (listening.await.unwrap().unwrap(), ntrace, creport)
    });
    assert!(
        control_report.completed == 1,
        "the genuine order was acknowledged"
    );
    assert!(
        !neighbour_trace
            .mqtt_packets()
            .any(|(_, p)| p.packet.name() == "PUBACK"),
        "the neighbour got no PUBACK"
    );
    let payloads: Vec<String> = shop_report
        .received
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).to_string())
        .collect();
    assert_eq!(
        payloads.len(),
        1,
        "exactly the genuine order reached the shop: {payloads:?}"
    );
    assert!(payloads[0].contains(BUTTON_SERIAL));
    assert!(!payloads
        .iter()
        .any(|p| p.contains(iotls::pki::NEIGHBOUR_SERIAL)));
}

fn mqtt5(lesson: &str) -> engine::Scenario {
    let mut s = lessons::scenario(lesson).unwrap();
    s.device.mqtt_version = engine::mqtt_io::Version::V5;
    s
}

fn packets(t: &Trace) -> Vec<(Side, String, Option<String>)> {
    t.mqtt_packets()
        .map(|(e, p)| (e.side, p.packet.name().to_string(), p.code.clone()))
        .collect()
}

#[test]
fn on_mqtt5_a_denied_publish_gets_puback_0x87_and_the_connection_stays() {
    let t = engine::run(&mqtt5("neighbour")).unwrap();
    let p = policies(&t);
    let denied = p
        .iter()
        .find(|p| p.action.iot_name() == "iot:Publish")
        .unwrap();
    assert_eq!(denied.decision, Decision::ImplicitDeny);
    assert_eq!(denied.enforcement, Enforcement::PubackRefused);
    let pk = packets(&t);
    let puback = pk.iter().find(|(_, n, _)| n == "PUBACK").expect("a PUBACK");
    assert_eq!(puback.0, Side::Broker);
    assert_eq!(puback.2.as_deref(), Some("0x87 Not authorized"));
    // The device was not thrown out: it ended the session itself.
    assert_eq!(
        pk.last().map(|(s, n, _)| (*s, n.as_str())),
        Some((Side::Device, "DISCONNECT"))
    );
    assert!(!t.outcome.ok);
}

#[test]
fn on_mqtt5_a_denied_subscribe_gets_suback_0x87() {
    let mut s = mqtt5("pizza-button");
    s.device.actions = vec![engine::DeviceAction::Subscribe { filter: "#".into() }];
    let t = engine::run(&s).unwrap();
    let pk = packets(&t);
    let suback = pk
        .iter()
        .find(|(_, n, _)| n == "SUBACK")
        .expect("a SUBACK on MQTT 5");
    assert!(
        suback.2.as_deref().unwrap_or_default().contains("0x87"),
        "{suback:?}"
    );
    assert_eq!(
        pk.last().map(|(s, n, _)| (*s, n.as_str())),
        Some((Side::Device, "DISCONNECT"))
    );
}

#[test]
fn a_denied_connect_closes_on_311_and_answers_connack_0x87_on_mqtt5() {
    // Connecting under another thing's name: the policy allows only client/<own thing name>.
    for (version, expect_connack) in [
        (engine::mqtt_io::Version::V4, false),
        (engine::mqtt_io::Version::V5, true),
    ] {
        let mut s = lessons::scenario("pizza-button").unwrap();
        s.device.client_id = "pizza-button-2".into();
        s.device.mqtt_version = version;
        let t = engine::run(&s).unwrap();
        let p = policies(&t);
        assert_eq!(p.len(), 1, "{version:?}: only the CONNECT is decided");
        assert_eq!(p[0].action.iot_name(), "iot:Connect");
        assert_ne!(p[0].decision, Decision::Allowed);
        let connack = packets(&t).into_iter().find(|(_, n, _)| n == "CONNACK");
        match expect_connack {
            true => assert_eq!(
                connack.and_then(|c| c.2).as_deref(),
                Some("0x87 Not authorized")
            ),
            false => assert!(connack.is_none(), "MQTT 3.1.1: the broker just closes"),
        }
    }
}

#[test]
fn on_mqtt5_a_denied_qos0_publish_gets_disconnect_0x87() {
    let mut s = mqtt5("neighbour");
    if let engine::DeviceAction::Publish { qos, .. } = &mut s.device.actions[0] {
        *qos = 0;
    }
    s.device
        .actions
        .push(engine::DeviceAction::Listen { millis: 500 });
    let t = engine::run(&s).unwrap();
    let pk = packets(&t);
    let disconnect = pk
        .iter()
        .find(|(side, n, _)| *side == Side::Broker && n == "DISCONNECT")
        .unwrap_or_else(|| {
            panic!(
                "the broker's DISCONNECT: {pk:?}\n{}",
                iotls::render::plain::render(&t)
            )
        });
    assert!(
        disconnect.2.as_deref().unwrap_or_default().contains("0x87"),
        "{disconnect:?}"
    );
}

#[test]
fn connect_attributes_reach_the_policy_a_persistent_session_can_be_denied() {
    use iotls::engine::policy_authz::PolicyAuthorizer;
    use iotls::pki::DefaultPki;
    use iotls::policy::{certificate_id, Policy};
    // AWS's documented pattern: a condition on iot:ConnectAttributes.
    let deny_persistent = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Connect",
        "Resource":"*","Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]}"#;
    let pki = DefaultPki::generate().unwrap();
    for (persistent, expected) in [(false, "ALLOWED"), (true, "EXPLICIT_DENY")] {
        let mut authz = PolicyAuthorizer::pizza_default(&pki);
        authz
            .registry
            .add_policy(Policy::parse("NoPersistentSessions", "test", deny_persistent).unwrap());
        assert!(authz
            .registry
            .attach_policy(&certificate_id(pki.button.leaf()), "NoPersistentSessions"));
        let mut s = engine::Scenario::from_pki(&pki);
        s.broker.authorizer = std::sync::Arc::new(authz);
        s.device.persistent = persistent;
        let t = engine::run(&s).unwrap();
        let connect = policies(&t)
            .into_iter()
            .find(|p| p.action.iot_name() == "iot:Connect")
            .cloned()
            .unwrap();
        assert_eq!(
            connect.decision.as_str(),
            expected,
            "persistent = {persistent}: {:?}",
            connect.lines
        );
    }
}

#[test]
fn a_denied_receive_drops_the_message_for_that_subscriber_only() {
    use iotls::engine::policy_authz::PolicyAuthorizer;
    use iotls::engine::{Broker, Recorder};
    use iotls::pki::DefaultPki;
    use iotls::policy::{certificate_id, Policy};
    // The shop may subscribe to the buttons' topics but was never granted iot:Receive: AWS IoT
    // accepts the subscription and then drops every message for it.
    let subscribe_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Subscribe",
        "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/iotbutton/*"}]}"#;
    let pki = DefaultPki::generate().unwrap();
    let mut authz = PolicyAuthorizer::pizza_default(&pki);
    authz
        .registry
        .add_policy(Policy::parse("ShopSubscribes", "test", subscribe_only).unwrap());
    assert!(authz
        .registry
        .attach_policy(&certificate_id(pki.neighbour.leaf()), "ShopSubscribes"));
    let mut shop = lessons::scenario("neighbour").unwrap();
    shop.device.identity = pki.neighbour.clone();
    shop.device.trust = vec![pki.root.clone()];
    shop.device.actions = vec![
        engine::DeviceAction::Subscribe {
            filter: format!("iotbutton/{BUTTON_SERIAL}"),
        },
        engine::DeviceAction::Listen { millis: 600 },
    ];
    let mut button = engine::Scenario::from_pki(&pki);
    button.broker.authorizer = std::sync::Arc::new(authz);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shop_broker_rec = Recorder::new();
    let (shop_report, button_report) = rt.block_on(async {
        let broker = Broker::bind(button.broker.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = broker.local_addr();
        let b = broker.clone();
        let brec = shop_broker_rec.clone();
        // The first connection is the shop's: its broker side records into `shop_broker_rec`.
        tokio::spawn(async move {
            let (tcp, peer) = b.accept().await.unwrap();
            let next = b.clone();
            tokio::spawn(async move { next.serve_one(Recorder::new(), false).await });
            b.serve_tcp(tcp, peer, brec, false).await;
        });
        let listening = {
            let spec = shop.device.clone();
            tokio::spawn(
                async move { engine::device::run(&spec, addr, &Recorder::new(), true).await },
            )
        };
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let report = engine::device::run(&button.device, addr, &Recorder::new(), true)
            .await
            .unwrap();
        (listening.await.unwrap().unwrap(), report)
    });
    assert_eq!(
        button_report.completed, 1,
        "the order itself was allowed and acknowledged"
    );
    assert_eq!(
        shop_report.completed, 2,
        "the subscription was accepted and the shop stayed connected"
    );
    assert!(
        shop_report.received.is_empty(),
        "nothing was delivered: {:?}",
        shop_report.received
    );
    let t = engine::assemble(
        "shop",
        0,
        shop_broker_rec.take(),
        &[],
        None,
        engine::Observer::BROKER,
    );
    let receive = policies(&t)
        .into_iter()
        .find(|p| p.action.iot_name() == "iot:Receive")
        .cloned()
        .expect("a Receive decision");
    assert_eq!(receive.decision, Decision::ImplicitDeny);
    assert!(receive
        .resource
        .ends_with(&format!("topic/iotbutton/{BUTTON_SERIAL}")));
    assert_eq!(receive.enforcement, Enforcement::NotDelivered);
}
