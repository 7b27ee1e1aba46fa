//! Pre-flight: what `iotls connect` can tell from the device's own files before it dials.
//!
//! Two kinds of result. What makes a session impossible is an error (exit code 3, one line naming
//! the file and what to do): a passphrase-protected key, a public key or a certificate given as the
//! key, a chain whose first certificate is not the one the key belongs to. Everything else is a
//! [`Finding`], a warning printed before the session, and the session still runs so that the
//! broker's own reaction is shown: a certificate outside its validity dates, a chain file in the
//! wrong order after the leaf, a leaf whose issuing CA is not in the chain file, a `--ca`
//! certificate that is not a CA certificate.
//!
//! These are iotls's own readings of local files, not verdicts of the broker or of rustls: a
//! finding says what the broker will probably do, and the session shows what it did.

use super::EngineError;
use crate::pki::{load_certs, rfc3339, LoadError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use x509_parser::prelude::{FromDer, X509Certificate};

/// One thing worth knowing before the session: which file, what is wrong, and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// What is wrong, with the values (names, dates in RFC 3339).
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "warning: {}: {} Fix: {}",
            self.file.display(),
            self.problem,
            self.fix
        )
    }
}

/// The device's files as `connect` got them.
pub struct Files<'a> {
    /// The device's chain (`--cert`).
    pub cert: &'a Path,
    /// The device's private key (`--key`).
    pub key: &'a Path,
    /// The roots the device trusts for the broker (`--ca`).
    pub ca: &'a Path,
}

fn fatal(path: &Path, what: String) -> EngineError {
    EngineError::File(LoadError {
        path: path.to_path_buf(),
        what,
    })
}

/// Check the files at time `now` (seconds since the Unix epoch). `Err` when no session is possible;
/// otherwise the warnings, in the order: key, chain, trust anchors.
pub fn check(files: &Files<'_>, now: i64) -> Result<Vec<Finding>, EngineError> {
    key_form(files.key)?;
    let chain = load_certs(files.cert)?;
    let trust = load_certs(files.ca)?;
    let chain_parsed = parse_all(&chain);
    let trust_parsed = parse_all(&trust);
    key_belongs_to_leaf(files, &chain, &chain_parsed)?;
    let mut out = Vec::new();
    for (i, c) in chain_parsed.iter().enumerate() {
        if let Some(f) = validity(files.cert, i, c, now, "the broker will refuse it") {
            out.push(f);
        }
    }
    out.extend(order(files.cert, &chain_parsed));
    out.extend(leaf_issuer(files.cert, &chain_parsed, &trust_parsed));
    for (i, c) in trust_parsed.iter().enumerate() {
        if let Some(f) = not_a_ca(files.ca, i, c) {
            out.push(f);
        }
        if let Some(f) = validity(
            files.ca,
            i,
            c,
            now,
            "the device cannot check the broker's chain with it",
        ) {
            out.push(f);
        }
    }
    Ok(out)
}

/// Every certificate parsed (`load_certs` has already checked that each one parses).
fn parse_all<'a>(certs: &'a [CertificateDer<'static>]) -> Vec<X509Certificate<'a>> {
    certs
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok().map(|(_, x)| x))
        .collect()
}

/// `#2 (CN=Pizza Shop Issuing CA 1)`.
fn label(i: usize, c: &X509Certificate<'_>) -> String {
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(|s| format!("CN={s}"))
        .unwrap_or_else(|| c.subject().to_string());
    format!("certificate #{} ({cn})", i + 1)
}

fn self_signed(c: &X509Certificate<'_>) -> bool {
    c.issuer().as_raw() == c.subject().as_raw()
}

fn issued_by(c: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    c.issuer().as_raw() == issuer.subject().as_raw()
}

