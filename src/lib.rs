//! iotls — watch a real mutual-TLS 1.2 + MQTT session between an IoT device and its broker.
//!
//! One engine ([`engine`]) runs a real session and records a [`trace::Trace`]; every view renders it.

pub mod engine;
pub mod export;
pub mod files;
pub mod json;
pub mod mqtt;
pub mod narrate;
pub mod pki;
pub mod policy;
pub mod render;
pub mod replay;
pub mod tls;
pub mod trace;
pub mod ui;
pub mod walkthrough;
pub mod wire;
