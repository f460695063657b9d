//! Facts about the machine the Node reports ([`HostInfo`]): identity, kernel and OS,
//! capacity and what is still available. [`SystemHost`] reads `/proc`, `/sys`, `/etc` and
//! `statvfs`; [`FakeHost`] returns fixed facts for tests.
//! One thing to know: reading facts never fails as a whole; a missing file degrades one field
//! (an empty id, zero capacity), because a Node with a gap beats no Node at all.

mod sys;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Mutex;

/// What the agent knows about its machine at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
    /// Go's GOOS: `linux`.
    pub operating_system: String,
    /// Go's GOARCH: `amd64`, `arm64`, …
    pub architecture: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub internal_ip: IpAddr,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub memory_available_bytes: u64,
    /// Size of the filesystem holding the data dir.
    pub storage_bytes: u64,
    pub storage_available_bytes: u64,
    pub pid_max: u64,
    pub pids_in_use: u64,
}

/// Reads the host's facts. Cheap enough to call every few seconds.
pub trait HostInfo: Send + Sync {
    fn facts(&self) -> HostFacts;
}

/// The real host: `/proc`, `/sys`, `/etc/os-release`, `/etc/machine-id`, `statvfs(data_dir)`.
#[derive(Debug, Clone)]
pub struct SystemHost {
    data_dir: PathBuf,
}

impl SystemHost {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SystemHost {
            data_dir: data_dir.into(),
        }
    }
}

impl HostInfo for SystemHost {
    fn facts(&self) -> HostFacts {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        let machine_id = read("/etc/machine-id")
            .or_else(|_| read("/var/lib/dbus/machine-id"))
            .unwrap_or_default();
        let system_uuid = read("/sys/class/dmi/id/product_uuid")
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|_| uuid_from_machine_id(&machine_id));
        let (storage_bytes, storage_available_bytes) = sys::statvfs(&self.data_dir)
            .or_else(|| sys::statvfs(std::path::Path::new("/")))
            .unwrap_or((0, 0));
        HostFacts {
            hostname: read("/proc/sys/kernel/hostname")
                .unwrap_or_else(|_| "localhost".into())
                .to_lowercase(),
            kernel_version: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
            os_image: os_pretty_name(&read("/etc/os-release").unwrap_or_default()),
            operating_system: "linux".into(),
            architecture: go_arch(std::env::consts::ARCH).into(),
            machine_id,
            system_uuid,
            boot_id: read("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            internal_ip: sys::first_ipv4()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory_bytes: meminfo_kib(&meminfo, "MemTotal").saturating_mul(1024),
            memory_available_bytes: meminfo_kib(&meminfo, "MemAvailable").saturating_mul(1024),
            storage_bytes,
            storage_available_bytes,
            pid_max: read("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(32768),
            pids_in_use: count_pids(),
        }
    }
}

/// Fixed facts, changeable at run time (to flip a pressure condition in a test).
#[derive(Debug)]
pub struct FakeHost {
    facts: Mutex<HostFacts>,
}

impl FakeHost {
    pub fn new(facts: HostFacts) -> Self {
        FakeHost {
            facts: Mutex::new(facts),
        }
    }

    /// A plausible 4-CPU, 8 GiB, 100 GiB amd64 machine called `hostname`.
    pub fn sample(hostname: &str) -> Self {
        Self::new(HostFacts {
            hostname: hostname.into(),
            kernel_version: "6.1.0-test".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            operating_system: "linux".into(),
            architecture: "amd64".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            system_uuid: "01234567-89ab-cdef-0123-456789abcdef".into(),
            boot_id: "fedcba98-7654-3210-fedc-ba9876543210".into(),
            internal_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            cpus: 4,
            memory_bytes: 8 << 30,
            memory_available_bytes: 6 << 30,
            storage_bytes: 100 << 30,
            storage_available_bytes: 80 << 30,
            pid_max: 4_194_304,
            pids_in_use: 300,
        })
    }

    /// Replaces the facts returned from now on.
    pub fn update(&self, f: impl FnOnce(&mut HostFacts)) {
        let mut facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut facts);
    }
}

impl HostInfo for FakeHost {
    fn facts(&self) -> HostFacts {
        self.facts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Go's name for a Rust architecture (what `kubernetes.io/arch` uses).
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

/// `PRETTY_NAME` from an os-release file, unquoted; "Linux" when absent.
pub fn os_pretty_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".into())
}

/// A `/proc/meminfo` field in KiB (0 when absent).
pub fn meminfo_kib(meminfo: &str, field: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == field).then(|| v.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// A machine id as a UUID (`8-4-4-4-12`), the fallback when DMI is unreadable.
fn uuid_from_machine_id(id: &str) -> String {
    if id.len() != 32 {
        return id.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    )
}

fn count_pids() -> u64 {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count() as u64
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_os_release_and_meminfo() {
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(os_pretty_name(os), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_pretty_name(""), "Linux");
        let mem = "MemTotal:       16314392 kB\nMemFree:  100 kB\nMemAvailable:   9000000 kB\n";
        assert_eq!(meminfo_kib(mem, "MemTotal"), 16_314_392);
        assert_eq!(meminfo_kib(mem, "MemAvailable"), 9_000_000);
        assert_eq!(meminfo_kib(mem, "Nope"), 0);
    }

    #[test]
    fn maps_architectures_and_machine_ids() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(
            uuid_from_machine_id("0123456789abcdef0123456789abcdef"),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
    }
}
