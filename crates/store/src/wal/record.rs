//! On-disk framing shared by the log and the snapshot: `[len u32 LE][crc32 u32 LE][payload]`,
//! plus the payload layouts of log records and snapshot entries.
//!
//! Invariant: only the tail of a file may be torn (a crash mid-append); [`Frames`] reports a bad
//! record as `Torn` only when nothing valid can follow it, and as `Corrupt` otherwise.

use std::sync::Arc;

use bytes::Bytes;

/// Bytes before each payload: length then CRC32 of the payload.
pub(crate) const HEADER_LEN: usize = 8;
/// Largest payload accepted; a bigger length field is damage, not data.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;
/// The writer stops adding records to a batch past this many bytes, so a torn tail (one
/// unfinished append) can never be longer than this plus one record.
pub(crate) const MAX_BATCH_BYTES: usize = 8 << 20;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const SNAPSHOT_MAGIC: &[u8; 8] = b"GSNAP001";

/// What a log record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogOp {
    Put,
    Delete,
}

/// One decoded log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRecord {
    pub op: LogOp,
    pub revision: i64,
    pub key: Arc<str>,
    pub value: Bytes,
}

/// One decoded snapshot entry: a live key with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotEntry {
    pub key: Arc<str>,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// One step of walking the frames of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Record {
        offset: usize,
        payload: &'a [u8],
    },
    /// A partial or damaged final append starting at `offset`: truncate it away.
    Torn {
        offset: usize,
    },
    /// A damaged record with data after it: the file cannot be trusted.
    Corrupt {
        offset: usize,
        reason: &'static str,
    },
}

/// Iterates the frames of `data`, ending after the first `Torn` or `Corrupt`.
pub(crate) struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Frames {
            data,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.done || self.pos == self.data.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.data[offset..];
        let frame = classify(rest, offset);
        match frame {
            Frame::Record { payload, .. } => self.pos += HEADER_LEN + payload.len(),
            _ => self.done = true,
        }
        Some(frame)
    }
}

/// Appends one framed log record to `buf`.
pub(crate) fn encode_log(buf: &mut Vec<u8>, op: LogOp, revision: i64, key: &str, value: &[u8]) {
    let start = begin(buf);
    buf.push(match op {
        LogOp::Put => OP_PUT,
        LogOp::Delete => OP_DELETE,
    });
    buf.extend_from_slice(&revision.to_le_bytes());
    put_bytes(buf, key.as_bytes());
    buf.extend_from_slice(value);
    finish(buf, start);
}

/// Decodes a log payload; `None` when its layout is wrong.
pub(crate) fn decode_log(payload: &[u8]) -> Option<LogRecord> {
    let (&op, rest) = payload.split_first()?;
    let op = match op {
        OP_PUT => LogOp::Put,
        OP_DELETE => LogOp::Delete,
        _ => return None,
    };
    let (revision, rest) = take_i64(rest)?;
    let (key, value) = take_bytes(rest)?;
    let key: Arc<str> = Arc::from(std::str::from_utf8(key).ok()?);
    Some(LogRecord {
        op,
        revision,
        key,
        value: Bytes::copy_from_slice(value),
    })
}

/// Appends the framed snapshot header (magic, revision, entry count) to `buf`.
pub(crate) fn encode_snapshot_header(buf: &mut Vec<u8>, revision: i64, count: u64) {
    let start = begin(buf);
    buf.extend_from_slice(SNAPSHOT_MAGIC);
    buf.extend_from_slice(&revision.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    finish(buf, start);
}

/// Decodes a snapshot header payload into (revision, entry count).
pub(crate) fn decode_snapshot_header(payload: &[u8]) -> Option<(i64, u64)> {
    let rest = payload.strip_prefix(SNAPSHOT_MAGIC.as_slice())?;
    let (revision, rest) = take_i64(rest)?;
    let count = u64::from_le_bytes(rest.try_into().ok()?);
    Some((revision, count))
}

/// Appends one framed snapshot entry to `buf`.
pub(crate) fn encode_snapshot_entry(
    buf: &mut Vec<u8>,
    key: &str,
    value: &[u8],
    create_revision: i64,
    mod_revision: i64,
) {
    let start = begin(buf);
    buf.extend_from_slice(&create_revision.to_le_bytes());
    buf.extend_from_slice(&mod_revision.to_le_bytes());
    put_bytes(buf, key.as_bytes());
    buf.extend_from_slice(value);
    finish(buf, start);
}

/// Decodes a snapshot entry payload; `None` when its layout is wrong.
pub(crate) fn decode_snapshot_entry(payload: &[u8]) -> Option<SnapshotEntry> {
    let (create_revision, rest) = take_i64(payload)?;
    let (mod_revision, rest) = take_i64(rest)?;
    let (key, value) = take_bytes(rest)?;
    let key: Arc<str> = Arc::from(std::str::from_utf8(key).ok()?);
    Some(SnapshotEntry {
        key,
        value: Bytes::copy_from_slice(value),
        create_revision,
        mod_revision,
    })
}

/// Decides what the bytes at the start of `rest` (at file `offset`) are.
fn classify(rest: &[u8], offset: usize) -> Frame<'_> {
    // A torn append is at most one batch long; anything longer that fails to parse is damage
    // in the middle of the file, which must not be silently truncated away.
    let tail_may_be_torn = rest.len() <= MAX_BATCH_BYTES + MAX_RECORD_BYTES + HEADER_LEN;
    let torn_or = |reason| {
        if tail_may_be_torn {
            Frame::Torn { offset }
        } else {
            Frame::Corrupt { offset, reason }
        }
    };
    if rest.len() < HEADER_LEN {
        return torn_or("truncated record header");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        if rest.iter().all(|&b| b == 0) {
            return torn_or("zeroed tail");
        }
        return Frame::Corrupt {
            offset,
            reason: "invalid record length",
        };
    }
    let end = HEADER_LEN + len;
    if end > rest.len() {
        return torn_or("record extends past end of file");
    }
    let payload = &rest[HEADER_LEN..end];
    if crc32fast::hash(payload) != crc {
        if rest[end..].iter().all(|&b| b == 0) {
            return torn_or("checksum mismatch in final record");
        }
        return Frame::Corrupt {
            offset,
            reason: "checksum mismatch",
        };
    }
    Frame::Record { offset, payload }
}

