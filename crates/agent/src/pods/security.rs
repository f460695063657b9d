//! A container's effective security settings: its `securityContext` resolved against the
//! pod's (`runAsUser`, `runAsGroup`, `runAsNonRoot`, `supplementalGroups`, `seccompProfile`
//! fall back to the pod level; capabilities, privileged and read-only rootfs are per container).
//! One thing to know: `runAsNonRoot` is checked here only when a numeric uid is known; an
//! image user given by name is left to the runtime, which can read the image's passwd file.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::ContainerSecurity;

/// Why a container may not run as configured (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    #[error("container has runAsNonRoot and image will run as root")]
    RunsAsRoot,
}

/// Resolves the container's security context against the pod's; `image_user` is the image
/// config's `User` (`uid[:gid]` or a name).
pub fn container_security(
    pod: &Pod,
    c: &Container,
    image_user: Option<&str>,
) -> Result<ContainerSecurity, SecurityError> {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod_sc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    let seccomp = sc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or_else(|| pod_sc.and_then(|s| s.seccomp_profile.as_ref()))
        .map(|p| p.type_.as_str());
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    if non_root {
        let image_uid = image_user
            .map(|u| u.split(':').next().unwrap_or(u))
            .filter(|u| !u.is_empty())
            .map(|u| u.parse::<i64>());
        let effective = match (run_as_user, image_uid) {
            (Some(uid), _) => Some(uid),
            (None, Some(Ok(uid))) => Some(uid),
            (None, None) => Some(0),
            // A user name: only the runtime can resolve it.
            (None, Some(Err(_))) => None,
        };
        if effective == Some(0) {
            return Err(SecurityError::RunsAsRoot);
        }
    }
    Ok(ContainerSecurity {
        run_as_user,
        run_as_group,
        supplemental_groups: pod_sc
            .and_then(|s| s.supplemental_groups.clone())
            .unwrap_or_default(),
        privileged,
        add_capabilities: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        drop_capabilities: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
        allow_privilege_escalation: sc
            .and_then(|s| s.allow_privilege_escalation)
            .unwrap_or(privileged),
        read_only_root_filesystem: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        seccomp_runtime_default: seccomp == Some("RuntimeDefault"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(pod_sc: serde_json::Value, sc: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"spec": {"securityContext": pod_sc,
            "containers": [{"name": "c", "image": "i", "securityContext": sc}]}}))
        .expect("pod")
    }

    fn resolve(p: &Pod, image_user: Option<&str>) -> Result<ContainerSecurity, SecurityError> {
        container_security(p, &p.spec.as_ref().expect("spec").containers[0], image_user)
    }

    #[test]
    fn container_settings_override_the_pods() {
        let p = pod(
            json!({"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000],
                   "seccompProfile": {"type": "RuntimeDefault"}}),
            json!({"runAsUser": 2000, "readOnlyRootFilesystem": true,
                   "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}),
        );
        let s = resolve(&p, None).expect("allowed");
        assert_eq!(s.run_as_user, Some(2000));
        assert_eq!(s.run_as_group, Some(3000));
        assert_eq!(s.supplemental_groups, vec![4000]);
        assert!(s.seccomp_runtime_default);
        assert!(s.read_only_root_filesystem);
        assert_eq!(s.add_capabilities, vec!["NET_ADMIN"]);
        assert_eq!(s.drop_capabilities, vec!["ALL"]);
        assert!(!s.allow_privilege_escalation);
    }

    #[test]
    fn run_as_non_root_refuses_root() {
        let p = pod(json!({"runAsNonRoot": true}), json!({}));
        assert_eq!(resolve(&p, None), Err(SecurityError::RunsAsRoot));
        assert_eq!(resolve(&p, Some("0:0")), Err(SecurityError::RunsAsRoot));
        assert!(resolve(&p, Some("65534")).is_ok());
        assert!(
            resolve(&p, Some("nobody")).is_ok(),
            "names are the runtime's to check"
        );
        let p = pod(json!({"runAsNonRoot": true, "runAsUser": 1000}), json!({}));
        assert!(resolve(&p, None).is_ok());
    }

    #[test]
    fn privileged_allows_escalation() {
        let p = pod(json!({}), json!({"privileged": true}));
        let s = resolve(&p, None).expect("allowed");
        assert!(s.privileged && s.allow_privilege_escalation);
    }
}
