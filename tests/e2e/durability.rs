//! Acceptance 10: every acknowledged write survives `kill -9` of the server, with its
//! resourceVersion; and SIGTERM stops the server cleanly.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::start;

#[test]
fn acknowledged_writes_survive_kill_9() -> Result<()> {
    let mut g = start()?;
    // One long-lived kubectl would hide acks in its buffers; instead a shell loop creates
    // configmaps one by one through curl and records each acknowledged resourceVersion.
    let ca = g.data_dir().join("pki/ca.crt");
    let token = g.token()?;
    let script = format!(
        "i=0; while true; do i=$((i+1)); out=$(curl -s --max-time 5 --cacert {ca} -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -X POST --data '{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"cm-'$i'\"}},\"data\":{{\"i\":\"'$i'\"}}}}' {url}/api/v1/namespaces/default/configmaps) || continue; rv=$(printf '%s' \"$out\" | sed -n 's/.*\"resourceVersion\":\"\\([0-9]*\\)\".*/\\1/p'); [ -n \"$rv\" ] && echo \"cm-$i $rv\"; done",
        ca = ca.display(),
        url = g.url
    );
    let mut writer = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = writer.stdout.take().context("no stdout")?;
    let acks = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let acks2 = acks.clone();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((name, rv)) = line.split_once(' ') {
                acks2
                    .lock()
                    .expect("lock")
                    .insert(name.to_string(), rv.to_string());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.lock().expect("lock").len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    g.kill9()?;
    std::thread::sleep(Duration::from_millis(300));
    let _ = writer.kill();
    let _ = writer.wait();
    let _ = reader.join();
    let acked = acks.lock().expect("lock").clone();
    assert!(
        acked.len() >= 40,
        "only {} writes were acknowledged",
        acked.len()
    );
    g.restart()?;
    let list = g.get_json(&["configmaps"])?;
    let stored: BTreeMap<String, String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i["metadata"]["name"].as_str()?.to_string(),
                i["metadata"]["resourceVersion"].as_str()?.to_string(),
            ))
        })
        .collect();
    for (name, rv) in &acked {
        assert_eq!(
            stored.get(name),
            Some(rv),
            "acknowledged {name}@{rv} was lost or changed"
        );
    }
    // The server keeps working after recovery.
    g.kubectl_ok("1.32", &["create", "configmap", "after-crash"])?;
    std::io::stdout().flush()?;
    Ok(())
}

#[test]
fn sigterm_stops_cleanly_and_state_persists() -> Result<()> {
    let mut g = start()?;
    g.kubectl_ok("1.32", &["create", "namespace", "keep"])?;
    let status = g.terminate()?;
    assert!(status.success(), "gantry exited with {status}");
    g.restart()?;
    assert!(g
        .kubectl_ok("1.32", &["get", "namespace", "keep", "-o", "name"])?
        .contains("namespace/keep"));
    Ok(())
}
