//! Side-by-side costs of `WalStore`, SQLite and redb for ADR 0001: durable creates of 1 KiB
//! values with 1, 16 and 64 concurrent writers, then point reads and a 10 000-key prefix range.
//!
//! Run: `cargo run --release -p gantry-store --example engines [SECONDS] [DIR]`
//! (default 3 s per write case, a fresh temp dir under DIR or the system temp dir per case).
//!
//! Every engine acknowledges a create only once it is durable, and every create also bumps a
//! global revision stored with the key (what an etcd-shaped store must do):
//! - `WalStore`: the real store, group commit (one `fdatasync` per batch).
//! - SQLite: WAL journal, `synchronous=FULL` (the WAL is synced at every commit), one
//!   `BEGIN IMMEDIATE` transaction per create; either one connection shared through a mutex,
//!   or one connection per writer (SQLite serialises them with its own lock and busy timeout).
//!   "batched" is group commit done by hand: a writer thread puts everything queued into one
//!   transaction.
//! - redb: one write transaction per create with `Durability::Immediate`, or batched the
//!   same way.
//!
//! Writers of `WalStore` are tokio tasks (its API is async); writers of SQLite and redb are OS
//! threads (their APIs block; an async server would put them on `spawn_blocking` threads).

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use bytes::Bytes;
use gantry_store::{Store, WalStore, WalStoreConfig};
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};
use rusqlite::{params, Connection, TransactionBehavior};

const VALUE: [u8; 1024] = [b'x'; 1024];
const WRITERS: [usize; 3] = [1, 16, 64];
/// Largest batch a hand-made group commit takes, as `WalStore` does.
const MAX_BATCH: usize = 8192;
const RANGE_PREFIX: &str = "/registry/range/";
const RANGE_KEYS: usize = 10_000;
/// Keys outside the range prefix, so that the range has to seek past other data.
const OTHER_KEYS: usize = 20_000;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: f64 = match args.next() {
        Some(s) => s.parse().context("SECONDS must be a number")?,
        None => 3.0,
    };
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let time = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;

    println!(
        "durable creates of 1 KiB values, {secs} s per case, dir {}",
        base.display()
    );
    println!();
    println!("| engine | writers | creates/s | p50 ms | p99 ms | max ms | writes per commit |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let kinds = [
        Kind::SqliteShared,
        Kind::SqlitePerWriter,
        Kind::SqliteBatched,
        Kind::Redb,
        Kind::RedbBatched,
    ];
    // Writer count outermost, so that the engines compared at one count ran within a minute
    // of each other: the shared disk's fsync latency drifts over minutes.
    for writers in WRITERS {
        let dir = tempfile::tempdir_in(&base).context("failed to create a temp dir")?;
        let store = WalStore::open(WalStoreConfig::new(dir.path()))?;
        let sample = rt.block_on(wal_writes(store.clone(), writers, time))?;
        sample.print("WalStore (group commit)", writers, store.log_syncs());
        drop(store);
        for kind in kinds {
            let dir = tempfile::tempdir_in(&base).context("failed to create a temp dir")?;
            let engine = Engine::open(kind, dir.path(), writers)?;
            let sample = thread_writes(&engine, writers, time)?;
            sample.print(kind.name(), writers, engine.commits());
        }
    }
    println!();
    println!(
        "reads: {RANGE_KEYS} keys under {RANGE_PREFIX} among {} keys of 1 KiB; one thread",
        RANGE_KEYS + OTHER_KEYS
    );
    println!();
    println!("| engine | point reads/s | p50 µs | p99 µs | {RANGE_KEYS}-key range p50 ms |");
    println!("|---|---:|---:|---:|---:|");
    let keys = read_keys();
    {
        let dir = tempfile::tempdir_in(&base).context("failed to create a temp dir")?;
        let store = WalStore::open(WalStoreConfig::new(dir.path()))?;
        rt.block_on(wal_load(&store, &keys))?;
        let reads = measure_reads(
            &keys,
            |key| Ok(store.get(key).map_or(0, |kv| kv.value.len())),
            |prefix| Ok(store.range(prefix, None, 0).kvs.len()),
        )?;
        reads.print("WalStore");
    }
    for kind in [Kind::SqliteShared, Kind::Redb] {
        let dir = tempfile::tempdir_in(&base).context("failed to create a temp dir")?;
        let engine = Engine::open(kind, dir.path(), 1)?;
        for chunk in keys.chunks(1000) {
            let batch: Vec<(String, Vec<u8>)> =
                chunk.iter().map(|k| (k.clone(), VALUE.to_vec())).collect();
            let created = engine.commit_batch(&batch)?;
            ensure!(created.iter().all(|c| *c), "preload found an existing key");
        }
        let reads = measure_reads(&keys, |key| engine.get(key), |p| engine.range(p))?;
        reads.print(kind.engine());
    }
    Ok(())
}

