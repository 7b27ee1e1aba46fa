//! DEVELOPMENT FIXTURE, test-only: hand-built traces shaped like the engine's, used to develop the
//! views and to test edge cases the engine does not produce on demand (an empty trace, unknown
//! messages, a failed chain). The bytes are made up; the tests that show real sessions render
//! traces from `engine::run` (tests/ui_tour.rs).

use crate::trace::*;

struct Msg {
    bytes: Vec<u8>,
    fields: Vec<Field>,
}

impl Msg {
    fn new(msg_type: u8) -> Msg {
        let mut m = Msg {
            bytes: vec![msg_type, 0, 0, 0],
            fields: Vec::new(),
        };
        m.fields.push(Field {
            name: "handshake type".into(),
            offset: 0,
            len: 1,
            value: format!("{msg_type}"),
            depth: 0,
        });
        m.fields.push(Field {
            name: "length".into(),
            offset: 1,
            len: 3,
            value: String::new(),
            depth: 0,
        });
        m
    }
    fn field(mut self, name: &str, bytes: &[u8], value: &str, depth: u8) -> Msg {
        self.fields.push(Field {
            name: name.into(),
            offset: self.bytes.len(),
            len: bytes.len(),
            value: value.into(),
            depth,
        });
        self.bytes.extend_from_slice(bytes);
        self
    }
    /// A child field inside bytes already added (offset relative to the message).
    fn child(mut self, name: &str, offset: usize, len: usize, value: &str) -> Msg {
        self.fields.push(Field {
            name: name.into(),
            offset,
            len,
            value: value.into(),
            depth: 1,
        });
        self
    }
    fn done(mut self, name: &str, side: Side, phase: Phase, record: u32, seq: &mut u32) -> Event {
        let len = self.bytes.len() - 4;
        self.bytes[1..4].copy_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        self.fields[1].value = len.to_string();
        let encrypted = name == "Finished";
        ev(
            seq,
            phase,
            side,
            EventKind::Handshake {
                msg: name.into(),
                msg_type: self.bytes[0],
                hex: hex(&self.bytes),
                record,
                encrypted,
                ciphertext: encrypted.then(|| hex(&pseudo(40, 9))),
                fields: self.fields,
            },
        )
    }
}

fn ev(seq: &mut u32, phase: Phase, side: Side, kind: EventKind) -> Event {
    let e = Event {
        seq: *seq,
        t_us: *seq as u64 * 137,
        phase,
        side,
        kind,
    };
    *seq += 1;
    e
}

/// Deterministic made-up bytes.
fn pseudo(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u8)
                .wrapping_mul(37)
                .wrapping_add(seed.wrapping_mul(11))
        })
        .collect()
}

fn cert(role: &str, subject: &str, issuer: &str, ca: bool, eku: &[&str]) -> CertInfo {
    CertInfo {
        sha256: hex(&pseudo(32, role.len() as u8)),
        role: role.into(),
        subject: subject.into(),
        issuer: issuer.into(),
        serial: "3a:f1:09:77:c2:5e:10:04".into(),
        not_before: "Jan  1 00:00:00 2025 +00:00".into(),
        not_after: "Jan  1 00:00:00 2027 +00:00".into(),
        days_left: 400,
        key: "ECDSA P-256".into(),
        signature_algorithm: "ecdsa-with-SHA256".into(),
        san: if ca {
            vec![]
        } else {
            vec!["DNS:broker.pizza.example".into(), "DNS:localhost".into()]
        },
        key_usage: if ca {
            vec!["keyCertSign".into(), "cRLSign".into()]
        } else {
            vec!["digitalSignature".into()]
        },
        extended_key_usage: eku.iter().map(|s| s.to_string()).collect(),
        basic_constraints: Some(if ca {
            "CA:TRUE".into()
        } else {
            "CA:FALSE".into()
        }),
        self_signed: subject == issuer,
        der: hex(&pseudo(300, 3)),
    }
}

fn check(
    seq: &mut u32,
    phase: Phase,
    side: Side,
    name: &str,
    ok: bool,
    reason: &str,
    about: &str,
) -> Event {
    ev(
        seq,
        phase,
        side,
        EventKind::Check {
            check: name.into(),
            ok,
            reason: reason.into(),
            about: Some(about.into()),
            facts: vec![
                Fact::new("scheme", "ECDSA_NISTP256_SHA256"),
                Fact::new("signed_len", "1337"),
                Fact::new("hash_algorithm", "sha256"),
                Fact::new("signed_hash", hex(&pseudo(32, 5))),
                Fact::new("signer", "pizza-button-1"),
            ],
        },
    )
}

