#!/usr/bin/env bash
# Refresh the pinned operator CRDs under deploy/k8s/crds/ and the JSON Schemas derived from them
# (deploy/k8s/schemas/). Run it after changing a version below; commit what it changes.
#
# Where each CRD comes from (package registries only):
#   - Go module proxy (`go mod download -json`): CloudNativePG, the barman-cloud plugin, KEDA,
#     prometheus-operator, Gateway API, External Secrets. The module's go.sum hash is recorded.
#   - Maven Central: Strimzi publishes no CRD files in a registry, but its `api` artifact holds the model
#     classes and `crd-generator` the generator its own build runs (see the `generate-crd-co-install-v1`
#     execution in the api artifact's pom). We run that generator on that artifact with the same arguments,
#     which yields the CRDs of the release. Needs Java 21+ (JAVA_HOME, or the newest JDK in /usr/lib/jvm).
#     The sha256 of both jars is recorded.
# Every CRD file's sha256 goes into deploy/k8s/crds/sources.lock.json; `crd_schemas.py --check` (part of
# make k8s-validate) fails when a file and the lock disagree.
set -euo pipefail
cd "$(dirname "$0")/.."

STRIMZI_VERSION=1.2.0
CNPG_VERSION=v1.28.0
BARMAN_CLOUD_VERSION=v0.15.0
KEDA_VERSION=v2.21.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
GATEWAY_API_VERSION=v1.6.3
EXTERNAL_SECRETS_VERSION=v1.3.2

CACHE=$PWD/.sous/cache/k8s
CRDS=deploy/k8s/crds
PY=.venv/bin/python
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-modcacherw
mkdir -p "$CACHE" "$CRDS"
[ -x "$PY" ] || { echo "k8s-crds: $PY is missing; run make install first" >&2; exit 1; }

manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT

# go_crds <operator> <module> <version> <file in the module>...
go_crds() {
    local operator=$1 module=$2 version=$3
    shift 3
    local info dir sum target
    info=$(cd "$CACHE" && go mod download -json "$module@$version")
    dir=$(printf '%s' "$info" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    sum=$(printf '%s' "$info" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Sum"])')
    target="$CRDS/$operator-${version#v}"
    rm -rf "$CRDS/$operator"-*
    mkdir -p "$target"
    for file in "$@"; do
        cp "$dir/$file" "$target/$(basename "$file")"
        chmod 644 "$target/$(basename "$file")"
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$operator" "${version#v}" "go module $module@$version" "$sum" "$target" >> "$manifest"
    echo "k8s-crds: $operator $version: $# CRD file(s) from $module"
}

strimzi_crds() {
    local work=$CACHE/strimzi-$STRIMZI_VERSION target="$CRDS/strimzi-$STRIMZI_VERSION" java=""
    local candidate major
    for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/*/bin/java "$(command -v java || true)"; do
        [ -x "$candidate" ] || continue
        major=$("$candidate" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
        if [ "${major%%.*}" -ge 21 ] 2>/dev/null; then java=$candidate; break; fi
    done
    [ -n "$java" ] || { echo "k8s-crds: Java 21+ is needed for the Strimzi CRD generator (set JAVA_HOME)" >&2; exit 1; }
    command -v mvn >/dev/null || { echo "k8s-crds: mvn is needed to fetch the Strimzi artifacts" >&2; exit 1; }
    mkdir -p "$work"
    cat > "$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sous.k8s</groupId>
  <artifactId>strimzi-crds</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>$STRIMZI_VERSION</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>$STRIMZI_VERSION</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-annotations</artifactId><version>$STRIMZI_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    (cd "$work" && mvn -q -B -Dmaven.repo.local="$CACHE/m2" dependency:copy-dependencies \
        -DoutputDirectory=lib -DincludeScope=runtime)
    rm -rf "$CRDS"/strimzi-*
    mkdir -p "$target"
    "$java" -cp "$work/lib/*" io.strimzi.crdgenerator.CrdGenerator \
        --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
        --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
        "io.strimzi.api.kafka.model.kafka.Kafka=$target/040-Crd-kafka.yaml" \
        "io.strimzi.api.kafka.model.topic.KafkaTopic=$target/043-Crd-kafkatopic.yaml" \
        "io.strimzi.api.kafka.model.user.KafkaUser=$target/044-Crd-kafkauser.yaml" \
        "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$target/045-Crd-kafkanodepool.yaml"
    local sums
    sums="api-$STRIMZI_VERSION.jar sha256:$(sha256sum "$work/lib/api-$STRIMZI_VERSION.jar" | cut -d' ' -f1)"
    sums="$sums, crd-generator-$STRIMZI_VERSION.jar sha256:$(sha256sum "$work/lib/crd-generator-$STRIMZI_VERSION.jar" | cut -d' ' -f1)"
    printf '%s\t%s\t%s\t%s\t%s\n' strimzi "$STRIMZI_VERSION" \
        "maven io.strimzi:api:$STRIMZI_VERSION + io.strimzi:crd-generator:$STRIMZI_VERSION" "$sums" "$target" >> "$manifest"
    echo "k8s-crds: strimzi $STRIMZI_VERSION: 4 CRD files generated from io.strimzi:api"
}

strimzi_crds
go_crds cloudnative-pg github.com/cloudnative-pg/cloudnative-pg "$CNPG_VERSION" \
    config/crd/bases/postgresql.cnpg.io_clusters.yaml \
    config/crd/bases/postgresql.cnpg.io_poolers.yaml \
    config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml
go_crds barman-cloud github.com/cloudnative-pg/plugin-barman-cloud "$BARMAN_CLOUD_VERSION" \
    config/crd/bases/barmancloud.cnpg.io_objectstores.yaml
go_crds keda github.com/kedacore/keda/v2 "$KEDA_VERSION" \
    config/crd/bases/keda.sh_scaledobjects.yaml \
    config/crd/bases/keda.sh_triggerauthentications.yaml
go_crds prometheus-operator github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" \
    example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml \
    example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml \
    example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml
go_crds gateway-api sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION" \
    config/crd/standard/gateway.networking.k8s.io_httproutes.yaml \
    config/crd/standard/gateway.networking.k8s.io_gateways.yaml
go_crds external-secrets github.com/external-secrets/external-secrets "$EXTERNAL_SECRETS_VERSION" \
    config/crds/bases/external-secrets.io_externalsecrets.yaml

# The lock: every source with its registry checksum, every CRD file with its sha256.
"$PY" - "$manifest" "$CRDS/sources.lock.json" <<'EOF'
import hashlib, json, sys
from pathlib import Path

sources = []
for line in Path(sys.argv[1]).read_text().splitlines():
    operator, version, origin, checksum, directory = line.split("\t")
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).glob("*.yaml"))}
    sources.append({"operator": operator, "version": version, "source": origin, "checksum": checksum,
                    "directory": Path(directory).name, "files": files})
Path(sys.argv[2]).write_text(json.dumps({"sources": sources}, indent=2) + "\n")
EOF
"$PY" deploy/k8s/crd_schemas.py
