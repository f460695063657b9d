//! `creates`: durable creates/s through the HTTP API with C concurrent closed-loop clients.
//! Gantry gets ~1 KiB ConfigMaps over HTTPS (HTTP/2 and a pool of HTTP/1.1 connections, both
//! reported); etcd gets puts of the same bytes through its v3 JSON gateway over plain HTTP.
//! Every create is acknowledged only after fsync on both servers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::http::{Client, Proto};
use crate::server::{start_etcd, start_gantry};
use crate::workload::{ms, Kind, Summary, Target};
use crate::{loadavg, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent clients, one case each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Seconds per case.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// HTTP/2 connections for Gantry's HTTP/2 case (requests are multiplexed over them).
    #[arg(long, default_value_t = 2)]
    h2_conns: usize,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let gantry = start_gantry(&ctx.gantry).await?;
    let etcd = start_etcd().await?;
    let duration = Duration::from_secs_f64(args.seconds);
    println!();
    println!("### creates: {:.0} s per case, ~1 KiB values", args.seconds);
    println!();
    println!(
        "| server | transport | clients | creates/s | p50 ms | p99 ms | max ms | errors | load |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for &c in &args.concurrency {
        let targets = [
            (
                Kind::Gantry,
                &gantry.endpoint,
                Proto::H2(args.h2_conns.min(c)),
            ),
            (Kind::Gantry, &gantry.endpoint, Proto::H1),
            (Kind::Etcd, &etcd.endpoint, Proto::H1),
        ];
        for (kind, ep, proto) in targets {
            let target = Target {
                kind,
                label: kind.label().to_string(),
                client: Client::new(ep, proto).await?,
            };
            let (rate, lat, errors) = closed_loop(&target, c, duration).await;
            println!(
                "| {} | {proto} | {c} | {rate:.0} | {} | {} | {} | {errors} | {} |",
                target.label,
                ms(lat.p50),
                ms(lat.p99),
                ms(lat.max),
                loadavg()
            );
        }
    }
    Ok(())
}

/// Runs `clients` tasks that create unique ConfigMaps back to back for `duration`;
/// returns acknowledged creates/s, their latencies and the error count.
async fn closed_loop(target: &Target, clients: usize, duration: Duration) -> (f64, Summary, usize) {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..clients {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let name = format!("c{clients}-r{run}-w{w}-{i}");
                i += 1;
                let t = Instant::now();
                match target.create_configmap("default", &name).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("create failed: {e:#}");
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = all.len() as f64 / elapsed;
    (rate, Summary::of(all), errors)
}

/// Shared with `list`: `clients` tasks create `names` objects with `create` until done.
pub async fn create_all<F, Fut>(clients: usize, total: usize, create: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let create = Arc::new(create);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let create = create.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                create(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}
