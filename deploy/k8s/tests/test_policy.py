"""Unit tests of the policy scan (deploy/k8s/policy.py), on small manifest dicts."""

from __future__ import annotations

import base64
import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

K8S_DIR = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    module_name = f"sous_k8s_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, K8S_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


policy = _load("policy")

NS = "sous"


def container(name: str = "app", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "image": "sous:1.0.0",
        "args": ["sous_catalog", "serve"],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8001}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8001}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    base.update(overrides)
    return base


def deployment(name: str = "catalog", *, containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"sous-{name}", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": containers if containers is not None else [container()],
                },
            },
        },
    }


def service(name: str, *, kind: str = "ClusterIP") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"sous-{name}", "namespace": NS},
        "spec": {"type": kind, "selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80}]},
    }


def pdb(name: str = "catalog") -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"sous-{name}", "namespace": NS},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
    }


def default_deny() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": NS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def network_policy(name: str, pod_labels: dict[str, str], ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def ingress(*backends: str) -> dict[str, Any]:
    paths = [
        {"path": f"/{b}", "pathType": "Prefix", "backend": {"service": {"name": b, "port": {"number": 80}}}}
        for b in backends
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "sous", "namespace": NS},
        "spec": {"rules": [{"host": "api.example.com", "http": {"paths": paths}}]},
    }


def secret(values: dict[str, str], *, placeholder_annotation: bool = True, encoded: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sous-secrets", "namespace": NS}}
    if placeholder_annotation:
        doc["metadata"]["annotations"] = {"sous.dev/placeholder": "true"}
    if encoded:
        doc["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    else:
        doc["stringData"] = values
    return doc


def good_stack() -> list[dict[str, Any]]:
    return [
        deployment("gateway"),
        deployment("catalog"),
        service("gateway"),
        service("catalog"),
        pdb("gateway"),
        pdb("catalog"),
        default_deny(),
        network_policy("gateway-ingress", {"app.kubernetes.io/name": "gateway"}, [{"ports": [{"port": 8000}]}]),
        network_policy(
            "catalog-ingress",
            {"app.kubernetes.io/name": "catalog"},
            [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]}],
        ),
        ingress("sous-gateway"),
    ]


# ------------------------------------------------------------------------------------------------ the scan


def test_a_compliant_stack_has_no_violations() -> None:
    assert policy.scan(good_stack(), min_replicas=2) == []


def test_main_exits_non_zero_with_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    bad = deployment(containers=[container(securityContext={})])
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all([*good_stack(), bad]))
    assert policy.main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "readOnlyRootFilesystem" in err and "Deployment/sous-catalog" in err
    path.write_text(yaml.safe_dump_all(good_stack()))
    assert policy.main([str(path)]) == 0