/// A successful pizza-button session: every phase, one PUBLISH.
pub fn pizza() -> Trace {
    let s = &mut 0u32;
    let mut events = vec![ev(
        s,
        Phase::Connect,
        Side::Device,
        EventKind::Tcp {
            device_addr: "127.0.0.1:50000".into(),
            broker_addr: "127.0.0.1:8883".into(),
        },
    )];
    let ch = Msg::new(1)
        .field("version", &[3, 3], "TLS 1.2 (0x0303)", 0)
        .field("random", &pseudo(32, 1), &hex(&pseudo(32, 1)), 0)
        .field("session_id", &[0], "(empty)", 0)
        .field(
            "cipher_suites",
            &[0, 4, 0xc0, 0x2b, 0xcc, 0xa9],
            "2 suites",
            0,
        )
        .child(
            "cipher_suite",
            45,
            2,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b)",
        )
        .child(
            "cipher_suite",
            47,
            2,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xcca9)",
        )
        .field("compression_methods", &[1, 0], "null", 0)
        .field(
            "extension server_name",
            b"\x00\x00\x00\x19\x00\x17\x00\x00\x14broker.pizza.example",
            "broker.pizza.example",
            0,
        )
        .field("extension extended_master_secret", &[0, 0x17, 0, 0], "", 0)
        .done("ClientHello", Side::Device, Phase::Hello, 0, s);
    events.push(ch);
    events.push(
        Msg::new(2)
            .field("version", &[3, 3], "TLS 1.2 (0x0303)", 0)
            .field("random", &pseudo(32, 2), &hex(&pseudo(32, 2)), 0)
            .field("session_id", &pseudo(33, 4), "32 bytes", 0)
            .field(
                "cipher_suite",
                &[0xc0, 0x2b],
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b)",
                0,
            )
            .field("compression_method", &[0], "null", 0)
            .done("ServerHello", Side::Broker, Phase::Hello, 0, s),
    );
    events.push(
        Msg::new(11)
            .field("certificates length", &[0, 1, 0x30], "304", 0)
            .field(
                "certificate[0]",
                &pseudo(150, 6),
                "O=Pizza Shop, CN=broker.pizza.example",
                1,
            )
            .field(
                "certificate[1]",
                &pseudo(150, 7),
                "O=Pizza Shop, CN=Pizza Shop Issuing CA",
                1,
            )
            .done("Certificate", Side::Broker, Phase::ServerAuth, 0, s),
    );
    events.push(
        Msg::new(12)
            .field("curve_type", &[3], "named_curve", 0)
            .field("named_curve", &[0, 0x1d], "x25519", 0)
            .field("public key", &pseudo(33, 8), "32 bytes", 0)
            .field("signature algorithm", &[4, 3], "ecdsa_secp256r1_sha256", 0)
            .field("signature", &pseudo(73, 9), "71 bytes", 0)
            .done("ServerKeyExchange", Side::Broker, Phase::ServerAuth, 0, s),
    );
    events.push(
        Msg::new(13)
            .field(
                "certificate_types",
                &[2, 1, 0x40],
                "rsa_sign, ecdsa_sign",
                0,
            )
            .field("signature_algorithms", &[0, 4, 4, 3, 8, 4], "2 schemes", 0)
            .field("certificate_authorities", &pseudo(40, 10), "1 name", 0)
            .child(
                "distinguished name",
                1 + 4 + 3 + 6 + 2,
                38,
                "O=Pizza Shop, CN=Pizza Shop Device CA",
            )
            .done("CertificateRequest", Side::Broker, Phase::ClientAuth, 0, s),
    );
    events.push(Msg::new(14).done("ServerHelloDone", Side::Broker, Phase::ClientAuth, 0, s));
    events.push(check(
        s,
        Phase::ServerAuth,
        Side::Device,
        "server_chain",
        true,
        "the broker's chain leads to a root the device trusts; every signature, validity period and the serverAuth EKU check out",
        "Certificate",
    ));
    events.push(check(
        s,
        Phase::ServerAuth,
        Side::Device,
        "server_kx_signature",
        true,
        "the broker signed client_random ‖ server_random ‖ its ECDHE public key",
        "ServerKeyExchange",
    ));
    events.push(
        Msg::new(11)
            .field("certificates length", &[0, 0, 0x99], "153", 0)
            .field(
                "certificate[0]",
                &pseudo(150, 11),
                "O=Pizza Shop customers, CN=pizza-button-1, serialNumber=G030JF055364XVRB",
                1,
            )
            .done("Certificate", Side::Device, Phase::ClientAuth, 1, s),
    );
    events.push(
        Msg::new(16)
            .field("public key", &pseudo(33, 12), "32 bytes", 0)
            .done("ClientKeyExchange", Side::Device, Phase::KeyExchange, 2, s),
    );
    events.push(check(
        s,
        Phase::ClientAuth,
        Side::Broker,
        "client_chain",
        true,
        "pizza-button-1's chain leads to a root the broker trusts",
        "Certificate",
    ));
    events.push(
        Msg::new(15)
            .field("signature algorithm", &[4, 3], "ecdsa_secp256r1_sha256", 0)
            .field("signature", &pseudo(73, 13), "71 bytes", 0)
            .done(
                "CertificateVerify",
                Side::Device,
                Phase::HandshakeSignature,
                3,
                s,
            ),
    );
    events.push(check(
        s,
        Phase::HandshakeSignature,
        Side::Broker,
        "certificate_verify",
        true,
        "the device signed the hash of all 1337 handshake bytes so far (ClientHello … ClientKeyExchange) with the private key of pizza-button-1's certificate",
        "CertificateVerify",
    ));
    events.push(ev(
        s,
        Phase::KeyExchange,
        Side::Device,
        EventKind::Secret {
            label: "CLIENT_RANDOM".into(),
            client_random: hex(&pseudo(32, 1)),
            secret: hex(&pseudo(48, 14)),
        },
    ));
    events.push(ev(
        s,
        Phase::Finished,
        Side::Device,
        EventKind::ChangeCipherSpec {
            hex: "140303000101".into(),
            record: 4,
        },
    ));
    events.push(
        Msg::new(20)
            .field("verify_data", &pseudo(12, 15), "12 bytes", 0)
            .done("Finished", Side::Device, Phase::Finished, 5, s),
    );
    events.push(check(
        s,
        Phase::Finished,
        Side::Broker,
        "client_finished",
        true,
        "verify_data matches",
        "Finished",
    ));
    events.push(ev(
        s,
        Phase::Finished,
        Side::Broker,
        EventKind::ChangeCipherSpec {
            hex: "140303000101".into(),
            record: 1,
        },
    ));
    events.push(
        Msg::new(20)
            .field("verify_data", &pseudo(12, 16), "12 bytes", 0)
            .done("Finished", Side::Broker, Phase::Finished, 2, s),
    );
    events.push(check(
        s,
        Phase::Finished,
        Side::Device,
        "server_finished",
        true,
        "verify_data matches",
        "Finished",
    ));
    let connect = MqttPacket {
        packet: "CONNECT".into(),
        hex: hex(b"\x10\x1c\x00\x04MQTT\x04\x02\x00\x1e\x00\x0epizza-button-1"),
        client_id: Some("pizza-button-1".into()),
        fields: vec![
            Field {
                name: "fixed header".into(),
                offset: 0,
                len: 2,
                value: "CONNECT, 28 bytes".into(),
                depth: 0,
            },
            Field {
                name: "protocol".into(),
                offset: 2,
                len: 7,
                value: "MQTT 3.1.1".into(),
                depth: 0,
            },
            Field {
                name: "flags".into(),
                offset: 9,
                len: 1,
                value: "clean session".into(),
                depth: 0,
            },
            Field {
                name: "keep_alive".into(),
                offset: 10,
                len: 2,
                value: "30 s".into(),
                depth: 0,
            },
            Field {
                name: "client_id".into(),
                offset: 12,
                len: 16,
                value: "pizza-button-1".into(),
                depth: 0,
            },
        ],
        ..MqttPacket::default()
    };
    events.push(ev(
        s,
        Phase::Mqtt,
        Side::Device,
        EventKind::AppData {
            ciphertext: hex(&pseudo(59, 17)),
            plaintext: Some(connect.hex.clone()),
            record: 6,
            mqtt: vec![connect],
        },
    ));
    events.push(ev(
        s,
        Phase::Policy,
        Side::Broker,
        EventKind::Policy(PolicyEvent {
            action: "iot:Connect".into(),
            resource: "arn:aws:iot:eu-west-1:123456789012:client/pizza-button-1".into(),
            decision: "ALLOWED".into(),
            enforcement: "accepted the connection".into(),
            lines: vec!["statement 1 of policy PizzaButton allows iot:Connect on client/${iot:Connection.Thing.ThingName}".into()],
            detail: serde_json::Value::Null,
        }),
    ));
    let connack = MqttPacket {
        packet: "CONNACK".into(),
        hex: "20020000".into(),
        code: Some("connection accepted".into()),
        ..MqttPacket::default()
    };
    events.push(ev(
        s,
        Phase::Mqtt,
        Side::Broker,
        EventKind::AppData {
            ciphertext: hex(&pseudo(33, 18)),
            plaintext: Some("20020000".into()),
            record: 3,
            mqtt: vec![connack],
        },
    ));
    let publish = MqttPacket {
        packet: "PUBLISH".into(),
        hex: hex(b"\x32\x2b\x00\x1aiotbutton/G030JF055364XVRB\x00\x01{\"order\":\"margherita\"}"),
        topic: Some("iotbutton/G030JF055364XVRB".into()),
        payload: Some("{\"order\":\"margherita\"}".into()),
        qos: Some(1),
        pkid: Some(1),
        ..MqttPacket::default()
    };
    events.push(ev(
        s,
        Phase::Mqtt,
        Side::Device,
        EventKind::AppData {
            ciphertext: hex(&pseudo(70, 19)),
            plaintext: Some(publish.hex.clone()),
            record: 7,
            mqtt: vec![publish],
        },
    ));
    events.push(ev(
        s,
        Phase::Policy,
        Side::Broker,
        EventKind::Policy(PolicyEvent {
            action: "iot:Publish".into(),
            resource: "arn:aws:iot:eu-west-1:123456789012:topic/iotbutton/G030JF055364XVRB".into(),
            decision: "ALLOWED".into(),
            enforcement: "delivered the message".into(),
            lines: vec!["${iot:Certificate.Subject.SerialNumber} = G030JF055364XVRB".into()],
            detail: serde_json::Value::Null,
        }),
    ));
    let puback = MqttPacket {
        packet: "PUBACK".into(),
        hex: "40020001".into(),
        pkid: Some(1),
        ..MqttPacket::default()
    };
    events.push(ev(
        s,
        Phase::Mqtt,
        Side::Broker,
        EventKind::AppData {
            ciphertext: hex(&pseudo(33, 20)),
            plaintext: Some("40020001".into()),
            record: 4,
            mqtt: vec![puback],
        },
    ));
    events.push(ev(
        s,
        Phase::Close,
        Side::Device,
        EventKind::Alert {
            level: "warning".into(),
            description: "close_notify".into(),
            code: 0,
            encrypted: true,
            hex: hex(&pseudo(31, 21)),
            record: 8,
        },
    ));
    events.push(ev(
        s,
        Phase::Close,
        Side::Device,
        EventKind::Closed {
            by: Some(Side::Device),
            reason: "close_notify, then TCP FIN".into(),
        },
    ));

    Trace {
        format: FORMAT.into(),
        scenario: "pizza-button".into(),
        started_unix: 1_750_000_000,
        tls: Some(TlsSummary {
            version: "TLSv1.2".into(),
            cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
            kx_group: Some("x25519".into()),
            extended_master_secret: true,
            sni: Some("broker.pizza.example".into()),
        }),
        outcome: Outcome {
            ok: true,
            phase: Phase::Close,
            summary: "order delivered".into(),
            failed_check: None,
            failed_side: None,
            alert: None,
        },
        certificates: vec![
            cert(
                "broker chain[0]",
                "O=Pizza Shop, CN=broker.pizza.example",
                "O=Pizza Shop, CN=Pizza Shop Issuing CA",
                false,
                &["serverAuth"],
            ),
            cert(
                "broker chain[1]",
                "O=Pizza Shop, CN=Pizza Shop Issuing CA",
                "O=Pizza Shop, CN=Pizza Shop Root CA",
                true,
                &[],
            ),
            cert(
                "device trust anchor",
                "O=Pizza Shop, CN=Pizza Shop Root CA",
                "O=Pizza Shop, CN=Pizza Shop Root CA",
                true,
                &[],
            ),
            cert(
                "device chain[0]",
                "O=Pizza Shop customers, CN=pizza-button-1, serialNumber=G030JF055364XVRB",
                "O=Pizza Shop, CN=Pizza Shop Device CA",
                false,
                &["clientAuth"],
            ),
            cert(
                "broker trust anchor",
                "O=Pizza Shop, CN=Pizza Shop Device CA",
                "O=Pizza Shop, CN=Pizza Shop Device CA",
                true,
                &[],
            ),
        ],
        events,
    }
}

