//! `gantry-bench`: API benchmarks of the real `gantry` binary against etcd 3.4, run as
//! `cargo run --release -p gantry-bench -- <bench> [options]`.
//! Every benchmark starts the servers it needs on 127.0.0.1 in temp dirs, is bounded in time
//! and count, and stops the servers (by PID) when it ends; results are Markdown tables on
//! stdout, progress on stderr. See docs/BENCHMARKS.md for the numbers and how they were taken.

mod creates;
mod http;
mod idle;
mod latency;
mod list;
mod server;
mod watchers;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gantry-bench",
    about = "Benchmarks gantry's API against etcd 3.4"
)]
struct Cli {
    /// The gantry binary (default: `gantry` next to this executable, i.e. target/release/gantry).
    #[arg(long, global = true)]
    gantry: Option<PathBuf>,
    /// Stop (and fail) a benchmark that runs longer than this many seconds.
    #[arg(long, global = true, default_value_t = 1200)]
    timeout: u64,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Durable creates/s and latency with 1, 16 and 64 concurrent clients.
    Creates(creates::Args),
    /// p99 write latency at a fixed, open-loop rate.
    Latency(latency::Args),
    /// Time and memory of LISTing many pods.
    List(list::Args),
    /// Memory per watch and fan-out time of one write to many watches.
    Watchers(watchers::Args),
    /// RSS of an idle server.
    Idle(idle::Args),
}

/// What every benchmark needs.
pub struct Ctx {
    pub gantry: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let gantry = match cli.gantry {
        Some(p) => p,
        None => default_gantry()?,
    };
    if !gantry.exists() {
        bail!(
            "{} does not exist: run `cargo build --release -p gantry` or pass --gantry",
            gantry.display()
        );
    }
    let ctx = Ctx { gantry };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let limit = Duration::from_secs(cli.timeout);
    rt.block_on(async move {
        let run = async {
            println!("load average before: {}", loadavg());
            match cli.bench {
                Bench::Creates(a) => creates::run(&ctx, a).await,
                Bench::Latency(a) => latency::run(&ctx, a).await,
                Bench::List(a) => list::run(&ctx, a).await,
                Bench::Watchers(a) => watchers::run(&ctx, a).await,
                Bench::Idle(a) => idle::run(&ctx, a).await,
            }?;
            println!("load average after: {}", loadavg());
            Ok::<(), anyhow::Error>(())
        };
        // Returning early drops the servers, which kills them.
        tokio::select! {
            r = tokio::time::timeout(limit, run) => r
                .map_err(|_| anyhow!("benchmark exceeded --timeout {} s", limit.as_secs()))?,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    })?;
    // Leftover streams (watches) are dropped with the runtime, after the servers are gone.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// `gantry` in the directory of this executable (`target/release/`).
fn default_gantry() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find this executable")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("unexpected executable path {}", exe.display()))?;
    Ok(Path::new(dir).join("gantry"))
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
