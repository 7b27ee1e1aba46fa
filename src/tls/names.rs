//! Names of TLS code points, as IANA registers them. Unknown values are shown in hex; nothing here
//! panics.
//!
//! Cipher-suite names come from `rustls::CipherSuite` (its variant names are the IANA names); the
//! other registries are small tables here because rustls's variant names are not the IANA spelling
//! (`ECDSA_NISTP256_SHA256` for `ecdsa_secp256r1_sha256`, `UnknownCA` for `unknown_ca`).

/// RFC 5246 name of a handshake message type, or `Unknown(N)`.
pub fn handshake_name(t: u8) -> String {
    let s = match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        3 => "HelloVerifyRequest",
        4 => "NewSessionTicket",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        21 => "CertificateURL",
        22 => "CertificateStatus",
        _ => return format!("Unknown({t})"),
    };
    s.to_string()
}

/// IANA name of a cipher suite (`TLS_…`), or `unknown`.
pub fn cipher_suite_name(code: u16) -> String {
    if is_grease(code) {
        return "GREASE".to_string();
    }
    match rustls::CipherSuite::from(code).as_str() {
        // rustls prefixes the TLS 1.3 suites with TLS13_; IANA spells them TLS_.
        Some(n) => match n.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => n.to_string(),
        },
        None => "unknown".to_string(),
    }
}

/// `NAME (0xc02b)`.
pub fn cipher_suite(code: u16) -> String {
    format!("{} (0x{code:04x})", cipher_suite_name(code))
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// IANA name of a SignatureScheme (RFC 8446 §4.2.3, the TLS 1.2 HashAlgorithm/SignatureAlgorithm
/// pairs), or `unknown`.
pub fn signature_scheme_name(code: u16) -> &'static str {
    match code {
        0x0201 => "rsa_pkcs1_sha1",
        0x0202 => "dsa_sha1",
        0x0203 => "ecdsa_sha1",
        0x0301 => "rsa_pkcs1_sha224",
        0x0303 => "ecdsa_sha224",
        0x0401 => "rsa_pkcs1_sha256",
        0x0403 => "ecdsa_secp256r1_sha256",
        0x0501 => "rsa_pkcs1_sha384",
        0x0503 => "ecdsa_secp384r1_sha384",
        0x0601 => "rsa_pkcs1_sha512",
        0x0603 => "ecdsa_secp521r1_sha512",
        0x0804 => "rsa_pss_rsae_sha256",
        0x0805 => "rsa_pss_rsae_sha384",
        0x0806 => "rsa_pss_rsae_sha512",
        0x0807 => "ed25519",
        0x0808 => "ed448",
        0x0809 => "rsa_pss_pss_sha256",
        0x080a => "rsa_pss_pss_sha384",
        0x080b => "rsa_pss_pss_sha512",
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        0x0904 => "mldsa44",
        0x0905 => "mldsa65",
        0x0906 => "mldsa87",
        v if is_grease(v) => "GREASE",
        _ => "unknown",
    }
}

/// `name (0x0403)`.
pub fn signature_scheme(code: u16) -> String {
    format!("{} (0x{code:04x})", signature_scheme_name(code))
}

/// IANA name of a supported group / named curve, or `unknown`.
pub fn group_name(code: u16) -> &'static str {
    match code {
        0x0017 => "secp256r1",
        0x0018 => "secp384r1",
        0x0019 => "secp521r1",
        0x001a => "brainpoolP256r1",
        0x001b => "brainpoolP384r1",
        0x001c => "brainpoolP512r1",
        0x001d => "x25519",
        0x001e => "x448",
        0x0100 => "ffdhe2048",
        0x0101 => "ffdhe3072",
        0x0102 => "ffdhe4096",
        0x0103 => "ffdhe6144",
        0x0104 => "ffdhe8192",
        0x0200 => "MLKEM512",
        0x0201 => "MLKEM768",
        0x0202 => "MLKEM1024",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        v if is_grease(v) => "GREASE",
        _ => "unknown",
    }
}

/// `name (0x001d)`.
pub fn group(code: u16) -> String {
    format!("{} (0x{code:04x})", group_name(code))
}