/// The device's certificate is from a CA the broker does not trust: the broker refuses.
pub fn unknown_ca() -> Trace {
    let mut t = pizza();
    let at = t
        .events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Check { check, .. } if check == "client_chain"))
        .unwrap();
    t.events.truncate(at);
    t.events.push(Event {
        seq: at as u32,
        t_us: 0,
        phase: Phase::ClientAuth,
        side: Side::Broker,
        kind: EventKind::Check {
            check: "client_chain".into(),
            ok: false,
            reason: "the chain does not lead to any trusted root (rustls: UnknownIssuer)".into(),
            about: Some("Certificate".into()),
            facts: vec![Fact::new(
                "trust anchor",
                "none of the 1 trusted root(s) is named O=Mallory, CN=Mallory CA",
            )],
        },
    });
    t.events.push(Event {
        seq: at as u32 + 1,
        t_us: 0,
        phase: Phase::Close,
        side: Side::Broker,
        kind: EventKind::Alert {
            level: "fatal".into(),
            description: "unknown_ca".into(),
            code: 48,
            encrypted: false,
            hex: "15030300020230".into(),
            record: 1,
        },
    });
    t.events.push(Event {
        seq: at as u32 + 2,
        t_us: 0,
        phase: Phase::Close,
        side: Side::Broker,
        kind: EventKind::Closed {
            by: Some(Side::Broker),
            reason: "fatal alert".into(),
        },
    });
    t.certificates.retain(|c| c.role != "broker trust anchor");
    t.certificates[3].issuer = "O=Mallory, CN=Mallory CA".into();
    t.outcome = Outcome {
        ok: false,
        phase: Phase::ClientAuth,
        summary: "the broker refused the device's certificate".into(),
        failed_check: Some("client_chain".into()),
        failed_side: Some(Side::Broker),
        alert: Some("unknown_ca".into()),
    };
    t
}

