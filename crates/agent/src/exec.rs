//! `GET /exec/<namespace>/<pod>/<container>?command=..&stdin=..&stdout=..&stderr=..&tty=..`:
//! runs a command in a container and streams it over WebSocket with Kubernetes' channel
//! protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`). Every binary message starts with a
//! channel byte: 0 stdin (from the client), 1 stdout, 2 stderr, 3 the final Status, 4 resize
//! (ignored); in v5 the client's `[255, 0]` closes stdin.
//!
//! One thing to know before editing: once the handshake is valid we always answer 101 and
//! report problems (tty, no running container, spawn failure) as a Status on channel 3. A
//! non-101 answer makes kubectl retry with SPDY, which would hide the real error.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::oci::OciRuntime;
use crate::websocket::{self, Decoder, Message, Opcode};

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
/// v5: `[CLOSE, channel]` closes that channel.
const CLOSE: u8 = 255;
/// How long a command whose client went away gets between SIGTERM and SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the client asked for in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Parses `command=a&command=b&stdin=true…` (values percent-decoded by `decode`).
    pub fn parse(query: &str, decode: impl Fn(&str) -> String) -> ExecOptions {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(&v.replace('+', " ")))
            })
            .collect();
        let flag = |k: &str| {
            pairs
                .iter()
                .any(|(key, v)| key == k && (v == "true" || v == "1"))
        };
        ExecOptions {
            command: pairs
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        }
    }
}

/// Performs the WebSocket handshake and, once upgraded, runs the exec session.
pub fn serve(
    mut req: Request<Incoming>,
    runtime: &Arc<OciRuntime>,
    target: Target,
    opts: ExecOptions,
) -> Response<Body> {
    let headers = req.headers();
    let is_websocket = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let protocol = websocket::pick_protocol(
        headers
            .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let (Some(key), true) = (key, is_websocket) else {
        return crate::server::status(
            400,
            "BadRequest",
            "exec needs a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Key)",
        );
    };
    let Some(protocol) = protocol else {
        return crate::server::status(
            400,
            "BadRequest",
            &format!(
                "no supported subprotocol offered; this node speaks {}",
                websocket::PROTOCOLS.join(", ")
            ),
        );
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let runtime = runtime.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let v5 = protocol == websocket::PROTOCOLS[0];
                session(TokioIo::new(upgraded), &runtime, &target, &opts, v5).await;
            }
            Err(e) => warn!(error = %e, "exec upgrade failed"),
        }
    });
    let mut resp = Response::new(Empty::<Bytes>::new().boxed_unsync());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(protocol),
    );
    if let Ok(accept) = http::HeaderValue::from_str(&websocket::accept_key(&key)) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    resp
}

/// The container an exec runs in.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The pod's uid, when the node has an instance of the pod.
    pub pod_uid: Option<String>,
}

/// Runs one exec over an upgraded connection and closes it.
async fn session<IO>(io: IO, runtime: &OciRuntime, target: &Target, opts: &ExecOptions, v5: bool)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(32);
    // The only writer: frames from the pumps, pongs from the reader, then the close frame.
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            let closing = frame.first() == Some(&(0x80 | 0x8));
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            if closing {
                break;
            }
        }
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
    });

    let status = match start(runtime, target, opts).await {
        Err(message) => failure_status(&message),
        Ok(mut child) => {
            let stdin = child.stdin.take();
            let stdin = if opts.stdin { stdin } else { None };
            let mut reader = tokio::spawn(read_client(rd, stdin, out_tx.clone(), v5));
            let mut pumps = Vec::new();
            if let Some(p) = child.stdout.take() {
                pumps.push(tokio::spawn(pump(p, STDOUT, opts.stdout, out_tx.clone())));
            }
            if let Some(p) = child.stderr.take() {
                pumps.push(tokio::spawn(pump(p, STDERR, opts.stderr, out_tx.clone())));
            }
            let outputs_done = async {
                for p in pumps {
                    let _ = p.await;
                }
            };
            tokio::select! {
                () = outputs_done => {}
                _ = &mut reader => {
                    // The client went away (close frame or EOF): stop the command. runc
                    // forwards SIGTERM to it; SIGKILL (runc itself) if it lingers.
                    info!(container = %target.container, "exec client gone; stopping the command");
                    if let Some(pid) = child.id() {
                        let _ = gantry_runtime::container::signal(pid, libc::SIGTERM);
                    }
                    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                        let _ = child.start_kill();
                    }
                }
            }
            let exit = child.wait().await;
            reader.abort();
            match exit {
                Ok(s) => exit_status(&opts.command, exit_code(s)),
                Err(e) => failure_status(&format!("failed to wait for the command: {e}")),
            }
        }
    };
    info!(pod = %format!("{}/{}", target.namespace, target.pod), container = %target.container,
          status = %status["status"], "exec finished");
    let mut frame = vec![ERROR];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = out_tx.send(websocket::encode(Opcode::Binary, &frame)).await;
    let _ = out_tx.send(websocket::close_frame(1000)).await;
    drop(out_tx);
    let _ = writer.await;
}

