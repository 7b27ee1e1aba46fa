//! Writing a PKI as PEM files for other programs (openssl, mosquitto, real devices). Private keys
//! are written with mode 0600 and never printed.

use super::{DefaultPki, Identity};
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

fn write_file(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), String> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{}: already exists (use --force to overwrite)",
            path.display()
        ),
        _ => format!("{}: cannot write: {e}", path.display()),
    })?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its old mode under truncate: set it explicitly.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn write_identity(
    dir: &Path,
    name: &str,
    id: &Identity,
    force: bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    write_file(&cert, &certs_pem(&id.chain), false, force)?;
    write_file(&key, &key_pem(&id.key), true, force)?;
    out.push(cert);
    out.push(key);
    Ok(())
}

impl DefaultPki {
    /// Write every certificate (chains leaf first) and key into `dir`; returns the paths written.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create directory: {e}", dir.display()))?;
        let mut out = Vec::new();
        for (name, cert) in [
            ("root", &self.root),
            ("issuing-ca", &self.intermediate),
            ("rogue-root", &self.rogue_root),
        ] {
            let p = dir.join(format!("{name}.pem"));
            write_file(&p, &certs_pem(std::slice::from_ref(cert)), false, force)?;
            out.push(p);
        }
        write_identity(dir, "broker", &self.broker, force, &mut out)?;
        write_identity(dir, "button", &self.button, force, &mut out)?;
        write_identity(dir, "neighbour", &self.neighbour, force, &mut out)?;
        write_identity(dir, "rogue-button", &self.rogue_button, force, &mut out)?;
        Ok(out)
    }
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
