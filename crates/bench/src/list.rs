//! `list`: creates N small realistic Pods through the API (parallel clients), then LISTs all
//! of them (`GET /api/v1/pods`) several times, measuring wall time to the last byte and the
//! server's RSS growth during each LIST (VmRSS sampled every 2 ms from /proc; VmHWM cannot
//! be reset, so the peak of the samples is used). The baseline is an etcd range over the
//! same N values (`/v3/kv/range` with a prefix), timed the same way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::creates::create_all;
use crate::http::{Client, Proto};
use crate::server::{rss, start_etcd, start_gantry};
use crate::workload::{mib, ms, Kind, Summary, Target};
use crate::{loadavg, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Pods to create.
    #[arg(long, default_value_t = 150_000)]
    pods: usize,
    /// LISTs to time.
    #[arg(long, default_value_t = 10)]
    lists: usize,
    /// Concurrent clients while creating the pods.
    #[arg(long, default_value_t = 64)]
    clients: usize,
}

struct Outcome {
    label: String,
    fill: Duration,
    time: Summary,
    bytes: usize,
    rss_before: u64,
    extra_max: u64,
    extra_first: u64,
    load: String,
    /// Per LIST: wall time, RSS before, peak extra RSS.
    each: Vec<(Duration, u64, u64)>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut rows = Vec::new();
    let stored: Arc<Vec<(String, Vec<u8>)>>;
    {
        let gantry = start_gantry(&ctx.gantry).await?;
        let target = Target {
            kind: Kind::Gantry,
            label: "Gantry".to_string(),
            client: Client::new(&gantry.endpoint, Proto::H2(2)).await?,
        };
        let t = target.clone();
        let fill = fill(&target, &args, move |i| {
            let t = t.clone();
            async move { t.create_pod("default", &format!("pod-{i:06}")).await }
        })
        .await?;
        let (row, last) = lists(target, gantry.proc.pid(), &args, "/api/v1/pods", fill).await?;
        rows.push(row);
        stored = Arc::new(items(&last)?);
    }
    {
        // etcd gets exactly the objects Gantry stored (defaulted, with metadata).
        let etcd = start_etcd().await?;
        let target = Target {
            kind: Kind::Etcd,
            label: "etcd 3.4".to_string(),
            client: Client::new(&etcd.endpoint, Proto::H1).await?,
        };
        let t = target.clone();
        let fill = fill(&target, &args, move |i| {
            let (t, stored) = (t.clone(), stored.clone());
            async move {
                let (name, obj) = &stored[i];
                t.create("pods", "default", name, obj.clone()).await
            }
        })
        .await?;
        let (row, _) = lists(target, etcd.proc.pid(), &args, "/v3/kv/range", fill).await?;
        rows.push(row);
    }
    println!();
    println!(
        "### list: {} pods, {} LISTs (p99 of {} samples is their maximum)",
        args.pods, args.lists, args.lists
    );
    println!();
    println!("| server | create time s (creates/s) | LIST p50 ms | p99 ms | response MiB | RSS before MiB | peak extra RSS MiB (first LIST) | extra / response | load |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} ({:.0}) | {} | {} | {} | {} | {} ({}) | {:.2}x | {} |",
            r.label,
            r.fill.as_secs_f64(),
            args.pods as f64 / r.fill.as_secs_f64(),
            ms(r.time.p50),
            ms(r.time.p99),
            mib(r.bytes as u64),
            mib(r.rss_before),
            mib(r.extra_max),
            mib(r.extra_first),
            r.extra_max as f64 / r.bytes.max(1) as f64,
            r.load
        );
    }
    println!();
    println!("Each LIST (wall ms / RSS before MiB / peak extra RSS MiB):");
    println!();
    println!(
        "| # | {} |",
        rows.iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---:|{}", "---|".repeat(rows.len()));
    for n in 0..args.lists {
        let cells: Vec<String> = rows
            .iter()
            .map(|r| {
                r.each
                    .get(n)
                    .map_or_else(String::new, |(t, before, extra)| {
                        format!("{} / {} / {}", ms(*t), mib(*before), mib(*extra))
                    })
            })
            .collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
    Ok(())
}

async fn fill<F, Fut>(target: &Target, args: &Args, create: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    eprintln!("{}: creating {} pods", target.label, args.pods);
    let took = create_all(args.clients, args.pods, create).await?;
    eprintln!("{}: created in {:.1} s", target.label, took.as_secs_f64());
    Ok(took)
}

/// Name and JSON of every item of a Gantry pod list.
fn items(list: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let v: serde_json::Value =
        serde_json::from_slice(list).context("failed to parse the pod list")?;
    let items = v["items"].as_array().context("pod list without items")?;
    items
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"]
                .as_str()
                .context("pod without a name")?;
            Ok((name.to_string(), serde_json::to_vec(p)?))
        })
        .collect()
}

/// Times `args.lists` LISTs and samples the server's RSS; returns the row and the last body.
async fn lists(
    target: Target,
    pid: u32,
    args: &Args,
    path: &str,
    fill: Duration,
) -> Result<(Outcome, Bytes)> {
    let body = match target.kind {
        Kind::Gantry => None,
        Kind::Etcd => Some(Bytes::from(
            json!({
                "key": B64.encode("/registry/pods/"),
                "range_end": B64.encode("/registry/pods0"),
            })
            .to_string(),
        )),
    };
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let sampler = Sampler::start(pid);
    let mut times = Vec::new();
    let mut each = Vec::new();
    let mut last = Bytes::new();
    let mut extra_max = 0;
    let mut extra_first = 0;
    let mut rss_before = 0;
    for n in 0..args.lists {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_before = rss(pid)?;
        sampler.reset();
        let start = Instant::now();
        let (code, resp) = target
            .client
            .send(method.clone(), path, body.clone())
            .await?;
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let peak = sampler.peak();
        if code != 200 {
            bail!(
                "{} LIST: HTTP {code}: {}",
                target.label,
                String::from_utf8_lossy(&resp[..resp.len().min(300)])
            );
        }
        let items = count_items(target.kind, &resp);
        if items != args.pods {
            bail!(
                "{} LIST returned {items} items, want {}",
                target.label,
                args.pods
            );
        }
        let extra = peak.saturating_sub(rss_before);
        eprintln!(
            "{} LIST {n}: {} ms, {} MiB, RSS before {} MiB, peak extra {} MiB",
            target.label,
            ms(took),
            mib(resp.len() as u64),
            mib(rss_before),
            mib(extra)
        );
        if n == 0 {
            extra_first = extra;
        }
        extra_max = extra_max.max(extra);
        times.push(took);
        each.push((took, rss_before, extra));
        last = resp;
    }
    let row = Outcome {
        label: target.label,
        fill,
        time: Summary::of(times),
        bytes: last.len(),
        rss_before,
        extra_max,
        extra_first,
        load: loadavg(),
        each,
    };
    Ok((row, last))
}

fn count_items(kind: Kind, body: &[u8]) -> usize {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match kind {
        Kind::Gantry => v["items"].as_array().map_or(0, Vec::len),
        Kind::Etcd => v["count"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
    }
}

/// Samples a process's VmRSS every 2 ms on its own thread and keeps the peak.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(r) = rss(pid) {
                    p.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Sampler { peak, stop }
    }

    fn reset(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