# ---------------------------------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
        (lambda c: c["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
        (lambda c: c["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "drop ALL"),
        (lambda c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "must not add"),
        (lambda c: c["securityContext"].update(privileged=True), "privileged"),
        (lambda c: c["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
        (lambda c: c["securityContext"].update(runAsUser=0), "uid 0"),
        (lambda c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}), "seccomp"),
        (lambda c: c.pop("resources"), "resources.requests.cpu"),
        (lambda c: c["resources"]["limits"].pop("memory"), "resources.limits.memory"),
        (lambda c: c.pop("readinessProbe"), "readinessProbe"),
        (lambda c: c.pop("livenessProbe"), "livenessProbe"),
        (lambda c: c.update(image="sous:latest"), "tag"),
        (lambda c: c.update(image="sous"), "tag"),
        (lambda c: c.update(env=[{"name": "SOUS_JWT_SECRET", "value": "s3cr3t"}]), "literal secret"),
    ],
)
def test_container_violations(mutate: Any, expected: str) -> None:
    bad = container()
    mutate(bad)
    violations = policy.check_containers([deployment(containers=[bad])])
    assert any(expected in v for v in violations), violations


def test_run_as_non_root_is_inherited_from_the_pod() -> None:
    c = container()
    del c["securityContext"]["runAsNonRoot"]
    del c["securityContext"]["seccompProfile"]
    assert policy.check_containers([deployment(containers=[c])]) == []
    doc = deployment(containers=[c])
    doc["spec"]["template"]["spec"]["securityContext"] = {}
    violations = policy.check_containers([doc])
    assert any("runAsNonRoot" in v for v in violations) and any("seccomp" in v for v in violations)


def test_init_containers_and_cronjobs_are_checked_but_jobs_need_no_probes() -> None:
    doc = deployment()
    doc["spec"]["template"]["spec"]["initContainers"] = [container("init", securityContext={})]
    assert any("'init'" in v for v in policy.check_containers([doc]))

    job_container = container()
    del job_container["readinessProbe"], job_container["livenessProbe"]
    job_pod: dict[str, Any] = {"spec": {"securityContext": {"runAsNonRoot": True}, "containers": [job_container]}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": job_pod}}
    assert policy.check_containers([job]) == []

    bad_pod = copy.deepcopy(job_pod)
    bad_pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "replay"},
        "spec": {"jobTemplate": {"spec": {"template": bad_pod}}},
    }
    assert any("CronJob/replay" in v and "readOnlyRootFilesystem" in v for v in policy.check_containers([cron]))


def test_host_namespaces_and_host_paths_are_refused() -> None:
    doc = deployment()
    doc["spec"]["template"]["spec"]["hostNetwork"] = True
    doc["spec"]["template"]["spec"]["volumes"] = [{"name": "docker", "hostPath": {"path": "/var/run"}}]
    violations = policy.check_containers([doc])
    assert any("hostNetwork" in v for v in violations) and any("hostPath" in v for v in violations)


# ------------------------------------------------------------------------------------------------- secrets


def test_secrets_with_values_are_refused_outside_dev() -> None:
    doc = secret({"SOUS_JWT_SECRET": "dev-only-placeholder"})
    assert policy.check_secrets([doc], placeholders_allowed=False)
    empty = secret({})
    assert policy.check_secrets([empty], placeholders_allowed=False) == []


def test_dev_secrets_must_be_marked_placeholders() -> None:
    good = secret({"SOUS_JWT_SECRET": "dev-only-placeholder-jwt", "username": "sous"})
    assert policy.check_secrets([good], placeholders_allowed=True) == []
    real = secret({"SOUS_JWT_SECRET": "k8Jq2v9XrT4mW7pZ1sLc0bN6yHd3fGa5"}, encoded=True)
    assert any("looks like a real value" in v for v in policy.check_secrets([real], placeholders_allowed=True))
    unmarked = secret({"SOUS_JWT_SECRET": "dev-only-placeholder"}, placeholder_annotation=False)
    assert any("annotated" in v for v in policy.check_secrets([unmarked], placeholders_allowed=True))


def test_configmaps_must_not_hold_secrets() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sous-config"},
        "data": {"SOUS_ENV": "production", "SOUS_INTERNAL_SECRET": "abc"},
    }
    assert any("SOUS_INTERNAL_SECRET" in v for v in policy.check_secrets([cm], placeholders_allowed=True))
    cm["data"] = {"SOUS_DATABASE_URL": "postgresql+asyncpg://sous:hunter2@db:5432/sous"}
    assert any("password" in v for v in policy.check_secrets([cm], placeholders_allowed=True))
    cm["data"] = {"SOUS_CATALOG_URL": "http://sous-catalog:8001"}
    assert policy.check_secrets([cm], placeholders_allowed=False) == []


# ----------------------------------------------------------------------------------------------------- pdb


def test_every_deployment_needs_a_pdb() -> None:
    assert policy.check_pdbs([deployment("catalog"), pdb("catalog")]) == []
    violations = policy.check_pdbs([deployment("catalog"), pdb("executor")])
    assert violations == ["Deployment/sous-catalog: no PodDisruptionBudget selects its pods"]
    elsewhere = pdb("catalog")
    elsewhere["metadata"]["namespace"] = "other"
    assert policy.check_pdbs([deployment("catalog"), elsewhere])


# ------------------------------------------------------------------------------------------------- network


def test_default_deny_is_required() -> None:
    assert policy.check_default_deny([deployment(), default_deny()]) == []
    assert policy.check_default_deny([deployment()])
    ingress_only = default_deny()
    ingress_only["spec"]["policyTypes"] = ["Ingress"]
    assert policy.check_default_deny([deployment(), ingress_only])
    allows_all = default_deny()
    allows_all["spec"]["ingress"] = [{}]
    assert policy.check_default_deny([deployment(), allows_all])