/// Latencies of one write case.
struct Sample {
    lat: Vec<Duration>,
    elapsed: Duration,
}

impl Sample {
    fn print(mut self, name: &str, writers: usize, commits: u64) {
        self.lat.sort_unstable();
        let ops = self.lat.len();
        println!(
            "| {name} | {writers} | {:.0} | {:.2} | {:.2} | {:.0} | {:.1} |",
            ops as f64 / self.elapsed.as_secs_f64(),
            percentile(&self.lat, 0.50).as_secs_f64() * 1e3,
            percentile(&self.lat, 0.99).as_secs_f64() * 1e3,
            percentile(&self.lat, 1.0).as_secs_f64() * 1e3,
            ops as f64 / commits.max(1) as f64,
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn bench_key(writer: usize, i: u64) -> String {
    format!("/registry/bench/w{writer}/{i:010}")
}

async fn wal_writes(store: Arc<WalStore>, writers: usize, time: Duration) -> Result<Sample> {
    let value = Bytes::from_static(&VALUE);
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let key = bench_key(w, i);
                let t = Instant::now();
                store.create(&key, value.clone()).await?;
                lat.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.context("writer task panicked")??);
    }
    Ok(Sample {
        lat,
        elapsed: start.elapsed(),
    })
}

fn thread_writes(engine: &Engine, writers: usize, time: Duration) -> Result<Sample> {
    let start = Instant::now();
    let deadline = start + time;
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let key = bench_key(w, i);
                        let t = Instant::now();
                        let created = engine.create(w, key)?;
                        lat.push(t.elapsed());
                        ensure!(created, "benchmark key already existed");
                        i += 1;
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("writer thread panicked"))?)
            .collect()
    });
    let elapsed = start.elapsed();
    let mut lat = Vec::new();
    for r in results {
        lat.extend(r?);
    }
    Ok(Sample { lat, elapsed })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    SqliteShared,
    SqlitePerWriter,
    SqliteBatched,
    Redb,
    RedbBatched,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SqliteShared => "SQLite, txn per write, shared connection",
            Kind::SqlitePerWriter => "SQLite, txn per write, connection per writer",
            Kind::SqliteBatched => "SQLite, batched by a writer thread",
            Kind::Redb => "redb, txn per write",
            Kind::RedbBatched => "redb, batched by a writer thread",
        }
    }

    fn engine(self) -> &'static str {
        match self {
            Kind::SqliteShared | Kind::SqlitePerWriter | Kind::SqliteBatched => "SQLite",
            Kind::Redb | Kind::RedbBatched => "redb",
        }
    }
}

/// A blocking engine under test. Writes go either straight to the engine (one durable
/// transaction per write) or through a [`Batcher`].
struct Engine {
    backend: Backend,
    batcher: Option<Batcher>,
    commits: Arc<AtomicU64>,
}

enum Backend {
    /// Write connections (one shared, or one per writer) and a connection for reads.
    Sqlite {
        writers: Vec<Mutex<Connection>>,
        reader: Mutex<Connection>,
    },
    Redb(Arc<redb::Database>),
}

