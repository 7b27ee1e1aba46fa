//! PEM and certificates from arbitrary bytes: what `iotls inspect`, `--cert`/`--key` loading and
//! the trace's certificate descriptions do with a file — PEM blocks, X.509 parsing, the
//! description of every certificate, its policy variables and the registry's certificate id.
//! The bytes are also described as DER directly (certificates in a handshake are DER).
#![no_main]

use iotls::pki::{describe, describe_brief, parse_certs, parse_key, subject_cn};
use iotls::policy::CertVars;
use libfuzzer_sys::fuzz_target;

fn describe_all(der: &[u8]) {
    let d = describe(der, Vec::new(), 1_790_000_000);
    let _ = iotls::narrate::serial_number_note(&d.subject);
    let _ = describe_brief(der);
    let _ = subject_cn(der);
    let _ = CertVars::from_der(der);
}

fuzz_target!(|data: &[u8]| {
    describe_all(data);
    if let Ok(certs) = parse_certs(data) {
        for c in &certs {
            describe_all(c);
        }
    }
    let _ = parse_key(data);
});
