#!/usr/bin/env bash
# Builds promtool and amtool into .bin/ at the repository root (git-ignored) from the Go module
# proxy, in the tools/kube module (its tools.go pins them, at the Prometheus and Alertmanager
# releases the monitoring chart runs; build.sh reads the versions from its go.mod, one place to
# bump). A binary already there at the right version is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "${here}/../kube" && pwd)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
mkdir -p "${bin}"

# required MODULE: the version go.mod requires.
required() { awk -v m="$1" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' "${module}/go.mod"; }

# build NAME PACKAGE VERSION RELEASE [TAGS]: the module VERSION is built; its RELEASE number goes
# into prometheus/common's version package, which both tools print with --version.
build() {
  local name=$1 pkg=$2 version=$3 release=$4 tags=${5:-} out="${bin}/$1-$3"
  if [ -x "${out}" ] && "${out}" --version 2>&1 | grep -q "version ${release} "; then
    echo "${name} ${version}: already built"
  else
    local start=${SECONDS}
    (cd "${module}" && go build -tags "${tags}" -ldflags "-s -w -X github.com/prometheus/common/version.Version=${release}" -o "${out}" "${pkg}")
    echo "${name} ${version}: built in $((SECONDS - start))s"
  fi
  ln -sfn "$(basename "${out}")" "${bin}/${name}"
}

# Prometheus 3.x is published as module v0.3MM.P for release 3.MM.P (v0.307.3 is 3.7.3);
# Alertmanager's module version is its release.
prom=$(required github.com/prometheus/prometheus)
minor_patch=${prom#v0.3}
release="3.$((10#${minor_patch%%.*})).${minor_patch#*.}"
# No -trimpath: it is part of the build cache's key of every package, and the module's other builds
# (the API server first) have compiled most of promtool's packages already. Prometheus 3.7 has no
# build tags to leave out the cloud service discoveries (3.8 added them): promtool compiles them.
build promtool github.com/prometheus/prometheus/cmd/promtool "${prom}" "${release}"
am=$(required github.com/prometheus/alertmanager)
build amtool github.com/prometheus/alertmanager/cmd/amtool "${am}" "${am#v}"