impl Engine {
    fn open(kind: Kind, dir: &Path, writers: usize) -> Result<Engine> {
        let commits = Arc::new(AtomicU64::new(0));
        let mut batcher = None;
        let backend = match kind {
            Kind::SqliteShared | Kind::SqlitePerWriter | Kind::SqliteBatched => {
                let path = dir.join("kv.sqlite");
                let first = sqlite_open(&path)?;
                first.execute_batch(
                    "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, \
                         create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);
                     CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0), \
                         rev INTEGER NOT NULL);
                     INSERT INTO meta (id, rev) VALUES (0, 0);",
                )?;
                let mut conns = vec![Mutex::new(first)];
                if matches!(kind, Kind::SqlitePerWriter) {
                    for _ in 1..writers {
                        conns.push(Mutex::new(sqlite_open(&path)?));
                    }
                }
                if matches!(kind, Kind::SqliteBatched) {
                    let mut conn = sqlite_open(&path)?;
                    batcher = Some(Batcher::start(commits.clone(), move |batch| {
                        sqlite_commit(&mut conn, batch)
                    })?);
                }
                Backend::Sqlite {
                    writers: conns,
                    reader: Mutex::new(sqlite_open(&path)?),
                }
            }
            Kind::Redb | Kind::RedbBatched => {
                let db = Arc::new(redb::Database::create(dir.join("kv.redb"))?);
                let tx = db.begin_write()?;
                tx.open_table(KV)?;
                tx.open_table(META)?;
                tx.commit()?;
                if matches!(kind, Kind::RedbBatched) {
                    let db = db.clone();
                    batcher = Some(Batcher::start(commits.clone(), move |batch| {
                        redb_commit(&db, batch)
                    })?);
                }
                Backend::Redb(db)
            }
        };
        Ok(Engine {
            backend,
            batcher,
            commits,
        })
    }

    /// Creates `key` durably; false if it already existed.
    fn create(&self, writer: usize, key: String) -> Result<bool> {
        if let Some(batcher) = &self.batcher {
            return batcher.create(key, VALUE.to_vec());
        }
        let created = match &self.backend {
            Backend::Sqlite { writers, .. } => {
                let mut conn = writers[writer % writers.len()]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                sqlite_commit(&mut conn, &[(key, VALUE.to_vec())])?
            }
            Backend::Redb(db) => redb_commit(db, &[(key, VALUE.to_vec())])?,
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(created[0])
    }

    /// Commits `batch` in one transaction (used to preload the read test).
    fn commit_batch(&self, batch: &[(String, Vec<u8>)]) -> Result<Vec<bool>> {
        match &self.backend {
            Backend::Sqlite { writers, .. } => {
                let mut conn = writers[0].lock().unwrap_or_else(PoisonError::into_inner);
                sqlite_commit(&mut conn, batch)
            }
            Backend::Redb(db) => redb_commit(db, batch),
        }
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// One key, decoded as a store would: value plus revisions. Returns the value length.
    fn get(&self, key: &str) -> Result<usize> {
        match &self.backend {
            Backend::Sqlite { reader, .. } => {
                let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
                let mut stmt = conn
                    .prepare_cached("SELECT value, create_rev, mod_rev FROM kv WHERE key = ?1")?;
                let mut rows = stmt.query([key])?;
                let Some(row) = rows.next()? else {
                    return Ok(0);
                };
                let value: Vec<u8> = row.get(0)?;
                let revs: (i64, i64) = (row.get(1)?, row.get(2)?);
                black_box(revs);
                Ok(value.len())
            }
            Backend::Redb(db) => {
                let tx = db.begin_read()?;
                let table = tx.open_table(KV)?;
                let Some(record) = table.get(key)? else {
                    return Ok(0);
                };
                let (revs, value) = record.value().split_at(16);
                black_box(revs);
                Ok(value.to_vec().len())
            }
        }
    }

    /// All keys under `prefix`, materialised with their values. Returns the count.
    fn range(&self, prefix: &str) -> Result<usize> {
        let end = prefix_end(prefix);
        match &self.backend {
            Backend::Sqlite { reader, .. } => {
                let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
                let mut stmt = conn.prepare_cached(
                    "SELECT key, value, create_rev, mod_rev FROM kv \
                     WHERE key >= ?1 AND key < ?2 ORDER BY key",
                )?;
                let rows = stmt.query_map([prefix, end.as_str()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })?;
                let kvs = rows.collect::<Result<Vec<_>, _>>()?;
                Ok(black_box(kvs).len())
            }
            Backend::Redb(db) => {
                let tx = db.begin_read()?;
                let table = tx.open_table(KV)?;
                let mut kvs = Vec::new();
                for entry in table.range(prefix..end.as_str())? {
                    let (k, record) = entry?;
                    let (revs, value) = record.value().split_at(16);
                    kvs.push((k.value().to_owned(), revs.to_vec(), value.to_vec()));
                }
                Ok(black_box(kvs).len())
            }
        }
    }
}

/// The smallest string greater than every string starting with `prefix` (ASCII prefixes).
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn sqlite_open(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(mode == "wal", "sqlite refused WAL mode: {mode}");
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(60))?;
    Ok(conn)
}

