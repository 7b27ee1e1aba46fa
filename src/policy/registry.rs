//! The registry, as in AWS IoT: things, certificates, registered CAs, policies.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::document::{Policy, PolicyError};
use super::vars::{certificate_id, CertVars, RequestContext, ThingContext};

/// Name of the built-in pizza-button policy.
pub const PIZZA_POLICY_NAME: &str = "PizzaButtonPolicy";
/// `policies/pizza-button.json`, built in.
pub const PIZZA_POLICY_JSON: &str = include_str!("../../policies/pizza-button.json");

/// Certificate status (AWS IoT `CertificateStatus`, the values a device certificate can have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertStatus {
    Active,
    Inactive,
    Revoked,
    PendingActivation,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "ACTIVE",
            CertStatus::Inactive => "INACTIVE",
            CertStatus::Revoked => "REVOKED",
            CertStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

/// CA certificate status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaStatus {
    Active,
    Inactive,
}

impl CaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaStatus::Active => "ACTIVE",
            CaStatus::Inactive => "INACTIVE",
        }
    }
}

/// A thing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thing {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// A device certificate as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Certificate id: lower-case hex SHA-256 of the DER.
    pub id: String,
    pub status: CertStatus,
    /// Things the certificate is attached to.
    pub things: Vec<String>,
    /// Names of the policies attached to it.
    pub policies: Vec<String>,
    /// Id of the registered CA that issued it, when known.
    pub ca: Option<String>,
}

/// A registered CA certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRecord {
    pub id: String,
    pub status: CaStatus,
    /// The CA certificate itself (DER), when the registry file gave its `pem`: the broker uses it
    /// to tell a device that left out this intermediate from one whose CA it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der: Option<Vec<u8>>,
}

/// The `registry` check: is the certificate known and ACTIVE (and its CA, if registered, ACTIVE)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateCheck {
    pub certificate_id: String,
    pub ok: bool,
    pub status: Option<CertStatus>,
    /// One sentence for people.
    pub reason: String,
}

/// Things, certificates, CAs and policies.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub region: String,
    pub account: String,
    things: BTreeMap<String, Thing>,
    certificates: BTreeMap<String, CertificateRecord>,
    cas: BTreeMap<String, CaRecord>,
    /// Shared with what a broker's connections were evaluated against ([`super::Basis`]).
    policies: BTreeMap<String, Arc<Policy>>,
    /// Changes with every change of things, certificates, CAs or policies, to a value no other
    /// registry had ([`Registry::generation`]).
    generation: u64,
}

/// Equal contents, whatever their history.
impl PartialEq for Registry {
    fn eq(&self, o: &Self) -> bool {
        self.region == o.region
            && self.account == o.account
            && self.things == o.things
            && self.certificates == o.certificates
            && self.cas == o.cas
            && self.policies == o.policies
    }
}

/// The last generation handed out, across all registries.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Why a registry file was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryError {
    Io {
        path: String,
        message: String,
    },
    Json {
        source: String,
        line: usize,
        column: usize,
        message: String,
    },
    Policy(PolicyError),
    Invalid {
        source: String,
        message: String,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Io { path, message } => write!(f, "{path}: {message}"),
            RegistryError::Json {
                source,
                line,
                column,
                message,
            } => write!(f, "{source}:{line}:{column}: {message}"),
            RegistryError::Policy(e) => e.fmt(f),
            RegistryError::Invalid { source, message } => write!(f, "{source}: {message}"),
        }
    }
}

impl std::error::Error for RegistryError {}

