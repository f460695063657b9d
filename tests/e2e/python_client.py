"""Drives Gantry with the official Python client (kubernetes 32): list, create, watch,
patch, scale and a 409 error, exiting non-zero with a message on any mismatch.
Run by the e2e test `python::official_python_client_works` with KUBECONFIG set."""

import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


config.load_kube_config()
core = client.CoreV1Api()
apps = client.AppsV1Api()

names = [ns.metadata.name for ns in core.list_namespace().items]
check("default" in names and "kube-system" in names, f"system namespaces missing: {names}")

core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings", labels={"app": "py"}), data={"k": "v"})
created = core.create_namespaced_config_map("py", cm)
check(created.metadata.resource_version, "no resourceVersion on create")

try:
    core.create_namespaced_config_map("py", cm)
    check(False, "duplicate create succeeded")
except ApiException as e:
    check(e.status == 409 and "already exists" in e.body, f"unexpected error {e.status}: {e.body}")

events = []


def watcher():
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "py", label_selector="app=py", timeout_seconds=10):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["object"].metadata.name == "later":
            w.stop()


t = threading.Thread(target=watcher)
t.start()
core.create_namespaced_config_map(
    "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="later", labels={"app": "py"}))
)
t.join(timeout=15)
check(("ADDED", "later") in events, f"watch did not deliver the new object: {events}")

patched = core.patch_namespaced_config_map("settings", "py", {"data": {"k": "w"}})
check(patched.data["k"] == "w", "patch did not apply")

dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    ),
)
apps.create_namespaced_deployment("py", dep)
apps.patch_namespaced_deployment_scale("web", "py", {"spec": {"replicas": 4}})
scale = apps.read_namespaced_deployment_scale("web", "py")
check(scale.spec.replicas == 4, f"scale is {scale.spec.replicas}")
d = apps.read_namespaced_deployment("web", "py")
check(d.spec.strategy.rolling_update.max_surge == "25%", "deployment defaults missing")
print("OK")
