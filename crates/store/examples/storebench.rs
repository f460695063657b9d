//! Durable-create throughput and latency of `WalStore`, with group commit on and off.
//!
//! Run: `cargo run --release -p gantry-store --example storebench [SECONDS] [DIR]`
//! (default 3 s per case, a temp dir under the system temp dir). Each case opens a fresh
//! store and runs N tasks that create unique keys with 1 KiB values for the given time.
//! A second part rewrites 20 000 keys with 64 writers long enough to trigger snapshots, and
//! reports the worst write latency (the snapshot stall) and the time to reopen the store.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gantry_store::{Store, WalStore, WalStoreConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args
        .next()
        .map_or(3.0, |s| s.parse().expect("SECONDS must be a number"));
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| mode | writers | creates/s | p50 ms | p99 ms | writes per fsync |");
    println!("|---|---:|---:|---:|---:|---:|");
    for group_commit in [true, false] {
        for writers in [1usize, 16, 64] {
            let dir = tempfile::tempdir_in(&base).unwrap();
            let mut config = WalStoreConfig::new(dir.path());
            config.group_commit = group_commit;
            let store = WalStore::open(config).unwrap();
            let (ops, mut lat) =
                rt.block_on(run(store.clone(), writers, Duration::from_secs_f64(secs)));
            let per_sync = ops as f64 / store.log_syncs().max(1) as f64;
            lat.sort_unstable();
            let pct = |p: f64| {
                lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3
            };
            let mode = if group_commit {
                "group commit"
            } else {
                "fsync per write"
            };
            println!(
                "| {mode} | {writers} | {:.0} | {:.2} | {:.2} | {per_sync:.1} |",
                ops as f64 / secs,
                pct(0.50),
                pct(0.99)
            );
        }
    }
    snapshot_and_recovery(&rt, &base, secs);
}

fn snapshot_and_recovery(rt: &tokio::runtime::Runtime, base: &std::path::Path, secs: f64) {
    const KEYS: usize = 20_000;
    let dir = tempfile::tempdir_in(base).unwrap();
    let store = WalStore::open(WalStoreConfig::new(dir.path())).unwrap();
    let value = Bytes::from(vec![b'y'; 1024]);
    let (ops, mut lat) = rt.block_on(async {
        for i in 0..KEYS {
            store
                .create(&format!("/registry/snap/{i:06}"), value.clone())
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs_f64(secs * 2.0);
        let mut tasks = Vec::new();
        for w in 0..64 {
            let store = store.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w * 997;
                while Instant::now() < deadline {
                    let key = format!("/registry/snap/{:06}", i % KEYS);
                    let start = Instant::now();
                    store.update(&key, value.clone(), None).await.unwrap();
                    lat.push(start.elapsed());
                    i += 64;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all.len(), all)
    });
    lat.sort_unstable();
    let snaps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snap")
        })
        .count();
    let log_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let revision = store.current_revision();
    drop(store);
    let start = Instant::now();
    let store = WalStore::open(WalStoreConfig::new(dir.path())).unwrap();
    let reopen = start.elapsed();
    assert_eq!(store.current_revision(), revision);
    println!();
    println!(
        "rewrite {KEYS} x 1 KiB keys, 64 writers: {:.0} updates/s, p99 {:.2} ms, max {:.1} ms, \
         snapshot present: {}, log now {:.1} MiB; reopen (snapshot + log replay) {:.0} ms",
        ops as f64 / (secs * 2.0),
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3,
        snaps > 0,
        log_bytes as f64 / (1 << 20) as f64,
        reopen.as_secs_f64() * 1e3,
    );
}

async fn run(store: Arc<WalStore>, writers: usize, time: Duration) -> (u64, Vec<Duration>) {
    let value = Bytes::from(vec![b'x'; 1024]);
    let deadline = Instant::now() + time;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let key = format!("/registry/bench/w{w}/{i:010}");
                let start = Instant::now();
                store.create(&key, value.clone()).await.unwrap();
                lat.push(start.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all.len() as u64, all)
}
