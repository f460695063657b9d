//! The protobuf wire format: varints, keys and length-delimited slices, with offsets kept
//! relative to the whole request body so that errors point at the exact byte.

use super::ProtobufError;

/// The wire types Kubernetes uses (`I32` and groups never appear in its messages).
pub(super) const VARINT: u8 = 0;
pub(super) const I64: u8 = 1;
pub(super) const LEN: u8 = 2;

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the request body.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Offset of the next byte in the request body.
    pub(super) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(super) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::TruncatedVarint { offset: start });
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::MalformedVarint { offset: start })
    }

    /// A field key: (field number, wire type).
    pub(super) fn key(&mut self) -> Result<(u32, u8), ProtobufError> {
        let offset = self.offset();
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| ProtobufError::BadKey { offset })?;
        let wire = (key & 7) as u8;
        if tag == 0 {
            return Err(ProtobufError::BadKey { offset });
        }
        Ok((tag, wire))
    }

    /// A length-delimited payload, as a reader of its own; `field` names it in errors.
    pub(super) fn len_delimited(&mut self, field: &str) -> Result<Reader<'a>, ProtobufError> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| ProtobufError::Truncated {
                field: field.to_string(),
                offset: self.base + start,
            })?;
        self.pos = end;
        Ok(Reader::new(&self.buf[start..end], self.base + start))
    }

    /// The unread bytes.
    pub(super) fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(super) fn fixed64(&mut self, field: &str) -> Result<u64, ProtobufError> {
        let bytes = self.take(8, field)?;
        let mut arr = [0u8; 8];
        arr.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(arr))
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], ProtobufError> {
        let start = self.pos;
        if self.buf.len() - start < n {
            return Err(ProtobufError::Truncated {
                field: field.to_string(),
                offset: self.base + start,
            });
        }
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_multi_byte_and_negative_values() {
        let mut r = Reader::new(&[0xac, 0x02], 0);
        assert_eq!(r.varint().expect("varint"), 300);
        let mut neg = vec![0xff; 9];
        neg.push(0x01);
        let mut r = Reader::new(&neg, 0);
        assert_eq!(r.varint().expect("varint") as i64, -1);
    }

    #[test]
    fn truncated_varint_reports_its_offset() {
        let mut r = Reader::new(&[0x08, 0x96], 10);
        assert_eq!(r.key().expect("key"), (1, VARINT));
        let err = r.varint().expect_err("truncated");
        assert_eq!(err.to_string(), "truncated varint at offset 11");
    }
}
