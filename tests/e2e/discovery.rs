//! Acceptance 1: version, api-resources and api-versions with unmodified kubectl.

use anyhow::Result;

use crate::start;

#[test]
fn version_reports_client_and_server() -> Result<()> {
    let g = start()?;
    for v in ["1.31", "1.32", "1.33"] {
        let out = g.kubectl_ok(v, &["version"])?;
        assert!(
            out.contains("Server Version: v1.32.0-gantry"),
            "kubectl {v}: {out}"
        );
    }
    Ok(())
}

#[test]
fn api_resources_lists_every_served_kind() -> Result<()> {
    let g = start()?;
    for v in ["1.31", "1.33"] {
        let out = g.kubectl_ok(v, &["api-resources"])?;
        let header = out.lines().next().unwrap_or("");
        assert!(
            header.starts_with("NAME") && header.contains("SHORTNAMES") && header.contains("KIND"),
            "{header}"
        );
        for (name, short, kind) in [
            ("deployments", "deploy", "Deployment"),
            ("pods", "po", "Pod"),
            ("services", "svc", "Service"),
            ("leases", "", "Lease"),
            ("endpointslices", "", "EndpointSlice"),
        ] {
            let line = out
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("kubectl {v} api-resources lacks {name}: {out}"));
            assert!(line.contains(kind), "{line}");
            if !short.is_empty() {
                assert!(line.split_whitespace().any(|w| w == short), "{line}");
            }
        }
    }
    let versions = g.kubectl_ok("1.33", &["api-versions"])?;
    for gv in [
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}: {versions}"
        );
    }
    Ok(())
}

#[test]
fn anonymous_requests_are_refused_except_health_and_version() -> Result<()> {
    let g = start()?;
    let curl = |path: &str| -> Result<String> {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{}{path}", g.url),
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(curl("/api/v1/namespaces")?, "401");
    assert_eq!(curl("/apis")?, "401");
    for open in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(curl(open)?, "200", "{open}");
    }
    Ok(())
}
