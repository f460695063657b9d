//! `latency`: write latency at a fixed rate (default 100 creates/s for 30 s), open loop:
//! request i is sent at start + i/rate whether or not earlier ones finished, and its latency
//! is measured from that scheduled time, so a stall counts against every request it delays.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::http::{Client, Proto};
use crate::server::{start_etcd, start_gantry};
use crate::workload::{ms, Kind, Summary, Target};
use crate::{loadavg, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Writes per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    seconds: u32,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let gantry = start_gantry(&ctx.gantry).await?;
    let etcd = start_etcd().await?;
    println!();
    println!(
        "### latency: {} creates/s for {} s, open loop, ~1 KiB values",
        args.rate, args.seconds
    );
    println!();
    println!("| server | transport | writes | p50 ms | p99 ms | max ms | errors | load |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    let targets = [
        (Kind::Gantry, &gantry.endpoint, Proto::H2(1)),
        (Kind::Etcd, &etcd.endpoint, Proto::H1),
    ];
    for (kind, ep, proto) in targets {
        let target = Target {
            kind,
            label: kind.label().to_string(),
            client: Client::new(ep, proto).await?,
        };
        // Warm up the connection (and etcd's pool) outside the measurement.
        for i in 0..20 {
            target
                .create_configmap("default", &format!("warm-{i}"))
                .await?;
        }
        let (lat, errors) = open_loop(&target, args.rate, args.seconds).await;
        println!(
            "| {} | {proto} | {} | {} | {} | {} | {errors} | {} |",
            target.label,
            lat.count,
            ms(lat.p50),
            ms(lat.p99),
            ms(lat.max),
            loadavg()
        );
    }
    Ok(())
}

async fn open_loop(target: &Target, rate: u32, seconds: u32) -> (Summary, usize) {
    let total = rate as u64 * seconds as u64;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let r = target
                .create_configmap("default", &format!("lat-{i}"))
                .await;
            r.map(|()| due.elapsed())
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(d)) => lat.push(d),
            Ok(Err(e)) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("write failed: {e:#}");
                }
            }
            Err(_) => errors += 1,
        }
    }
    (Summary::of(lat), errors)
}
