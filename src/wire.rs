//! A byte reader for decoders of binary protocols (TLS handshake messages, MQTT packets).
//!
//! Positions are offsets into the slice the reader was made over, so a decoder can record where
//! each field sits. A read that would run past the end fails with an [`Error`] naming what was
//! being read, and leaves the position where it was.

use std::fmt;

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `needed` bytes were asked for, only `left` remained.
    Truncated { needed: usize, left: usize },
    /// A Variable Byte Integer (MQTT §1.5.5) whose fourth byte still says "more follow".
    VarintTooLong,
    /// A Variable Byte Integer written with more bytes than its value needs (MQTT 5 §1.5.5).
    VarintNotMinimal,
}

/// A failed read: what was being read, at which offset, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub what: &'static str,
    pub offset: usize,
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Error { what, offset, .. } = self;
        match self.kind {
            ErrorKind::Truncated { needed, left } => write!(
                f,
                "{what} at offset {offset} needs {needed} bytes, but only {left} are left"
            ),
            ErrorKind::VarintTooLong => write!(
                f,
                "{what} at offset {offset} continues past 4 bytes (at most 4 are allowed)"
            ),
            ErrorKind::VarintNotMinimal => write!(
                f,
                "{what} at offset {offset} uses more bytes than its value needs"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A cursor over a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    /// A reader over `b` that starts at `pos` (offsets stay those of `b`).
    pub fn starting_at(b: &'a [u8], pos: usize) -> Self {
        Reader { b, pos }
    }

    /// The current position: the offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn left(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// The whole slice the reader is over (offsets index into it).
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }

    fn truncated(&self, what: &'static str, needed: usize) -> Error {
        Error {
            what,
            offset: self.pos,
            kind: ErrorKind::Truncated {
                needed,
                left: self.left(),
            },
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
            .ok_or_else(|| self.truncated(what, n))?;
        self.pos += n;
        Ok(s)
    }

    /// Everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.b.get(self.pos..).unwrap_or_default();
        self.pos += s.len();
        s
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Big-endian (network order), like every integer below.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u24(&mut self, what: &'static str) -> Result<u32, Error> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// MQTT Variable Byte Integer (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5): 7 bits per byte, least
    /// significant first, high bit = more bytes follow; 1 to 4 bytes, in as few as the value needs.
    /// On error the position is unchanged.
    pub fn varint(&mut self, what: &'static str) -> Result<u32, Error> {
        let start = self.pos;
        let mut value = 0u32;
        for i in 0..4 {
            let Some(&byte) = self.b.get(start + i) else {
                return Err(Error {
                    what,
                    offset: start,
                    kind: ErrorKind::Truncated {
                        needed: i + 1,
                        left: self.left(),
                    },
                });
            };
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(Error {
                        what,
                        offset: start,
                        kind: ErrorKind::VarintNotMinimal,
                    });
                }
                self.pos = start + i + 1;
                return Ok(value);
            }
        }
        Err(Error {
            what,
            offset: start,
            kind: ErrorKind::VarintTooLong,
        })
    }

    /// A reader over the next `n` bytes, with the same offsets; `self` moves past them.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, Error> {
        let start = self.pos;
        self.take(n, what)?;
        Ok(Reader {
            b: &self.b[..start + n],
            pos: start,
        })
    }

    /// A vector with a one-byte length: `(offset of the length, total length, contents)`.
    pub fn lp8(&mut self, what: &'static str) -> Result<(usize, usize, &'a [u8]), Error> {
        let o = self.pos;
        let n = usize::from(self.u8(what)?);
        Ok((o, 1 + n, self.take(n, what)?))
    }

    /// A vector with a two-byte length: `(offset of the length, total length, contents)`.
    pub fn lp16(&mut self, what: &'static str) -> Result<(usize, usize, &'a [u8]), Error> {
        let o = self.pos;
        let n = usize::from(self.u16(what)?);
        Ok((o, 2 + n, self.take(n, what)?))
    }
}

/// Appends `v` as an MQTT Variable Byte Integer; `None` (and nothing written) when it is over
/// 268,435,455, the largest four bytes can hold.
pub fn put_varint(out: &mut Vec<u8>, mut v: usize) -> Option<()> {
    if v > VARINT_MAX {
        return None;
    }
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return Some(());
        }
        out.push(byte | 0x80);
    }
}

/// The largest value a Variable Byte Integer can hold.
pub const VARINT_MAX: usize = 268_435_455;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_positions_advance() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.u24("c"), Ok(0x040506));
        assert_eq!(r.offset(), 6);
        assert_eq!(r.u32("d"), Ok(0x0708090a));
        assert!(r.is_empty());
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn a_short_read_names_the_field_and_leaves_the_position() {
        let mut r = Reader::new(&[0, 5, 1, 2]);
        let e = r.lp16("topic").unwrap_err();
        assert_eq!(
            e,
            Error {
                what: "topic",
                offset: 2,
                kind: ErrorKind::Truncated { needed: 5, left: 2 }
            }
        );
        assert_eq!(
            e.to_string(),
            "topic at offset 2 needs 5 bytes, but only 2 are left"
        );
        assert_eq!(r.offset(), 2, "the length was read, the contents were not");
        assert!(r.take(usize::MAX, "huge").is_err());
        assert_eq!(r.rest(), &[1, 2]);
    }

    #[test]
    fn sub_readers_keep_offsets_and_stop_at_their_end() {
        let mut r = Reader::new(&[9, 1, 2, 3, 4]);
        r.u8("x").unwrap();
        let mut s = r.sub(2, "inner").unwrap();
        assert_eq!(r.offset(), 3);
        assert_eq!(s.offset(), 1);
        assert_eq!(s.u16("y"), Ok(0x0102));
        assert!(s.u8("z").is_err());
    }

    #[test]
    fn varints_of_the_specification() {
        // MQTT 5 §1.5.5, Table 1-1: the edges of each size.
        for (bytes, value) in [
            (&[0x00][..], 0),
            (&[0x7f], 127),
            (&[0x80, 0x01], 128),
            (&[0xff, 0x7f], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xff, 0xff, 0x7f], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xff, 0xff, 0xff, 0x7f], 268_435_455),
        ] {
            assert_eq!(Reader::new(bytes).varint("v"), Ok(value), "{bytes:02x?}");
            let mut out = Vec::new();
            put_varint(&mut out, value as usize).unwrap();
            assert_eq!(out, bytes);
        }
        let kind = |b: &[u8]| Reader::new(b).varint("v").unwrap_err().kind;
        assert_eq!(
            kind(&[0xff, 0xff, 0xff, 0xff, 0x01]),
            ErrorKind::VarintTooLong
        );
        assert_eq!(kind(&[0x80, 0x00]), ErrorKind::VarintNotMinimal);
        assert_eq!(
            kind(&[0x80, 0x80]),
            ErrorKind::Truncated { needed: 3, left: 2 }
        );
        assert_eq!(put_varint(&mut Vec::new(), VARINT_MAX + 1), None);
    }
}