/// The key file is a private key iotls can use, not a passphrase-protected one, a public key or a
/// certificate. Files that do not parse as PEM are left to the key loader, which says so.
fn key_form(path: &Path) -> Result<(), EngineError> {
    let bytes = std::fs::read(path)
        .map_err(|e| fatal(path, format!("cannot read the private key file: {e}")))?;
    let Ok(blocks) = pem::parse_many(&bytes) else {
        return Ok(());
    };
    let tags: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
    let private = |t: &&str| t.ends_with("PRIVATE KEY") && *t != "ENCRYPTED PRIVATE KEY";
    let legacy_encrypted = blocks.iter().any(|b| {
        b.tag().ends_with("PRIVATE KEY")
            && b.headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"))
    });
    if tags.contains(&"ENCRYPTED PRIVATE KEY") || legacy_encrypted {
        let d = path.display();
        return Err(fatal(
            path,
            format!(
                "the private key is protected by a passphrase ({}), which iotls cannot ask for. \
                 Decrypt a copy and use that: openssl pkey -in {d} -out device-decrypted.key \
                 (it asks for the passphrase), chmod 600 device-decrypted.key, then \
                 --key device-decrypted.key",
                if legacy_encrypted {
                    "Proc-Type: 4,ENCRYPTED"
                } else {
                    "BEGIN ENCRYPTED PRIVATE KEY"
                }
            ),
        ));
    }
    if tags.iter().any(private) {
        return Ok(());
    }
    if let Some(t) = tags.iter().find(|t| t.ends_with("PUBLIC KEY")) {
        return Err(fatal(
            path,
            format!(
                "this is a public key (BEGIN {t}), not the private key: --key needs the device's \
                 private key (`BEGIN PRIVATE KEY`, `BEGIN EC PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`; \
                 AWS IoT's download names it …-private.pem.key)"
            ),
        ));
    }
    if tags.contains(&"CERTIFICATE") {
        return Err(fatal(
            path,
            "this is a certificate, not a private key: were --cert and --key swapped? --key needs \
             the device's private key (AWS IoT's download names it …-private.pem.key)"
                .to_string(),
        ));
    }
    Ok(())
}

