//! iotls's MQTT codec (src/mqtt) over arbitrary bytes, as MQTT 3.1.1 and as MQTT 5.
//!
//! What decodes must encode, and decode again to the same packet (the bytes may differ: MQTT 5
//! has short forms that the encoder chooses). The framing agrees with the decoder, and the
//! streaming decoder the trace uses gives the same packets whichever way the bytes are cut.
#![no_main]

use iotls::mqtt::codec::MqttStream;
use iotls::mqtt::{frame, Packet, Version, MAX_PACKET};
use libfuzzer_sys::fuzz_target;

fn round_trip(bytes: &[u8], version: Version) {
    let Ok((packet, fields)) = Packet::decode(bytes, version) else {
        return;
    };
    for f in &fields.0 {
        assert!(
            f.offset <= bytes.len() && f.offset + f.len <= bytes.len(),
            "field {} outside the packet",
            f.name
        );
    }
    // A packet decodes only when it is exactly one framed packet.
    assert_eq!(frame(bytes, usize::MAX).ok().flatten(), Some(bytes.len()));
    let mut encoded = Vec::new();
    packet
        .encode(version, &mut encoded)
        .unwrap_or_else(|e| panic!("{packet:?} decoded but does not encode: {e:?}"));
    let (again, _) = Packet::decode(&encoded, version).unwrap_or_else(|e| {
        panic!("{packet:?} encoded as {encoded:02x?}, which does not decode: {e}")
    });
    assert_eq!(packet, again, "round trip changed the packet");
    let mut twice = Vec::new();
    again.encode(version, &mut twice).expect("encodes");
    assert_eq!(encoded, twice, "encoding is not deterministic");
}

fuzz_target!(|data: &[u8]| {
    round_trip(data, Version::V4);
    round_trip(data, Version::V5);
    let _ = frame(data, MAX_PACKET);

    // The stream, whole and cut at a point chosen by the first byte.
    let mut whole = MqttStream::new();
    let a = whole.push(data);
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut split = MqttStream::new();
    let mut b = split.push(&data[..cut]);
    b.extend(split.push(&data[cut..]));
    let names = |v: &[iotls::trace::MqttPacket]| -> Vec<String> {
        v.iter()
            .map(|p| format!("{:?} {:?}", p.packet, p.code))
            .collect()
    };
    assert_eq!(names(&a), names(&b), "the stream depends on the cut");
});
