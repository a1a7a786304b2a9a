#!/usr/bin/env bash
# Builds promtool and amtool into .bin/ at the repository root (git-ignored) from the Go module
# proxy: the wrapper module here requires github.com/prometheus/prometheus and
# github.com/prometheus/alertmanager at the releases pinned in its go.mod, which build.sh reads
# (one place to bump). A binary already there at the right version is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
mkdir -p "${bin}"

# required MODULE: the version go.mod requires.
required() { awk -v m="$1" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' "${here}/go.mod"; }

# build NAME PACKAGE VERSION RELEASE [TAGS]: the module VERSION is built; its RELEASE number goes
# into prometheus/common's version package, which both tools print with --version.
build() {
  local name=$1 pkg=$2 version=$3 release=$4 tags=${5:-} out="${bin}/$1-$3"
  if [ -x "${out}" ] && "${out}" --version 2>&1 | grep -q "version ${release} "; then
    echo "${name} ${version}: already built"
  else
    local start=${SECONDS}
    (cd "${here}" && go build -trimpath -tags "${tags}" -ldflags "-s -w -X github.com/prometheus/common/version.Version=${release}" -o "${out}" "${pkg}")
    echo "${name} ${version}: built in $((SECONDS - start))s"
  fi
  ln -sfn "$(basename "${out}")" "${bin}/${name}"
}

# Prometheus 3.x is published as module v0.3MM.P for release 3.MM.P; Alertmanager's module
# version is its release.
prom=$(required github.com/prometheus/prometheus)
minor_patch=${prom#v0.3}
# remove_all_sd leaves out the service discoveries of the clouds (Prometheus' plugins/ build
# tags): check.sh checks and unit-tests rules only, and a cold build compiles 1117 packages
# instead of 1364 (go list -deps, v0.316.0).
build promtool github.com/prometheus/prometheus/cmd/promtool "${prom}" "3.${minor_patch:0:2}.${minor_patch#*.}" remove_all_sd
am=$(required github.com/prometheus/alertmanager)
build amtool github.com/prometheus/alertmanager/cmd/amtool "${am}" "${am#v}"
