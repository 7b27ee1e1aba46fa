//! PUBCOMP (MQTT 3.1.1 §3.7, MQTT 5 §3.7): the last step of QoS 2, "complete".

super::ack::ack_packet!(PubComp);
