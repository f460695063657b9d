//! Reading a container's CRI-format log (`<RFC3339Nano> <stream> <P|F> <content>`) the way
//! `kubectl logs` asks for it: all or the last N lines, since a time, with or without
//! timestamps, capped in bytes, and followed while the container runs.
//!
//! Partial records (`P`) are joined with the following ones into one line, as the kubelet does.
//! The rotated file (`<log>.1`) is read before the current one so no line is skipped.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::time::parse_rfc3339;

/// What part of the log to return.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new lines until the container stops.
    pub follow: bool,
    /// Only the last N lines (of what exists when the request starts).
    pub tail_lines: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: String,
    pub stream: String,
    pub content: Vec<u8>,
}

/// Parses complete CRI records from `data`, joining partial records. Returns the lines and
/// how many bytes were consumed (an unfinished last record is left for the next read).
pub fn parse(data: &[u8]) -> (Vec<LogLine>, usize) {
    let mut lines = Vec::new();
    let mut pending: Option<LogLine> = None;
    let mut consumed = 0;
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|b| *b == b'\n') {
        let record = &data[pos..pos + nl];
        pos += nl + 1;
        let mut parts = record.splitn(4, |b| *b == b' ');
        let (Some(ts), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let content = parts.next().unwrap_or(b"");
        let line = pending.get_or_insert_with(|| LogLine {
            timestamp: String::from_utf8_lossy(ts).into_owned(),
            stream: String::from_utf8_lossy(stream).into_owned(),
            content: Vec::new(),
        });
        line.content.extend_from_slice(content);
        if tag != b"P" {
            if let Some(done) = pending.take() {
                lines.push(done);
            }
            consumed = pos;
        }
    }
    (lines, consumed)
}

/// Renders lines as `kubectl logs` prints them.
pub fn render(lines: &[LogLine], opts: &LogOptions, out: &mut Vec<u8>) {
    for l in lines {
        if let Some(since) = opts.since {
            if parse_rfc3339(&l.timestamp).is_some_and(|t| t < since) {
                continue;
            }
        }
        if opts.timestamps {
            out.extend_from_slice(l.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&l.content);
        out.push(b'\n');
    }
}

/// Streams the log at `path` into `sink` per `opts`. With `follow`, keeps reading until
/// `running()` turns false and the file holds nothing new. Returns when done or when the
/// receiver is gone (the client went away).
pub async fn stream(
    path: &Path,
    opts: &LogOptions,
    mut running: impl FnMut() -> bool,
    sink: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    let mut budget = opts.limit_bytes.unwrap_or(u64::MAX);
    // What exists now: the rotated file, then the current one.
    let mut existing = Vec::new();
    let rotated = rotated_path(path);
    if let Ok(old) = tokio::fs::read(&rotated).await {
        existing.extend_from_slice(&old);
    }
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut offset = 0u64;
    if let Some(f) = file.as_mut() {
        let start = existing.len();
        f.read_to_end(&mut existing).await?;
        offset = (existing.len() - start) as u64;
    }
    let (mut lines, consumed) = parse(&existing);
    let mut carry = existing[consumed..].to_vec();
    // A partial tail of the current file is re-read on the next poll.
    offset -= carry.len().min(offset as usize) as u64;
    carry.clear();
    if let Some(n) = opts.tail_lines {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut out = Vec::new();
    render(&lines, opts, &mut out);
    if !emit(sink, out, &mut budget).await || !opts.follow {
        return Ok(());
    }
    loop {
        let alive = running();
        let mut grew = false;
        if file.is_none() {
            file = tokio::fs::File::open(path).await.ok();
            offset = 0;
        }
        if let Some(f) = file.as_mut() {
            let len = f.metadata().await?.len();
            if len < offset {
                // Rotated: the new file starts from the beginning.
                offset = 0;
                *f = tokio::fs::File::open(path).await?;
            }
            if len > offset {
                f.seek(io::SeekFrom::Start(offset)).await?;
                let mut chunk = Vec::new();
                f.read_to_end(&mut chunk).await?;
                let (lines, used) = parse(&chunk);
                offset += used as u64;
                grew = used > 0;
                let mut out = Vec::new();
                render(
                    &lines,
                    &LogOptions {
                        since: None,
                        ..opts.clone()
                    },
                    &mut out,
                );
                if !emit(sink, out, &mut budget).await {
                    return Ok(());
                }
            }
        }
        if !alive && !grew {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn emit(
    sink: &tokio::sync::mpsc::Sender<Vec<u8>>,
    mut out: Vec<u8>,
    budget: &mut u64,
) -> bool {
    if out.is_empty() {
        return *budget > 0;
    }
    if (out.len() as u64) > *budget {
        out.truncate(*budget as usize);
    }
    *budget -= out.len() as u64;
    sink.send(out).await.is_ok() && *budget > 0
}

fn rotated_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-01-02T03:04:05.000000001Z stdout F one\n\
2026-01-02T03:04:06.000000001Z stderr P tw\n\
2026-01-02T03:04:06.000000002Z stderr F o\n\
2026-01-02T03:04:07.000000001Z stdout F three\n\
2026-01-02T03:04:08.000000001Z stdout P unfini";

    #[test]
    fn partial_records_join_and_unfinished_tails_wait() {
        let (lines, used) = parse(LOG);
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.content).into_owned())
            .collect();
        assert_eq!(text, vec!["one", "two", "three"]);
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(
            &LOG[used..],
            b"2026-01-02T03:04:08.000000001Z stdout P unfini"
        );
    }

    #[test]
    fn since_and_timestamps_shape_the_output() {
        let (lines, _) = parse(LOG);
        let mut out = Vec::new();
        let since = parse_rfc3339("2026-01-02T03:04:06Z");
        render(
            &lines,
            &LogOptions {
                since,
                timestamps: true,
                ..LogOptions::default()
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2026-01-02T03:04:06.000000001Z two\n2026-01-02T03:04:07.000000001Z three\n"
        );
    }

    async fn collect(path: &Path, opts: &LogOptions, running: impl FnMut() -> bool) -> String {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(chunk) = rx.recv().await {
                got.extend(chunk);
            }
            got
        });
        stream(path, opts, running, &tx).await.expect("stream");
        drop(tx);
        String::from_utf8_lossy(&reader.await.expect("reader")).into_owned()
    }

    #[tokio::test]
    async fn tail_and_limit_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).expect("write");
        let opts = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(collect(&path, &opts, || false).await, "two\nthree\n");
        let opts = LogOptions {
            limit_bytes: Some(5),
            ..LogOptions::default()
        };
        assert_eq!(collect(&path, &opts, || false).await, "one\nt");
    }

    #[tokio::test]
    async fn follow_sees_lines_written_later_and_ends_when_the_container_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, b"2026-01-02T03:04:05Z stdout F first\n").expect("write");
        let writer_path = path.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut data = std::fs::read(&writer_path).expect("read");
            data.extend_from_slice(b"2026-01-02T03:04:06Z stdout F second\n");
            std::fs::write(&writer_path, data).expect("write");
        });
        let started = std::time::Instant::now();
        let opts = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let got = collect(&path, &opts, || {
            started.elapsed() < Duration::from_millis(600)
        })
        .await;
        writer.await.expect("writer");
        assert_eq!(got, "first\nsecond\n");
    }
}
