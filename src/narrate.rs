//! Narration: what each step means, in plain words built from this run's values.
//!
//! Shared by the terminal UI and the plain-text tour ([`crate::render::plain`]). Everything here
//! returns plain `String`s with no terminal styling. One function per kind of step; [`step`] picks
//! the right one.
//!
//! Honesty rules (see SECURITY-MODEL.md): the key exchange is ECDHE, not RSA key transport; a
//! verdict is only ever quoted from a `Check` / `Policy` event, never assumed.

pub mod calc;
pub mod words;

use crate::trace::{
    hex, AlertDescription, AlertLevel, CertInfo, CertRoleKind, CheckId, Decision, Enforcement,
    Event, EventKind, Fact, Failure, FailureCode, Field, HandshakeType, LessonWords, MqttOutcome,
    MqttPacket, MqttPacketType, MqttRequest, MqttResult, Outcome, PolicyEvent, Side, Stage, Trace,
};

/// The narration of one step: event `event` of the trace, and for application data the MQTT
/// packet `packet` within it.
pub fn step(trace: &Trace, event: usize, packet: Option<usize>) -> String {
    shorten_hex_words(&narrate_step(trace, event, packet, None))
}

/// The narration of one step as the tour reaches it: a verdict recorded at a later event (the
/// broker's check of a CertificateVerify comes several steps after the message) is not told
/// yet, only that it comes later. The plain text tells the whole session at once and uses
/// [`step`].
pub fn step_so_far(trace: &Trace, event: usize, packet: Option<usize>) -> String {
    shorten_hex_words(&narrate_step(trace, event, packet, Some(event)))
}

/// Said of a message whose verdict the tour has not reached yet.
const VERDICT_LATER: &str = "its verdict is a later step";

