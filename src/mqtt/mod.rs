//! MQTT wire decoding (codec glue around mqttbytes).
