//! MQTT wire decoding (codec glue around mqttbytes).

pub mod codec;

pub use codec::{MqttStream, MAX_PACKET};
