//! Behaviour of the embedded WAL store seen through the `Store` trait: CAS rules, revisions,
//! range, watch, recovery, torn tails, snapshots, concurrency and survival of `kill -9`.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use gantry_store::{Event, Store, StoreError, WalStore, WalStoreConfig};

fn open(dir: &Path) -> Arc<WalStore> {
    WalStore::open(WalStoreConfig::new(dir)).unwrap()
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn cas_rules_and_monotonic_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = s.create("/a", val("1")).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (1, 1));
    assert!(matches!(
        s.create("/a", val("x")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let a2 = s.update("/a", val("2"), Some(1)).await.unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision), (1, 2));
    assert!(matches!(
        s.update("/a", val("3"), Some(1)).await,
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    assert!(matches!(
        s.update("/nope", val("3"), None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete("/a", Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    let (prev, rev) = s.delete("/a", Some(2)).await.unwrap();
    assert_eq!((&prev.value[..], rev), (&b"2"[..], 3));
    assert!(s.get("/a").is_none());
    // Failed writes consume no revision.
    assert_eq!(s.current_revision(), 3);
    let again = s.create("/a", val("new")).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
}

#[tokio::test]
async fn range_prefix_start_after_limit_more() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for k in ["/pods/a", "/pods/b", "/pods/c", "/podsx", "/svc/a"] {
        s.create(k, val("v")).await.unwrap();
    }
    let r = s.range("/pods/", None, 2);
    assert_eq!(
        r.kvs.iter().map(|kv| &*kv.key).collect::<Vec<_>>(),
        ["/pods/a", "/pods/b"]
    );
    assert!(r.more);
    assert_eq!(r.revision, 5);
    let r = s.range("/pods/", Some("/pods/b"), 2);
    assert_eq!(
        r.kvs.iter().map(|kv| &*kv.key).collect::<Vec<_>>(),
        ["/pods/c"]
    );
    assert!(!r.more);
    assert_eq!(s.count("/pods/"), 3);
}

#[tokio::test]
async fn watch_replays_then_follows_and_reports_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.create("/a/1", val("1")).await.unwrap();
    s.create("/b/1", val("1")).await.unwrap();
    s.update("/a/1", val("2"), None).await.unwrap();
    let mut w = s.watch("/a/", 0).unwrap();
    s.delete("/a/1", None).await.unwrap();
    let revs: Vec<i64> = [
        w.events.recv().await,
        w.events.recv().await,
        w.events.recv().await,
    ]
    .into_iter()
    .map(|e| e.unwrap().revision())
    .collect();
    assert_eq!(revs, [1, 3, 4]);
    assert!(w.events.try_recv().is_err());

    s.compact(3);
    assert_eq!(s.compacted_revision(), 3);
    assert!(matches!(
        s.watch("/", 2),
        Err(StoreError::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    let mut w = s.watch("/", 3).unwrap();
    assert!(matches!(
        w.events.recv().await,
        Some(Event::Delete { revision: 4, .. })
    ));
    assert!(matches!(
        s.watch("/", 9),
        Err(StoreError::FutureRevision {
            requested: 9,
            current: 4
        })
    ));
    // Starting at the current revision is always allowed, even when fully compacted.
    s.compact(4);
    assert!(s.watch("/", 4).is_ok());
}

#[tokio::test]
async fn dropping_the_store_closes_watches_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.create("/a", val("1")).await.unwrap();
    s.update("/a", val("2"), None).await.unwrap();
    s.create("/b", val("1")).await.unwrap();
    s.delete("/b", None).await.unwrap();
    let mut w = s.watch("/", 4).unwrap();
    drop(s);
    assert!(w.events.recv().await.is_none());

    let s = open(dir.path());
    assert_eq!(s.current_revision(), 4);
    let a = s.get("/a").unwrap();
    assert_eq!(
        (&a.value[..], a.create_revision, a.mod_revision),
        (&b"2"[..], 1, 2)
    );
    assert!(s.get("/b").is_none());
    // History since the last snapshot is rebuilt, so watches survive a restart.
    let mut w = s.watch("/", 1).unwrap();
    assert_eq!(w.events.recv().await.unwrap().revision(), 2);
    assert_eq!(s.create("/c", val("1")).await.unwrap().mod_revision, 5);
}

#[tokio::test]
async fn second_open_of_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _s = open(dir.path());
    assert!(matches!(
        WalStore::open(WalStoreConfig::new(dir.path())),
        Err(StoreError::Io(_))
    ));
}

#[tokio::test]
async fn torn_tail_is_truncated_and_earlier_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for i in 0..10 {
        s.create(&format!("/k{i}"), val("v")).await.unwrap();
    }
    drop(s);
    let log = log_files(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&log).unwrap().len();
    // A record header promising 500 bytes followed by only a few: a crash mid-append.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&500u32.to_le_bytes()).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
    drop(f);

    let s = open(dir.path());
    assert_eq!(s.current_revision(), 10);
    assert_eq!(s.count("/k"), 10);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good_len);
    assert_eq!(s.create("/k10", val("v")).await.unwrap().mod_revision, 11);
    drop(s);
    assert_eq!(open(dir.path()).current_revision(), 11);
}

#[tokio::test]
async fn corruption_in_the_middle_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for i in 0..10 {
        s.create(&format!("/k{i}"), val("value")).await.unwrap();
    }
    drop(s);
    let log = log_files(dir.path()).pop().unwrap();
    let mut data = std::fs::read(&log).unwrap();
    data[20] ^= 0xff;
    std::fs::write(&log, data).unwrap();
    match WalStore::open(WalStoreConfig::new(dir.path())) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("offset 0"), "{msg}"),
        other => panic!("expected corrupt, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn snapshot_bounds_the_log_and_reopen_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = WalStoreConfig::new(dir.path());
    config.snapshot_min_log_bytes = 4096;
    config.snapshot_ratio = 2;
    let s = WalStore::open(config.clone()).unwrap();
    // Rewrite 20 keys many times: the log grows, live data does not.
    for round in 0..50 {
        for k in 0..20 {
            let key = format!("/k{k:02}");
            let v = val(&format!("round {round} {}", "x".repeat(100)));
            if round == 0 {
                s.create(&key, v).await.unwrap();
            } else {
                s.update(&key, v, None).await.unwrap();
            }
        }
    }
    s.delete("/k00", None).await.unwrap();
    let before = s.range("/", None, 0);
    // Dropping waits for a snapshot still being written in the background.
    drop(s);
    std::fs::write(
        dir.path().join("snap.tmp"),
        b"half-written snapshot from a crash",
    )
    .unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".snap")).count(),
        1,
        "{names:?}"
    );
    assert_eq!(log_files(dir.path()).len(), 1, "{names:?}");
    let log_len = std::fs::metadata(&log_files(dir.path())[0]).unwrap().len();
    // Without snapshots the log would hold all 1 000 records (~140 KiB).
    assert!(log_len < 64 * 1024, "log not bounded: {log_len} bytes");

    let s = WalStore::open(config).unwrap();
    let after = s.range("/", None, 0);
    assert_eq!(after.revision, 1001);
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(s.get("/k05").unwrap().create_revision, 6);
    assert!(s.get("/k00").is_none());
    // History before the snapshot is gone after a restart; clients re-list.
    assert!(s.compacted_revision() > 0);
    assert!(matches!(s.watch("/", 0), Err(StoreError::Compacted { .. })));
    assert!(!dir.path().join("snap.tmp").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_all_acked_writes_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut tasks = Vec::new();
    for t in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..50 {
                let key = format!("/t{t}/{i}");
                let kv = s.create(&key, val("v")).await.unwrap();
                acked.push((key, kv.mod_revision));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let mut revs: Vec<i64> = acked.iter().map(|(_, r)| *r).collect();
    revs.sort_unstable();
    assert_eq!(
        revs,
        (1..=1600).collect::<Vec<_>>(),
        "every write got its own revision"
    );
    drop(s);
    let s = open(dir.path());
    for (key, rev) in acked {
        assert_eq!(s.get(&key).unwrap().mod_revision, rev, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_updates_are_serialisable() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.create("/counter", val("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for _ in 0..20 {
                loop {
                    let cur = s.get("/counter").unwrap();
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    match s
                        .update(
                            "/counter",
                            val(&(n + 1).to_string()),
                            Some(cur.mod_revision),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                wins += 1;
            }
            wins
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 320);
    assert_eq!(&s.get("/counter").unwrap().value[..], b"320");
}

/// Env var that turns `kill9_child` into the writer process of `kill9_acked_writes_survive`.
const CHILD_DIR_VAR: &str = "GANTRY_STORE_KILL9_DIR";

#[test]
fn kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let s = open(Path::new(&dir));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/t{t}/{i}");
                    let kv = s.create(&key, Bytes::from(vec![b'x'; 512])).await.unwrap();
                    println!("ACK {key} {}", kv.mod_revision);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn kill9_acked_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 2000 {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            acked.push(rest.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acks printed before the kill are still in the pipe.
    for line in lines {
        if let Some(rest) = line.unwrap().strip_prefix("ACK ") {
            acked.push(rest.to_owned());
        }
    }
    let s = open(dir.path());
    for ack in &acked {
        let (key, rev) = ack.split_once(' ').unwrap();
        let kv = s.get(key).unwrap_or_else(|| panic!("acked key {key} lost"));
        assert_eq!(kv.mod_revision, rev.parse::<i64>().unwrap(), "{key}");
    }
    assert!(s.current_revision() >= acked.len() as i64);
}
