//! Issue 3: `kubectl exec` and `kubectl cp` through the API server's WebSocket proxy to the
//! node agent: output, exit codes, stdin, and tar streams both ways.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::pods::{node_name, pod, registry_with_busybox};
use crate::start;

#[test]
fn exec_runs_commands_passes_stdin_and_exit_codes_and_cp_works_both_ways() -> Result<()> {
    let (_registry, _dir, image) = registry_with_busybox()?;
    let g = start()?;
    let node = node_name(&g)?;
    let out = g.kubectl_stdin(
        "1.32",
        &["apply", "-f", "-"],
        &pod(
            "web",
            &node,
            &image,
            "while true; do sleep 1; done",
            "Always",
        ),
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.eventually(Duration::from_secs(60), || {
        let p = g.get_json(&["pod", "web"])?;
        Ok((p["status"]["phase"] == "Running").then_some(()))
    })?;

    let hi = g.kubectl_ok("1.32", &["exec", "web", "--", "echo", "hi"])?;
    assert_eq!(hi, "hi\n");

    let failed = g.kubectl(
        "1.32",
        &["exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3"],
    )?;
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("oops"),
        "stderr travels on its own channel: {failed:?}"
    );

    let input = "line one\nline two\n";
    let echoed = g.kubectl_stdin("1.32", &["exec", "-i", "web", "--", "cat"], input)?;
    ensure!(echoed.status.success(), "{echoed:?}");
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), input);

    // kubectl cp runs `tar` in the container: stdin into the pod, stdout out of it.
    let local = tempfile::tempdir()?;
    let src = local.path().join("note.txt");
    let content: String = (0..2000).map(|i| format!("row {i}\n")).collect();
    std::fs::write(&src, &content)?;
    let src_arg = src.to_string_lossy().into_owned();
    g.kubectl_ok("1.32", &["cp", &src_arg, "web:/tmp/note.txt"])?;
    let inside = g.kubectl_ok("1.32", &["exec", "web", "--", "wc", "-l", "/tmp/note.txt"])?;
    assert!(inside.trim_start().starts_with("2000"), "{inside}");
    let back = local.path().join("back.txt");
    let back_arg = back.to_string_lossy().into_owned();
    g.kubectl_ok("1.32", &["cp", "web:/tmp/note.txt", &back_arg])?;
    assert_eq!(std::fs::read_to_string(&back)?, content);

    // A command whose client goes away is stopped, not left running in the container.
    let mut abandoned = g
        .kubectl_cmd("1.32")?
        .args(["exec", "web", "--", "sleep", "4321"])
        .spawn()?;
    g.eventually(Duration::from_secs(10), || {
        let ps = g.kubectl_ok("1.32", &["exec", "web", "--", "ps"])?;
        Ok(ps.contains("sleep 4321").then_some(()))
    })?;
    abandoned.kill()?;
    abandoned.wait()?;
    g.eventually(Duration::from_secs(10), || {
        let ps = g.kubectl_ok("1.32", &["exec", "web", "--", "ps"])?;
        Ok((!ps.contains("sleep 4321")).then_some(()))
    })?;

    // Only WebSocket is served: a plain (or SPDY) request gets a Status saying so.
    let plain = g.kubectl(
        "1.32",
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
        ],
    )?;
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("WebSocket only"),
        "{plain:?}"
    );
    // kubectl drops -t without a terminal, so ask for a TTY by hand: the session opens and
    // its Status (channel 3) says why nothing ran.
    let tty = std::process::Command::new("curl")
        .args([
            "-sk",
            "--http1.1",
            "--max-time",
            "5",
            "-H",
            &format!("Authorization: Bearer {}", g.token()?),
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "-H",
            "Sec-WebSocket-Protocol: v5.channel.k8s.io",
            "-i",
            &format!(
                "{}/api/v1/namespaces/default/pods/web/exec?command=sh&stdout=true&tty=true",
                g.url
            ),
        ])
        .output()?;
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") && text.contains("tty is not supported"),
        "{text}"
    );
    Ok(())
}