/// Long hex strings (certificate ids, hashes) are shortened to their first 12 digits.
fn shorten_hex_words(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let hex_len = w.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if hex_len >= 24 {
                let rest: String = w.chars().skip(hex_len).collect();
                format!("{}…{rest}", &w[..12])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `upto`: the last event whose verdicts may be told (`None`: all of them).
fn narrate_step(trace: &Trace, event: usize, packet: Option<usize>, upto: Option<usize>) -> String {
    let Some(e) = trace.events.get(event) else {
        return "This trace has no events: the session did not start.".to_string();
    };
    match &e.kind {
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => tcp(device_addr, broker_addr),
        EventKind::Handshake {
            msg,
            fields,
            encrypted,
            ..
        } => match *msg {
            HandshakeType::CLIENT_HELLO => client_hello(trace, fields),
            HandshakeType::SERVER_HELLO => server_hello(trace, fields),
            HandshakeType::CERTIFICATE => certificate(trace, e, fields),
            HandshakeType::SERVER_KEY_EXCHANGE => server_key_exchange(trace, event, fields, upto),
            HandshakeType::CERTIFICATE_REQUEST => certificate_request(fields),
            HandshakeType::SERVER_HELLO_DONE => server_hello_done(),
            HandshakeType::CLIENT_KEY_EXCHANGE => client_key_exchange(trace, fields),
            HandshakeType::CERTIFICATE_VERIFY => certificate_verify(trace, event, upto),
            HandshakeType::FINISHED => finished(trace, event, e.side, *encrypted, upto),
            other => unknown_handshake(&other.name(), e.side),
        },
        EventKind::ChangeCipherSpec { .. } => change_cipher_spec(trace, e.side),
        EventKind::Alert {
            level, description, ..
        } => alert(e.side, *level, *description),
        EventKind::AppData {
            ciphertext,
            plaintext,
            mqtt,
            mqtt_not_listed,
            ..
        } => match packet.and_then(|p| mqtt.get(p).map(|m| (p, m))) {
            Some((i, p)) if i + 1 == mqtt.len() && *mqtt_not_listed > 0 => format!(
                "{} The same record holds {mqtt_not_listed} more MQTT packet(s), not listed.",
                mqtt_packet(&trace.words, e.side, p, ciphertext.len())
            ),
            Some((_, p)) => mqtt_packet(&trace.words, e.side, p, ciphertext.len()),
            None => app_data(e.side, ciphertext.len(), plaintext.is_some()),
        },
        EventKind::Undecodable { hex, reason, .. } => undecodable(e.side, hex.len(), reason),
        EventKind::Check {
            check,
            ok,
            reason,
            facts,
            failure,
            ..
        } => self::check(e.side, *check, *ok, reason, facts, failure.as_deref()),
        EventKind::Secret {
            client_random,
            secret: s,
            ..
        } => secret(&hex(client_random), &hex(s)),
        EventKind::KeySchedule(k) => key_schedule(k),
        EventKind::Policy(p) => policy(p, e.side),
        EventKind::Closed { by, reason, .. } => closed(*by, reason),
        EventKind::Error { stage, message, .. } => error(*stage, message),
        EventKind::Gap { reason, .. } => gap(reason),
        EventKind::Operation(o) => operation(o),
        EventKind::Witness { device, what } => witness(device, what),
    }
}

/// A witness's event in one line: `shop: received iotbutton/G030… {"serialNumber":…}`.
pub fn witness_title(device: &str, what: &crate::trace::WitnessKind) -> String {
    use crate::trace::WitnessKind as W;
    match what {
        W::Connected { client_id } => format!("{device}: connected as {}", echo(client_id)),
        W::Subscribed { filter, code } if *code < 0x80 => {
            format!("{device}: subscribed to {}", echo(filter))
        }
        W::Subscribed { filter, code } => {
            format!(
                "{device}: SUBSCRIBE to {} refused (0x{code:02x})",
                echo(filter)
            )
        }
        W::Received { topic, payload } => format!(
            "{device}: received {} {}",
            echo(topic),
            echo(&String::from_utf8_lossy(payload))
        ),
        W::Refused { .. } => format!("{device}: refused"),
        W::Disconnected => format!("{device}: disconnected"),
    }
}

/// A witness's event, told: what another device of the lesson did or saw on its own connection.
pub fn witness(device: &str, what: &crate::trace::WitnessKind) -> String {
    use crate::trace::WitnessKind as W;
    let own = "on its own TLS connection to the same broker (its bytes are not in this trace, \
               which is the device's connection; it does not decide the outcome)";
    match what {
        W::Connected { client_id } => format!(
            "{device}, another device of this lesson, connected {own}: the broker accepted its \
             CONNECT as {}.",
            echo(client_id)
        ),
        W::Subscribed { filter, code } if *code < 0x80 => format!(
            "{device} subscribed to {}: SUBACK granted QoS {code}. Whatever the broker delivers \
             on that filter from now on reaches it.",
            echo(filter)
        ),
        W::Subscribed { filter, code } => format!(
            "{device} asked to subscribe to {}: the broker refused (SUBACK 0x{code:02x}).",
            echo(filter)
        ),
        W::Received { topic, payload } => format!(
            "{device} received a PUBLISH on {} ({} bytes): {}. The broker delivered it to {device} \
             on its subscription; {device} read it off its own TLS connection (its bytes are not \
             in this trace, which is the device's connection).",
            echo(topic),
            payload.len(),
            echo(&String::from_utf8_lossy(payload))
        ),
        W::Refused { reason } => format!("{device} stopped: {reason}."),
        W::Disconnected => format!(
            "{device} sent DISCONNECT and closed its connection, after the device was done."
        ),
    }
}

/// An operation of a lesson that is not a session: what it shows, then the verdict the library
/// returned and whether that is what the lesson demonstrates.
pub fn operation(o: &crate::trace::Operation) -> String {
    match operation_verdict(o) {
        Some(v) => format!("{}\n{v}", o.explain),
        None => o.explain.clone(),
    }
}

/// `ring: signature invalid — the expected result: ...`, or `None` for an operation without one.
pub fn operation_verdict(o: &crate::trace::Operation) -> Option<String> {
    let v = o.verdict.as_ref()?;
    let lib = &o.library;
    Some(match (v.ok, v.expected) {
        (true, true) => format!("{lib} answered: {} — as expected.", v.reason),
        (false, false) => format!(
            "{lib} answered: {} — the expected answer: this \"no\" is what the lesson shows.",
            v.reason
        ),
        (true, false) => format!(
            "{lib} answered: {} — NOT what the lesson expects: this should have failed.",
            v.reason
        ),
        (false, true) => format!(
            "{lib} answered: {} — NOT what the lesson expects: this should have passed.",
            v.reason
        ),
    })
}

/// A recording bound's gap (`serve`), for people.
pub fn gap(reason: &str) -> String {
    format!(
        "Records not kept: {reason}. The records after the gap were decrypted with sequence \
         numbers moved on by the records left out."
    )
}

/// A gap's one-line title.
pub fn gap_title(device: &crate::trace::GapSide, broker: &crate::trace::GapSide) -> String {
    format!(
        "gap: {} + {} records not kept ({} bytes)",
        device.records,
        broker.records,
        group((device.bytes + broker.bytes) as usize)
    )
}

fn key_schedule(k: &crate::trace::KeySchedule) -> String {
    format!(
        "iotls's own calculation: from the key log's master secret (an input — the pre-master \
         secret never leaves rustls), PRF-{} with the label \"key expansion\" over server_random ‖ \
         client_random gives a {}-byte key block, cut into the write keys and IVs that protect \
         every {} record from here on.",
        k.prf_hash.to_uppercase(),
        k.key_expansion.key_block.len(),
        k.key_expansion.aead
    )
}

fn tcp(device: &str, broker: &str) -> String {
    format!(
        "The device opens a TCP connection from {device} to the broker at {broker}. Nothing is protected \
         yet: every TLS message that follows travels in the clear over this byte stream until both sides switch \
         on encryption."
    )
}

fn client_hello(trace: &Trace, fields: &[Field]) -> String {
    let offered: Vec<&Field> = fields
        .iter()
        .filter(|f| f.depth > 0 && f.value.starts_with("TLS_"))
        .collect();
    let tls13 = offered
        .iter()
        .filter(|f| {
            ["TLS_AES_", "TLS_CHACHA20_POLY1305_SHA256"]
                .iter()
                .any(|p| f.value.starts_with(p))
        })
        .count();
    let scsv = offered
        .iter()
        .filter(|f| f.value.starts_with("TLS_EMPTY_RENEGOTIATION_INFO_SCSV"))
        .count();
    let tls12 = offered.len() - tls13 - scsv;
    // The suites TLS 1.2 can use, then what else the list holds and why it does not count.
    let offer = if offered.is_empty() {
        "TLS 1.2 and its cipher suites".to_string()
    } else {
        let mut s = format!(
            "TLS 1.2 and {tls12} cipher suite{} for it",
            if tls12 == 1 { "" } else { "s" }
        );
        let extra: Vec<String> = [
            (tls13 > 0).then(|| {
                format!(
                    "{tls13} TLS 1.3 suite{}, which TLS 1.2 cannot use",
                    if tls13 == 1 { "" } else { "s" }
                )
            }),
            (scsv > 0)
                .then(|| "the SCSV, a signal for secure renegotiation, not a suite".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !extra.is_empty() {
            s.push_str(&format!(". The list also holds {}", extra.join(", and ")));
        }
        s
    };
    let sni = sni(trace, fields);
    let name = match &sni {
        Some(s) => format!("It asks for the broker by name ({s}: the SNI) and sends"),
        None => "It sends".to_string(),
    };
    let random = find_field(fields, &["random"])
        .map(|f| short(&f.value))
        .unwrap_or_default();
    let random = if random.is_empty() {
        String::new()
    } else {
        format!(" ({random})")
    };
    format!(
        "The device says hello, in the clear: {offer}. {name} 32 fresh random bytes{random}, mixed into \
         the keys so that no two sessions share keys.{}",
        alpn_offer(fields)
    )
}

/// The ALPN protocol name AWS IoT's port 443 needs for MQTT with a client certificate.
pub const AWS_MQTT_ALPN: &str = "x-amzn-mqtt-ca";

/// The protocol names of a hello's ALPN extension (the offer, or the server's choice).
fn alpn_names(fields: &[Field]) -> Vec<&str> {
    fields
        .iter()
        .filter(|f| f.name == "protocol" && f.depth == 2)
        .map(|f| f.value.as_str())
        .collect()
}

/// The ClientHello's sentence on ALPN, when it offers application protocols.
fn alpn_offer(fields: &[Field]) -> String {
    let offered = alpn_names(fields);
    if offered.is_empty() {
        return String::new();
    }
    let aws = if offered.contains(&AWS_MQTT_ALPN) {
        format!(
            " ({AWS_MQTT_ALPN} is the name AWS IoT's port 443 needs to take the connection as MQTT with a \
             client certificate)"
        )
    } else {
        String::new()
    };
    format!(
        " It offers the application protocol{} {} (ALPN), for the broker to choose from{aws}.",
        if offered.len() == 1 { "" } else { "s" },
        offered.join(", ")
    )
}

/// The ServerHello's sentence on ALPN: the protocol chosen, or that the device's offer got no answer.
fn alpn_choice(trace: &Trace, fields: &[Field]) -> String {
    let chosen = trace
        .tls
        .as_ref()
        .and_then(|t| t.alpn.clone())
        .or_else(|| alpn_names(fields).first().map(|s| s.to_string()));
    let offered = trace
        .handshake(Side::Device, HandshakeType::CLIENT_HELLO)
        .map(|e| match &e.kind {
            EventKind::Handshake { fields, .. } => alpn_names(fields).len(),
            _ => 0,
        })
        .unwrap_or(0);
    match chosen {
        Some(p) => {
            format!(" It chooses the application protocol {p} from the device's ALPN offer.")
        }
        None if offered > 0 => " It chooses none of the application protocols the device offered \
             (no ALPN in its answer): it ignores ALPN, and what it speaks next is up to it."
            .to_string(),
        None => String::new(),
    }
}

fn server_hello(trace: &Trace, fields: &[Field]) -> String {
    let suite = trace
        .tls
        .as_ref()
        .map(|t| t.cipher_suite.clone())
        .or_else(|| find_field(fields, &["cipher_suite", "cipher suite"]).map(|f| f.value.clone()))
        .unwrap_or_else(|| "a cipher suite".to_string());
    let ems = match &trace.tls {
        Some(t) if t.extended_master_secret => {
            ", and agrees to the extended master secret (keys bound to this whole handshake)"
        }
        _ => "",
    };
    format!(
        "The broker picks {suite} from the device's offer: {}. It adds its own 32 random bytes{ems}.{}",
        explain_suite(&suite),
        alpn_choice(trace, fields)
    )
}

/// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` in words.
pub fn explain_suite(suite: &str) -> String {
    let name = suite.split_whitespace().next().unwrap_or(suite);
    let (kx_auth, rest) = name
        .trim_start_matches("TLS_")
        .split_once("_WITH_")
        .unwrap_or((name, ""));
    let kx = if kx_auth.starts_with("ECDHE") {
        "ECDHE, fresh keys every session"
    } else if kx_auth.starts_with("DHE") {
        "DHE, fresh keys every session"
    } else {
        "its key exchange"
    };
    let auth = if kx_auth.ends_with("ECDSA") {
        "ECDSA, the broker signs"
    } else if kx_auth.ends_with("RSA") {
        "RSA, the broker signs"
    } else {
        "the broker signs"
    };
    let cipher = if rest.starts_with("AES_128_GCM") {
        "AES-128-GCM encrypts records"
    } else if rest.starts_with("AES_256_GCM") {
        "AES-256-GCM encrypts records"
    } else if rest.starts_with("CHACHA20_POLY1305") {
        "ChaCha20-Poly1305 encrypts records"
    } else {
        "a cipher encrypts records"
    };
    let prf = if rest.ends_with("SHA384") {
        "SHA-384"
    } else {
        "SHA-256"
    };
    format!("{kx}; {auth}; {cipher}; {prf} derives keys")
}

fn certificate(trace: &Trace, e: &Event, fields: &[Field]) -> String {
    let chain = chain_of(trace, e.side);
    let certs_on_wire = fields
        .iter()
        .filter(|f| f.depth == 1 && f.name.to_lowercase().starts_with("certificate"))
        .count();
    if chain.is_empty() && certs_on_wire == 0 && e.side == Side::Device {
        return "The device sends an EMPTY certificate list: it has no certificate to offer. The broker requires \
                one, so it cannot know who this is."
            .to_string();
    }
    let names: Vec<String> = chain.iter().map(|c| cn(&c.subject).to_string()).collect();
    let list = match names.as_slice() {
        [] => "its certificate chain".to_string(),
        [one] => format!("its certificate, {one}"),
        [leaf, rest @ ..] => format!("its certificate, {leaf}, then {}", rest.join(", then ")),
    };
    match e.side {
        Side::Broker => {
            let sni = sni(trace, &[])
                .map(|s| format!(" and names {s}"))
                .unwrap_or_default();
            format!(
                "The broker sends {list}. A certificate binds a public key to a name and is signed by a CA. It is \
                 public, so alone it proves nothing: the device checks that the chain leads to a root it holds{sni}; \
                 that the broker owns the key is proved by the ServerKeyExchange signature."
            )
        }
        Side::Device | Side::Iotls => {
            // The leaf first, with the subject's serialNumber (what the policy variable reads,
            // not the certificate's serial number) and its issuer; then the rest of the chain.
            let list = match names.as_slice() {
                [] => "its certificate chain".to_string(),
                [leaf, rest @ ..] => {
                    let c = chain[0];
                    let serial = rdn(&c.subject, "serialNumber")
                        .map(|s| format!(" (subject serialNumber {s})"))
                        .unwrap_or_default();
                    let then = if rest.is_empty() {
                        String::new()
                    } else {
                        format!(", then {}", rest.join(", then "))
                    };
                    format!(
                        "its certificate, {leaf}{serial}, issued by {}{then}",
                        cn(&c.issuer)
                    )
                }
            };
            format!(
                "The device answers the broker's request with {list}. This certificate is the device's \
                 identity, like a user name. It is public; the proof that the device holds its private key \
                 comes two messages later, in CertificateVerify."
            )
        }
    }
}

fn server_key_exchange(
    trace: &Trace,
    event: usize,
    fields: &[Field],
    upto: Option<usize>,
) -> String {
    let group = kx_group(trace, fields);
    let leaf = chain_of(trace, Side::Broker)
        .first()
        .map(|c| cn(&c.subject).to_string())
        .unwrap_or_else(|| "the broker".into());
    let verdict = match check_near_upto(trace, event, CheckId::ServerKxSignature, upto) {
        Near::Found(true, _) => " The device checked it with the certificate's public key: ✔ valid — the broker holds that key.".to_string(),
        Near::Found(false, reason) => format!(" The device checked it: ✘ {reason}."),
        Near::Later => format!(
            " The device checks it with the certificate's public key; {VERDICT_LATER}."
        ),
        Near::None => String::new(),
    };
    format!(
        "The broker sends a fresh {group} public key, its half of the ECDHE key exchange, signed with both randoms \
         by the private key of {leaf}'s certificate.{verdict} No RSA key transport: fresh keys each session give \
         forward secrecy."
    )
}

fn certificate_request(fields: &[Field]) -> String {
    let cas: Vec<&str> = fields
        .iter()
        .filter(|f| f.depth > 0 && f.value.contains("CN="))
        .map(|f| cn(&f.value))
        .collect();
    let cas = if cas.is_empty() {
        String::new()
    } else {
        format!(" It names the CAs it trusts: {}.", cas.join(", "))
    };
    format!(
        "The broker asks the device for a certificate — this is what makes the TLS mutual. It lists the \
         certificate types and signature algorithms it accepts.{cas} Without this message, the device would stay \
         anonymous."
    )
}

fn server_hello_done() -> String {
    "The broker has sent its whole flight: hello, certificate chain, key share and certificate request. Its \
     turn is over; the device now checks what it received and answers."
        .to_string()
}

fn client_key_exchange(trace: &Trace, fields: &[Field]) -> String {
    let group = kx_group(trace, fields);
    format!(
        "The device sends its half of the key exchange: its own fresh {group} public key. Each side combines its \
         private ephemeral key with the other's public key and gets the same shared secret, which never crossed \
         the wire. With both randoms it becomes the 48-byte master secret, and from that the record keys."
    )
}

fn certificate_verify(trace: &Trace, event: usize, upto: Option<usize>) -> String {
    let facts = check_facts_near(trace, event, CheckId::CertificateVerify);
    let len = fact(facts, "signed_len")
        .and_then(|v| v.parse::<usize>().ok())
        .or_else(|| Some(transcript_len(trace, event)).filter(|n| *n > 0));
    let bytes = len
        .map(|n| format!(" of the {} bytes of handshake so far", group(n)))
        .unwrap_or_default();
    let hash = fact(facts, "hash_algorithm")
        .map(|h| h.to_uppercase().replace("SHA", "SHA-"))
        .unwrap_or_else(|| "SHA-256".into());
    let who = chain_of(trace, Side::Device)
        .first()
        .map(|c| cn(&c.subject).to_string());
    let signer = fact(facts, "signer")
        .map(str::to_string)
        .or(who)
        .unwrap_or_else(|| "the device".into());
    let verdict = match check_near_upto(trace, event, CheckId::CertificateVerify, upto) {
        Near::Found(true, _) => format!(
            "; the broker checked it with the public key in the device's certificate: ✔ valid — this \
             connection really is {signer}."
        ),
        Near::Found(false, reason) => format!(
            "; the broker checked it with the public key in the device's certificate: ✘ {reason}."
        ),
        Near::Later => format!(
            "; the broker checks it with the public key in the device's certificate ({VERDICT_LATER})."
        ),
        Near::None => "; the broker's verdict on it is not in this record.".to_string(),
    };
    format!(
        "The device signed the {hash} hash{bytes} (ClientHello … ClientKeyExchange) with its private key\
         {verdict} Only the holder of the \
         private key can make this signature, and it covers this session's randoms, so it cannot be replayed."
    )
}

fn finished(
    trace: &Trace,
    event: usize,
    side: Side,
    encrypted: bool,
    upto: Option<usize>,
) -> String {
    let (check, checker) = match side {
        Side::Device => (CheckId::ClientFinished, Side::Broker),
        _ => (CheckId::ServerFinished, Side::Device),
    };
    let after = |by: Side| {
        trace.events.iter().enumerate().skip(event).find(|(_, e)| {
            e.side == by && matches!(&e.kind, EventKind::Check { check: c, .. } if *c == check)
        })
    };
    let reached = |at: usize| upto.is_none_or(|u| at <= u);
    let (real, mine) = (after(checker), after(Side::Iotls));
    let mut verdict = match real {
        Some((at, _)) if !reached(at) => {
            format!(" The {} checks it; {VERDICT_LATER}.", checker.name())
        }
        Some((_, e)) => match &e.kind {
            EventKind::Check { ok: true, .. } => {
                format!(" The {} computed the same value: ✔ match.", checker.name())
            }
            EventKind::Check { reason, .. } => {
                format!(
                    " The {} computed something else: ✘ {reason}.",
                    checker.name()
                )
            }
            _ => String::new(),
        },
        None => format!(
            " The {}'s verdict on it is not in this record.",
            checker.name()
        ),
    };
    let mine = mine.filter(|(at, _)| reached(*at)).map(|(_, e)| e);
    if let Some(EventKind::Check { ok, .. }) = mine.map(|e| &e.kind) {
        verdict.push_str(if *ok {
            " iotls recomputed it from the key log: it matches."
        } else {
            " iotls recomputed it from the key log: it does NOT match."
        });
    }
    let enc = if encrypted {
        "its first encrypted message"
    } else {
        "its Finished message"
    };
    let end = match side {
        Side::Broker => "With the Finished messages checked, the handshake is complete.",
        _ => "Any change to an earlier message by an attacker would be caught here.",
    };
    format!(
        "The {} sends {enc}: verify_data, 12 bytes computed from the master secret and the hash of every handshake \
         message it has seen.{verdict} {end}",
        side.name()
    )
}

fn unknown_handshake(msg: &str, side: Side) -> String {
    format!("The {} sends a handshake message iotls does not explain: {msg}. Its bytes are shown as they were.", side.name())
}

fn change_cipher_spec(trace: &Trace, side: Side) -> String {
    let cipher = trace
        .tls
        .as_ref()
        .map(|t| {
            t.cipher_suite
                .split("_WITH_")
                .nth(1)
                .unwrap_or(&t.cipher_suite)
                .to_string()
        })
        .unwrap_or_else(|| "the negotiated cipher".into());
    format!(
        "The {} switches on encryption: every record it sends from now on is encrypted and authenticated \
         ({cipher}) with keys derived from the master secret. This one-byte message is the last thing it sends in \
         the clear.",
        side.name()
    )
}

fn alert(side: Side, level: AlertLevel, description: AlertDescription) -> String {
    let end = if level == AlertLevel::FATAL {
        " A fatal alert ends the connection at once."
    } else if description == AlertDescription::CLOSE_NOTIFY {
        " It is the polite way to end a TLS session: no more data will follow."
    } else {
        ""
    };
    format!(
        "The {} sends a {} alert, {description}: {}.{end}",
        side.name(),
        level.name(),
        alert_meaning(description)
    )
}

/// What a TLS alert means, in words (`words/alerts.toml`).
pub fn alert_meaning(description: AlertDescription) -> &'static str {
    words::alert(&description.name())
}

fn mqtt_packet(words: &LessonWords, side: Side, p: &MqttPacket, record_len: usize) -> String {
    let wire = format!(
        " On the wire it is a {}-byte encrypted record; iotls shows the plaintext because it holds the session keys.",
        group(record_len)
    );
    match p.packet {
        MqttPacketType::Connect => {
            let id = p
                .client_id
                .as_deref()
                .map(|c| format!(" with client id {}", fit_chars(c, ECHO_CHARS)))
                .unwrap_or_default();
            format!(
                "Inside the tunnel the device now speaks MQTT: CONNECT{id}. The broker already knows which \
                 certificate authenticated this connection; the client id is just a claim it will check against \
                 policy.{wire}"
            )
        }
        MqttPacketType::ConnAck => {
            let code = p.code.as_deref().unwrap_or("accepted");
            format!("The broker answers the CONNECT: CONNACK, {code}.{wire}")
        }
        MqttPacketType::Publish => {
            let topic = fit_chars(p.topic.as_deref().unwrap_or("?"), ECHO_CHARS);
            let payload = p
                .payload
                .as_deref()
                .map(|s| format!(" “{}”", fit_chars(s, 60)))
                .unwrap_or_default();
            let qos = p.qos.map(|q| format!(" at QoS {q}")).unwrap_or_default();
            match side {
                Side::Device => {
                    // The lesson's words (`[words] publish`), else neutral ones.
                    let lead = match &words.publish {
                        Some(w) => format!("{w}: the device publishes"),
                        None => "The device publishes".to_string(),
                    };
                    format!(
                        "{lead}{payload} to the topic {topic}{qos}. Whether it may publish there is \
                         the broker's policy decision.{wire}"
                    )
                }
                _ => format!("The broker delivers{payload} on {topic}{qos}.{wire}"),
            }
        }
        MqttPacketType::PubAck => {
            let id = p.pkid.map(|i| format!(" #{i}")).unwrap_or_default();
            let code = p.code.as_deref().unwrap_or_default();
            match p.reason_code {
                // MQTT 5 carries a reason; 0x80 and above is a refusal.
                Some(c) if c >= 0x80 => format!(
                    "The {} answers PUBLISH{id} with a refusal: {code}. MQTT 5 can say no without \
                     dropping the connection; nothing was delivered.{wire}",
                    side.name()
                ),
                Some(_) => format!(
                    "The {} acknowledges PUBLISH{id}: {code}.{wire}",
                    side.name()
                ),
                None => format!(
                    "The {} acknowledges PUBLISH{id}. In MQTT 3.1.1 a PUBACK only says the message was \
                     received: it has no code, so it cannot say whether it was allowed or delivered.{wire}",
                    side.name()
                ),
            }
        }
        MqttPacketType::Disconnect if p.reason_code.is_some_and(|c| c != 0) => format!(
            "The {} ends the MQTT session with DISCONNECT, reason {}.{wire}",
            side.name(),
            p.code.as_deref().unwrap_or_default()
        ),
        MqttPacketType::Subscribe => {
            let topic = p
                .topic
                .as_deref()
                .map(|t| format!(" to {}", fit_chars(t, ECHO_CHARS)))
                .unwrap_or_default();
            format!("The {} subscribes{topic}.{wire}", side.name())
        }
        MqttPacketType::SubAck => format!(
            "The broker answers the SUBSCRIBE: {}.{wire}",
            p.code.as_deref().unwrap_or("SUBACK")
        ),
        MqttPacketType::PingReq | MqttPacketType::PingResp => format!(
            "The {} sends {}, a keep-alive.{wire}",
            side.name(),
            p.packet
        ),
        MqttPacketType::Disconnect => format!(
            "The {} ends the MQTT session cleanly with DISCONNECT.{wire}",
            side.name()
        ),
        MqttPacketType::Malformed => format!(
            "The {} sent bytes that are not a valid MQTT packet: {}.{wire}",
            side.name(),
            p.code.as_deref().unwrap_or("malformed")
        ),
        other => format!("The {} sends the MQTT packet {other}.{wire}", side.name()),
    }
}

fn app_data(side: Side, len: usize, decrypted: bool) -> String {
    if decrypted {
        format!(
            "The {} sends {} bytes of encrypted application data.",
            side.name(),
            group(len)
        )
    } else {
        format!(
            "The {} sends {} bytes of encrypted application data that iotls could not decrypt.",
            side.name(),
            group(len)
        )
    }
}

fn undecodable(side: Side, len: usize, reason: &str) -> String {
    format!(
        "The {} sent {} bytes that are not TLS: {reason}.",
        side.name(),
        group(len)
    )
}

/// What a check verifies, for people (`words/checks.toml`).
pub fn check_title(check: CheckId) -> &'static str {
    words::check(check)
}

fn check(
    side: Side,
    check: CheckId,
    ok: bool,
    reason: &str,
    facts: &[Fact],
    failure: Option<&Failure>,
) -> String {
    let what = check_title(check);
    let mark = if ok { "✔" } else { "✘" };
    let lead = match side {
        Side::Iotls => format!(
            "iotls recomputed {what} itself (not a side's verdict): {mark} {}.",
            reason.trim_end_matches('.')
        ),
        _ => format!(
            "The {} checked {what}: {mark} {}.",
            side.name(),
            reason.trim_end_matches('.')
        ),
    };
    let why = match (check, ok) {
        (CheckId::ServerChain, true) => {
            let anchor = fact(facts, "trust anchor")
                .map(|a| format!(" Trust anchor: {}.", a.split(" (sha256").next().unwrap_or(a)))
                .unwrap_or_default();
            format!("{anchor} The certificate is genuine; whether the broker holds its key is checked next.")
        }
        (CheckId::ServerName, true) => " The device reached the server it asked for, not just any server with a valid certificate.".into(),
        (CheckId::ClientChain, true) => " The broker now knows which certificate — which device — this is.".into(),
        (CheckId::Registry, true) => " The certificate is registered and active.".into(),
        (_, true) => String::new(),
        (_, false) => failure
            .map(|f| format!(" {}", failure_help(f).cause))
            .unwrap_or_default(),
    };
    format!("{lead}{why}")
}

fn secret(client_random: &str, secret: &str) -> String {
    format!(
        "rustls exported this session's master secret ({}, {} bytes) under client_random {} — the key-log line \
         Wireshark reads. It was derived on both sides, never sent. iotls uses it only to decrypt the records for \
         you; because the key exchange was ECDHE, leaking a certificate's private key later would not reveal it \
         (forward secrecy).",
        short(secret),
        secret.len() / 2,
        short(client_random)
    )
}

fn policy(p: &PolicyEvent, side: Side) -> String {
    let verdict = match p.decision {
        Decision::Allowed => "✔ ALLOWED.".to_string(),
        Decision::ExplicitDeny => {
            "✘ EXPLICIT_DENY: a Deny matches, and a Deny beats any Allow.".to_string()
        }
        Decision::ImplicitDeny => {
            "✘ IMPLICIT_DENY: nothing allows it, and what is not allowed is denied.".to_string()
        }
    };
    // The engine's explanation: the first line restates the request; then which statement
    // decided; lines starting with `${` show how policy variables were filled in.
    let why = p
        .lines
        .iter()
        .skip(1)
        .map(|l| l.trim())
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("${")
                && !l.starts_with("Resource")
                && !l.starts_with("Condition")
        })
        .filter(|l| p.decision.allowed() || !l.starts_with("No statement"))
        .map(|l| format!(" {}", fit_chars(l, 2 * ECHO_CHARS)))
        .unwrap_or_default();
    let vars: Vec<String> = p
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("${"))
        .map(|l| fit_chars(l.split(" (from").next().unwrap_or(l), ECHO_CHARS))
        .collect();
    let vars = if vars.is_empty() {
        String::new()
    } else {
        format!(" Filled in from this connection: {}.", vars.join("; "))
    };
    let enforced = if p.decision.allowed() {
        String::new()
    } else {
        format!(" So {}.", enforcement(p.enforcement))
    };
    let (engine, enforced) = match side {
        Side::Iotls => (
            "iotls's offline re-evaluation with the registry it was given (not the broker's decision)",
            format!(" {}.", enforcement(p.enforcement)),
        ),
        _ => ("The broker's policy engine", enforced),
    };
    format!(
        "May this certificate do {} on {}? {engine} says {verdict}{why}{vars}{enforced}",
        p.action,
        fit_chars(short_arn(&p.resource), ECHO_CHARS)
    )
}

