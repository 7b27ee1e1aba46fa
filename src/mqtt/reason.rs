//! Return codes (MQTT 3.1.1) and reason codes (MQTT 5 §2.4), in words, and which packet may
//! carry which.

use super::{PacketType, Version};

/// The words for a code in a packet of type `ty`, or `None` when that packet cannot carry it.
pub fn name(code: u8, ty: PacketType, version: Version) -> Option<&'static str> {
    match version {
        Version::V4 => v4_name(code, ty),
        Version::V5 => v5_name(code, ty),
    }
}

/// `0x87 Not authorized`; `0x42 unknown` for a code `ty` cannot carry.
pub fn words(code: u8, ty: PacketType, version: Version) -> String {
    format!(
        "0x{code:02x} {}",
        name(code, ty, version).unwrap_or("unknown")
    )
}

fn v4_name(code: u8, ty: PacketType) -> Option<&'static str> {
    Some(match (ty, code) {
        // MQTT 3.1.1 §3.2.2.3.
        (PacketType::ConnAck, 0x00) => "Connection Accepted",
        (PacketType::ConnAck, 0x01) => "Connection Refused, unacceptable protocol version",
        (PacketType::ConnAck, 0x02) => "Connection Refused, identifier rejected",
        (PacketType::ConnAck, 0x03) => "Connection Refused, Server unavailable",
        (PacketType::ConnAck, 0x04) => "Connection Refused, bad user name or password",
        (PacketType::ConnAck, 0x05) => "Connection Refused, not authorized",
        // MQTT 3.1.1 §3.9.3.
        (PacketType::SubAck, 0x00) => "Success - Maximum QoS 0",
        (PacketType::SubAck, 0x01) => "Success - Maximum QoS 1",
        (PacketType::SubAck, 0x02) => "Success - Maximum QoS 2",
        (PacketType::SubAck, 0x80) => "Failure",
        _ => return None,
    })
}

/// Which reason codes each packet may carry (MQTT 5 §3.x.2.1 of each packet), by code.
fn v5_allowed(code: u8, ty: PacketType) -> bool {
    use PacketType::*;
    let list: &[u8] = match ty {
        ConnAck => &[
            0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90,
            0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
        ],
        PubAck | PubRec => &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
        PubRel | PubComp => &[0x00, 0x92],
        SubAck => &[
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2,
        ],
        UnsubAck => &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
        Disconnect => &[
            0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93,
            0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1,
            0xa2,
        ],
        Auth => &[0x00, 0x18, 0x19],
        _ => &[],
    };
    list.contains(&code)
}

fn v5_name(code: u8, ty: PacketType) -> Option<&'static str> {
    if !v5_allowed(code, ty) {
        return None;
    }
    // MQTT 5 §2.4, Table 2-6.
    Some(match (code, ty) {
        (0x00, PacketType::Disconnect) => "Normal disconnection",
        (0x00, PacketType::SubAck) => "Granted QoS 0",
        (0x00, _) => "Success",
        (0x01, _) => "Granted QoS 1",
        (0x02, _) => "Granted QoS 2",
        (0x04, _) => "Disconnect with Will Message",
        (0x10, _) => "No matching subscribers",
        (0x11, _) => "No subscription existed",
        (0x18, _) => "Continue authentication",
        (0x19, _) => "Re-authenticate",
        (0x80, _) => "Unspecified error",
        (0x81, _) => "Malformed Packet",
        (0x82, _) => "Protocol Error",
        (0x83, _) => "Implementation specific error",
        (0x84, _) => "Unsupported Protocol Version",
        (0x85, _) => "Client Identifier not valid",
        (0x86, _) => "Bad User Name or Password",
        (0x87, _) => "Not authorized",
        (0x88, _) => "Server unavailable",
        (0x89, _) => "Server busy",
        (0x8a, _) => "Banned",
        (0x8b, _) => "Server shutting down",
        (0x8c, _) => "Bad authentication method",
        (0x8d, _) => "Keep Alive timeout",
        (0x8e, _) => "Session taken over",
        (0x8f, _) => "Topic Filter invalid",
        (0x90, _) => "Topic Name invalid",
        (0x91, _) => "Packet Identifier in use",
        (0x92, _) => "Packet Identifier not found",
        (0x93, _) => "Receive Maximum exceeded",
        (0x94, _) => "Topic Alias invalid",
        (0x95, _) => "Packet too large",
        (0x96, _) => "Message rate too high",
        (0x97, _) => "Quota exceeded",
        (0x98, _) => "Administrative action",
        (0x99, _) => "Payload format invalid",
        (0x9a, _) => "Retain not supported",
        (0x9b, _) => "QoS not supported",
        (0x9c, _) => "Use another server",
        (0x9d, _) => "Server moved",
        (0x9e, _) => "Shared Subscriptions not supported",
        (0x9f, _) => "Connection rate exceeded",
        (0xa0, _) => "Maximum connect time",
        (0xa1, _) => "Subscription Identifiers not supported",
        (0xa2, _) => "Wildcard Subscriptions not supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_v5_code_has_a_name() {
        use PacketType::*;
        for ty in [
            ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth,
        ] {
            for c in 0..=255u8 {
                assert_eq!(
                    v5_allowed(c, ty),
                    v5_name(c, ty).is_some(),
                    "{ty:?} 0x{c:02x}"
                );
            }
        }
        assert_eq!(words(0x87, PubAck, Version::V5), "0x87 Not authorized");
        assert_eq!(words(0x87, PubRel, Version::V5), "0x87 unknown");
        assert_eq!(
            words(0x05, ConnAck, Version::V4),
            "0x05 Connection Refused, not authorized"
        );
    }
}
