//! Whether the kernel's OOM killer fired in a container's memory cgroup.
//! Invariant: must be read before `runc delete`, which removes the cgroup.

use std::path::{Path, PathBuf};

/// Whether an OOM kill was counted for `cgroups_path` under `root` (v1 memory controller,
/// then the v2 unified hierarchy, then pure v2).
pub fn oom_killed(root: &Path, cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let candidates: [(PathBuf, &str); 3] = [
        (
            root.join("memory").join(rel).join("memory.oom_control"),
            "oom_kill",
        ),
        (
            root.join("unified").join(rel).join("memory.events"),
            "oom_kill",
        ),
        (root.join(rel).join("memory.events"), "oom_kill"),
    ];
    candidates.iter().any(|(file, key)| {
        std::fs::read_to_string(file).is_ok_and(|text| counter(&text, key).is_some_and(|n| n > 0))
    })
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
pub fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_oom_control_and_v2_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v1 = dir.path().join("memory/gantry/a");
        std::fs::create_dir_all(&v1).expect("mkdir");
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .expect("write");
        assert!(oom_killed(dir.path(), "/gantry/a"));
        let v2 = dir.path().join("gantry/b");
        std::fs::create_dir_all(&v2).expect("mkdir");
        std::fs::write(
            v2.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
        )
        .expect("write");
        assert!(!oom_killed(dir.path(), "/gantry/b"));
        assert!(!oom_killed(dir.path(), "/gantry/none"));
        assert_eq!(counter("oom 1\noom_kill 2\n", "oom_kill"), Some(2));
    }
}
