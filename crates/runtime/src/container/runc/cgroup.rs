//! Removes a container's cgroup from every hierarchy (cgroup v1 controllers, the v2 unified
//! mount, or a pure v2 root) after runc is done with it.
//! Invariant: only empty cgroups can be removed; a failure is logged, never fatal.

use std::path::Path;

/// `rmdir`s `cgroups_path` under each hierarchy below `root` (and under `root` itself).
pub fn remove(root: &Path, cgroups_path: &str) {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    let mut dirs = vec![root.join(rel)];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(entries.flatten().map(|e| e.path().join(rel)));
    }
    for dir in dirs {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A pure v2 root lists controller files too: `<root>/cgroup.procs/<rel>` is
            // NotADirectory, harmless.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => {
                tracing::warn!(cgroup = %dir.display(), error = %e, "failed to remove cgroup")
            }
        }
    }
}