fn begin(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let payload = &buf[start + HEADER_LEN..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(bytes);
}

fn take_i64(data: &[u8]) -> Option<(i64, &[u8])> {
    let (head, rest) = data.split_at_checked(8)?;
    Some((i64::from_le_bytes(head.try_into().ok()?), rest))
}

/// Splits a u32-length-prefixed field off the front; returns (field, rest).
fn take_bytes(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (head, rest) = data.split_at_checked(4)?;
    let len = u32::from_le_bytes(head.try_into().ok()?) as usize;
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_records() -> Vec<u8> {
        let mut buf = Vec::new();
        encode_log(&mut buf, LogOp::Put, 1, "/a", b"one");
        encode_log(&mut buf, LogOp::Delete, 2, "/a", b"");
        buf
    }

    fn payloads(data: &[u8]) -> Vec<Frame<'_>> {
        Frames::new(data).collect()
    }

    #[test]
    fn log_records_round_trip() {
        let buf = two_records();
        let frames = payloads(&buf);
        assert_eq!(frames.len(), 2);
        let Frame::Record { payload, .. } = frames[0] else {
            panic!("not a record")
        };
        let rec = decode_log(payload).expect("decodes");
        assert_eq!(rec.op, LogOp::Put);
        assert_eq!(rec.revision, 1);
        assert_eq!(&*rec.key, "/a");
        assert_eq!(&rec.value[..], b"one");
    }

    #[test]
    fn half_written_tail_is_torn() {
        let mut buf = two_records();
        let good = buf.len();
        encode_log(&mut buf, LogOp::Put, 3, "/b", b"half");
        buf.truncate(buf.len() - 3);
        let frames = payloads(&buf);
        assert_eq!(frames.last(), Some(&Frame::Torn { offset: good }));
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut buf = two_records();
        let good = buf.len();
        buf.extend_from_slice(&[0u8; 100]);
        assert_eq!(payloads(&buf).last(), Some(&Frame::Torn { offset: good }));
    }

    #[test]
    fn flipped_byte_in_the_middle_is_corrupt() {
        let mut buf = two_records();
        buf[HEADER_LEN + 2] ^= 0xff;
        let frames = payloads(&buf);
        assert!(
            matches!(frames[0], Frame::Corrupt { offset: 0, .. }),
            "{frames:?}"
        );
    }

    #[test]
    fn bad_checksum_on_final_record_is_torn() {
        let mut buf = two_records();
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        let frames = payloads(&buf);
        assert!(
            matches!(frames.last(), Some(Frame::Torn { .. })),
            "{frames:?}"
        );
    }

    #[test]
    fn snapshot_entries_round_trip() {
        let mut buf = Vec::new();
        encode_snapshot_header(&mut buf, 42, 1);
        encode_snapshot_entry(&mut buf, "/k", b"v", 3, 40);
        let frames = payloads(&buf);
        let Frame::Record { payload, .. } = frames[0] else {
            panic!("not a record")
        };
        assert_eq!(decode_snapshot_header(payload), Some((42, 1)));
        let Frame::Record { payload, .. } = frames[1] else {
            panic!("not a record")
        };
        let e = decode_snapshot_entry(payload).expect("decodes");
        assert_eq!(
            (&*e.key, &e.value[..], e.create_revision, e.mod_revision),
            ("/k", &b"v"[..], 3, 40)
        );
    }
}