/// What the broker did about a decision, in words.
pub fn enforcement(e: Enforcement) -> &'static str {
    match e {
        Enforcement::CarriedOut => "the broker carries it out",
        Enforcement::ConnectionClosed => "the broker closes the connection, as AWS IoT does on MQTT 3.1.1",
        Enforcement::ConnackRefused => {
            "the broker answers CONNACK 0x87 Not authorized, then closes the connection"
        }
        Enforcement::PubackRefused => "the broker answers PUBACK 0x87 Not authorized; nothing is delivered",
        Enforcement::Disconnected => {
            "the broker sends DISCONNECT 0x87 Not authorized (a QoS 0 publish has no PUBACK to carry \
             the refusal)"
        }
        Enforcement::SubackRefused => {
            "the broker answers SUBACK 0x87 Not authorized for this filter; the connection stays open"
        }
        Enforcement::NotDelivered => "the message is not delivered to this subscriber",
        Enforcement::NotEnforced => {
            "iotls enforced nothing: what the broker really did is in its answer on the wire"
        }
    }
}

pub use crate::trace::short_arn;

fn closed(by: Option<Side>, reason: &str) -> String {
    match by {
        Some(s) => format!("The {} closed the connection: {reason}.", s.name()),
        None => format!("The connection ended: {reason}."),
    }
}