def test_selector_matching() -> None:
    labels = {"app.kubernetes.io/name": "catalog", "tier": "api"}
    assert policy.selector_matches({}, labels)
    expr = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["catalog", "x"]}]}
    assert policy.selector_matches(expr, labels)
    expr["matchExpressions"][0]["operator"] = "NotIn"
    assert not policy.selector_matches(expr, labels)
    assert not policy.selector_matches({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)
    assert policy.selector_matches({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, labels)


# ------------------------------------------------------------------------------------------------ exposure


def test_only_the_gateway_may_be_behind_an_ingress() -> None:
    stack = [*good_stack(), ingress("sous-gateway", "sous-catalog")]
    assert any("routes to sous-catalog" in v for v in policy.check_exposure(stack))


def test_no_other_service_may_be_a_load_balancer() -> None:
    stack = [*good_stack(), service("executor", kind="LoadBalancer")]
    assert any("Service/sous-executor" in v for v in policy.check_exposure(stack))
    stack = [*good_stack()[:2], service("gateway", kind="LoadBalancer"), *good_stack()[3:]]
    assert policy.check_exposure(stack) == []


def test_network_policies_open_to_other_namespaces_select_only_the_gateway() -> None:
    open_catalog = network_policy(
        "catalog-open", {"app.kubernetes.io/name": "catalog"}, [{"from": [{"namespaceSelector": {}}]}]
    )
    violations = policy.check_exposure([*good_stack(), open_catalog])
    assert any("NetworkPolicy/catalog-open" in v and "Deployment/sous-catalog" in v for v in violations)
    everyone = network_policy("all-open", {}, [{"ports": [{"port": 80}]}])
    assert any("Deployment/sous-catalog" in v for v in policy.check_exposure([*good_stack(), everyone]))


def test_minimum_replicas() -> None:
    one = deployment()
    one["spec"]["replicas"] = 1
    assert policy.check_min_replicas([deployment()], 2) == []
    assert policy.check_min_replicas([one], 2)
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "gw"}, "spec": {"minReplicas": 1}}
    assert policy.check_min_replicas([hpa], 2)


def test_http_routes_reach_only_the_gateway() -> None:
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "sous", "namespace": NS},
        "spec": {"rules": [{"backendRefs": [{"name": "sous-gateway", "port": 8000}]}]},
    }
    assert policy.check_exposure([*good_stack(), route]) == []
    route["spec"]["rules"].append({"backendRefs": [{"name": "sous-catalog", "port": 8001}]})
    assert any("HTTPRoute/sous: routes to sous-catalog" in v for v in policy.check_exposure([*good_stack(), route]))


def test_only_the_metrics_namespace_may_scrape_other_pods() -> None:
    scrape = network_policy(
        "allow-metrics-scrape",
        {"app.kubernetes.io/name": "catalog"},
        [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                "ports": [{"port": 8001}],
            }
        ],
    )
    assert policy.check_exposure([*good_stack(), scrape]) == []
    assert policy.check_exposure([*good_stack(), scrape], metrics_namespace="prometheus")
    any_port = copy.deepcopy(scrape)
    del any_port["spec"]["ingress"][0]["ports"]
    assert policy.check_exposure([*good_stack(), any_port])
    wider = copy.deepcopy(scrape)
    wider["spec"]["ingress"][0]["from"][0]["namespaceSelector"] = {"matchLabels": {"team": "monitoring"}}
    assert policy.check_exposure([*good_stack(), wider])


def test_digests_are_required_when_asked() -> None:
    assert any("digest" in v for v in policy.check_digests([deployment()]))
    pinned = deployment(containers=[container(image="registry.example.com/sous@sha256:" + "a" * 64)])
    assert policy.check_digests([pinned]) == []
    assert policy.scan([*good_stack()], require_digest=True)
    assert not any("digest" in v for v in policy.scan(good_stack()))


# ------------------------------------------------------------------------------------------------- scaling