/// One durable transaction: bumps the global revision once per created key.
fn sqlite_commit(conn: &mut Connection, batch: &[(String, Vec<u8>)]) -> Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rev: i64 = tx.query_row("SELECT rev FROM meta WHERE id = 0", [], |r| r.get(0))?;
    let mut created = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (key) DO NOTHING",
        )?;
        for (key, value) in batch {
            let n = insert.execute(params![key, value, rev + 1])?;
            rev += n as i64;
            created.push(n == 1);
        }
    }
    tx.execute("UPDATE meta SET rev = ?1 WHERE id = 0", [rev])?;
    tx.commit()?;
    Ok(created)
}

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// One durable transaction; values are stored as `[create_rev][mod_rev][value]`.
fn redb_commit(db: &redb::Database, batch: &[(String, Vec<u8>)]) -> Result<Vec<bool>> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)
        .map_err(redb::Error::from)?;
    let mut created = Vec::with_capacity(batch.len());
    {
        let mut meta = tx.open_table(META)?;
        let mut rev = meta.get("rev")?.map_or(0, |g| g.value());
        let mut kv = tx.open_table(KV)?;
        let mut record = Vec::with_capacity(16 + VALUE.len());
        for (key, value) in batch {
            if kv.get(key.as_str())?.is_some() {
                created.push(false);
                continue;
            }
            rev += 1;
            record.clear();
            record.extend_from_slice(&rev.to_le_bytes());
            record.extend_from_slice(&rev.to_le_bytes());
            record.extend_from_slice(value);
            kv.insert(key.as_str(), record.as_slice())?;
            created.push(true);
        }
        meta.insert("rev", rev)?;
    }
    tx.commit()?;
    Ok(created)
}

