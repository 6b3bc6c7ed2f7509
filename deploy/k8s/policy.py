"""Policy scan of rendered Kubernetes manifests (the output of `kubectl kustomize`).

Rules (each check returns human-readable violations; any violation makes the scan exit 1):
  containers   every container and init container runs as non-root with a read-only root filesystem, no
               privilege escalation, ALL capabilities dropped (none added), a RuntimeDefault/Localhost
               seccomp profile, CPU and memory requests and limits and a pinned image (no `latest`); no
               host namespaces or hostPath volumes; long-running containers have readiness and liveness
               probes; no secret-looking env var carries a literal value
  secrets      a Secret holds values only where placeholders are allowed (the dev overlay), and there only
               obvious placeholders in a Secret annotated `sous.dev/placeholder: "true"`; no ConfigMap
               holds a secret-looking key or a URL with a password
  pdb          every Deployment has a PodDisruptionBudget selecting its pods
  network      a default-deny NetworkPolicy (all pods, Ingress and Egress, no rules) exists in every
               namespace that runs workloads
  exposure     Ingresses and HTTPRoutes route only to the gateway Service; no other Service is a
               LoadBalancer/NodePort or has external IPs; NetworkPolicies open to other namespaces or IP
               blocks select only gateway pods, except rules that admit only the metrics namespace
               (Prometheus, --metrics-namespace) on listed ports
  scaling      a ScaledObject with a kafka (lag) or prometheus (runs in the system) trigger targets a
               Deployment whose containers set SOUS_EXECUTOR_MAX_INFLIGHT, the trigger's threshold equals
               that cap, and the HPA arithmetic holds:
               with N replicas and cap C, a lag of N*C keeps N, a lag of N*C+M (M past the HPA tolerance)
               asks for more (up to maxReplicaCount, which stays within the topic's partitions)
  replicas     (with --min-replicas N) Deployments, HPAs and ScaledObjects keep at least N replicas
  digests      (with --require-digest) every container image is pinned by digest

    python deploy/k8s/policy.py rendered.yaml [--placeholder-secrets] [--min-replicas 2] [--require-digest]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

GATEWAY_SERVICE = "sous-gateway"
METRICS_NAMESPACE = "monitoring"
INFLIGHT_CAP_ENV = "SOUS_EXECUTOR_MAX_INFLIGHT"
# The Horizontal Pod Autoscaler leaves the replica count alone while |usage ratio - 1| <= this.
HPA_TOLERANCE = 0.1
# KEDA trigger type -> (its per-replica target, its activation threshold) in the trigger's metadata. The
# kafka trigger's value is the runners' lag; the prometheus one's the runs in the system (running +
# pending): both N x cap with N replicas full, plus what waits.
SCALING_TRIGGERS = {
    "kafka": ("lagThreshold", "activationLagThreshold"),
    "prometheus": ("threshold", "activationThreshold"),
}
PLACEHOLDER_ANNOTATION = "sous.dev/placeholder"
# Keys whose values are not secret (an account name), so they need not look like placeholders.
NON_SECRET_KEYS = frozenset({"username", "user"})
PLACEHOLDER_MARKERS = ("placeholder", "change-me", "changeme", "replace-me", "dev-only", "example")
SECRET_KEY_PATTERN = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    pod_spec: Mapping[str, Any]


def _name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind', '?')}/{_meta(doc).get('name', '?')}"


def _meta(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = doc.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _namespace(doc: Mapping[str, Any]) -> str:
    return str(_meta(doc).get("namespace") or "default")


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def workloads(docs: Iterable[Manifest]) -> Iterator[Workload]:
    """Every pod template in the manifests (Pods, controllers, CronJobs)."""
    for doc in docs:
        kind = doc.get("kind")
        template: Any
        if kind == "Pod":
            template = doc
        elif kind in POD_TEMPLATE_KINDS:
            template = _dig(doc, "spec", "template")
        elif kind == "CronJob":
            template = _dig(doc, "spec", "jobTemplate", "spec", "template")
        else:
            continue
        labels = {str(k): str(v) for k, v in _mapping(_dig(template, "metadata", "labels")).items()}
        yield Workload(
            str(kind), str(_meta(doc).get("name", "?")), _namespace(doc), labels, _mapping(_dig(template, "spec"))
        )


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels + matchExpressions); an empty selector matches everything."""
    selector = _mapping(selector)
    for key, value in _mapping(selector.get("matchLabels")).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in _list(selector.get("matchExpressions")):
        key = str(_mapping(expression).get("key"))
        operator = _mapping(expression).get("operator")
        values = [str(v) for v in _list(_mapping(expression).get("values"))]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_is_empty(selector: Any) -> bool:
    selector = _mapping(selector)
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


