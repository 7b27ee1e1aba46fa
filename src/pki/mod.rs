//! Certificates: generate a PKI in memory (rcgen), load PEM files (rustls-pki-types), describe
//! certificates for people (x509-parser).

mod describe;
mod files;
mod generate;
mod load;

pub use describe::{describe, describe_brief, rfc3339, subject_cn};
pub use files::{
    certs_pem, key_pem, write_default, write_room, ROOM_POLICY_JSON, ROOM_POLICY_NAME,
};
pub use generate::{
    BrokerName, DefaultPki, PkiError, PkiOptions, Room, RoomDevice, BUTTON_SERIAL, BUTTON_THING,
    MAX_ROOM_DEVICES, NEIGHBOUR_SERIAL, NEIGHBOUR_THING,
};
pub use load::{load_certs, load_identity, load_key, parse_certs, parse_key, LoadError};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain (leaf first) and the private key of its leaf.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}
