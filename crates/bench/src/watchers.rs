//! `watchers`: opens W concurrent watches on ConfigMaps in one namespace, reports the server's
//! RSS growth per watch, then creates ConfigMaps one at a time and measures how long each
//! takes to reach every watch (from sending the write to the last watch receiving it).
//! Gantry's watches are HTTP/2 streams (`--streams-per-conn` per connection, as client-go
//! multiplexes them); etcd's are `/v3/watch` streams through the JSON gateway, one
//! HTTP/1.1 connection each (the gateway has no HTTP/2 on the client port).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::http::{Client, Proto};
use crate::server::{rss, start_etcd, start_gantry};
use crate::workload::{mib, ms, Kind, Summary, Target};
use crate::{loadavg, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent watches.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Measured writes (each must reach every watch).
    #[arg(long, default_value_t = 50)]
    writes: usize,
    /// Gantry watches per HTTP/2 connection.
    #[arg(long, default_value_t = 100)]
    streams_per_conn: usize,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut rows = Vec::new();
    {
        let gantry = start_gantry(&ctx.gantry).await?;
        let conns = args.watchers.div_ceil(args.streams_per_conn.max(1));
        let label = format!("Gantry ({conns} HTTP/2 conns)");
        let watch = Client::new(&gantry.endpoint, Proto::H2(conns)).await?;
        let write = Client::new(&gantry.endpoint, Proto::H2(1)).await?;
        rows.push(measure(Kind::Gantry, label, watch, write, gantry.proc.pid(), &args).await?);
    }
    {
        let etcd = start_etcd().await?;
        let label = format!("etcd 3.4 ({} HTTP/1.1 conns)", args.watchers);
        let watch = Client::new(&etcd.endpoint, Proto::H1).await?;
        let write = Client::new(&etcd.endpoint, Proto::H1).await?;
        rows.push(measure(Kind::Etcd, label, watch, write, etcd.proc.pid(), &args).await?);
    }
    println!();
    println!(
        "### watchers: {} watches on one namespace's ConfigMaps, {} writes",
        args.watchers, args.writes
    );
    println!();
    println!("| server | RSS before MiB | RSS with watches MiB | KiB per watch | fan-out p50 ms | p99 ms | max ms | write ack p50 ms | load |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

async fn measure(
    kind: Kind,
    label: String,
    watch: std::sync::Arc<Client>,
    write: std::sync::Arc<Client>,
    pid: u32,
    args: &Args,
) -> Result<String> {
    let target = Target {
        kind,
        label: label.clone(),
        client: write,
    };
    target.create_configmap("default", "warm").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss(pid)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<()>>();
    for _ in 0..args.watchers {
        let (watch, tx, ready_tx) = (watch.clone(), tx.clone(), ready_tx.clone());
        tokio::spawn(async move {
            if let Err(e) = watch_one(kind, &watch, tx, &ready_tx).await {
                let _ = ready_tx.send(Err(e));
            }
        });
    }
    drop(tx);
    for _ in 0..args.watchers {
        ready_rx
            .recv()
            .await
            .ok_or_else(|| anyhow!("watch tasks ended"))?
            .context("failed to open a watch")?;
    }
    // Write 0 proves every watch is registered with the server; it is not measured.
    let mut fanout = Vec::new();
    let mut acks = Vec::new();
    for id in 0..=args.writes {
        let sent = Instant::now();
        target
            .create_configmap("default", &format!("fan-{id}"))
            .await?;
        let ack = sent.elapsed();
        let mut seen = 0;
        let mut last = sent;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seen < args.watchers {
            let (got, at) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .map_err(|_| {
                    anyhow!(
                        "write {id} reached {seen} of {} watches in 30 s",
                        args.watchers
                    )
                })?
                .ok_or_else(|| anyhow!("all watches ended"))?;
            if got == id {
                seen += 1;
                last = last.max(at);
            }
        }
        if id == 0 {
            continue;
        }
        fanout.push(last - sent);
        acks.push(ack);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with = rss(pid)?;
    let f = Summary::of(fanout);
    let a = Summary::of(acks);
    Ok(format!(
        "| {label} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
        mib(before),
        mib(with),
        with.saturating_sub(before) as f64 / 1024.0 / args.watchers as f64,
        ms(f.p50),
        ms(f.p99),
        ms(f.max),
        ms(a.p50),
        loadavg()
    ))
}

/// Opens one watch and reports `(write id, arrival)` for every `fan-<id>` event on it.
async fn watch_one(
    kind: Kind,
    client: &Client,
    tx: mpsc::UnboundedSender<(usize, Instant)>,
    ready: &mpsc::UnboundedSender<Result<()>>,
) -> Result<()> {
    let ep = client.endpoint();
    let req = match kind {
        Kind::Gantry => ep.request(
            Method::GET,
            "/api/v1/namespaces/default/configmaps?watch=true",
            None,
        ),
        Kind::Etcd => {
            let body = json!({"create_request": {
                "key": B64.encode("/registry/configmaps/default/"),
                "range_end": B64.encode("/registry/configmaps/default0"),
            }});
            ep.request(
                Method::POST,
                "/v3/watch",
                Some(Bytes::from(body.to_string())),
            )
        }
    };
    let resp = client.stream(req).await?;
    if resp.status() != 200 {
        bail!("watch: HTTP {}", resp.status());
    }
    let _ = ready.send(Ok(()));
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("watch stream failed")?;
        let at = Instant::now();
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            for id in event_ids(kind, &line) {
                let _ = tx.send((id, at));
            }
        }
    }
    Ok(())
}

/// The `fan-<id>` names in one watch line.
fn event_ids(kind: Kind, line: &[u8]) -> Vec<usize> {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return Vec::new();
    };
    let names: Vec<String> = match kind {
        Kind::Gantry => v["object"]["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect(),
        Kind::Etcd => v["result"]["events"]
            .as_array()
            .map(|evs| {
                evs.iter()
                    .filter_map(|e| e["kv"]["key"].as_str())
                    .filter_map(|k| B64.decode(k).ok())
                    .filter_map(|k| String::from_utf8(k).ok())
                    .filter_map(|k| k.rsplit('/').next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    };
    names
        .iter()
        .filter_map(|n| n.strip_prefix("fan-")?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_in_both_formats() {
        let g = br#"{"type":"ADDED","object":{"metadata":{"name":"fan-7"}}}"#;
        assert_eq!(event_ids(Kind::Gantry, g), vec![7]);
        let key = B64.encode("/registry/configmaps/default/fan-12");
        let e = format!(r#"{{"result":{{"events":[{{"kv":{{"key":"{key}"}}}}]}}}}"#);
        assert_eq!(event_ids(Kind::Etcd, e.as_bytes()), vec![12]);
        assert!(event_ids(Kind::Gantry, b"not json").is_empty());
    }
}
