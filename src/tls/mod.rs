//! TLS 1.2 wire decoding: records, handshake messages, key derivation, record decryption.
