//! Certificates: generate (rcgen), load PEM, describe (x509-parser).
