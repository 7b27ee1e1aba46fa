//! Key logs in the NSS format (`SSLKEYLOGFILE`): `CLIENT_RANDOM <client random> <master secret>`,
//! 32 and 48 bytes in hex. TLS 1.2 needs only those lines; the TLS 1.3 labels are recognised and
//! left aside.

use super::ReplayError;
use crate::tls::dissect::KeyLogEntry;
use crate::trace::unhex;
use std::path::Path;

/// Labels of TLS 1.3 key-log lines (not used for TLS 1.2).
const TLS13_LABELS: [&str; 7] = [
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET",
    "EXPORTER_SECRET",
];

/// One line: `Ok(Some(entry))` for CLIENT_RANDOM, `Ok(None)` for a comment, a blank line or a TLS
/// 1.3 label, `Err(why)` for anything else.
fn line(l: &str) -> Result<Option<KeyLogEntry>, String> {
    let l = l.trim();
    if l.is_empty() || l.starts_with('#') {
        return Ok(None);
    }
    let parts: Vec<&str> = l.split_whitespace().collect();
    match parts.as_slice() {
        ["CLIENT_RANDOM", cr, secret] => {
            let cr = unhex(&cr.to_ascii_lowercase())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("the client random is not 64 hex digits")?;
            let master_secret = unhex(&secret.to_ascii_lowercase())
                .filter(|s| s.len() == 48)
                .ok_or("the master secret is not 96 hex digits")?;
            Ok(Some(KeyLogEntry {
                client_random: cr,
                master_secret,
            }))
        }
        [label, _, _] if TLS13_LABELS.contains(label) => Ok(None),
        _ => Err("it is not a key-log line".to_string()),
    }
}

/// The CLIENT_RANDOM entries of a key log, skipping lines that are not key-log lines (a pcapng
/// Decryption Secrets Block); the second value counts the skipped lines.
pub fn parse_lenient(text: &str) -> (Vec<KeyLogEntry>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for l in text.lines() {
        match line(l) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {}
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

/// The key log in `path`; a line that is not a key-log line is an error naming it.
pub fn read(path: &Path) -> Result<Vec<KeyLogEntry>, ReplayError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReplayError::Read {
        file: file.clone(),
        source,
    })?;
    let hint =
        "a key log has lines `CLIENT_RANDOM <64 hex digits> <96 hex digits>` (SSLKEYLOGFILE)";
    let text = String::from_utf8(bytes).map_err(|_| ReplayError::Input {
        file: file.clone(),
        problem: "not a key log: it is not text".into(),
        hint,
    })?;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match line(l) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {}
            Err(why) => {
                return Err(ReplayError::Input {
                    file,
                    problem: format!("line {}: {why}", i + 1),
                    hint,
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_lines() {
        let cr = "ab".repeat(32);
        let ms = "CD".repeat(48);
        let e = line(&format!("CLIENT_RANDOM {cr} {ms}")).unwrap().unwrap();
        assert_eq!(e.client_random, [0xab; 32]);
        assert_eq!(e.master_secret, vec![0xcd; 48]);
        assert_eq!(line("# comment").unwrap(), None);
        assert_eq!(
            line(&format!("CLIENT_TRAFFIC_SECRET_0 {cr} {ms}")).unwrap(),
            None
        );
        assert!(line(&format!("CLIENT_RANDOM {cr} abcd")).is_err());
        assert!(line("-----BEGIN CERTIFICATE-----").is_err());
        let (ok, bad) = parse_lenient(&format!("junk\nCLIENT_RANDOM {cr} {ms}\n"));
        assert_eq!((ok.len(), bad), (1, 1));
    }
}
