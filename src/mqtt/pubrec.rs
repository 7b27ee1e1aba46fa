//! PUBREC (MQTT 3.1.1 §3.5, MQTT 5 §3.5): the first answer to a QoS 2 PUBLISH, "received".

super::ack::ack_packet!(PubRec);
