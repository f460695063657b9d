//! The agent's validated settings ([`AgentConfig`]).
//! One thing to know: durations default to the kubelet's (10 s heartbeat, 60 s status
//! report, 10 s → 5 min restart back-off); tests shorten them, production should not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The version the agent reports as `nodeInfo.kubeletVersion`.
pub const AGENT_VERSION: &str = "v1.32.0-gantry";

/// Exponential back-off: `initial` doubling up to `max`, forgotten after `reset_after` of
/// good behaviour (a container that ran that long, a pull that succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

/// Settings of one node agent; build with [`AgentConfig::new`], adjust fields, then
/// [`AgentConfig::validate`] (done by `Agent::new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The Node's name (a DNS-1123 subdomain).
    pub node_name: String,
    /// Extra Node labels (`--labels`).
    pub labels: BTreeMap<String, String>,
    /// The agent's state directory; ephemeral-storage capacity is measured here.
    pub data_dir: PathBuf,
    /// `topology.kubernetes.io/zone`, when set.
    pub zone: Option<String>,
    /// `topology.gantry.dev/rack`, when set.
    pub rack: Option<String>,
    /// Lease renewal period.
    pub heartbeat: Duration,
    /// `leaseDurationSeconds` of the Lease.
    pub lease_duration: Duration,
    /// NodeStatus is written at least this often (and whenever it changes).
    pub status_interval: Duration,
    /// How often the host's facts are re-read to detect condition changes.
    pub host_poll: Duration,
    /// How often a pod worker re-checks its containers without being woken up.
    pub pod_sync: Duration,
    /// `daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: u16,
    /// Container restart back-off (`CrashLoopBackOff`).
    pub restart_backoff: BackoffConfig,
    /// Image pull back-off (`ImagePullBackOff`).
    pub pull_backoff: BackoffConfig,
    /// The longest wait between retries of a failed API call.
    pub max_retry: Duration,
}

/// Why an [`AgentConfig`] is refused.
#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    #[error("invalid node name {name:?}: {reason}")]
    NodeName { name: String, reason: String },
    #[error("invalid node label {key:?}: {reason}")]
    Label { key: String, reason: String },
    #[error("{field} must be positive")]
    ZeroDuration { field: &'static str },
    #[error("lease duration must exceed the heartbeat period")]
    LeaseTooShort,
    #[error("data dir must be an absolute path, got {0:?}")]
    DataDir(PathBuf),
}

impl AgentConfig {
    /// Defaults for a node called `node_name` keeping its state in `data_dir`.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            node_name: node_name.into(),
            labels: BTreeMap::new(),
            data_dir: data_dir.into(),
            zone: None,
            rack: None,
            heartbeat: Duration::from_secs(10),
            lease_duration: Duration::from_secs(40),
            status_interval: Duration::from_secs(60),
            host_poll: Duration::from_secs(10),
            pod_sync: Duration::from_secs(1),
            kubelet_port: 10250,
            restart_backoff: BackoffConfig::default(),
            pull_backoff: BackoffConfig::default(),
            max_retry: Duration::from_secs(30),
        }
    }

    /// Checks names, labels and durations.
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        if let Err(reason) = check_subdomain(&self.node_name) {
            return Err(AgentConfigError::NodeName {
                name: self.node_name.clone(),
                reason,
            });
        }
        for (key, value) in &self.labels {
            check_label(key, value).map_err(|reason| AgentConfigError::Label {
                key: key.clone(),
                reason,
            })?;
        }
        for (field, d) in [
            ("heartbeat", self.heartbeat),
            ("lease duration", self.lease_duration),
            ("status interval", self.status_interval),
            ("host poll", self.host_poll),
            ("pod sync", self.pod_sync),
            ("restart back-off", self.restart_backoff.initial),
            ("pull back-off", self.pull_backoff.initial),
            ("max retry", self.max_retry),
        ] {
            if d.is_zero() {
                return Err(AgentConfigError::ZeroDuration { field });
            }
        }
        if self.lease_duration <= self.heartbeat {
            return Err(AgentConfigError::LeaseTooShort);
        }
        if !self.data_dir.is_absolute() {
            return Err(AgentConfigError::DataDir(self.data_dir.clone()));
        }
        Ok(())
    }
}

fn check_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    for part in name.split('.') {
        let ok = !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return Err("must be lowercase alphanumerics, '-' and '.'".into());
        }
    }
    Ok(())
}

fn check_label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        check_subdomain(p).map_err(|r| format!("prefix {r}"))?;
    }
    let qualified = |s: &str| {
        s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
    };
    if name.is_empty() || !qualified(name) {
        return Err("name must be 1 to 63 alphanumerics, '-', '_' or '.'".into());
    }
    if !qualified(value) {
        return Err(format!(
            "value {value:?} must be at most 63 alphanumerics, '-', '_' or '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = AgentConfig::new("node-1", "/var/lib/gantry");
        c.validate().expect("defaults are valid");
        assert_eq!(c.heartbeat, Duration::from_secs(10));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = AgentConfig::new("Node_1", "/d");
        assert!(matches!(
            c.validate(),
            Err(AgentConfigError::NodeName { .. })
        ));
        c.node_name = "n1".into();
        c.labels.insert("bad key!".into(), "v".into());
        assert!(matches!(c.validate(), Err(AgentConfigError::Label { .. })));
        c.labels.clear();
        c.labels.insert("example.com/role".into(), "edge".into());
        c.validate().expect("prefixed label is fine");
        c.heartbeat = Duration::from_secs(50);
        assert!(matches!(c.validate(), Err(AgentConfigError::LeaseTooShort)));
        c.heartbeat = Duration::ZERO;
        assert!(matches!(
            c.validate(),
            Err(AgentConfigError::ZeroDuration { field: "heartbeat" })
        ));
        let rel = AgentConfig::new("n1", "relative");
        assert!(matches!(rel.validate(), Err(AgentConfigError::DataDir(_))));
    }
}