fn error(stage: Stage, message: &str) -> String {
    format!(
        "Something outside the TLS checks went wrong during the {}: {message}.",
        stage.title()
    )
}

/// Why a check failed and how to fix it, in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureHelp {
    pub cause: String,
    pub fix: String,
    /// The alert that went out because of it, if the trace shows one.
    pub alert: Option<String>,
}

/// The plain-language cause and fix of a failure, decided by its code (never by its words):
/// the templates of `words/failures.toml`, filled from the typed failure.
pub fn failure_help(f: &Failure) -> FailureHelp {
    use FailureCode as C;
    let key = match f.code {
        C::UnknownIssuer
            if f.check == Some(CheckId::ServerChain) || f.side == Some(Side::Device) =>
        {
            "unknown_issuer_of_broker"
        }
        C::PolicyDenied if f.decision.as_deref() == Some("EXPLICIT_DENY") => {
            "policy_denied_explicit"
        }
        code => code.as_str(),
    };
    let validity = match (&f.not_before, &f.not_after) {
        (Some(a), Some(b)) => format!(" (valid {a} … {b})"),
        (None, Some(b)) => format!(" (not after {b})"),
        (Some(a), None) => format!(" (not before {a})"),
        _ => String::new(),
    };
    let expected_name = f
        .expected_name
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let issuer = f
        .missing_issuer
        .as_ref()
        .map(|i| format!(" ({})", cn(i)))
        .unwrap_or_default();
    let reason_code = f
        .reason_code
        .map(|c| format!(" with reason code 0x{c:02x}"))
        .unwrap_or_default();
    let values: [(&str, &str); 8] = [
        ("side", f.side.map(|s| s.name()).unwrap_or("peer")),
        ("refuser", f.side.map(|s| s.name()).unwrap_or("broker")),
        ("validity", &validity),
        ("expected_name", &expected_name),
        ("issuer", &issuer),
        ("action", f.action.as_deref().unwrap_or("the request")),
        ("reason_code", &reason_code),
        ("aws_alpn", AWS_MQTT_ALPN),
    ];
    let (cause, fix) = words::failure(key);
    FailureHelp {
        cause: words::fill(cause, &values),
        fix: words::fill(fix, &values),
        alert: f.alert.clone(),
    }
}

