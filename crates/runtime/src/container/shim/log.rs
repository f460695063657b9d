//! Writes a container's stdout and stderr to a file in the CRI log format
//! (`<RFC 3339 nanos> stdout|stderr F|P <line>`), rotating by size with one old file kept.
//! Invariant: lines longer than [`MAX_LINE`] are split into `P` (partial) records ending in
//! one `F` record, so a reader can join them back.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::container::time::format_rfc3339_nanos;

/// The longest record body; longer lines are split (containerd uses the same 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// The log file, shared by the stdout and stderr readers.
#[derive(Debug)]
pub struct CriLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl CriLog {
    /// Opens (appends to) `path`; rotates to `<path>.1` when a record would pass `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(CriLog {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
        })
    }

    /// Appends one record.
    pub fn write_record(&mut self, stream: &str, partial: bool, body: &[u8]) -> io::Result<()> {
        let tag = if partial { "P" } else { "F" };
        let mut rec = format!(
            "{} {stream} {tag} ",
            format_rfc3339_nanos(SystemTime::now())
        )
        .into_bytes();
        rec.extend_from_slice(body);
        rec.push(b'\n');
        let len = rec.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&rec)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Copies `reader` into `log` as `stream` records until end of file.
pub fn pump(mut reader: impl BufRead, stream: &str, log: &Arc<Mutex<CriLog>>) -> io::Result<()> {
    let mut line: Vec<u8> = Vec::new();
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            if !line.is_empty() {
                emit(log, stream, false, &line)?;
            }
            return Ok(());
        }
        let room = MAX_LINE - line.len();
        let chunk = &avail[..avail.len().min(room)];
        if let Some(i) = chunk.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&chunk[..i]);
            reader.consume(i + 1);
            emit(log, stream, false, &line)?;
            line.clear();
        } else {
            let n = chunk.len();
            line.extend_from_slice(chunk);
            reader.consume(n);
            if line.len() == MAX_LINE {
                emit(log, stream, true, &line)?;
                line.clear();
            }
        }
    }
}

fn emit(log: &Arc<Mutex<CriLog>>, stream: &str, partial: bool, body: &[u8]) -> io::Result<()> {
    // A poisoned lock only means the other reader panicked mid-write; keep logging.
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    log.write_record(stream, partial, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &Path) -> Vec<(String, String, String)> {
        std::fs::read_to_string(path)
            .expect("read log")
            .lines()
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let ts = parts.next().expect("ts");
                assert!(crate::container::time::parse_rfc3339(ts).is_some(), "{ts}");
                let stream = parts.next().expect("stream").to_string();
                let tag = parts.next().expect("tag").to_string();
                (stream, tag, parts.next().unwrap_or("").to_string())
            })
            .collect()
    }

    #[test]
    fn lines_become_full_records_and_long_lines_partial_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(CriLog::open(&path, 1 << 20).expect("open")));
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("hello\n\n{long}\ntail");
        pump(
            io::BufReader::with_capacity(100, input.as_bytes()),
            "stderr",
            &log,
        )
        .expect("pump");
        let recs = records(&path);
        let bodies: Vec<(&str, usize)> =
            recs.iter().map(|(_, t, b)| (t.as_str(), b.len())).collect();
        assert_eq!(
            bodies,
            vec![("F", 5), ("F", 0), ("P", MAX_LINE), ("F", 10), ("F", 4)]
        );
        assert!(recs.iter().all(|(s, _, _)| s == "stderr"));
        assert_eq!(recs[0].2, "hello");
    }

    #[test]
    fn rotates_by_size_keeping_one_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let mut log = CriLog::open(&path, 200).expect("open");
        for i in 0..20 {
            log.write_record("stdout", false, format!("line {i}").as_bytes())
                .expect("write");
        }
        let cur = records(&path);
        let old = records(&dir.path().join("c.log.1"));
        assert_eq!(cur.last().expect("last").2, "line 19");
        assert!(std::fs::metadata(&path).expect("meta").len() <= 200);
        assert!(!old.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }
}
