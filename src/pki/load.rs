//! Loading certificate chains and private keys from PEM files, with errors that name the file and
//! say what to do.

use super::Identity;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a PEM file could not be used.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for LoadError {}

fn err(path: &Path, what: impl Into<String>) -> LoadError {
    LoadError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn pem_problem(kind: &str, e: pem::Error) -> String {
    match e {
        pem::Error::Io(io) => format!("cannot read the file: {io}"),
        pem::Error::NoItemsFound => format!(
            "no {kind} found: expected a PEM block such as `-----BEGIN {}-----`",
            kind.to_uppercase()
        ),
        other => format!("not a valid PEM {kind}: {other:?}"),
    }
}

/// The file's bytes, within [`crate::files::MAX_INPUT`].
fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    crate::files::read_bounded(path, crate::files::MAX_INPUT)
        .map_err(|e| err(path, format!("cannot read the file: {e}")))
}

/// Every certificate in a PEM file, in order (leaf first for a chain). Each must parse as X.509.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    parse_certs(&read(path)?).map_err(|what| err(path, what))
}

/// [`load_certs`] on a file's bytes: the error says what is wrong, without the path.
pub fn parse_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem("certificate", e))?;
    if certs.is_empty() {
        return Err("no certificate found: expected `-----BEGIN CERTIFICATE-----` blocks".into());
    }
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = x509_parser::parse_x509_certificate(c) {
            return Err(format!(
                "certificate #{} is not valid X.509 DER: {e}",
                i + 1
            ));
        }
    }
    Ok(certs)
}

/// A private key in PKCS#8 (`BEGIN PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`) form.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    parse_key(&read(path)?).map_err(|what| err(path, what))
}

/// [`load_key`] on a file's bytes: the error says what is wrong, without the path.
pub fn parse_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key found: expected `BEGIN PRIVATE KEY`, `BEGIN EC PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`".to_string(),
        other => pem_problem("private key", other),
    })
}

/// A chain and its key, checked to belong together.
pub fn load_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, LoadError> {
    let chain = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| err(key_path, format!("unsupported private key: {e}")))?;
    rustls::sign::CertifiedKey::new(chain.clone(), Arc::clone(&signing)).keys_match().map_err(|_| {
        err(
            key_path,
            format!(
                "this key does not match the certificate in {} (its public key is different): use the key that was generated with that certificate",
                cert_path.display()
            ),
        )
    })?;
    Ok(Identity { chain, key })
}
