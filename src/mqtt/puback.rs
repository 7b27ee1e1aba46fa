//! PUBACK (MQTT 3.1.1 §3.4, MQTT 5 §3.4): acknowledges a QoS 1 PUBLISH.

super::ack::ack_packet!(PubAck);
