//! From a lesson to a session: generate its PKI (rcgen), build its registry, and fill the engine's
//! [`Scenario`]. Every certificate is made anew for each run; only an RSA key comes from a file.

use super::format::{ActionSpec, CertSpec};
use super::{Lesson, WalkError};
use crate::engine::mqtt_io::{Version, WillMsg};
use crate::engine::policy_authz::PolicyAuthorizer;
use crate::engine::scenario::{click_payload, DEFAULT_KEEP_ALIVE};
use crate::engine::witness::WitnessSpec;
use crate::engine::{BrokerSpec, DeviceAction, DeviceSpec, Scenario};
use crate::pki::Identity;
use crate::policy::{
    certificate_id, CaRecord, CaStatus, CertStatus, CertificateRecord, Policy, Registry, Thing,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The RSA key `key = "rsa2048"` uses: ring cannot generate RSA keys, so one is built in.
const RSA_FIXTURE: &str = "fixtures/rsa2048.key";

/// One certificate of the lesson's PKI.
struct Made {
    der: CertificateDer<'static>,
    key: Option<PrivateKeyDer<'static>>,
    issuer: Option<String>,
    self_signed: bool,
}

/// The certificates of a lesson's `[pki]`, by name.
pub struct LessonPki {
    made: BTreeMap<String, Made>,
    issuers: BTreeMap<String, Issuer<'static, KeyPair>>,
}

impl LessonPki {
    /// The certificate `name` (DER).
    pub fn der(&self, name: &str) -> Option<CertificateDer<'static>> {
        self.made.get(name).map(|m| m.der.clone())
    }

    /// `name` with its key and its default chain: the leaf and its CAs below the self-signed root.
    pub fn identity(&self, name: &str) -> Option<Identity> {
        let leaf = self.made.get(name)?;
        let mut chain = vec![leaf.der.clone()];
        let mut at = leaf;
        while let Some(up) = at.issuer.as_ref().and_then(|i| self.made.get(i)) {
            if up.self_signed || chain.len() > 8 {
                break;
            }
            chain.push(up.der.clone());
            at = up;
        }
        Some(Identity {
            chain,
            key: leaf.key.as_ref()?.clone_key(),
        })
    }

    /// Issue one more certificate from the CA `issuer` with a fresh P-256 key; its chain is the
    /// new leaf and the issuer's own chain below the root.
    pub fn issue(&self, issuer: &str, params: CertificateParams) -> Result<Identity, String> {
        let ca = self
            .issuers
            .get(issuer)
            .ok_or_else(|| format!("no CA {issuer:?} in the lesson's [pki]"))?;
        let kp =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let cert = params.signed_by(&kp, ca).map_err(|e| e.to_string())?;
        let mut chain = vec![cert.der().clone()];
        if let Some(up) = self.identity(issuer) {
            if !self.made[issuer].self_signed {
                chain.extend(up.chain);
            }
        }
        Ok(Identity {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der())),
        })
    }
}

/// The registry of a lesson's `[broker.registry]` over certificates given by `[pki]` name (e.g.
/// the pizza shop's, read from a `pki init` directory).
pub fn registry_for(lesson: &Lesson, certs: &[(&str, &[u8])]) -> Result<Registry, WalkError> {
    let made = certs
        .iter()
        .map(|(name, der)| {
            (
                name.to_string(),
                Made {
                    der: CertificateDer::from(der.to_vec()),
                    key: None,
                    issuer: None,
                    self_signed: false,
                },
            )
        })
        .collect();
    lesson.registry(&made)
}

/// `-1d`, `365d`, `12h`, `30m`, `10s`, `0`: an offset from now.
pub(crate) fn offset(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    Some(match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        "s" => Duration::seconds(n),
        _ => return None,
    })
}

fn eku(name: &str) -> Option<ExtendedKeyUsagePurpose> {
    Some(match name {
        "server_auth" => ExtendedKeyUsagePurpose::ServerAuth,
        "client_auth" => ExtendedKeyUsagePurpose::ClientAuth,
        "code_signing" => ExtendedKeyUsagePurpose::CodeSigning,
        "email_protection" => ExtendedKeyUsagePurpose::EmailProtection,
        "time_stamping" => ExtendedKeyUsagePurpose::TimeStamping,
        "ocsp_signing" => ExtendedKeyUsagePurpose::OcspSigning,
        _ => return None,
    })
}

