//! A real OCI distribution registry (Debian's `docker-registry`, distribution 2.8) on
//! 127.0.0.1 and a free port, storing into a temp dir; killed and removed on drop.
//! Installs the package when missing, as every test support helper here does.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use anyhow::{bail, Context as _, Result};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Who may use a test registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAccess {
    /// Anonymous pull and push.
    Open,
    /// HTTP Basic against an htpasswd file (bcrypt, made with Debian's `apache2-utils`).
    Basic { user: String, password: String },
    /// Bearer tokens: the registry challenges with a token realm served by the test kit, which
    /// hands out a token only for these credentials (the registry's `silly` auth checks that a
    /// token is presented, not which).
    Token { user: String, password: String },
}

/// A running registry. `addr()` is `127.0.0.1:<port>`, spoken to over plain HTTP.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    token_server: Option<TokenServer>,
}

impl Registry {
    /// Starts a registry with anonymous pull and push, and waits until `/v2/` answers.
    pub fn start() -> Result<Registry> {
        Registry::start_with(RegistryAccess::Open)
    }

    /// Starts a registry with the given access control.
    pub fn start_with(access: RegistryAccess) -> Result<Registry> {
        apt_install(REGISTRY_BIN, "docker-registry")?;
        let mut last = None;
        for _ in 0..3 {
            match Registry::try_start(&access) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    /// How many token requests the token realm answered with a token (Token access only).
    pub fn tokens_issued(&self) -> usize {
        self.token_server
            .as_ref()
            .map_or(0, |t| t.issued.load(Ordering::SeqCst))
    }

    fn try_start(access: &RegistryAccess) -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()
            .context("failed to create the registry dir")?;
        // Port 0 cannot be handed to the registry, so take a free port and release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("failed to find a free port")?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        let mut token_server = None;
        match access {
            RegistryAccess::Open => {}
            RegistryAccess::Basic { user, password } => {
                apt_install("/usr/bin/htpasswd", "apache2-utils")?;
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .context("failed to run htpasswd")?;
                if !out.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout)?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: gantry-test\n    path: {}\n",
                    file.display()
                ));
            }
            RegistryAccess::Token { user, password } => {
                let server = TokenServer::start(user, password)?;
                config.push_str(&format!(
                    "auth:\n  silly:\n    realm: http://{}/token\n    service: gantry-test\n",
                    server.addr
                ));
                token_server = Some(server);
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start docker-registry")?;
        let mut reg = Registry {
            child,
            dir,
            addr,
            token_server,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // 401 is a live registry asking for credentials.
            if reg.get_status("/v2/").is_ok_and(|s| s == 200 || s == 401) {
                return Ok(reg);
            }
            if let Some(status) = reg.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", reg.log());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer within 20 s: {}", reg.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The registry's storage root (distribution's filesystem driver layout), for tests that
    /// tamper with what it serves.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The stored data file of blob `sha256:<hex>`.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// What the registry wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The HTTP status of a GET on `path`.
    pub fn get_status(&self, path: &str) -> Result<u16> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        let line = String::from_utf8_lossy(&head);
        line.split(' ')
            .nth(1)
            .and_then(|c| c.trim().parse().ok())
            .with_context(|| format!("bad status line {line:?}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny token realm: `GET /token?...` with the right Basic credentials gets a token.
struct TokenServer {
    addr: String,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(user: &str, password: &str) -> Result<TokenServer> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("failed to bind the token realm")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?.to_string();
        let expected = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let (stop2, issued2) = (stop.clone(), issued.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = answer_token_request(conn, &expected, &issued2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(TokenServer {
            addr,
            stop,
            issued,
            thread: Some(thread),
        })
    }
}

fn answer_token_request(mut conn: TcpStream, expected: &str, issued: &AtomicUsize) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        conn.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let authorized = head.lines().any(|l| {
        l.strip_prefix("authorization:")
            .is_some_and(|v| v.trim() == expected.to_ascii_lowercase())
    });
    let (status, body) = if authorized {
        issued.fetch_add(1, Ordering::SeqCst);
        (
            "200 OK",
            r#"{"token":"gantry-test-token","expires_in":300}"#,
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"details":"incorrect username or password"}"#,
        )
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Installs Debian package `package` unless `probe` exists (`apt-get update` once if needed).
/// Serialized within the process; apt's own lock (with a timeout) serializes across processes.
pub fn apt_install(probe: &str, package: &str) -> Result<()> {
    static APT: Mutex<()> = Mutex::new(());
    if Path::new(probe).exists() {
        return Ok(());
    }
    let _g = APT.lock().unwrap_or_else(|p| p.into_inner());
    if Path::new(probe).exists() {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "-q",
                package,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let out = install().context("failed to run apt-get")?;
    if !out.status.success() {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update", "-q"])
            .output()
            .context("failed to run apt-get update")?;
        let out = install().context("failed to run apt-get")?;
        if !out.status.success() {
            bail!(
                "apt-get install {package} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if !Path::new(probe).exists() {
        bail!("{package} is installed but {probe} is missing");
    }
    Ok(())
}
