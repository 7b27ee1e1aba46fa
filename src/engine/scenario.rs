//! Scenarios: what each side presents and trusts, and what the device does. The embedded pizza-button
//! default is one value; the failure lessons are others.

use super::authz::Authorizer;
use super::mqtt_io::Version;
use crate::pki::{DefaultPki, Identity, BUTTON_SERIAL, BUTTON_THING};
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// One thing the device does after CONNECT.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceAction {
    /// PUBLISH (QoS 0 or 1) and, for QoS 1, wait for PUBACK.
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    },
    /// SUBSCRIBE to one filter (QoS 1) and wait for SUBACK.
    Subscribe { filter: String },
    /// PINGREQ and wait for PINGRESP.
    Ping,
    /// Stay connected for this long, collecting messages delivered on the subscriptions.
    Listen { millis: u64 },
}

/// The device: its identity, what it trusts, whom it asks for, what it does.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    pub identity: Identity,
    /// Roots the device trusts to recognise the real broker.
    pub trust: Vec<CertificateDer<'static>>,
    /// The server name the device asks for (SNI) and checks the broker's certificate against.
    pub server_name: String,
    pub client_id: String,
    /// MQTT 3.1.1 (the default, as AWS IoT buttons speak it) or MQTT 5.
    pub mqtt_version: Version,
    /// Ask for a persistent session (CONNECT with clean session off: `PersistentConnect`).
    pub persistent: bool,
    /// Keep-alive asked for in CONNECT, seconds (0 = none).
    pub keep_alive: u16,
    /// A Last Will to leave with the broker at CONNECT.
    pub will: Option<super::mqtt_io::WillMsg>,
    pub actions: Vec<DeviceAction>,
    /// Application protocols offered in the ClientHello (ALPN), in order of preference; empty:
    /// no ALPN extension. AWS IoT's port 443 needs `x-amzn-mqtt-ca` for MQTT with a client
    /// certificate.
    pub alpn: Vec<String>,
    /// The TLS 1.2 cipher suites the device offers, in order; empty: rustls's default list.
    /// (Tests use it to run each suite; the command line does not set it.)
    pub cipher_suites: Vec<rustls::SupportedCipherSuite>,
}

/// The broker: its identity, which CAs it trusts for devices, and its authorization.
#[derive(Clone, Debug)]
pub struct BrokerSpec {
    pub identity: Identity,
    /// Roots the broker accepts device certificates from.
    pub client_roots: Vec<CertificateDer<'static>>,
    /// Registered CAs that are not roots (e.g. the issuing CA): they let the broker tell a device
    /// that left out its intermediate from one whose CA it does not know.
    pub known_cas: Vec<CertificateDer<'static>>,
    pub authorizer: Arc<dyn Authorizer>,
    /// Application protocols the broker accepts (ALPN), in its order of preference; empty: it
    /// ignores ALPN. With a list, rustls refuses a device that offers none of them (alert
    /// `no_application_protocol`) and accepts one that sends no ALPN extension at all.
    pub alpn: Vec<String>,
}

/// A whole session to run for real.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short name, e.g. `pizza-button`.
    pub name: String,
    pub device: DeviceSpec,
    pub broker: BrokerSpec,
    /// The lesson's words for its device, copied into the trace (`Trace::words`).
    pub words: crate::trace::LessonWords,
    /// More devices of the lesson (`[[devices]]`), connected before the device and listening
    /// until it is done; what they do is in the trace as witness events.
    pub witnesses: Vec<super::witness::WitnessSpec>,
}

/// The keep-alive iotls's device asks for, seconds (AWS IoT accepts 30 to 1200).
pub const DEFAULT_KEEP_ALIVE: u16 = 30;

/// The JSON the button publishes when pressed.
pub fn click_payload(serial: &str, click: &str) -> Vec<u8> {
    serde_json::json!({ "serialNumber": serial, "clickType": click })
        .to_string()
        .into_bytes()
}

impl Scenario {
    /// The embedded default: the customer's button orders a pizza on its own topic.
    pub fn pizza_button() -> Result<Scenario, crate::pki::PkiError> {
        Ok(Self::from_pki(&DefaultPki::generate()?))
    }

    /// The default scenario over an existing PKI (lets variants share one).
    pub fn from_pki(pki: &DefaultPki) -> Scenario {
        Scenario {
            name: "pizza-button".into(),
            device: DeviceSpec {
                identity: pki.button.clone(),
                trust: vec![pki.root.clone()],
                server_name: "localhost".into(),
                client_id: BUTTON_THING.into(),
                mqtt_version: Version::V4,
                persistent: false,
                keep_alive: DEFAULT_KEEP_ALIVE,
                will: None,
                actions: vec![DeviceAction::Publish {
                    topic: format!("iotbutton/{BUTTON_SERIAL}"),
                    payload: click_payload(BUTTON_SERIAL, "SINGLE"),
                    qos: 1,
                    retain: false,
                }],
                alpn: Vec::new(),
                cipher_suites: Vec::new(),
            },
            broker: BrokerSpec {
                identity: pki.broker.clone(),
                client_roots: vec![pki.root.clone()],
                known_cas: vec![pki.intermediate.clone()],
                authorizer: super::authz::pizza_authorizer(pki),
                alpn: Vec::new(),
            },
            // Not the lesson: its words are the walkthrough's (`[words]` of pizza-button.toml).
            words: Default::default(),
            witnesses: Vec::new(),
        }
    }
}