/// The failure recorded at event `at` (a failed check, a denied decision), if any.
pub fn failure_at(trace: &Trace, at: usize) -> Option<Failure> {
    let e = trace.events.get(at)?;
    let f = match &e.kind {
        EventKind::Check { .. } | EventKind::Policy(_) => e.failure(),
        _ => None,
    };
    f.map(|mut f| {
        if f.alert.is_none() {
            f.alert = trace.events[at..].iter().find_map(|a| match &a.kind {
                EventKind::Alert {
                    level, description, ..
                } if *level == AlertLevel::FATAL
                    || *description != AlertDescription::CLOSE_NOTIFY =>
                {
                    Some(format!(
                        "{} ({}, sent by the {})",
                        description.name(),
                        level.name(),
                        a.side.name()
                    ))
                }
                _ => None,
            });
        }
        f
    })
}

/// The one line that ends a session's report: what happened, on which side, and why.
pub fn outcome_line(o: &Outcome, tls_only: bool) -> String {
    if let Some(f) = &o.failure {
        return failure_line(f);
    }
    if tls_only {
        return "Both sides authenticated each other over TLS (handshake only, no MQTT)."
            .to_string();
    }
    // Repeats are counted, not repeated (a ping flood is one line), and the list is capped.
    let mut done: Vec<(String, usize)> = Vec::new();
    for line in o.mqtt.iter().map(mqtt_line) {
        match done.last_mut() {
            Some((l, n)) if *l == line => *n += 1,
            _ => done.push((line, 1)),
        }
    }
    let more = done.len().saturating_sub(MAX_OUTCOME_LINES);
    let mut done: Vec<String> = done
        .into_iter()
        .take(MAX_OUTCOME_LINES)
        .map(|(l, n)| if n > 1 { format!("{l} (×{n})") } else { l })
        .collect();
    if more > 0 {
        done.push(format!("{more} more"));
    }
    if done.is_empty() {
        "Both sides authenticated each other over TLS.".to_string()
    } else {
        format!(
            "Both sides authenticated each other over TLS; {}.",
            done.join("; ")
        )
    }
}

