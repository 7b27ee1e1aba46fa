//! PUBREL (MQTT 3.1.1 §3.6, MQTT 5 §3.6): second step of QoS 2, the publisher releases the
//! packet identifier.

super::ack::ack_packet!(PubRel);