def executor_stack(*, cap: str | None = "8", threshold: str = "8", high: int = 12, partitions: int = 12) -> list[Any]:
    executor = deployment("executor")
    if cap is not None:
        executor["spec"]["template"]["spec"]["containers"][0]["env"] = [
            {"name": "SOUS_EXECUTOR_MAX_INFLIGHT", "value": cap}
        ]
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "sous-executor", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"name": "sous-executor"},
            "minReplicaCount": 2,
            "maxReplicaCount": high,
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "topic": "sous.executor.executions.v1",
                        "consumerGroup": "executor-runners",
                        "lagThreshold": threshold,
                        "activationLagThreshold": "0",
                        "allowIdleConsumers": "true",
                    },
                }
            ],
        },
    }
    topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "sous-executor-executions-v1", "namespace": NS},
        "spec": {"topicName": "sous.executor.executions.v1", "partitions": partitions},
    }
    return [executor, scaled, topic]


def test_lag_threshold_follows_the_inflight_cap() -> None:
    assert policy.check_executor_scaling(executor_stack()) == []
    assert any("must equal" in v for v in policy.check_executor_scaling(executor_stack(threshold="20")))
    assert any("SOUS_EXECUTOR_MAX_INFLIGHT" in v for v in policy.check_executor_scaling(executor_stack(cap=None)))
    assert any("partitions" in v for v in policy.check_executor_scaling(executor_stack(high=13)))


@pytest.mark.parametrize("cap", [1, 4, 8, 50])
@pytest.mark.parametrize("replicas", [1, 2, 5, 11])
def test_a_lag_past_what_the_replicas_carry_asks_for_more(cap: int, replicas: int) -> None:
    """N replicas carrying C runs each: a lag of N*C keeps N, N*C+M (M past the HPA's tolerance) asks for more."""

    def desired(lag: int) -> int:
        return int(
            policy.keda_kafka_desired_replicas(
                lag, replicas, lag_threshold=cap, min_replicas=1, max_replicas=12, partitions=12
            )
        )

    assert desired(replicas * cap) == replicas
    waiting = int(policy.HPA_TOLERANCE * replicas * cap) + 1
    assert desired(replicas * cap + waiting) > replicas
    # One replica's worth of waiting runs asks for one more replica while 1/N is past the tolerance.
    if 1 / replicas > policy.HPA_TOLERANCE:
        assert desired(replicas * cap + cap) >= replicas + 1
    # Never past the partitions, however long the queue.
    assert desired(1000 * cap) == 12


def test_a_threshold_above_the_cap_leaves_queued_runs_waiting() -> None:
    problems = policy.scaling_problems(cap=8, threshold=20, low=2, high=12, partitions=12)
    assert any("would not scale up" in p for p in problems)
    problems = policy.scaling_problems(cap=8, threshold=4, low=2, high=12, partitions=12)
    assert any("would scale up" in p for p in problems)
    assert policy.scaling_problems(cap=8, threshold=8, low=2, high=12, partitions=12) == []


def test_the_scalers_partition_cap_would_strand_the_last_replica() -> None:
    """Why the ScaledObject sets allowIdleConsumers (maxReplicaCount <= partitions keeps consumers busy):
    KEDA's cap at partitions x lagThreshold makes the ratio 12/11 at 11 replicas, inside the HPA tolerance."""
    capped = policy.keda_kafka_desired_replicas(
        10_000, 11, lag_threshold=8, min_replicas=2, max_replicas=12, partitions=12, allow_idle_consumers=False
    )
    assert capped == 11
    assert policy.scaling_problems(8, 8, 2, 12, 12, allow_idle_consumers=False)
    uncapped = policy.keda_kafka_desired_replicas(
        10_000, 11, lag_threshold=8, min_replicas=2, max_replicas=12, partitions=12, allow_idle_consumers=True
    )
    assert uncapped == 12


def test_a_prometheus_trigger_on_runs_follows_the_cap_too() -> None:
    stack = executor_stack()
    scaled = stack[1]
    scaled["spec"]["triggers"].append(
        {
            "type": "prometheus",
            "metadata": {"query": "max(sous_executions_in_status)", "threshold": "8", "activationThreshold": "0"},
        }
    )
    assert policy.check_executor_scaling(stack) == []
    scaled["spec"]["triggers"][1]["metadata"]["threshold"] = "16"
    assert any("prometheus trigger" in v and "must equal" in v for v in policy.check_executor_scaling(stack))
    scaled["spec"]["triggers"][1]["metadata"].update(threshold="8", activationThreshold="5")
    assert any("activationThreshold" in v for v in policy.check_executor_scaling(stack))