impl Lesson {
    /// The engine's scenario for one run: a fresh PKI, the registry, both sides. `version`
    /// overrides the MQTT version when the lesson does not pin one.
    pub fn scenario(&self, version: Option<Version>) -> Result<Scenario, WalkError> {
        let (certs, _) = self.make_pki()?;
        let spec = &self.spec;
        let broker = spec.broker.clone().unwrap_or_default();
        let device = spec.device.clone().unwrap_or_default();

        let named = |path: &str, name: &str| -> Result<&Made, WalkError> {
            certs.get(name).ok_or_else(|| {
                self.invalid(
                    path,
                    format!(
                        "no certificate {name:?} in [pki] (it has: {})",
                        names(&certs)
                    ),
                )
            })
        };
        let identity = |path: &str,
                        name: Option<&String>,
                        chain: Option<&Vec<String>>|
         -> Result<Identity, WalkError> {
            let name = name.ok_or_else(|| {
                self.invalid(path, "missing: the [pki] certificate this side presents")
            })?;
            let leaf = named(path, name)?;
            let key = leaf.key.as_ref().ok_or_else(|| {
                self.invalid(path, format!("{name:?} has no private key (give `key`)"))
            })?;
            let chain = match chain {
                Some(list) => {
                    let cpath = path.replace("identity", "chain");
                    list.iter()
                        .map(|n| named(&cpath, n).map(|m| m.der.clone()))
                        .collect::<Result<Vec<_>, _>>()?
                }
                None => {
                    // The leaf and its CAs, up to (not including) a self-signed root.
                    let mut c = vec![leaf.der.clone()];
                    let mut at = leaf;
                    while let Some(i) = at.issuer.as_ref() {
                        let up = named(&format!("pki.{i}"), i)?;
                        if up.self_signed || c.len() > 8 {
                            break;
                        }
                        c.push(up.der.clone());
                        at = up;
                    }
                    c
                }
            };
            Ok(Identity {
                chain,
                key: key.clone_key(),
            })
        };
        let roots = |path: &str, list: Option<&Vec<String>>| {
            let v = list
                .into_iter()
                .flatten()
                .map(|n| named(path, n).map(|m| m.der.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            if v.is_empty() {
                return Err(self.invalid(
                    path,
                    "trusts no CA, so it could accept no peer at all (rustls refuses an empty \
                     list); name at least one [pki] CA, e.g. [\"rogue-root\"] to trust the wrong one",
                ));
            }
            Ok(v)
        };

        let registry = self.registry(&certs)?;
        let known_cas: Vec<CertificateDer<'static>> = registry
            .cas()
            .filter_map(|c| c.der.clone())
            .map(CertificateDer::from)
            .collect();
        let device_identity = identity(
            "device.identity",
            device.identity.as_ref(),
            device.chain.as_ref(),
        )?;
        let serial = crate::policy::CertVars::from_der(device_identity.leaf())
            .ok()
            .and_then(|v| {
                v.subject
                    .get("SerialNumber")
                    .and_then(|s| s.first().cloned())
            })
            .unwrap_or_default();
        let actions = device
            .actions
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| self.action(i, a, &serial))
            .collect::<Result<Vec<_>, _>>()?;
        let mqtt_version = self.mqtt.or(version).unwrap_or(Version::V4);
        let will = match &device.will {
            None => None,
            Some(w) => Some(WillMsg {
                topic: w.topic.clone(),
                payload: w.payload.clone().unwrap_or_default().into_bytes(),
                qos: self.qos("device.will.qos", w.qos)?,
                retain: w.retain.unwrap_or(false),
            }),
        };
        let client_id = match &device.client_id {
            Some(c) => c.clone(),
            None => crate::pki::subject_cn(device_identity.leaf()),
        };
        let words = spec.words.clone().unwrap_or_default();
        let mut witnesses = Vec::new();
        for (i, w) in spec.devices.iter().flatten().enumerate() {
            let at = format!("devices.{i}");
            let identity = identity(
                &format!("{at}.identity"),
                w.identity.as_ref(),
                w.chain.as_ref(),
            )?;
            let client_id = match &w.client_id {
                Some(c) => c.clone(),
                None => crate::pki::subject_cn(identity.leaf()),
            };
            let version = match &w.mqtt {
                Some(v) => {
                    super::mqtt_version(v).map_err(|m| self.invalid(&format!("{at}.mqtt"), m))?
                }
                None => mqtt_version,
            };
            let mut grace = crate::engine::witness::GRACE;
            let mut subscriptions = Vec::new();
            for a in w.actions.iter().flatten() {
                if let Some(f) = &a.subscribe {
                    subscriptions.push(DeviceAction::Subscribe { filter: f.clone() });
                }
                if let Some(ms) = a.listen_ms {
                    grace = std::time::Duration::from_millis(ms);
                }
            }
            witnesses.push(WitnessSpec {
                name: super::witness_name(w),
                device: DeviceSpec {
                    identity,
                    trust: roots(&format!("{at}.trust"), w.trust.as_ref())?,
                    server_name: w.server_name.clone().unwrap_or_else(|| "localhost".into()),
                    client_id,
                    mqtt_version: version,
                    persistent: false,
                    keep_alive: DEFAULT_KEEP_ALIVE,
                    will: None,
                    actions: subscriptions,
                    alpn: Vec::new(),
                    cipher_suites: Vec::new(),
                },
                grace,
            });
        }
        Ok(Scenario {
            witnesses,
            name: self.id.clone(),
            words: crate::trace::LessonWords {
                publish: words.publish,
                payload: words.payload,
            },
            device: DeviceSpec {
                identity: device_identity,
                trust: roots("device.trust", device.trust.as_ref())?,
                server_name: device.server_name.unwrap_or_else(|| "localhost".into()),
                client_id,
                mqtt_version,
                persistent: device.persistent.unwrap_or(false),
                keep_alive: device.keep_alive.unwrap_or(DEFAULT_KEEP_ALIVE),
                will,
                actions,
                alpn: device.alpn.unwrap_or_default(),
                cipher_suites: Vec::new(),
            },
            broker: BrokerSpec {
                identity: identity(
                    "broker.identity",
                    broker.identity.as_ref(),
                    broker.chain.as_ref(),
                )?,
                client_roots: roots("broker.trust", broker.trust.as_ref())?,
                known_cas,
                authorizer: Arc::new(PolicyAuthorizer::new(registry)),
                alpn: broker.alpn.unwrap_or_default(),
            },
        })
    }

    fn qos(&self, path: &str, q: Option<u8>) -> Result<u8, WalkError> {
        match q.unwrap_or(1) {
            q @ (0 | 1) => Ok(q),
            q => Err(self.invalid(
                path,
                format!("qos = {q}: iotls's device publishes at QoS 0 or 1 (AWS IoT has no QoS 2)"),
            )),
        }
    }

    fn action(&self, i: usize, a: &ActionSpec, serial: &str) -> Result<DeviceAction, WalkError> {
        let path = format!("device.actions.{i}");
        let kinds = [
            a.publish.is_some(),
            a.subscribe.is_some(),
            a.ping.is_some(),
            a.listen_ms.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(self.invalid(
                &path,
                "an action is exactly one of publish = \"topic\", subscribe = \"filter\", \
                 ping = true, listen_ms = N",
            ));
        }
        if a.publish.is_none() && (a.payload.is_some() || a.qos.is_some() || a.retain.is_some()) {
            return Err(self.invalid(&path, "payload, qos and retain go with publish only"));
        }
        Ok(if let Some(topic) = &a.publish {
            DeviceAction::Publish {
                topic: topic.clone(),
                payload: match &a.payload {
                    Some(p) => p.clone().into_bytes(),
                    None => click_payload(serial, "SINGLE"),
                },
                qos: self.qos(&format!("{path}.qos"), a.qos)?,
                retain: a.retain.unwrap_or(false),
            }
        } else if let Some(filter) = &a.subscribe {
            DeviceAction::Subscribe {
                filter: filter.clone(),
            }
        } else if let Some(ms) = a.listen_ms {
            if ms > 60_000 {
                return Err(self.invalid(
                    &format!("{path}.listen_ms"),
                    "at most 60000 (a lesson is a short session)",
                ));
            }
            DeviceAction::Listen { millis: ms }
        } else {
            DeviceAction::Ping
        })
    }

    /// Generate (or load) every certificate of `[pki]`, each after its issuer.
    #[allow(clippy::type_complexity)]
    fn make_pki(
        &self,
    ) -> Result<
        (
            BTreeMap<String, Made>,
            BTreeMap<String, Issuer<'static, KeyPair>>,
        ),
        WalkError,
    > {
        let specs = self.spec.pki.clone().unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let mut made: BTreeMap<String, Made> = BTreeMap::new();
        let mut issuers: BTreeMap<String, Issuer<'static, KeyPair>> = BTreeMap::new();
        let mut left: Vec<&String> = specs.keys().collect();
        while !left.is_empty() {
            let before = left.len();
            let mut i = 0;
            while i < left.len() {
                let name = left[i];
                let spec = &specs[name];
                let ready = match &spec.issuer {
                    None => true,
                    Some(iss) if iss == name => true,
                    Some(iss) => {
                        if !specs.contains_key(iss) {
                            return Err(self.invalid(
                                &format!("pki.{name}.issuer"),
                                format!("no certificate {iss:?} in [pki] to issue it"),
                            ));
                        }
                        made.contains_key(iss)
                    }
                };
                if ready {
                    let m = self.make_one(name, spec, now, &issuers, &mut made)?;
                    if let Some((issuer, m)) = m {
                        issuers.insert(name.clone(), issuer);
                        made.insert(name.clone(), m);
                    }
                    left.remove(i);
                } else {
                    i += 1;
                }
            }
            if left.len() == before {
                return Err(self.invalid(
                    &format!("pki.{}.issuer", left[0]),
                    "the issuers go round in a circle",
                ));
            }
        }
        Ok((made, issuers))
    }

    /// The lesson's `[pki]`, made anew: each certificate by name, and the CAs that can issue more
    /// (`iotls pki init --devices` issues a room's identities from the pizza shop's issuing CA).
    pub fn pki(&self) -> Result<LessonPki, WalkError> {
        let (made, issuers) = self.make_pki()?;
        Ok(LessonPki { made, issuers })
    }

    /// One certificate; returns it with its issuer handle (or stores a loaded one directly).
    fn make_one(
        &self,
        name: &str,
        spec: &CertSpec,
        now: OffsetDateTime,
        issuers: &BTreeMap<String, Issuer<'static, KeyPair>>,
        made: &mut BTreeMap<String, Made>,
    ) -> Result<Option<(Issuer<'static, KeyPair>, Made)>, WalkError> {
        let path = format!("pki.{name}");
        let bad = |k: &str, m: String| self.invalid(&format!("{path}.{k}"), m);
        if let Some(pem_name) = &spec.pem {
            let origin = self.origin(&format!("{path}.pem"));
            let bytes = super::read_named(&origin, pem_name).map_err(|m| bad("pem", m))?;
            let der = pem::parse(&bytes)
                .map_err(|e| bad("pem", format!("{pem_name}: not a PEM certificate: {e}")))?;
            let key = match &spec.key {
                None => None,
                Some(k) => Some(self.key_file(&format!("{path}.key"), k)?.1),
            };
            let der = CertificateDer::from(der.contents().to_vec());
            let self_signed = x509_parser::parse_x509_certificate(&der)
                .map(|(_, c)| c.subject() == c.issuer())
                .unwrap_or(false);
            made.insert(
                name.to_string(),
                Made {
                    der,
                    key,
                    issuer: None,
                    self_signed,
                },
            );
            return Ok(None);
        }
        let is_ca = spec.ca.unwrap_or(false);
        let (kp, key_der) = match spec.key.as_deref().unwrap_or("p256") {
            "p256" => gen(&rcgen::PKCS_ECDSA_P256_SHA256),
            "p384" => gen(&rcgen::PKCS_ECDSA_P384_SHA384),
            "ed25519" => gen(&rcgen::PKCS_ED25519),
            "rsa2048" => self.key_file(&format!("{path}.key"), RSA_FIXTURE),
            other if other.contains('/') || other.contains('.') => {
                self.key_file(&format!("{path}.key"), other)
            }
            other => {
                return Err(bad(
                    "key",
                    format!(
                        "{other:?}: a key is p256, p384, ed25519, rsa2048, or a PKCS#8 PEM file"
                    ),
                ))
            }
        }?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(o) = &spec.org {
            dn.push(DnType::OrganizationName, DnValue::Utf8String(o.clone()));
        }
        dn.push(
            DnType::CommonName,
            DnValue::Utf8String(spec.cn.clone().unwrap_or_else(|| name.to_string())),
        );
        if let Some(s) = &spec.serial_number {
            let v = s.as_str().try_into().map_err(|_| {
                bad(
                    "serial_number",
                    format!("{s:?}: letters, digits, spaces and '-' only (PrintableString)"),
                )
            })?;
            dn.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                DnValue::PrintableString(v),
            );
        }
        p.distinguished_name = dn;
        let (nb, na) = if is_ca {
            ("-1d", "3650d")
        } else {
            ("-1d", "365d")
        };
        let when = |k: &str, v: &Option<String>, d: &str| {
            let s = v.as_deref().unwrap_or(d);
            offset(s).map(|o| now + o).ok_or_else(|| {
                bad(
                    k,
                    format!("{s:?}: an offset from now such as \"-1d\", \"365d\", \"12h\""),
                )
            })
        };
        p.not_before = when("not_before", &spec.not_before, nb)?;
        p.not_after = when("not_after", &spec.not_after, na)?;
        if is_ca {
            p.is_ca = IsCa::Ca(match spec.pathlen {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            });
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        } else {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if key_is_rsa(spec) {
                p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            }
            p.use_authority_key_identifier_extension = spec.issuer.is_some();
        }
        for (i, s) in spec.san.iter().flatten().enumerate() {
            let san = match s.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(s.as_str().try_into().map_err(|_| {
                    bad(
                        &format!("san.{i}"),
                        format!("{s:?} is not a host name or IP"),
                    )
                })?),
            };
            p.subject_alt_names.push(san);
        }
        for (i, e) in spec.eku.iter().flatten().enumerate() {
            p.extended_key_usages.push(eku(e).ok_or_else(|| {
                bad(
                    &format!("eku.{i}"),
                    format!(
                        "{e:?}: an extended key usage is server_auth, client_auth, \
                         code_signing, email_protection, time_stamping or ocsp_signing"
                    ),
                )
            })?);
        }
        let issuer_name = spec.issuer.clone().filter(|i| i != name);
        let cert = match &issuer_name {
            None => p.self_signed(&kp),
            Some(i) => {
                let Some(iss) = issuers.get(i) else {
                    return Err(bad(
                        "issuer",
                        format!("{i:?} cannot issue certificates (give it ca = true and no pem)"),
                    ));
                };
                if !specs_is_ca(self, i) {
                    return Err(bad("issuer", format!("{i:?} is not a CA (ca = true)")));
                }
                p.signed_by(&kp, iss)
            }
        }
        .map_err(|e| self.invalid(&path, format!("rcgen could not make it: {e}")))?;
        let m = Made {
            der: cert.der().clone(),
            key: Some(key_der),
            self_signed: issuer_name.is_none(),
            issuer: issuer_name,
        };
        Ok(Some((Issuer::new(p, kp), m)))
    }

    /// A PKCS#8 PEM key file: RSA (signing with SHA-256) or whatever rcgen recognises.
    fn key_file(
        &self,
        path: &str,
        file: &str,
    ) -> Result<(KeyPair, PrivateKeyDer<'static>), WalkError> {
        let origin = if file == RSA_FIXTURE {
            super::Origin {
                file: self.file.clone(),
                line: None,
                dir: None,
            }
        } else {
            self.origin(path)
        };
        let bytes = super::read_named(&origin, file).map_err(|m| self.invalid(path, m))?;
        let text = String::from_utf8_lossy(&bytes);
        let kp = KeyPair::from_pkcs8_pem_and_sign_algo(&text, &rcgen::PKCS_RSA_SHA256)
            .or_else(|_| KeyPair::from_pem(&text))
            .map_err(|e| {
                self.invalid(
                    path,
                    format!("{file}: not a usable PKCS#8 private key: {e}"),
                )
            })?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()));
        Ok((kp, der))
    }

    /// The registry of `[broker.registry]`, with certificates named by `[pki]` name.
    fn registry(&self, certs: &BTreeMap<String, Made>) -> Result<Registry, WalkError> {
        let spec = self
            .spec
            .broker
            .as_ref()
            .and_then(|b| b.registry.clone())
            .ok_or_else(|| {
                self.invalid(
                    "broker.registry",
                    "missing: the broker needs a registry (things, certificates, policies)",
                )
            })?;
        let mut r = Registry::new();
        if let Some(x) = spec.region {
            r.region = x;
        }
        if let Some(x) = spec.account {
            r.account = x;
        }
        let base = "broker.registry";
        for (i, p) in spec.policies.iter().flatten().enumerate() {
            let path = format!("{base}.policies.{i}");
            let (label, json) = match (&p.file, &p.document) {
                (Some(f), None) => {
                    let origin = self.origin(&format!("{path}.file"));
                    let bytes = super::read_named(&origin, f)
                        .map_err(|m| self.invalid(&format!("{path}.file"), m))?;
                    (f.clone(), String::from_utf8_lossy(&bytes).into_owned())
                }
                (None, Some(doc)) => {
                    let v = serde_json::to_value(doc)
                        .map_err(|e| self.invalid(&format!("{path}.document"), e.to_string()))?;
                    (
                        format!("{} (policy {})", self.file, p.name),
                        serde_json::to_string_pretty(&v).unwrap_or_default(),
                    )
                }
                _ => {
                    return Err(self.invalid(
                        &path,
                        format!("policy {:?} needs exactly one of file or document", p.name),
                    ))
                }
            };
            let policy = Policy::parse(&p.name, &label, &json)
                .map_err(|e| self.invalid(&path, e.to_string()))?;
            r.add_policy(policy);
        }
        for t in spec.things.iter().flatten() {
            r.add_thing(Thing {
                name: t.name.clone(),
                type_name: t.type_name.clone(),
                attributes: t.attributes.clone().unwrap_or_default(),
            });
        }
        let cert_id = |path: &str,
                       cert: &Option<String>,
                       id: &Option<String>|
         -> Result<(String, Option<Vec<u8>>), WalkError> {
            match (cert, id) {
                (Some(c), None) => {
                    let m = certs.get(c).ok_or_else(|| {
                        self.invalid(
                            &format!("{path}.cert"),
                            format!("no certificate {c:?} in [pki] (it has: {})", names(certs)),
                        )
                    })?;
                    Ok((certificate_id(&m.der), Some(m.der.to_vec())))
                }
                (None, Some(id)) => Ok((id.to_ascii_lowercase(), None)),
                _ => Err(self.invalid(path, "needs exactly one of cert (a [pki] name) or id")),
            }
        };
        for (i, c) in spec.cas.iter().flatten().enumerate() {
            let path = format!("{base}.cas.{i}");
            let (id, der) = cert_id(&path, &c.cert, &c.id)?;
            let status = match c.status.as_str() {
                "ACTIVE" => CaStatus::Active,
                "INACTIVE" => CaStatus::Inactive,
                s => {
                    return Err(self.invalid(
                        &format!("{path}.status"),
                        format!("{s:?}: a CA is ACTIVE or INACTIVE"),
                    ))
                }
            };
            r.add_ca(CaRecord { id, status, der });
        }
        for (i, c) in spec.certificates.iter().flatten().enumerate() {
            let path = format!("{base}.certificates.{i}");
            let (id, _) = cert_id(&path, &c.cert, &c.id)?;
            let status: CertStatus = serde_json::from_value(serde_json::Value::String(
                c.status.clone(),
            ))
            .map_err(|_| {
                self.invalid(
                    &format!("{path}.status"),
                    format!(
                        "{:?}: ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION",
                        c.status
                    ),
                )
            })?;
            let things = c.things.clone().unwrap_or_default();
            let policies = c.policies.clone().unwrap_or_default();
            for t in &things {
                if !r.things().any(|x| &x.name == t) {
                    return Err(self.invalid(
                        &format!("{path}.things"),
                        format!("no thing {t:?} in broker.registry.things"),
                    ));
                }
            }
            for p in &policies {
                if r.policy(p).is_none() {
                    return Err(self.invalid(
                        &format!("{path}.policies"),
                        format!("no policy {p:?} in broker.registry.policies"),
                    ));
                }
            }
            let ca = match &c.ca {
                None => None,
                Some(n) => Some(cert_id(&format!("{path}.ca"), &Some(n.clone()), &None)?.0),
            };
            r.add_certificate(CertificateRecord {
                id,
                status,
                things,
                policies,
                ca,
            });
        }
        Ok(r)
    }
}

fn gen(
    alg: &'static rcgen::SignatureAlgorithm,
) -> Result<(KeyPair, PrivateKeyDer<'static>), WalkError> {
    let kp = KeyPair::generate_for(alg).map_err(|e| WalkError::Invalid {
        file: "(key generation)".into(),
        line: None,
        key: None,
        message: e.to_string(),
    })?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()));
    Ok((kp, der))
}

fn key_is_rsa(spec: &CertSpec) -> bool {
    spec.key.as_deref().is_some_and(|k| k.contains("rsa"))
}

fn specs_is_ca(lesson: &Lesson, name: &str) -> bool {
    lesson
        .spec
        .pki
        .as_ref()
        .and_then(|p| p.get(name))
        .and_then(|c| c.ca)
        .unwrap_or(false)
}

fn names(certs: &BTreeMap<String, Made>) -> String {
    certs.keys().cloned().collect::<Vec<_>>().join(", ")
}