/// A trace with nothing in it.
pub fn empty() -> Trace {
    Trace {
        format: FORMAT.into(),
        scenario: "empty".into(),
        started_unix: 0,
        tls: None,
        outcome: Outcome {
            ok: false,
            phase: Phase::Connect,
            summary: String::new(),
            failed_check: None,
            failed_side: None,
            alert: None,
        },
        certificates: Vec::new(),
        events: Vec::new(),
    }
}

/// Odd events: an unknown handshake message, undecodable bytes, broken hex, out-of-range fields.
pub fn odd() -> Trace {
    let mut t = empty();
    t.events = vec![
        Event {
            seq: 0,
            t_us: 0,
            phase: Phase::Hello,
            side: Side::Device,
            kind: EventKind::Handshake {
                msg: "Unknown(99)".into(),
                msg_type: 99,
                hex: "63zz".into(),
                record: 0,
                encrypted: false,
                ciphertext: None,
                fields: vec![Field {
                    name: "x".repeat(200),
                    offset: 9999,
                    len: 5,
                    value: "ü".repeat(300),
                    depth: 7,
                }],
            },
        },
        Event {
            seq: 1,
            t_us: 0,
            phase: Phase::Hello,
            side: Side::Broker,
            kind: EventKind::Undecodable {
                hex: "485454502f312e31".into(),
                reason: "HTTP, not TLS".into(),
            },
        },
        Event {
            seq: 2,
            t_us: 0,
            phase: Phase::Mqtt,
            side: Side::Broker,
            kind: EventKind::AppData {
                ciphertext: "17030300".into(),
                plaintext: None,
                record: 9,
                mqtt: vec![],
            },
        },
        Event {
            seq: 3,
            t_us: 0,
            phase: Phase::Close,
            side: Side::Device,
            kind: EventKind::Error {
                stage: "connect".into(),
                message: "connection refused".into(),
            },
        },
    ];
    t
}
