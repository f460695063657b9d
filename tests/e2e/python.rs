//! The official Python client (`kubernetes` 32 from PyPI, installed by `scripts/test`) works
//! against Gantry unmodified.

use anyhow::Result;

use crate::start;

#[test]
fn official_python_client_works() -> Result<()> {
    let g = start()?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("KUBECONFIG", &g.kubeconfig)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