# ---------------------------------------------------------------------------------------------- containers


def _image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def check_containers(docs: Sequence[Manifest]) -> list[str]:
    violations: list[str] = []
    for workload in workloads(docs):
        spec = workload.pod_spec
        pod_security = _mapping(spec.get("securityContext"))
        where = f"{workload.kind}/{workload.name}"
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag) is True:
                violations.append(f"{where}: {flag} must not be used")
        for volume in _list(spec.get("volumes")):
            if "hostPath" in _mapping(volume):
                violations.append(f"{where}: volume {_mapping(volume).get('name')!r} is a hostPath")
        long_running = workload.kind in LONG_RUNNING_KINDS
        groups = (("containers", long_running), ("initContainers", False))
        for field, needs_probes in groups:
            for container in _list(spec.get(field)):
                container = _mapping(container)
                violations.extend(
                    f"{where} container {container.get('name', '?')!r}: {problem}"
                    for problem in _container_problems(container, pod_security, needs_probes=needs_probes)
                )
    return violations


def _container_problems(
    container: Mapping[str, Any], pod_security: Mapping[str, Any], *, needs_probes: bool
) -> Iterator[str]:
    security = _mapping(container.get("securityContext"))

    def effective(key: str) -> Any:
        return security[key] if key in security else pod_security.get(key)

    if effective("runAsNonRoot") is not True:
        yield "must set runAsNonRoot: true"
    if effective("runAsUser") == 0:
        yield "must not run as uid 0"
    if security.get("readOnlyRootFilesystem") is not True:
        yield "must set readOnlyRootFilesystem: true"
    if security.get("allowPrivilegeEscalation") is not False:
        yield "must set allowPrivilegeEscalation: false"
    if security.get("privileged") is True:
        yield "must not be privileged"
    capabilities = _mapping(security.get("capabilities"))
    if "ALL" not in [str(c) for c in _list(capabilities.get("drop"))]:
        yield "must drop ALL capabilities"
    if _list(capabilities.get("add")):
        yield f"must not add capabilities {capabilities.get('add')}"
    seccomp = _mapping(effective("seccompProfile")).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        yield "must use the RuntimeDefault (or a Localhost) seccomp profile"
    resources = _mapping(container.get("resources"))
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if not _mapping(resources.get(section)).get(resource):
                yield f"must set resources.{section}.{resource}"
    image = str(container.get("image") or "")
    if not _image_is_pinned(image):
        yield f"image {image!r} must carry a tag (not latest) or a digest"
    if needs_probes:
        for probe in ("readinessProbe", "livenessProbe"):
            if not container.get(probe):
                yield f"must have a {probe}"
    for env in _list(container.get("env")):
        env = _mapping(env)
        if SECRET_KEY_PATTERN.search(str(env.get("name", ""))) and env.get("value"):
            yield f"env {env.get('name')} holds a literal secret; use secretKeyRef"


# ------------------------------------------------------------------------------------------------- secrets


def looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return value == "" or any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def _secret_values(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in _mapping(doc.get("stringData")).items():
        yield str(key), str(value)
    for key, value in _mapping(doc.get("data")).items():
        try:
            decoded = base64.b64decode(str(value), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            decoded = str(value)
        yield str(key), decoded


def check_secrets(docs: Sequence[Manifest], *, placeholders_allowed: bool) -> list[str]:
    violations: list[str] = []
    for doc in docs:
        kind = doc.get("kind")
        if kind == "Secret":
            values = [(key, value) for key, value in _secret_values(doc) if value]
            if not values:
                continue
            if not placeholders_allowed:
                keys = ", ".join(key for key, _ in values)
                violations.append(
                    f"{_name(doc)}: carries values ({keys}); outside the dev overlay Secrets are created out of band"
                )
                continue
            annotations = _mapping(_meta(doc).get("annotations"))
            if str(annotations.get(PLACEHOLDER_ANNOTATION)) != "true":
                violations.append(
                    f'{_name(doc)}: a committed Secret must be annotated {PLACEHOLDER_ANNOTATION}: "true"'
                )
            for key, value in values:
                if key not in NON_SECRET_KEYS and not looks_like_placeholder(value):
                    violations.append(
                        f"{_name(doc)}: {key} looks like a real value; committed Secrets hold only placeholders "
                        f"(containing one of {', '.join(PLACEHOLDER_MARKERS)})"
                    )
        elif kind == "ConfigMap":
            for key, value in _mapping(doc.get("data")).items():
                text = str(value)
                if SECRET_KEY_PATTERN.search(str(key)) and text:
                    violations.append(f"{_name(doc)}: {key} looks like a secret; put it in a Secret")
                elif URL_WITH_PASSWORD.search(text):
                    violations.append(f"{_name(doc)}: {key} is a URL with a password; put it in a Secret")
    return violations


# ----------------------------------------------------------------------------------------------------- pdb


def check_pdbs(docs: Sequence[Manifest]) -> list[str]:
    pdbs = [doc for doc in docs if doc.get("kind") == "PodDisruptionBudget"]
    violations: list[str] = []
    for workload in workloads(docs):
        if workload.kind != "Deployment":
            continue
        covered = any(
            _namespace(pdb) == workload.namespace
            and not _selector_is_empty(_dig(pdb, "spec", "selector"))
            and selector_matches(_dig(pdb, "spec", "selector"), workload.labels)
            for pdb in pdbs
        )
        if not covered:
            violations.append(f"Deployment/{workload.name}: no PodDisruptionBudget selects its pods")
    return violations


# ------------------------------------------------------------------------------------------------- network


def is_default_deny(doc: Mapping[str, Any]) -> bool:
    spec = _mapping(doc.get("spec"))
    types = set(_list(spec.get("policyTypes")))
    return (
        doc.get("kind") == "NetworkPolicy"
        and _selector_is_empty(spec.get("podSelector"))
        and {"Ingress", "Egress"} <= types
        and not _list(spec.get("ingress"))
        and not _list(spec.get("egress"))
    )


def check_default_deny(docs: Sequence[Manifest]) -> list[str]:
    namespaces = sorted({workload.namespace for workload in workloads(docs)})
    denied = {_namespace(doc) for doc in docs if is_default_deny(doc)}
    return [
        f"namespace {namespace}: no default-deny NetworkPolicy (podSelector {{}}, policyTypes Ingress and Egress, no rules)"
        for namespace in namespaces
        if namespace not in denied
    ]


# ------------------------------------------------------------------------------------------------ exposure


def _ingress_backends(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = _mapping(doc.get("spec"))
    if spec.get("defaultBackend"):
        yield _mapping(spec.get("defaultBackend"))
    for rule in _list(spec.get("rules")):
        for path in _list(_dig(rule, "http", "paths")):
            yield _mapping(_mapping(path).get("backend"))


def _opens_to_outside(rule: Mapping[str, Any], metrics_namespace: str = METRICS_NAMESPACE) -> bool:
    peers = _list(rule.get("from"))
    if not peers:
        return True
    if _list(rule.get("ports")) and all(_is_metrics_peer(_mapping(peer), metrics_namespace) for peer in peers):
        return False
    return any("ipBlock" in _mapping(peer) or "namespaceSelector" in _mapping(peer) for peer in peers)


def _is_metrics_peer(peer: Mapping[str, Any], metrics_namespace: str) -> bool:
    """A peer that is exactly the metrics namespace (Prometheus), selected by its name label."""
    selector = _mapping(peer.get("namespaceSelector"))
    return (
        "ipBlock" not in peer
        and not selector.get("matchExpressions")
        and dict(_mapping(selector.get("matchLabels"))) == {"kubernetes.io/metadata.name": metrics_namespace}
    )


def _route_backends(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for rule in _list(_dig(doc, "spec", "rules")):
        for backend in _list(_mapping(rule).get("backendRefs")):
            yield _mapping(backend)


def _is_selected_by_service(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(str(key)) == str(value) for key, value in selector.items())


def check_exposure(
    docs: Sequence[Manifest], gateway_service: str = GATEWAY_SERVICE, metrics_namespace: str = METRICS_NAMESPACE
) -> list[str]:
    violations: list[str] = []
    services = {(_namespace(doc), _meta(doc).get("name")): doc for doc in docs if doc.get("kind") == "Service"}
    for doc in docs:
        kind = doc.get("kind")
        if kind == "Ingress":
            for backend in _ingress_backends(doc):
                target = _dig(backend, "service", "name")
                if target != gateway_service:
                    violations.append(
                        f"{_name(doc)}: routes to {target or 'a non-Service backend'!s}; only {gateway_service} may be exposed"
                    )
        elif kind in ("HTTPRoute", "GRPCRoute"):
            for backend in _route_backends(doc):
                target = backend.get("name")
                if backend.get("kind", "Service") != "Service" or target != gateway_service:
                    violations.append(f"{_name(doc)}: routes to {target}; only {gateway_service} may be exposed")
        elif kind == "Service" and _meta(doc).get("name") != gateway_service:
            spec = _mapping(doc.get("spec"))
            if spec.get("type") in ("LoadBalancer", "NodePort") or spec.get("externalIPs"):
                violations.append(f"{_name(doc)}: exposed outside the cluster; only {gateway_service} may be")
    gateway_selectors = {
        namespace: _mapping(_dig(service, "spec", "selector"))
        for (namespace, name), service in services.items()
        if name == gateway_service
    }
    for doc in docs:
        if doc.get("kind") != "NetworkPolicy":
            continue
        rules = [_mapping(rule) for rule in _list(_dig(doc, "spec", "ingress"))]
        if not any(_opens_to_outside(rule, metrics_namespace) for rule in rules):
            continue
        namespace = _namespace(doc)
        gateway_selector = gateway_selectors.get(namespace, {})
        for workload in workloads(docs):
            if (
                workload.namespace == namespace
                and selector_matches(_dig(doc, "spec", "podSelector"), workload.labels)
                and not _is_selected_by_service(gateway_selector, workload.labels)
            ):
                violations.append(
                    f"{_name(doc)}: lets traffic from outside the namespace reach {workload.kind}/{workload.name}; "
                    "only gateway pods may be reachable from outside"
                )
    return violations


# ------------------------------------------------------------------------------------------------ replicas


def check_min_replicas(docs: Sequence[Manifest], minimum: int) -> list[str]:
    fields = {
        "Deployment": ("spec", "replicas"),
        "HorizontalPodAutoscaler": ("spec", "minReplicas"),
        "ScaledObject": ("spec", "minReplicaCount"),
    }
    violations: list[str] = []
    for doc in docs:
        path = fields.get(str(doc.get("kind")))
        if path is None:
            continue
        value = _dig(doc, *path)
        count = 1 if value is None else value
        if not isinstance(count, int) or count < minimum:
            violations.append(f"{_name(doc)}: {'.'.join(path)} is {value}, at least {minimum} required")
    return violations


# ------------------------------------------------------------------------------------------------- digests


def check_digests(docs: Sequence[Manifest]) -> list[str]:
    violations: list[str] = []
    for workload in workloads(docs):
        for field in ("containers", "initContainers"):
            for container in _list(workload.pod_spec.get(field)):
                image = str(_mapping(container).get("image") or "")
                if "@sha256:" not in image:
                    violations.append(
                        f"{workload.kind}/{workload.name} container {_mapping(container).get('name', '?')!r}: "
                        f"image {image!r} must be pinned by digest (@sha256:...)"
                    )
    return violations


# ------------------------------------------------------------------------------------------------- scaling


def keda_kafka_desired_replicas(
    lag: int,
    current: int,
    *,
    lag_threshold: int,
    min_replicas: int,
    max_replicas: int,
    partitions: int,
    allow_idle_consumers: bool = True,
    tolerance: float = HPA_TOLERANCE,
) -> int:
    """The replica count the HPA that KEDA drives asks for, given the consumer group's total lag.

    KEDA's Kafka scaler reports the total lag as an external metric with an AverageValue target of
    lagThreshold. Without allowIdleConsumers it caps the lag at partitions x lagThreshold once
    lag // lagThreshold (integer division) exceeds the partition count, since a consumer beyond the
    partition count would idle. The HPA then wants ceil(metric / target), unless the usage ratio is within
    its tolerance of 1.
    """
    capped = not allow_idle_consumers and lag // lag_threshold > partitions
    metric = partitions * lag_threshold if capped else lag
    current = max(current, 1)
    ratio = metric / (lag_threshold * current)
    desired = current if abs(ratio - 1) <= tolerance else math.ceil(metric / lag_threshold)
    return max(min_replicas, min(max_replicas, desired))


def _inflight_cap(deployment: Mapping[str, Any]) -> int | None:
    for container in _list(_dig(deployment, "spec", "template", "spec", "containers")):
        for env in _list(_mapping(container).get("env")):
            if _mapping(env).get("name") == INFLIGHT_CAP_ENV:
                try:
                    return int(str(_mapping(env).get("value")))
                except ValueError:
                    return None
    return None


def check_executor_scaling(docs: Sequence[Manifest]) -> list[str]:
    violations: list[str] = []
    deployments = {(_namespace(doc), _meta(doc).get("name")): doc for doc in docs if doc.get("kind") == "Deployment"}
    partitions_of = {
        str(_dig(doc, "spec", "topicName") or _meta(doc).get("name")): _dig(doc, "spec", "partitions")
        for doc in docs
        if doc.get("kind") == "KafkaTopic"
    }
    for doc in docs:
        if doc.get("kind") != "ScaledObject":
            continue
        for trigger in _list(_dig(doc, "spec", "triggers")):
            trigger = _mapping(trigger)
            keys = SCALING_TRIGGERS.get(str(trigger.get("type")))
            if keys is None:
                continue
            threshold_key, activation_key = keys
            where = f"{_name(doc)} ({trigger.get('type')} trigger)"
            metadata = _mapping(trigger.get("metadata"))
            target = deployments.get((_namespace(doc), _dig(doc, "spec", "scaleTargetRef", "name")))
            cap = _inflight_cap(target) if target is not None else None
            if cap is None or cap < 1:
                violations.append(f"{where}: its target Deployment must set {INFLIGHT_CAP_ENV} to a positive integer")
                continue
            try:
                threshold = int(str(metadata.get(threshold_key)))
            except ValueError:
                violations.append(f"{where}: {threshold_key} {metadata.get(threshold_key)!r} is not an integer")
                continue
            if threshold != cap:
                violations.append(
                    f"{where}: {threshold_key} {threshold} must equal {INFLIGHT_CAP_ENV} {cap} "
                    "(one replica's worth of waiting runs asks for one more replica)"
                )
                continue
            if str(metadata.get(activation_key, "0")) != "0":
                violations.append(f"{where}: {activation_key} must be 0 (any waiting run activates scaling)")
            low = int(_dig(doc, "spec", "minReplicaCount") or 0)
            high = int(_dig(doc, "spec", "maxReplicaCount") or 100)
            if trigger.get("type") == "prometheus":
                # Runs in the system (running + pending): no partition cap in the scaler.
                violations.extend(
                    f"{where}: {problem}" for problem in scaling_problems(cap, threshold, max(low, 1), high, high)
                )
                continue
            partitions = partitions_of.get(str(metadata.get("topic")))
            if not isinstance(partitions, int):
                violations.append(f"{where}: no KafkaTopic {metadata.get('topic')!r} with partitions in the render")
                continue
            if high > partitions:
                violations.append(f"{where}: maxReplicaCount {high} exceeds the {partitions} partitions of the topic")
                continue
            allow_idle = str(metadata.get("allowIdleConsumers", "false")).lower() == "true"
            violations.extend(
                f"{where}: {problem}"
                for problem in scaling_problems(cap, threshold, max(low, 1), high, partitions, allow_idle)
            )
    return violations


def scaling_problems(
    cap: int, threshold: int, low: int, high: int, partitions: int, allow_idle_consumers: bool = True
) -> list[str]:
    """The arithmetic, for every replica count N the ScaledObject allows, with a short and a long queue."""
    problems: list[str] = []

    def desired(lag: int, current: int) -> int:
        return keda_kafka_desired_replicas(
            lag,
            current,
            lag_threshold=threshold,
            min_replicas=low,
            max_replicas=high,
            partitions=partitions,
            allow_idle_consumers=allow_idle_consumers,
        )

    for n in range(low, high + 1):
        if desired(n * cap, n) > n:
            problems.append(f"{n} replicas full ({n}x{cap} in lag) would scale up: lagThreshold too low")
        waiting = math.floor(HPA_TOLERANCE * n * cap) + 1
        for queued in (waiting, 100 * high * cap):
            if n < high and desired(n * cap + queued, n) <= n:
                problems.append(
                    f"{n} replicas with {n}x{cap}+{queued} in lag would not scale up "
                    "(lagThreshold too high, or the scaler's partition cap within the HPA tolerance)"
                )
    return problems


# ---------------------------------------------------------------------------------------------------- scan


def scan(
    docs: Sequence[Manifest],
    *,
    placeholders_allowed: bool = False,
    min_replicas: int = 0,
    gateway_service: str = GATEWAY_SERVICE,
    metrics_namespace: str = METRICS_NAMESPACE,
    require_digest: bool = False,
) -> list[str]:
    violations = [
        *check_containers(docs),
        *check_secrets(docs, placeholders_allowed=placeholders_allowed),
        *check_pdbs(docs),
        *check_default_deny(docs),
        *check_exposure(docs, gateway_service, metrics_namespace),
        *check_executor_scaling(docs),
    ]
    if min_replicas:
        violations.extend(check_min_replicas(docs, min_replicas))
    if require_digest:
        violations.extend(check_digests(docs))
    return violations


def load_documents(paths: Iterable[Path]) -> list[Manifest]:
    docs: list[Manifest] = []
    for path in paths:
        with path.open() as handle:
            docs.extend(doc for doc in yaml.safe_load_all(handle) if isinstance(doc, dict))
    return docs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--placeholder-secrets", action="store_true", help="allow Secrets holding marked placeholders (dev overlay)"
    )
    parser.add_argument("--min-replicas", type=int, default=0, help="minimum replicas per Deployment/HPA/ScaledObject")
    parser.add_argument("--gateway-service", default=GATEWAY_SERVICE)
    parser.add_argument("--metrics-namespace", default=METRICS_NAMESPACE, help="namespace Prometheus scrapes from")
    parser.add_argument("--require-digest", action="store_true", help="every image must be pinned by digest")
    args = parser.parse_args(argv)
    docs = load_documents(args.files)
    violations = scan(
        docs,
        placeholders_allowed=args.placeholder_secrets,
        min_replicas=args.min_replicas,
        gateway_service=args.gateway_service,
        metrics_namespace=args.metrics_namespace,
        require_digest=args.require_digest,
    )
    label = ", ".join(str(path) for path in args.files)
    for violation in violations:
        print(f"policy: {violation}", file=sys.stderr)
    if violations:
        print(f"policy: {label}: {len(violations)} violation(s) in {len(docs)} objects")
        return 1
    print(f"policy: {label}: {len(docs)} objects, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
