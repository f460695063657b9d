//! The adapter's own records of sandboxes and containers: small JSON files written atomically
//! (temp file + rename) so a crash never leaves a half-written one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::{SandboxId, SandboxInfo, LABEL_POD_UID, LABEL_RESTART_COUNT};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub pid: i32,
    pub pod_uid: String,
    pub host_network: bool,
    #[serde(default)]
    pub share_pid: bool,
    pub labels: BTreeMap<String, String>,
}

impl SandboxRecord {
    pub fn info(&self) -> SandboxInfo {
        let mut labels = self.labels.clone();
        labels
            .entry(LABEL_POD_UID.to_string())
            .or_insert_with(|| self.pod_uid.clone());
        SandboxInfo {
            id: SandboxId(self.id.clone()),
            pod_uid: self.pod_uid.clone(),
            ip: None,
            labels,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub image_id: String,
}

impl ContainerRecord {
    pub fn restart_count(&self) -> u32 {
        self.labels
            .get(LABEL_RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn path(dir: &Path, kind: &str, id: &str) -> PathBuf {
    dir.join(kind).join(format!("{id}.json"))
}

fn save<T: Serialize>(file: &Path, value: &T) -> io::Result<()> {
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).map_err(io::Error::other)?)?;
    std::fs::rename(&tmp, file)
}

fn load<T: for<'de> Deserialize<'de>>(file: &Path) -> io::Result<Option<T>> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn all<T: for<'de> Deserialize<'de>>(dir: &Path, kind: &str) -> io::Result<Vec<T>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir.join(kind)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let p = entry?.path();
        if p.extension().and_then(|e| e.to_str()) == Some("json") {
            if let Some(v) = load(&p)? {
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn remove(file: &Path) -> io::Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub fn save_sandbox(dir: &Path, r: &SandboxRecord) -> io::Result<()> {
    save(&path(dir, "sandboxes", &r.id), r)
}

pub fn sandbox(dir: &Path, id: &str) -> io::Result<Option<SandboxRecord>> {
    load(&path(dir, "sandboxes", id))
}

pub fn sandboxes(dir: &Path) -> io::Result<Vec<SandboxRecord>> {
    all(dir, "sandboxes")
}

pub fn remove_sandbox(dir: &Path, id: &str) -> io::Result<()> {
    remove(&path(dir, "sandboxes", id))
}

pub fn save_container(dir: &Path, r: &ContainerRecord) -> io::Result<()> {
    save(&path(dir, "containers", &r.id), r)
}

pub fn container(dir: &Path, id: &str) -> io::Result<Option<ContainerRecord>> {
    load(&path(dir, "containers", id))
}

pub fn containers(dir: &Path) -> io::Result<Vec<ContainerRecord>> {
    all(dir, "containers")
}

pub fn remove_container(dir: &Path, id: &str) -> io::Result<()> {
    remove(&path(dir, "containers", id))
}
