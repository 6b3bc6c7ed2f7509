#!/usr/bin/env bash
# Offline validation of deploy/k8s (no cluster needed):
#   1. render each overlay with kustomize (kubectl's built-in one, or a pinned kustomize built with Go and
#      cached under .sous/cache/ when kubectl is missing),
#   2. validate every rendered object against JSON Schemas (Kubernetes' own, shipped in the
#      kubernetes-validate package; deploy/k8s/schemas/ for the Strimzi, CloudNativePG and KEDA kinds),
#   3. run the policy scan (deploy/k8s/policy.py).
# SOUS_KUSTOMIZE=go forces the Go-built kustomize even where kubectl exists.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

KUSTOMIZE_VERSION=v5.5.0
KUBERNETES_VERSION=1.32.0
OVERLAYS=(dev prod)
CACHE=.sous/cache/k8s
OUT=$CACHE/rendered
PY=.venv/bin/python
mkdir -p "$OUT"

[ -x "$PY" ] || { echo "k8s-validate: $PY is missing; run make install first" >&2; exit 1; }

kustomize_cmd=()
if [ "${SOUS_KUSTOMIZE:-}" != "go" ] && command -v kubectl >/dev/null 2>&1 \
    && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
    kustomize_cmd=(kubectl kustomize)
else
    bin="$PWD/$CACHE/kustomize-$KUSTOMIZE_VERSION/bin"
    if [ ! -x "$bin/kustomize" ]; then
        command -v go >/dev/null 2>&1 || { echo "k8s-validate: neither kubectl (kustomize v5) nor go found" >&2; exit 1; }
        echo "k8s-validate: building kustomize $KUSTOMIZE_VERSION with Go (once, cached in $CACHE)"
        GOBIN="$bin" GOMODCACHE="$PWD/$CACHE/go/mod" GOCACHE="$PWD/$CACHE/go/build" GOFLAGS=-modcacherw \
            go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    fi
    kustomize_cmd=("$bin/kustomize" build)
fi
echo "k8s-validate: rendering with ${kustomize_cmd[*]}"

status=0
for overlay in "${OVERLAYS[@]}"; do
    rendered="$OUT/$overlay.yaml"
    "${kustomize_cmd[@]}" "deploy/k8s/overlays/$overlay" > "$rendered"
    echo "k8s-validate: $overlay: rendered $(grep -c '^kind:' "$rendered") objects to $rendered"
    "$PY" deploy/k8s/schema_check.py --kubernetes-version "$KUBERNETES_VERSION" "$rendered" || status=1
    policy_args=()
    case "$overlay" in
        dev) policy_args=(--placeholder-secrets) ;;
        prod) policy_args=(--min-replicas 2) ;;
    esac
    "$PY" deploy/k8s/policy.py "${policy_args[@]}" "$rendered" || status=1
done

elapsed=$(( $(date +%s) - started ))
if [ "$status" -ne 0 ]; then
    echo "k8s-validate: FAILED (${elapsed}s)" >&2
    exit 1
fi
echo "k8s-validate: ok (${elapsed}s)"
