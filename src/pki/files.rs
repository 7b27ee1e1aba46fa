//! Writing a PKI as PEM files for other programs (openssl, mosquitto, real devices). Private keys
//! are written with mode 0600 and never printed. Every file is created new: nothing is written
//! through a symbolic link, and `--force` removes an existing file before creating its
//! replacement.

use super::generate::{PkiOptions, Room};
use super::{DefaultPki, Identity, BUTTON_THING, NEIGHBOUR_THING};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// PEM text of certificates, in order.
pub fn certs_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
        .collect()
}

/// PEM text of a private key, in its own form (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, PKCS#1).
pub fn key_pem(key: &PrivateKeyDer<'_>) -> String {
    let tag = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pem::encode(&pem::Pem::new(tag, key.secret_der().to_vec()))
}

/// One file to write: where, what, and whether it is a private key (mode 0600).
struct Planned {
    path: PathBuf,
    text: String,
    secret: bool,
}

/// Why `path` cannot be written as a new file: a symbolic link is refused always (iotls never
/// writes through one, nor replaces one); an existing file is refused unless `force`.
fn obstacle(path: &Path, force: bool) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = fs::read_link(path)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            Err(format!(
                "{}: is a symbolic link{to}; iotls writes certificates and keys only as new files and never through a link: remove the link, or choose another directory",
                path.display()
            ))
        }
        Ok(m) if m.is_dir() => Err(format!(
            "{}: is a directory: move it away, or choose another directory",
            path.display()
        )),
        Ok(_) if !force => Err(format!(
            "{}: already exists (use --force to overwrite)",
            path.display()
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: cannot check the path: {e}", path.display())),
    }
}

/// Write `text` to `path` as a new file (`create_new`: the open fails on any existing path, a
/// symbolic link included, so nothing is written through a link). With `force`, an existing
/// regular file is removed first. Keys get mode 0600 from creation on.
fn write_new(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), String> {
    obstacle(path, force)?;
    if force && fs::symlink_metadata(path).is_ok() {
        fs::remove_file(path).map_err(|e| format!("{}: cannot remove: {e}", path.display()))?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{}: appeared while iotls was writing (another program?): check it, then run again",
            path.display()
        ),
        _ => format!("{}: cannot write: {e}", path.display()),
    })?;
    #[cfg(unix)]
    if secret {
        // The mode given at creation passes through the umask; set it on the open file itself.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Write every planned file into `dir`: first check them all (so a refusal leaves `dir` as it
/// was), then write them in order. Returns the paths written.
fn commit(dir: &Path, plan: Vec<Planned>, force: bool) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create directory: {e}", dir.display()))?;
    for p in &plan {
        obstacle(&p.path, force)?;
    }
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        write_new(&p.path, &p.text, p.secret, force)?;
        out.push(p.path);
    }
    Ok(out)
}

fn plan_cert(plan: &mut Vec<Planned>, dir: &Path, name: &str, cert: &CertificateDer<'_>) {
    plan.push(Planned {
        path: dir.join(format!("{name}.pem")),
        text: certs_pem(std::slice::from_ref(cert)),
        secret: false,
    });
}

fn plan_identity(plan: &mut Vec<Planned>, dir: &Path, name: &str, id: &Identity) {
    plan.push(Planned {
        path: dir.join(format!("{name}.pem")),
        text: certs_pem(&id.chain),
        secret: false,
    });
    plan.push(Planned {
        path: dir.join(format!("{name}.key")),
        text: key_pem(&id.key),
        secret: true,
    });
}

impl DefaultPki {
    fn plan(&self, dir: &Path, plan: &mut Vec<Planned>) {
        plan_cert(plan, dir, "root", &self.root);
        plan_cert(plan, dir, "issuing-ca", &self.intermediate);
        plan_cert(plan, dir, "rogue-root", &self.rogue_root);
        plan_identity(plan, dir, "broker", &self.broker);
        plan_identity(plan, dir, "button", &self.button);
        plan_identity(plan, dir, "neighbour", &self.neighbour);
        plan_identity(plan, dir, "rogue-button", &self.rogue_button);
    }

    /// Write every certificate (chains leaf first) and key into `dir`; returns the paths written.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
        let mut plan = Vec::new();
        self.plan(dir, &mut plan);
        commit(dir, plan, force)
    }
}

/// Name of the room's policy in `registry.json`.
pub const ROOM_POLICY_NAME: &str = "RoomDevicePolicy";
/// `policies/room-device.json`, written into a room's directory as `room-policy.json`.
pub const ROOM_POLICY_JSON: &str = include_str!("../../policies/room-device.json");