/// The key belongs to the first certificate of the chain. When it belongs to a later one, the file
/// is in the wrong order, and TLS cannot send it: the first certificate is the one the device
/// proves it holds the key of (rustls refuses the configuration). A key that belongs to none is
/// left to the identity loader, which says the key does not match.
fn key_belongs_to_leaf(
    files: &Files<'_>,
    chain: &[CertificateDer<'static>],
    parsed: &[X509Certificate<'_>],
) -> Result<(), EngineError> {
    let Ok(key) = PrivateKeyDer::from_pem_file(files.key) else {
        return Ok(());
    };
    let provider = rustls::crypto::ring::default_provider();
    let Some(spki) = provider
        .key_provider
        .load_private_key(key)
        .ok()
        .and_then(|k| k.public_key().map(|p| p.as_ref().to_vec()))
    else {
        return Ok(());
    };
    let belongs = |c: &X509Certificate<'_>| c.tbs_certificate.subject_pki.raw == spki.as_slice();
    if parsed.first().is_none_or(belongs) || chain.len() < 2 {
        return Ok(());
    }
    match parsed.iter().position(belongs) {
        Some(j) => Err(fatal(
            files.cert,
            format!(
                "the chain is in the wrong order: the key in {} belongs to {}, but {} comes first, \
                 and TLS sends the first certificate as the device's own. Put the device's \
                 certificate first, then its issuing CA (e.g. cat device.pem issuing-ca.pem > \
                 chain.pem)",
                files.key.display(),
                label(j, &parsed[j]),
                label(0, &parsed[0]),
            ),
        )),
        None => Ok(()),
    }
}

/// A certificate outside its validity period at `now`.
fn validity(
    file: &Path,
    i: usize,
    c: &X509Certificate<'_>,
    now: i64,
    consequence: &str,
) -> Option<Finding> {
    let from = c.validity().not_before.timestamp();
    let to = c.validity().not_after.timestamp();
    let dates = format!(
        "valid {} … {}, now {}",
        rfc3339(from),
        rfc3339(to),
        rfc3339(now)
    );
    let problem = if now > to {
        format!(
            "{} expired on {} ({dates}): {consequence}.",
            label(i, c),
            rfc3339(to)
        )
    } else if now < from {
        format!(
            "{} is not valid yet: it starts on {} ({dates}): {consequence}.",
            label(i, c),
            rfc3339(from)
        )
    } else {
        return None;
    };
    Some(Finding {
        file: file.to_path_buf(),
        problem,
        fix: if now > to {
            "renew it (issue or register a new certificate and use it with its key).".into()
        } else {
            "check this computer's clock and the date the certificate was issued with.".into()
        },
    })
}

/// After the leaf, each certificate should be the issuer of the one before it.
fn order(file: &Path, chain: &[X509Certificate<'_>]) -> Option<Finding> {
    let i = (0..chain.len().saturating_sub(1))
        .find(|&i| !self_signed(&chain[i]) && !issued_by(&chain[i], &chain[i + 1]))?;
    let found = chain
        .iter()
        .enumerate()
        .skip(i + 2)
        .find(|(_, c)| issued_by(&chain[i], c))
        .map(|(k, c)| format!("; its issuer is {}", label(k, c)))
        .unwrap_or_default();
    Some(Finding {
        file: file.to_path_buf(),
        problem: format!(
            "the chain is out of order: {} did not issue {}{found}.",
            label(i + 1, &chain[i + 1]),
            label(i, &chain[i]),
        ),
        fix: "order the file as the device's certificate first, then its issuing CA, then that \
              CA's issuer; leave out certificates that are not part of the chain."
            .into(),
    })
}

/// The leaf's issuer is neither in the chain file nor among the `--ca` roots. Only a warning:
/// a broker that already holds that CA needs nothing more.
fn leaf_issuer(
    file: &Path,
    chain: &[X509Certificate<'_>],
    trust: &[X509Certificate<'_>],
) -> Option<Finding> {
    let leaf = chain.first()?;
    if self_signed(leaf)
        || chain.iter().skip(1).any(|c| issued_by(leaf, c))
        || trust.iter().any(|c| issued_by(leaf, c))
    {
        return None;
    }
    Some(Finding {
        file: file.to_path_buf(),
        problem: format!(
            "your chain file has no issuer certificate for the leaf (issuer {}); a broker that does \
             not already hold that CA will refuse the device (AWS IoT holds it for the certificates \
             it creates).",
            leaf.issuer()
        ),
        fix: "if the broker may need it, send leaf + issuing CA: cat device.pem issuing-ca.pem > \
              chain.pem and give --cert chain.pem."
            .into(),
    })
}

/// A `--ca` certificate that is not a CA certificate.
fn not_a_ca(file: &Path, i: usize, c: &X509Certificate<'_>) -> Option<Finding> {
    let how = match c.basic_constraints() {
        Ok(Some(b)) if b.value.ca => return None,
        Ok(Some(_)) => "basicConstraints CA:FALSE",
        _ => "no basicConstraints extension",
    };
    Some(Finding {
        file: file.to_path_buf(),
        problem: format!(
            "{} is not a CA certificate ({how}): --ca is what the device trusts to check the \
             broker's chain, and a server or device certificate cannot anchor it.",
            label(i, c)
        ),
        fix: "give the root CA that issued the broker's certificate (for AWS IoT: \
              AmazonRootCA1.pem)."
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default PKI as files in a directory of this test's own.
    fn pki(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "iotls-test-preflight-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        crate::pki::write_default(&dir, false).expect("write the default PKI");
        dir
    }

    fn run(dir: &Path, now: i64) -> Vec<Finding> {
        let (cert, key, ca) = (
            dir.join("button.pem"),
            dir.join("button.key"),
            dir.join("root.pem"),
        );
        check(
            &Files {
                cert: &cert,
                key: &key,
                ca: &ca,
            },
            now,
        )
        .expect("no set-up error")
    }

    #[test]
    fn dates_outside_the_validity_are_warnings_with_the_dates() {
        let dir = pki("dates");
        let now = crate::engine::unix_now() as i64;
        assert_eq!(run(&dir, now), Vec::new(), "the default PKI is fine today");
        // A century on: the button, its issuing CA and the root have all expired.
        let later = run(&dir, now + 100 * 365 * 86_400);
        assert_eq!(later.len(), 3, "{later:#?}");
        assert!(later[0]
            .problem
            .starts_with("certificate #1 (CN=pizza-button-1) expired on "));
        assert!(later[0]
            .problem
            .contains(&rfc3339(now + 100 * 365 * 86_400)));
        assert!(later[2].file.ends_with("root.pem"));
        // Before the epoch of its issue: not valid yet.
        let before = run(&dir, 0);
        assert!(
            before[0]
                .problem
                .contains("is not valid yet: it starts on "),
            "{before:#?}"
        );
        assert!(before[0].problem.contains("now 1970-01-01T00:00:00Z"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
