//! `idle`: memory and CPU of a server that was just started and is left alone: VmRSS and
//! VmHWM after a settle time, and CPU time used over a further quiet window.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

use crate::server::{rss, start_etcd, start_gantry};
use crate::workload::mib;
use crate::{loadavg, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds to wait after the server is ready before measuring.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Seconds over which idle CPU time is measured.
    #[arg(long, default_value_t = 10)]
    window: u64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut rows = Vec::new();
    {
        let g = start_gantry(&ctx.gantry).await?;
        rows.push(("Gantry", measure(g.proc.pid(), &args).await?));
    }
    {
        let e = start_etcd().await?;
        rows.push(("etcd 3.4", measure(e.proc.pid(), &args).await?));
    }
    println!();
    println!(
        "### idle: {} s after ready, CPU over the next {} s",
        args.settle, args.window
    );
    println!();
    println!("| server | VmRSS MiB | VmHWM MiB | idle CPU ms/s | load |");
    println!("|---|---:|---:|---:|---|");
    for (label, (rss, hwm, cpu, load)) in rows {
        println!(
            "| {label} | {} | {} | {cpu:.1} | {load} |",
            mib(rss),
            mib(hwm)
        );
    }
    Ok(())
}

async fn measure(pid: u32, args: &Args) -> Result<(u64, u64, f64, String)> {
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let rss = rss(pid)?;
    let hwm = hwm(pid)?;
    let t0 = cpu_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(args.window)).await;
    let ticks = cpu_ticks(pid)? - t0;
    // Linux reports utime and stime in clock ticks of 1/100 s (USER_HZ).
    let cpu_ms_per_s = ticks as f64 * 10.0 / args.window as f64;
    Ok((rss, hwm, cpu_ms_per_s, loadavg()))
}

fn hwm(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("failed to read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|k| k * 1024)
        .ok_or_else(|| anyhow!("no VmHWM for {pid}"))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("failed to read /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        f.get(i - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("bad /proc/{pid}/stat field {i}"))
    };
    Ok(field(14)? + field(15)?)
}