/// Finds the pod's instance on this node and spawns the command in the container.
async fn start(
    runtime: &OciRuntime,
    target: &Target,
    opts: &ExecOptions,
) -> Result<tokio::process::Child, String> {
    if opts.tty {
        return Err("tty is not supported by this node; run kubectl exec without -t".to_string());
    }
    if opts.command.is_empty() {
        return Err("you must specify at least one command for the container".to_string());
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err("you must specify at least one of stdin, stdout, stderr".to_string());
    }
    let not_running = || {
        format!(
            "container {} in pod {}/{} is not running",
            target.container, target.namespace, target.pod
        )
    };
    let uid = target.pod_uid.as_deref().ok_or_else(not_running)?;
    if !runtime.is_running(uid, &target.container).await {
        return Err(not_running());
    }
    debug!(pod_uid = %uid, container = %target.container, command = ?opts.command, "exec");
    runtime
        .exec(uid, &target.container, &opts.command)
        .await
        .map_err(|e| format!("failed to start the command: {e}"))
}

/// Copies one of the command's output pipes into frames on `channel` (or discards it).
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    channel: u8,
    wanted: bool,
    out: mpsc::Sender<Vec<u8>>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    buf[0] = channel;
    loop {
        match pipe.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) if wanted => {
                if out
                    .send(websocket::encode(Opcode::Binary, &buf[..=n]))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

/// Reads the client's messages: stdin data, v5 close-stdin, pings; a close frame ends stdin.
async fn read_client(
    mut rd: impl AsyncRead + Unpin,
    mut stdin: Option<tokio::process::ChildStdin>,
    out: mpsc::Sender<Vec<u8>>,
    v5: bool,
) {
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.extend(&buf[..n]);
        loop {
            let msg = match decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "exec client broke the websocket protocol");
                    let _ = out.send(websocket::close_frame(1002)).await;
                    return;
                }
            };
            match msg {
                Message::Binary(data) | Message::Text(data) => match data.split_first() {
                    Some((&STDIN, rest)) => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(rest).await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    Some((&CLOSE, [STDIN])) if v5 => stdin = None,
                    _ => {} // resize and unknown channels
                },
                Message::Ping(p) => {
                    let _ = out.send(websocket::encode(Opcode::Pong, &p)).await;
                }
                Message::Pong(_) => {}
                Message::Close(_) => {
                    // The client is gone: stdin ends, the command sees EOF.
                    return;
                }
            }
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// The channel-3 Status for a finished command, in upstream's shape.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_repeats_command_and_reads_flags() {
        let o = ExecOptions::parse(
            "command=sh&command=-c&command=exit%203&container=main&stdin=true&stdout=true&tty=false",
            crate::server::decode,
        );
        assert_eq!(o.command, ["sh", "-c", "exit 3"]);
        assert!(o.stdin && o.stdout && !o.stderr && !o.tty);
    }

    #[test]
    fn exit_statuses_match_upstream() {
        let cmd = ["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        assert_eq!(
            exit_status(&cmd, 0).to_string(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            exit_status(&cmd, 3).to_string(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
    }
}
