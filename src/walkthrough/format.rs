//! The types of `iotls-walkthrough/1` (docs/walkthrough-format.md). Every key is optional here so
//! that one file of an `extends` chain can be checked on its own, with the line of a wrong key;
//! the loader checks what a whole lesson needs once the chain is merged.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The format tag every walkthrough file starts with.
pub const FORMAT: &str = "iotls-walkthrough/1";

/// One walkthrough file, or a whole lesson after `extends` and `--set` were applied.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Walkthrough {
    pub format: Option<String>,
    pub id: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    /// The security-model ideas the lesson teaches (docs/curriculum.md).
    pub concepts: Option<Vec<String>>,
    /// The lesson this one starts from.
    pub extends: Option<String>,
    /// Reserved: a lesson that is not one mTLS session runs this operation instead.
    pub operations: Option<String>,
    pub vars: Option<BTreeMap<String, String>>,
    /// Certificates by name: CAs, the broker's, the devices'.
    pub pki: Option<BTreeMap<String, CertSpec>>,
    pub broker: Option<BrokerSpec>,
    pub device: Option<DeviceSpec>,
    /// More devices (witnesses, e.g. a subscriber), connected before `[device]`.
    pub devices: Option<Vec<WitnessSpec>>,
    pub expect: Option<Expect>,
    pub emphasis: Option<Vec<Emphasis>>,
    pub quiz: Option<Vec<Quiz>>,
    /// What the lesson calls its device's actions, for the narration.
    pub words: Option<WordsSpec>,
}

/// `[words]`: the lesson's own words for its device (`Trace::words`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordsSpec {
    /// Said before the device's PUBLISH, e.g. `The button is pressed`.
    pub publish: Option<String>,
    /// What the device's payload is, e.g. `the pizza order`.
    pub payload: Option<String>,
}

/// A certificate to generate (or to load from `pem`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSpec {
    /// A CA certificate (basicConstraints CA:TRUE).
    pub ca: Option<bool>,
    /// The name of the CA in `[pki]` that signs it; absent: self-signed.
    pub issuer: Option<String>,
    pub cn: Option<String>,
    /// The subject's organisation (O).
    pub org: Option<String>,
    /// The subject's serialNumber attribute (what `${iot:Certificate.Subject.SerialNumber}` reads).
    pub serial_number: Option<String>,
    /// subjectAltName entries: host names or IP addresses.
    pub san: Option<Vec<String>>,
    /// Extended key usages: `server_auth`, `client_auth`, … (`[]`: none).
    pub eku: Option<Vec<String>>,
    /// `p256` (default), `p384`, `ed25519`, `rsa2048` (from fixtures/), or a PKCS#8 key file.
    pub key: Option<String>,
    /// A certificate file (PEM) to use as it is instead of generating one.
    pub pem: Option<String>,
    /// Validity relative to now: `-1d`, `365d`, `12h`, `30m`, `10s`.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// A CA's path length constraint.
    pub pathlen: Option<u8>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSpec {
    /// The `[pki]` certificate the broker presents.
    pub identity: Option<String>,
    /// The chain it sends, leaf first (default: the leaf and its CAs below the root).
    pub chain: Option<Vec<String>>,
    /// The roots it accepts device certificates from.
    pub trust: Option<Vec<String>>,
    pub registry: Option<RegistrySpec>,
    pub alpn: Option<Vec<String>>,
}

