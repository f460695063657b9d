//! Which resources the API server serves: group, version, kind, plural, scope, short names,
//! categories and subresources. Discovery, routing and storage keys are all derived from this
//! one table, so adding a resource here is what makes it exist.

/// A subresource served under `<resource>/<name>/<sub>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `status`: writes only `.status` (and metadata), reads the whole object.
    Status,
    /// `scale`: an `autoscaling/v1` Scale view of `spec.replicas`.
    Scale,
    /// `pods/binding`: create a Binding to set `spec.nodeName`.
    Binding,
    /// `pods/eviction`: create a `policy/v1` Eviction to delete a pod.
    Eviction,
    /// `pods/log`: the log of one of the pod's containers, streamed from its node.
    Log,
    /// `pods/exec`: runs a command in one of the pod's containers, streamed over WebSocket
    /// from its node.
    Exec,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
        }
    }

    pub fn parse(s: &str) -> Option<Subresource> {
        match s {
            "status" => Some(Subresource::Status),
            "scale" => Some(Subresource::Scale),
            "binding" => Some(Subresource::Binding),
            "eviction" => Some(Subresource::Eviction),
            "log" => Some(Subresource::Log),
            "exec" => Some(Subresource::Exec),
            _ => None,
        }
    }

    /// (group, version, kind) of the object this subresource reads and writes, where it is
    /// not the parent's own kind.
    pub fn kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            // Upstream names PodExecOptions for exec; it is not in our wire schema, so
            // discovery reports the parent kind as it does for log.
            Subresource::Status | Subresource::Log | Subresource::Exec => None,
            Subresource::Scale => Some(("autoscaling", "v1", "Scale")),
            Subresource::Binding => Some(("", "v1", "Binding")),
            Subresource::Eviction => Some(("policy", "v1", "Eviction")),
        }
    }

    /// Verbs discovery lists for this subresource.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale => &["get", "patch", "update"],
            Subresource::Binding | Subresource::Eviction => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec => &["create", "get"],
        }
    }
}

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

/// Verbs every resource supports.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` or `pods`, as Kubernetes names a group resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps` or `Pod`, as Kubernetes names a kind in validation messages.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The storage key prefix of all objects of this type (all namespaces).
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/{}/", self.group_or_core(), self.plural)
    }

    /// The storage key prefix of the objects in one namespace.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{}/", self.key_prefix(), namespace)
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    fn group_or_core(&self) -> &'static str {
        if self.group.is_empty() {
            "core"
        } else {
            self.group
        }
    }
}

use Subresource::{Binding, Eviction, Exec, Log, Scale, Status};

#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        subresources,
    }
}

/// Every served resource, grouped by group/version in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    rt(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        &[],
        &[],
    ),
    rt(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        &[],
    ),
    rt(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        &[],
    ),
    rt(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        &[],
        &[Status],
    ),
    rt(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        &[],
        &[Status],
    ),
    rt(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        &["all"],
        &[Binding, Eviction, Exec, Log, Status],
    ),
    rt("", "v1", "Secret", "secrets", "secret", true, &[], &[], &[]),
    rt(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        &[],
        &[],
    ),
    rt(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        &["all"],
        &[Status],
    ),
    rt(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        &["all"],
        &[Status],
    ),
    rt(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        &["all"],
        &[Scale, Status],
    ),
    rt(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        &["all"],
        &[Scale, Status],
    ),
    rt(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        &["all"],
        &[Scale, Status],
    ),
    rt(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        &[],
        &["all"],
        &[Status],
    ),
    rt(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        &[],
        &[],
        &[],
    ),
    rt(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        &[],
        &[],
        &[],
    ),
    rt(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        &[],
    ),
];

/// The resource served at (group, version, plural).
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of (group, version, kind).
pub fn by_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Distinct (group, version) pairs in discovery order, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_namespaces_and_scopes() {
        let pods = by_plural("", "v1", "pods").expect("pods are served");
        assert_eq!(
            pods.key(Some("shop"), "web"),
            "/registry/core/pods/shop/web"
        );
        let nodes = by_plural("", "v1", "nodes").expect("nodes are served");
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/core/nodes/n1");
        let deploy = by_kind("apps", "v1", "Deployment").expect("deployments are served");
        assert_eq!(deploy.group_resource(), "deployments.apps");
        assert_eq!(deploy.api_version(), "apps/v1");
    }

    #[test]
    fn core_group_is_listed_first() {
        let gvs = group_versions();
        assert_eq!(gvs[0], ("", "v1"));
        assert!(gvs.contains(&("events.k8s.io", "v1")));
    }
}