/// The most characters of a client id, topic or filter a narration echoes: they come from the
/// device, which may send 65,535 bytes of one.
const ECHO_CHARS: usize = 128;

/// A value the device chose (a client id, a topic, a resource named after one), as the narration
/// echoes it: at most [`ECHO_CHARS`] characters, with `…` when cut.
pub fn echo(s: &str) -> String {
    fit_chars(s, ECHO_CHARS)
}

/// A line of a policy explanation as the narration shows it: explanations quote the request's
/// values, so they are cut at four times [`ECHO_CHARS`].
pub fn echo_line(s: &str) -> String {
    fit_chars(s, 4 * ECHO_CHARS)
}

/// The most distinct requests the outcome line lists.
const MAX_OUTCOME_LINES: usize = 12;

/// One request and its result, in words.
pub fn mqtt_line(m: &MqttOutcome) -> String {
    let echo = |s: Option<&str>| fit_chars(s.unwrap_or("?"), ECHO_CHARS);
    let what = match m.action {
        MqttRequest::Connect => format!(
            "CONNECT{}",
            m.client_id
                .as_ref()
                .map(|c| format!(" as {}", fit_chars(c, ECHO_CHARS)))
                .unwrap_or_default()
        ),
        MqttRequest::Publish => format!("PUBLISH to {}", echo(m.topic.as_deref())),
        MqttRequest::Subscribe => format!("SUBSCRIBE to {}", echo(m.filter.as_deref())),
        MqttRequest::Unsubscribe => {
            format!("UNSUBSCRIBE from {}", echo(m.filter.as_deref()))
        }
        MqttRequest::Ping => "PINGREQ".to_string(),
    };
    let code = m
        .reason_code
        .map(|c| format!(" (0x{c:02x})"))
        .unwrap_or_default();
    let result = match m.result {
        MqttResult::CarriedOut => format!("carried out{code}"),
        MqttResult::Refused => format!("refused{code}"),
        MqttResult::ConnectionClosed => "answered by a closed connection".to_string(),
        MqttResult::AcknowledgedUnverifiable => {
            "acknowledged (an MQTT 3.1.1 PUBACK proves receipt, not that it was authorized or \
             delivered)"
                .to_string()
        }
        MqttResult::SentUnacknowledged => {
            "sent at QoS 0 (nothing comes back to confirm it)".to_string()
        }
        MqttResult::NotSent => "never sent".to_string(),
    };
    format!("{what} {result}")
}

