//! Black-box tests: the real `gantry` binary driven by the real `kubectl` (1.31 sends JSON,
//! 1.32 and 1.33 send protobuf for typed creates), `curl`, and `kill -9`.
//! Each test starts its own server in its own data directory on a free port.

mod apply;
mod crud;
mod delete;
mod discovery;
mod durability;
mod exec;
mod get;
mod mutate;
mod nodes;
mod pods;
mod python;

use anyhow::Result;
use gantry_testkit::Gantry;

/// Asserts that kubectl failed and that its stderr contains `needle`.
fn expect_failure(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kubectl unexpectedly succeeded; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(needle),
        "stderr does not contain {needle:?}: {stderr}"
    );
}

fn start() -> Result<Gantry> {
    Gantry::start()
}