/// The registry, in the schema of docs/policy.md, with `cert` naming a `[pki]` certificate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    pub region: Option<String>,
    pub account: Option<String>,
    pub policies: Option<Vec<PolicySpec>>,
    pub things: Option<Vec<ThingSpec>>,
    pub cas: Option<Vec<CaSpec>>,
    pub certificates: Option<Vec<CertRecordSpec>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub name: String,
    pub file: Option<String>,
    /// The policy document inline (TOML tables and arrays, as the JSON would be).
    pub document: Option<toml::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThingSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSpec {
    pub cert: Option<String>,
    pub id: Option<String>,
    pub status: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRecordSpec {
    pub cert: Option<String>,
    pub id: Option<String>,
    pub status: String,
    pub things: Option<Vec<String>>,
    pub policies: Option<Vec<String>>,
    /// The `[pki]` name of the registered CA that issued it.
    pub ca: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub identity: Option<String>,
    pub chain: Option<Vec<String>>,
    pub trust: Option<Vec<String>>,
    pub server_name: Option<String>,
    pub client_id: Option<String>,
    /// `"3.1.1"` or `"5"`: the lesson is about this version only. Absent: either (`--mqtt5`).
    pub mqtt: Option<toml::Value>,
    pub persistent: Option<bool>,
    pub keep_alive: Option<u16>,
    pub will: Option<WillSpec>,
    pub alpn: Option<Vec<String>>,
    pub actions: Option<Vec<ActionSpec>>,
}

/// One of `[[devices]]`: another device of the lesson, a witness that subscribes and listens.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSpec {
    /// Its name on its events (default: its client id).
    pub name: Option<String>,
    pub identity: Option<String>,
    pub chain: Option<Vec<String>>,
    pub trust: Option<Vec<String>>,
    pub server_name: Option<String>,
    pub client_id: Option<String>,
    /// `"3.1.1"` or `"5"`; absent: the version the lesson's device speaks in this run.
    pub mqtt: Option<toml::Value>,
    /// `subscribe = "filter"` entries, and at most one `listen_ms = N` (how long it keeps
    /// listening once the device is done).
    pub actions: Option<Vec<ActionSpec>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WillSpec {
    pub topic: String,
    pub payload: Option<String>,
    pub qos: Option<u8>,
    pub retain: Option<bool>,
}

/// One of `publish = "topic"`, `subscribe = "filter"`, `ping = true`, `listen_ms = N`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub publish: Option<String>,
    pub payload: Option<String>,
    pub qos: Option<u8>,
    pub retain: Option<bool>,
    pub subscribe: Option<String>,
    pub ping: Option<bool>,
    pub listen_ms: Option<u64>,
}

/// The lesson's claim about the outcome, checked against the real run.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub ok: Option<bool>,
    /// A failure code of the trace (`not_valid_for_name`, `unknown_issuer`, …).
    pub failure: Option<String>,
    pub policy: Option<Vec<ExpectPolicy>>,
    /// MQTT packets present or absent when the device speaks MQTT 3.1.1 …
    pub mqtt311: Option<ExpectPackets>,
    /// … and MQTT 5.
    pub mqtt5: Option<ExpectPackets>,
    /// What witnesses (`[[devices]]`) received.
    pub witness: Option<Vec<ExpectWitness>>,
}

/// `[[expect.witness]]`: topics a witness received, and topics (or filters) it did not.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectWitness {
    /// The witness's name (`[[devices]] name`, or its client id).
    pub device: String,
    /// Each a topic (or an MQTT filter) at least one delivery to it matched.
    pub received: Option<Vec<String>>,
    /// Each a topic (or an MQTT filter) no delivery to it matched.
    pub not_received: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPolicy {
    /// `iot:Connect`, `iot:Publish`, …
    pub action: String,
    /// `ALLOWED`, `EXPLICIT_DENY` or `IMPLICIT_DENY`.
    pub decision: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPackets {
    pub present: Option<Vec<String>>,
    pub absent: Option<Vec<String>>,
}

/// A step of the run, by what happened there.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SelectorSpec {
    pub check: Option<String>,
    pub message: Option<String>,
    pub from: Option<String>,
    pub mqtt: Option<String>,
    pub policy: Option<String>,
    pub phase: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emphasis {
    pub at: SelectorSpec,
    /// Text for this step; `{cert.device.serial_number}` and the like are filled from the run.
    pub say: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quiz {
    /// The question is asked before this step is shown.
    pub after: SelectorSpec,
    pub question: String,
    pub choices: Vec<String>,
    /// The right choice, from 1.
    pub answer: usize,
    pub explain: Option<String>,
}