/// A failure in one line: what failed, on which side, and why.
pub fn failure_line(f: &Failure) -> String {
    let who = match f.side {
        Some(Side::Iotls) => "iotls".to_string(),
        Some(s) => format!("the {}", s.name()),
        None => "a side".to_string(),
    };
    let what = match (f.check, f.action.as_deref()) {
        (Some(c), _) => format!("{} ({})", check_title(c), c.as_str()),
        (None, Some(a)) => format!(
            "{a}{}",
            f.topic
                .as_ref()
                .map(|t| format!(" on {}", fit_chars(t, ECHO_CHARS)))
                .unwrap_or_default()
        ),
        (None, None) => "the session".to_string(),
    };
    let help = failure_help(f);
    let alert = f
        .alert
        .as_ref()
        .map(|a| format!(" [alert {a}]"))
        .unwrap_or_default();
    // What the side did: a timeout's side stopped answering, a closing side closed, a violating
    // side broke the protocol; every other failure is a refusal by the side that detected it.
    let did = match (f.code, what.as_str()) {
        (FailureCode::Timeout, "the session") => "stopped answering".to_string(),
        (FailureCode::Timeout, _) => format!("stopped answering during {what}"),
        (FailureCode::ClosedByPeer, _) => format!("closed {what}"),
        (FailureCode::ProtocolViolation, _) => format!("broke the protocol in {what}"),
        _ => format!("refused {what}"),
    };
    format!(
        "{} — {who} {did}: {}{alert} Fix: {}",
        f.code.as_str(),
        help.cause,
        help.fix
    )
}

/// The abbreviations the screens use, each explained in one line (the terminal UI's glossary).
/// Alphabetical; every line fits an 80-column terminal.
pub const GLOSSARY: &[(&str, &str)] = &[
    (
        "AAD",
        "additional authenticated data: covered by the tag, not encrypted",
    ),
    (
        "AEAD",
        "authenticated encryption: encrypts a record, seals it with a tag",
    ),
    (
        "ALPN",
        "application-layer protocol negotiation: what protocol runs in TLS",
    ),
    (
        "AES",
        "advanced encryption standard: the block cipher of the GCM suites",
    ),
    (
        "ARN",
        "Amazon resource name: how a policy names a client, topic or thing",
    ),
    (
        "CA",
        "certificate authority: signs certificates; a chain ends at one",
    ),
    (
        "CN",
        "common name: the name part of a certificate's subject or issuer",
    ),
    (
        "CONNACK",
        "MQTT's answer to CONNECT: accepted, or a code saying why not",
    ),
    (
        "DER",
        "the binary encoding of a certificate, as sent in the handshake",
    ),
    (
        "DNS",
        "domain name system: a SAN entry DNS:name is a host name",
    ),
    (
        "ECDHE",
        "elliptic-curve Diffie-Hellman, ephemeral: fresh keys every session",
    ),
    (
        "ECDSA",
        "elliptic-curve signatures, made with these certificates' keys",
    ),
    (
        "EKU",
        "extended key usage: serverAuth (broker), clientAuth (device)",
    ),
    (
        "EMS",
        "extended master secret: keys bound to the hash of this handshake",
    ),
    (
        "GCM",
        "Galois/counter mode: AES as an AEAD, with a 16-byte tag per record",
    ),
    (
        "HMAC",
        "hash-based MAC: the PRF's building block, keyed with a secret",
    ),
    (
        "IP",
        "internet protocol: a SAN entry IP:address is an address",
    ),
    (
        "IV",
        "initialization vector: per-record nonce part (GCM: a 4-byte salt)",
    ),
    (
        "MAC",
        "message authentication code: a keyed check value; in AEAD, the tag",
    ),
    (
        "MQTT",
        "the publish/subscribe protocol the device speaks inside TLS",
    ),
    (
        "OCSP",
        "online certificate status protocol: is a certificate revoked?",
    ),
    (
        "PEM",
        "DER in base64 between BEGIN and END lines: the .pem files",
    ),
    (
        "PRF",
        "pseudo-random function: TLS 1.2's HMAC expansion (keys, Finished)",
    ),
    (
        "PUBACK",
        "MQTT's answer to a QoS 1 PUBLISH; MQTT 5 adds a reason code",
    ),
    (
        "QoS",
        "quality of service: 0 at most once, 1 at least once (acknowledged)",
    ),
    ("RFC", "request for comments: the documents that define TLS"),
    (
        "RSA",
        "Rivest-Shamir-Adleman: older public-key algorithm, unused here",
    ),
    (
        "SAN",
        "subject alternative name: host names a certificate is valid for",
    ),
    (
        "SCSV",
        "signalling cipher suite value: a flag in the list, not a suite",
    ),
    (
        "SHA",
        "secure hash algorithm: SHA-256, SHA-384; sha256 is SHA-256",
    ),
    (
        "SKE",
        "ServerKeyExchange: the broker's ECDHE key share, signed by its key",
    ),
    (
        "SNI",
        "server name indication: the broker's host name, in the ClientHello",
    ),
    (
        "SPKI",
        "subject public key info: a certificate's public key and algorithm",
    ),
    (
        "SUBACK",
        "MQTT's answer to SUBSCRIBE: the QoS granted, or a refusal",
    ),
    (
        "TCP",
        "transmission control protocol: the byte stream TLS runs over",
    ),
    (
        "TLS",
        "transport layer security; here 1.2, certificates on both sides",
    ),
];

/// What a part of a TLS record as sent means (the detail pane's view of an encrypted record),
/// from `[record]` of `words/fields.toml`.
pub fn record_field_meaning(field: &str) -> Option<&'static str> {
    words::record_field(field)
}

/// What a field of a message means, by the message's id and the field's
/// (`words/fields.toml`). `msg` is the handshake message or MQTT packet name. A lesson that
/// names its payload (`[words] payload`) has it said of a PUBLISH's payload.
pub fn field_meaning(
    lesson: &LessonWords,
    msg: &str,
    field: &str,
) -> Option<std::borrow::Cow<'static, str>> {
    let meaning = words::field(msg, field)?;
    match (&lesson.payload, msg, crate::trace::field_id(field).as_str()) {
        (Some(what), "PUBLISH", "payload") => {
            Some(format!("{}: here, {what}.", meaning.trim_end_matches('.')).into())
        }
        _ => Some(meaning.into()),
    }
}

// ---- helpers over the trace -------------------------------------------------------------------

/// The common name in a subject such as `O=Pizza Shop, CN=broker.pizza.example`, or the whole
/// subject.
pub fn cn(subject: &str) -> &str {
    rdn(subject, "CN").unwrap_or(subject)
}

/// For a subject with a `serialNumber` attribute: one line telling it from the certificate's
/// serial number, the other serial a certificate has.
pub fn serial_number_note(subject: &str) -> Option<String> {
    let s = rdn(subject, "serialNumber")?;
    Some(format!(
        "${{iot:Certificate.Subject.SerialNumber}} reads the subject's serialNumber ({s}), not the \
         certificate's serial number"
    ))
}