/// Group commit by hand: one thread takes every create queued while the previous commit ran
/// (up to [`MAX_BATCH`]) and commits them in one durable transaction.
struct Batcher {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Request {
    key: String,
    value: Vec<u8>,
    reply: mpsc::SyncSender<Result<bool, String>>,
}

type CommitFn = dyn FnMut(&[(String, Vec<u8>)]) -> Result<Vec<bool>> + Send;

impl Batcher {
    fn start(
        commits: Arc<AtomicU64>,
        commit: impl FnMut(&[(String, Vec<u8>)]) -> Result<Vec<bool>> + Send + 'static,
    ) -> Result<Batcher> {
        let (tx, rx) = mpsc::channel::<Request>();
        let mut commit: Box<CommitFn> = Box::new(commit);
        let thread = std::thread::Builder::new()
            .name("bench-batcher".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut requests = vec![first];
                    while requests.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(r) => requests.push(r),
                            Err(_) => break,
                        }
                    }
                    let batch: Vec<(String, Vec<u8>)> = requests
                        .iter_mut()
                        .map(|r| (std::mem::take(&mut r.key), std::mem::take(&mut r.value)))
                        .collect();
                    let result = commit(&batch);
                    commits.fetch_add(1, Ordering::Relaxed);
                    match result {
                        Ok(created) => {
                            for (r, c) in requests.iter().zip(created) {
                                let _ = r.reply.send(Ok(c));
                            }
                        }
                        Err(e) => {
                            for r in &requests {
                                let _ = r.reply.send(Err(format!("{e:#}")));
                            }
                        }
                    }
                }
            })
            .context("failed to spawn the batcher thread")?;
        Ok(Batcher {
            tx: Mutex::new(Some(tx)),
            thread: Some(thread),
        })
    }

    fn create(&self, key: String, value: Vec<u8>) -> Result<bool> {
        let (reply, rx) = mpsc::sync_channel(1);
        {
            let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
            tx.as_ref()
                .context("batcher stopped")?
                .send(Request { key, value, reply })
                .map_err(|_| anyhow!("batcher stopped"))?;
        }
        rx.recv()
            .map_err(|_| anyhow!("batcher stopped"))?
            .map_err(|e| anyhow!(e))
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Results of the read test.
struct Reads {
    point: Vec<Duration>,
    point_elapsed: Duration,
    range: Vec<Duration>,
}

impl Reads {
    fn print(mut self, name: &str) {
        self.point.sort_unstable();
        self.range.sort_unstable();
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} | {:.2} |",
            self.point.len() as f64 / self.point_elapsed.as_secs_f64(),
            percentile(&self.point, 0.50).as_secs_f64() * 1e6,
            percentile(&self.point, 0.99).as_secs_f64() * 1e6,
            percentile(&self.range, 0.50).as_secs_f64() * 1e3,
        );
    }
}

/// The keys of the read test: [`RANGE_KEYS`] under [`RANGE_PREFIX`], the rest around them.
fn read_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..RANGE_KEYS)
        .map(|i| format!("{RANGE_PREFIX}{i:06}"))
        .collect();
    keys.extend((0..OTHER_KEYS).map(|i| format!("/registry/other{}/{i:06}", i % 4)));
    keys
}

/// Point reads of pseudo-random keys for about a second, then ranges for about a second
/// (at least 5).
fn measure_reads(
    keys: &[String],
    get: impl Fn(&str) -> Result<usize>,
    range: impl Fn(&str) -> Result<usize>,
) -> Result<Reads> {
    let mut point = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..1000 {
            // xorshift64: a cheap, repeatable key order without a rand dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = &keys[(x % keys.len() as u64) as usize];
            let t = Instant::now();
            let len = get(key)?;
            point.push(t.elapsed());
            ensure!(len == VALUE.len(), "read of {key} returned {len} bytes");
        }
    }
    let point_elapsed = start.elapsed();
    let mut ranges = Vec::new();
    let start = Instant::now();
    while ranges.len() < 5 || start.elapsed() < Duration::from_secs(1) {
        let t = Instant::now();
        let n = range(RANGE_PREFIX)?;
        ranges.push(t.elapsed());
        ensure!(n == RANGE_KEYS, "range returned {n} keys");
    }
    Ok(Reads {
        point,
        point_elapsed,
        range: ranges,
    })
}

async fn wal_load(store: &Arc<WalStore>, keys: &[String]) -> Result<()> {
    let keys = Arc::new(keys.to_vec());
    let mut tasks = Vec::new();
    for w in 0..64 {
        let store = store.clone();
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            for key in keys.iter().skip(w).step_by(64) {
                store.create(key, Bytes::from_static(&VALUE)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("loader task panicked")??;
    }
    Ok(())
}