impl Room {
    /// The registry (docs/policy.md) of a room directory: every room device ACTIVE, attached to
    /// its thing and to the room policy; the two pizza buttons as in the built-in registry; the
    /// issuing CA registered ACTIVE. Paths are relative to the directory.
    pub fn registry_json(&self) -> serde_json::Value {
        use serde_json::json;
        let ca_id = crate::policy::certificate_id(&self.pki.intermediate);
        let pizza: serde_json::Value =
            serde_json::from_str(crate::policy::PIZZA_POLICY_JSON).unwrap_or_default();
        let mut things = vec![
            json!({ "name": BUTTON_THING, "type": "IoTButton", "attributes": { "shop": "pizza" } }),
            json!({ "name": NEIGHBOUR_THING, "type": "IoTButton", "attributes": { "shop": "pizza" } }),
        ];
        let mut certificates = vec![
            json!({ "pem": "button.pem", "status": "ACTIVE", "things": [BUTTON_THING],
                    "policies": [crate::policy::PIZZA_POLICY_NAME], "ca": ca_id }),
            json!({ "pem": "neighbour.pem", "status": "ACTIVE", "things": [NEIGHBOUR_THING],
                    "policies": [crate::policy::PIZZA_POLICY_NAME], "ca": ca_id }),
        ];
        for d in &self.devices {
            things.push(json!({ "name": d.thing, "type": "RoomDevice",
                                "attributes": { "serial": d.serial } }));
            certificates.push(
                json!({ "pem": format!("{}.pem", d.thing), "status": "ACTIVE",
                                      "things": [d.thing], "policies": [ROOM_POLICY_NAME],
                                      "ca": ca_id }),
            );
        }
        json!({
            "policies": [
                { "name": ROOM_POLICY_NAME, "file": "room-policy.json" },
                { "name": crate::policy::PIZZA_POLICY_NAME, "document": pizza },
            ],
            "things": things,
            "cas": [ { "pem": "issuing-ca.pem", "status": "ACTIVE" } ],
            "certificates": certificates,
        })
    }

    /// A table for the trainer to hand out: thing name (= client id), serial, files, topics.
    pub fn devices_csv(&self) -> String {
        let mut s = String::from("thing,serial,certificate,key,own topics\n");
        for d in &self.devices {
            s += &format!(
                "{t},{s},{t}.pem,{t}.key,room/{s}/#\n",
                t = d.thing,
                s = d.serial
            );
        }
        s
    }

    /// Write the default PKI's files and, when the room has devices, `device-NNN.pem/.key`,
    /// `room-policy.json`, `registry.json` and `devices.csv`; returns the paths written.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
        let mut plan = Vec::new();
        self.pki.plan(dir, &mut plan);
        if !self.devices.is_empty() {
            for d in &self.devices {
                plan_identity(&mut plan, dir, &d.thing, &d.identity);
            }
            let registry = serde_json::to_string_pretty(&self.registry_json())
                .map_err(|e| format!("registry.json: {e}"))?;
            for (name, text) in [
                ("room-policy.json", ROOM_POLICY_JSON.to_string()),
                ("devices.csv", self.devices_csv()),
                ("registry.json", registry + "\n"),
            ] {
                plan.push(Planned {
                    path: dir.join(name),
                    text,
                    secret: false,
                });
            }
        }
        commit(dir, plan, force)
    }
}

/// Generate a room (the default PKI, the broker's extra names, `o.devices` identities) and write
/// it into `dir`.
pub fn write_room(dir: &Path, o: &PkiOptions, force: bool) -> Result<Vec<PathBuf>, String> {
    DefaultPki::generate_with(o)
        .map_err(|e| e.to_string())?
        .write(dir, force)
}

/// Generate a fresh default PKI and write it into `dir`.
pub fn write_default(dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
    DefaultPki::generate()
        .map_err(|e| e.to_string())?
        .write(dir, force)
}

impl DefaultPki {
    /// Load the files written by [`DefaultPki::write`] from `dir`, or generate and write them there
    /// when `dir` has no `root.pem` yet.
    pub fn load_or_init(dir: &Path) -> Result<DefaultPki, String> {
        if !dir.join("root.pem").exists() {
            let pki = DefaultPki::generate().map_err(|e| e.to_string())?;
            pki.write(dir, false)?;
            return Ok(pki);
        }
        let one = |name: &str| -> Result<CertificateDer<'static>, String> {
            let p = dir.join(format!("{name}.pem"));
            super::load_certs(&p)
                .map_err(|e| e.to_string())?
                .into_iter()
                .next()
                .ok_or_else(|| format!("{}: empty", p.display()))
        };
        let id = |name: &str| -> Result<Identity, String> {
            super::load_identity(
                &dir.join(format!("{name}.pem")),
                &dir.join(format!("{name}.key")),
            )
            .map_err(|e| e.to_string())
        };
        Ok(DefaultPki {
            root: one("root")?,
            intermediate: one("issuing-ca")?,
            broker: id("broker")?,
            button: id("button")?,
            neighbour: id("neighbour")?,
            rogue_root: one("rogue-root")?,
            rogue_button: id("rogue-button")?,
        })
    }
}