/// One attribute of a distinguished name written `A=x, B=y`.
pub fn rdn<'s>(subject: &'s str, key: &str) -> Option<&'s str> {
    subject
        .split(", ")
        .find_map(|part| part.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The certificates one side presented, leaf first (from `trace.certificates` roles).
pub fn chain_of(trace: &Trace, side: Side) -> Vec<&CertInfo> {
    // A certificate can have several roles: `broker chain[1], device trust anchor[0]`.
    let mut v: Vec<(usize, &CertInfo)> = trace
        .certificates
        .iter()
        .filter_map(|c| {
            let idx = c
                .roles
                .iter()
                .find(|r| r.side == side && r.kind == CertRoleKind::Chain)?
                .index;
            Some((idx, c))
        })
        .collect();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, c)| c).collect()
}

fn sni(trace: &Trace, fields: &[Field]) -> Option<String> {
    trace.tls.as_ref().and_then(|t| t.sni.clone()).or_else(|| {
        find_field(fields, &["server_name"])
            .map(|f| f.value.clone())
            .filter(|v| !v.is_empty())
    })
}

fn kx_group(trace: &Trace, fields: &[Field]) -> String {
    trace
        .tls
        .as_ref()
        .and_then(|t| t.kx_group.clone())
        .or_else(|| find_field(fields, &["curve", "group"]).map(|f| f.value.clone()))
        .unwrap_or_else(|| "ECDHE".to_string())
}

/// The first field whose name contains one of `keys` (case-insensitive).
pub fn find_field<'f>(fields: &'f [Field], keys: &[&str]) -> Option<&'f Field> {
    keys.iter()
        .find_map(|k| fields.iter().find(|f| f.name.to_lowercase().contains(k)))
}

/// The check event `name` made by `by` closest after event `at` (or anywhere, if none after).
fn check_event(
    trace: &Trace,
    at: usize,
    name: CheckId,
    by: impl Fn(Side) -> bool,
) -> Option<&Event> {
    let is = |e: &&Event| {
        by(e.side) && matches!(&e.kind, EventKind::Check { check, .. } if *check == name)
    };
    trace
        .events
        .iter()
        .skip(at)
        .find(is)
        .or_else(|| trace.events.iter().find(is))
}

/// A side's verdict on check `name` near event `at`, as the tour sees it at event `upto`.
enum Near<'t> {
    /// Recorded at or before `upto`: passed or not, and why.
    Found(bool, &'t str),
    /// Recorded after `upto`: not to be told yet.
    Later,
    /// Not in the trace.
    None,
}

fn check_near_upto(trace: &Trace, at: usize, name: CheckId, upto: Option<usize>) -> Near<'_> {
    let is = |e: &&Event| {
        e.side != Side::Iotls && matches!(&e.kind, EventKind::Check { check, .. } if *check == name)
    };
    let found = trace
        .events
        .iter()
        .enumerate()
        .skip(at)
        .find(|(_, e)| is(e))
        .or_else(|| trace.events.iter().enumerate().find(|(_, e)| is(e)));
    match found {
        Some((i, _)) if upto.is_some_and(|u| i > u) => Near::Later,
        Some((_, e)) => match &e.kind {
            EventKind::Check { ok, reason, .. } => Near::Found(*ok, reason.as_str()),
            _ => Near::None,
        },
        None => Near::None,
    }
}

fn check_facts_near(trace: &Trace, at: usize, name: CheckId) -> &[Fact] {
    match check_event(trace, at, name, |s| s != Side::Iotls).map(|e| &e.kind) {
        Some(EventKind::Check { facts, .. }) => facts,
        _ => &[],
    }
}

fn fact<'f>(facts: &'f [Fact], name: &str) -> Option<&'f str> {
    facts
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

/// Bytes of plaintext handshake messages before event `at`.
fn transcript_len(trace: &Trace, at: usize) -> usize {
    trace.events[..at.min(trace.events.len())]
        .iter()
        .map(|e| match &e.kind {
            EventKind::Handshake {
                hex,
                encrypted: false,
                ..
            } => hex.len(),
            _ => 0,
        })
        .sum()
}

/// The start of a long hex value: `5f1e9a0c…`.
pub fn short(hex: &str) -> String {
    if hex.chars().count() <= 16 {
        hex.to_string()
    } else {
        let head: String = hex.chars().take(12).collect();
        format!("{head}…")
    }
}

fn fit_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

/// A count of bytes as written everywhere in iotls: plain digits (`3412`), so a number reads the
/// same in the narration, the facts and the JSON.
pub fn group(n: usize) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last line names what the side at fault did: a silent device is not said to have
    /// refused anything.
    #[test]
    fn a_failure_line_says_what_the_side_did() {
        let line = |code, side| {
            failure_line(&Failure {
                side: Some(side),
                ..Failure::new(code)
            })
        };
        let t = line(FailureCode::Timeout, Side::Device);
        assert!(
            t.starts_with("timeout — the device stopped answering: "),
            "{t}"
        );
        let c = line(FailureCode::ClosedByPeer, Side::Broker);
        assert!(
            c.starts_with("closed_by_peer — the broker closed the session"),
            "{c}"
        );
        let p = line(FailureCode::ProtocolViolation, Side::Device);
        assert!(p.contains("the device broke the protocol"), "{p}");
        let e = line(FailureCode::Expired, Side::Broker);
        assert!(e.contains("the broker refused"), "{e}");
    }

    #[test]
    fn a_lesson_names_its_payload_and_other_sessions_do_not() {
        let none = LessonWords::default();
        let pizza = LessonWords {
            publish: Some("The button is pressed".into()),
            payload: Some("the pizza order".into()),
        };
        assert_eq!(
            field_meaning(&none, "PUBLISH", "payload").as_deref(),
            Some("The message itself.")
        );
        assert_eq!(
            field_meaning(&pizza, "PUBLISH", "payload").as_deref(),
            Some("The message itself: here, the pizza order.")
        );
        assert_eq!(
            field_meaning(&pizza, "PUBLISH", "topic"),
            field_meaning(&none, "PUBLISH", "topic")
        );
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(7), "7");
        assert_eq!(group(3412), "3412");
    }

    #[test]
    fn names_are_found() {
        assert_eq!(
            cn("O=Pizza Shop, CN=broker.pizza.example"),
            "broker.pizza.example"
        );
        assert_eq!(rdn("CN=a, serialNumber=G03", "serialNumber"), Some("G03"));
        assert_eq!(cn("no cn here"), "no cn here");
    }

    #[test]
    fn suites_are_explained() {
        let s = explain_suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        assert!(
            s.contains("ECDHE")
                && s.contains("ECDSA")
                && s.contains("AES-128-GCM")
                && s.contains("SHA-256"),
            "{s}"
        );
    }

    #[test]
    fn empty_trace_is_narrated() {
        let t = crate::ui::sample::empty();
        assert!(step(&t, 0, None).contains("no events"));
    }
}