/// IANA name of a TLS extension type, or `None`.
pub fn extension_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "server_name",
        1 => "max_fragment_length",
        5 => "status_request",
        10 => "supported_groups",
        11 => "ec_point_formats",
        13 => "signature_algorithms",
        14 => "use_srtp",
        15 => "heartbeat",
        16 => "application_layer_protocol_negotiation",
        17 => "status_request_v2",
        18 => "signed_certificate_timestamp",
        19 => "client_certificate_type",
        20 => "server_certificate_type",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        27 => "compress_certificate",
        28 => "record_size_limit",
        35 => "session_ticket",
        41 => "pre_shared_key",
        42 => "early_data",
        43 => "supported_versions",
        44 => "cookie",
        45 => "psk_key_exchange_modes",
        47 => "certificate_authorities",
        48 => "oid_filters",
        49 => "post_handshake_auth",
        50 => "signature_algorithms_cert",
        51 => "key_share",
        0xfe0d => "encrypted_client_hello",
        0xff01 => "renegotiation_info",
        _ => return None,
    })
}

/// Field name of an extension: `extension server_name` or `extension unknown (0x1234)`.
pub fn extension_field(code: u16) -> String {
    match extension_name(code) {
        Some(n) => format!("extension {n}"),
        None if is_grease(code) => format!("extension GREASE (0x{code:04x})"),
        None => format!("extension unknown (0x{code:04x})"),
    }
}

/// RFC name of an alert description (`close_notify`, `unknown_ca`, …), or `unknown (N)`.
pub fn alert_name(code: u8) -> String {
    let s = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => return format!("unknown ({code})"),
    };
    s.to_string()
}

/// `warning`, `fatal`, or `unknown (N)`.
pub fn alert_level(level: u8) -> String {
    match level {
        1 => "warning".to_string(),
        2 => "fatal".to_string(),
        _ => format!("unknown ({level})"),
    }
}

/// Name of a protocol version: `TLS 1.2 (0x0303)`.
pub fn version(v: u16) -> String {
    let n = match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        x if is_grease(x) => "GREASE",
        _ => "unknown",
    };
    format!("{n} (0x{v:04x})")
}

/// ClientCertificateType (RFC 5246 §7.4.4, RFC 8422 §5.5).
pub fn client_cert_type(t: u8) -> String {
    let n = match t {
        1 => "rsa_sign",
        2 => "dss_sign",
        3 => "rsa_fixed_dh",
        4 => "dss_fixed_dh",
        5 => "rsa_ephemeral_dh",
        6 => "dss_ephemeral_dh",
        20 => "fortezza_dms",
        64 => "ecdsa_sign",
        65 => "rsa_fixed_ecdh",
        66 => "ecdsa_fixed_ecdh",
        _ => "unknown",
    };
    format!("{n} ({t})")
}

/// ECPointFormat (RFC 8422 §5.1.2).
pub fn ec_point_format(f: u8) -> String {
    let n = match f {
        0 => "uncompressed",
        1 => "ansiX962_compressed_prime",
        2 => "ansiX962_compressed_char2",
        _ => "unknown",
    };
    format!("{n} ({f})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_and_unknown() {
        assert_eq!(
            cipher_suite(0xc02b),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b)"
        );
        assert_eq!(
            cipher_suite(0xcca9),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xcca9)"
        );
        assert_eq!(cipher_suite(0x1301), "TLS_AES_128_GCM_SHA256 (0x1301)");
        assert_eq!(cipher_suite(0xbeef), "unknown (0xbeef)");
        assert_eq!(signature_scheme(0x0403), "ecdsa_secp256r1_sha256 (0x0403)");
        assert_eq!(signature_scheme(0x7777), "unknown (0x7777)");
        assert_eq!(group(0x001d), "x25519 (0x001d)");
        assert_eq!(group(0x2a2a), "GREASE (0x2a2a)");
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(200), "unknown (200)");
        assert_eq!(extension_field(0xff01), "extension renegotiation_info");
        assert_eq!(extension_field(0x4469), "extension unknown (0x4469)");
        assert_eq!(handshake_name(99), "Unknown(99)");
    }
}