// ---- the file format -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    policies: Vec<FilePolicy>,
    #[serde(default)]
    things: Vec<Thing>,
    #[serde(default)]
    certificates: Vec<FileCertificate>,
    #[serde(default)]
    cas: Vec<FileCa>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    name: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    document: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCertificate {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    pem: Option<String>,
    status: CertStatus,
    #[serde(default)]
    things: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    ca: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCa {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    pem: Option<String>,
    status: CaStatus,
}

fn read_pem_id(base: Option<&Path>, file: &str, label: &str) -> Result<String, RegistryError> {
    read_pem(base, file, label).map(|der| certificate_id(&der))
}

/// The DER of the certificate in a PEM file named by a registry file.
fn read_pem(base: Option<&Path>, file: &str, label: &str) -> Result<Vec<u8>, RegistryError> {
    let path = base.map(|b| b.join(file)).unwrap_or_else(|| file.into());
    let bytes = crate::files::read_bounded(&path, crate::files::MAX_INPUT).map_err(|e| {
        RegistryError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let (_, der) = CertVars::from_pem(&bytes).map_err(|e| RegistryError::Invalid {
        source: label.to_string(),
        message: format!("{}: {e}", path.display()),
    })?;
    Ok(der)
}

fn check_id(id: &str, label: &str) -> Result<String, RegistryError> {
    let id = id.to_ascii_lowercase();
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(RegistryError::Invalid {
            source: label.to_string(),
            message: format!("certificate id `{id}` is not 64 hex digits (the SHA-256 of the DER)"),
        })
    }
}

impl Registry {
    /// An empty registry in the default region and account.
    pub fn new() -> Registry {
        Registry {
            region: super::DEFAULT_REGION.into(),
            account: super::DEFAULT_ACCOUNT.into(),
            ..Registry::default()
        }
    }

    /// Reads a registry file; relative `file`/`pem` paths are relative to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Registry, RegistryError> {
        let path = path.as_ref();
        let text = crate::files::read_text(path).map_err(|e| RegistryError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text, path.parent())
    }

    /// Reads a registry from JSON text; `label` names it in errors. Policy `file`s and certificate
    /// `pem`s are read relative to the current directory.
    pub fn from_json(label: &str, text: &str) -> Result<Registry, RegistryError> {
        Self::parse(label, text, None)
    }

    fn parse(label: &str, text: &str, base: Option<&Path>) -> Result<Registry, RegistryError> {
        let f: FileRegistry = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            RegistryError::Json {
                source: label.to_string(),
                line: e.line(),
                column: e.column(),
                message: msg.split(" at line ").next().unwrap_or(&msg).to_string(),
            }
        })?;
        let invalid = |m: String| RegistryError::Invalid {
            source: label.to_string(),
            message: m,
        };
        let mut r = Registry::new();
        if let Some(x) = f.region {
            r.region = x;
        }
        if let Some(x) = f.account {
            r.account = x;
        }
        for p in f.policies {
            let policy = match (p.file, p.document) {
                (Some(file), None) => {
                    let path = base
                        .map(|b| b.join(&file))
                        .unwrap_or_else(|| file.clone().into());
                    let json = crate::files::read_text(&path).map_err(|e| RegistryError::Io {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    Policy::parse(&p.name, &path.display().to_string(), &json)
                        .map_err(RegistryError::Policy)?
                }
                (None, Some(doc)) => {
                    let json = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
                    Policy::parse(&p.name, &format!("{label} (policy {})", p.name), &json)
                        .map_err(RegistryError::Policy)?
                }
                _ => {
                    return Err(invalid(format!(
                        "policy `{}` needs exactly one of `file` or `document`",
                        p.name
                    )))
                }
            };
            if r.policies.contains_key(&p.name) {
                return Err(invalid(format!("policy `{}` is defined twice", p.name)));
            }
            r.add_policy(policy);
        }
        for t in f.things {
            if r.things.contains_key(&t.name) {
                return Err(invalid(format!("thing `{}` is defined twice", t.name)));
            }
            r.add_thing(t);
        }
        for ca in f.cas {
            let (id, der) = match (ca.id, ca.pem) {
                (Some(id), None) => (check_id(&id, label)?, None),
                (None, Some(pem)) => {
                    let der = read_pem(base, &pem, label)?;
                    (certificate_id(&der), Some(der))
                }
                _ => return Err(invalid("a CA needs exactly one of `id` or `pem`".into())),
            };
            r.add_ca(CaRecord {
                id,
                status: ca.status,
                der,
            });
        }
        for c in f.certificates {
            let id = match (c.id, c.pem) {
                (Some(id), None) => check_id(&id, label)?,
                (None, Some(pem)) => read_pem_id(base, &pem, label)?,
                _ => {
                    return Err(invalid(
                        "a certificate needs exactly one of `id` or `pem`".into(),
                    ))
                }
            };
            for t in &c.things {
                if !r.things.contains_key(t) {
                    return Err(invalid(format!("certificate {id}: no thing named `{t}`")));
                }
            }
            for p in &c.policies {
                if !r.policies.contains_key(p) {
                    return Err(invalid(format!("certificate {id}: no policy named `{p}`")));
                }
            }
            let ca = match c.ca {
                Some(ca) => {
                    let ca = check_id(&ca, label)?;
                    if !r.cas.contains_key(&ca) {
                        return Err(invalid(format!(
                            "certificate {id}: CA {ca} is not registered"
                        )));
                    }
                    Some(ca)
                }
                None => None,
            };
            r.add_certificate(CertificateRecord {
                id,
                status: c.status,
                things: c.things,
                policies: c.policies,
                ca,
            });
        }
        Ok(r)
    }

    /// The embedded scenario: the button's certificate ACTIVE, attached to its thing, with the one
    /// policy `PizzaButtonPolicy` (`policies/pizza-button.json`).
    pub fn pizza_default(button_cert_der: &[u8], thing_name: &str) -> Registry {
        let mut r = Registry::new();
        let policy = Policy::parse(
            PIZZA_POLICY_NAME,
            "policies/pizza-button.json (built in)",
            PIZZA_POLICY_JSON,
        )
        .expect("the built-in policy parses");
        r.add_policy(policy);
        r.add_thing(Thing {
            name: thing_name.to_string(),
            type_name: Some("IoTButton".to_string()),
            attributes: BTreeMap::from([("shop".to_string(), "pizza".to_string())]),
        });
        r.add_certificate(CertificateRecord {
            id: certificate_id(button_cert_der),
            status: CertStatus::Active,
            things: vec![thing_name.to_string()],
            policies: vec![PIZZA_POLICY_NAME.to_string()],
            ca: None,
        });
        r
    }

    /// Identifies this registry's contents: it changes with every change of its things,
    /// certificates, CAs or policies (not of `region` and `account`, which are fields), to a value
    /// no other registry had, so that a context built from it can tell it is still current.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    }

    pub fn add_policy(&mut self, p: Policy) {
        self.changed();
        self.policies.insert(p.name.clone(), Arc::new(p));
    }
    pub fn add_thing(&mut self, t: Thing) {
        self.changed();
        self.things.insert(t.name.clone(), t);
    }
    pub fn add_certificate(&mut self, c: CertificateRecord) {
        self.changed();
        self.certificates.insert(c.id.clone(), c);
    }
    pub fn add_ca(&mut self, c: CaRecord) {
        self.changed();
        self.cas.insert(c.id.clone(), c);
    }
    /// Sets a certificate's status; false if the certificate is unknown.
    pub fn set_certificate_status(&mut self, cert_id: &str, status: CertStatus) -> bool {
        self.changed();
        self.certificates
            .get_mut(cert_id)
            .map(|c| c.status = status)
            .is_some()
    }
    /// Attaches a (registered) policy to a (registered) certificate.
    pub fn attach_policy(&mut self, cert_id: &str, policy: &str) -> bool {
        self.changed();
        match (
            self.policies.contains_key(policy),
            self.certificates.get_mut(cert_id),
        ) {
            (true, Some(c)) => {
                if !c.policies.iter().any(|p| p == policy) {
                    c.policies.push(policy.to_string());
                }
                true
            }
            _ => false,
        }
    }
    /// Attaches a (registered) thing to a (registered) certificate.
    pub fn attach_thing(&mut self, cert_id: &str, thing: &str) -> bool {
        self.changed();
        match (
            self.things.contains_key(thing),
            self.certificates.get_mut(cert_id),
        ) {
            (true, Some(c)) => {
                if !c.things.iter().any(|t| t == thing) {
                    c.things.push(thing.to_string());
                }
                true
            }
            _ => false,
        }
    }
    /// Detaches a thing from a certificate.
    pub fn detach_thing(&mut self, cert_id: &str, thing: &str) -> bool {
        self.changed();
        self.certificates
            .get_mut(cert_id)
            .map(|c| c.things.retain(|t| t != thing))
            .is_some()
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name).map(|p| &**p)
    }
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values().map(|p| &**p)
    }
    pub fn thing(&self, name: &str) -> Option<&Thing> {
        self.things.get(name)
    }
    pub fn things(&self) -> impl Iterator<Item = &Thing> {
        self.things.values()
    }
    pub fn certificate(&self, cert_id: &str) -> Option<&CertificateRecord> {
        self.certificates.get(cert_id)
    }
    pub fn certificates(&self) -> impl Iterator<Item = &CertificateRecord> {
        self.certificates.values()
    }
    /// Every registered CA.
    pub fn cas(&self) -> impl Iterator<Item = &CaRecord> {
        self.cas.values()
    }

    pub fn ca(&self, ca_id: &str) -> Option<&CaRecord> {
        self.cas.get(ca_id)
    }

    pub fn certificate_status(&self, cert_id: &str) -> Option<CertStatus> {
        self.certificates.get(cert_id).map(|c| c.status)
    }

    /// The policies attached to the certificate (none for an unknown certificate).
    pub fn policies_for(&self, cert_id: &str) -> Vec<&Policy> {
        self.certificates
            .get(cert_id)
            .map(|c| {
                c.policies
                    .iter()
                    .filter_map(|p| self.policies.get(p).map(|p| &**p))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Self::policies_for`], shared rather than borrowed (for a context that outlives this
    /// borrow of the registry).
    pub fn attached_policies(&self, cert_id: &str) -> Vec<Arc<Policy>> {
        self.certificates
            .get(cert_id)
            .map(|c| {
                c.policies
                    .iter()
                    .filter_map(|p| self.policies.get(p).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `registry` check AWS IoT makes before any policy: the certificate must be registered
    /// and ACTIVE, and so must its CA when the registry names one.
    pub fn check_certificate(&self, cert_der: &[u8]) -> CertificateCheck {
        let id = certificate_id(cert_der);
        let Some(c) = self.certificates.get(&id) else {
            return CertificateCheck {
                reason: format!(
                    "certificate {id} is not registered, so the broker does not know this device"
                ),
                certificate_id: id,
                ok: false,
                status: None,
            };
        };
        if c.status != CertStatus::Active {
            return CertificateCheck {
                reason: format!(
                    "certificate {id} is registered but {}: only ACTIVE certificates may connect",
                    c.status.as_str()
                ),
                certificate_id: id,
                ok: false,
                status: Some(c.status),
            };
        }
        if let Some(ca) = c.ca.as_ref().and_then(|ca| self.cas.get(ca)) {
            if ca.status != CaStatus::Active {
                return CertificateCheck {
                    reason: format!(
                        "certificate {id} is ACTIVE but its CA {} is {}",
                        ca.id,
                        ca.status.as_str()
                    ),
                    certificate_id: id,
                    ok: false,
                    status: Some(c.status),
                };
            }
        }
        let things = if c.things.is_empty() {
            "no thing".to_string()
        } else {
            format!("thing {}", c.things.join(", "))
        };
        let policies = if c.policies.is_empty() {
            "no policy".to_string()
        } else {
            format!("policy {}", c.policies.join(", "))
        };
        CertificateCheck {
            reason: format!(
                "certificate {id} is registered and ACTIVE; attached to {things} and {policies}"
            ),
            certificate_id: id,
            ok: true,
            status: Some(c.status),
        }
    }

    /// What the broker knows about a connection: the certificate's variables, the thing named by the
    /// client id (attached or not), the peer address.
    pub fn context_for(
        &self,
        cert_der: &[u8],
        client_id: &str,
        source_ip: Option<IpAddr>,
    ) -> RequestContext {
        let id = certificate_id(cert_der);
        let mut ctx = RequestContext::new(client_id);
        ctx.region = self.region.clone();
        ctx.account = self.account.clone();
        ctx.cert = CertVars::from_der(cert_der).ok();
        ctx.source_ip = source_ip;
        ctx.thing = self.thing_context(&id, client_id);
        ctx
    }

    /// The thing named by the client id, as a request's context sees it (attached to the
    /// certificate `cert_id` or not); `None` if the registry has no such thing.
    pub fn thing_context(&self, cert_id: &str, client_id: &str) -> Option<ThingContext> {
        let t = self.things.get(client_id)?;
        let attached = self
            .certificates
            .get(cert_id)
            .is_some_and(|c| c.things.iter().any(|n| n == client_id));
        Some(ThingContext {
            name: t.name.clone(),
            type_name: t.type_name.clone(),
            attributes: t.attributes.clone(),
            is_attached: attached,
        })
    }
}
