#!/usr/bin/env bash
# Builds the upstream kubeadm of each supported Kubernetes version line into .bin/ at the
# repository root (git-ignored), from the Go module proxy: .bin/kubeadm-v1.35.4 and
# .bin/kubeadm-v1.28.15. lines.sh says which module builds each line and reads its release from
# that module's go.mod. A binary that is already there at the right version is reused.
# Usage: build.sh [LINE...]   (LINE is v1.35 or v1.28; default: both)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/kubeadm/lines.sh
. "${here}/lines.sh"
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
mkdir -p "${bin}"
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=("${kubeadm_lines[@]}")
for line in "${lines[@]}"; do
  module=$(line_module "${line}")
  version=$(line_version "${line}")
  major=${version#v}
  major=${major%%.*}
  minor=${version#v*.}
  minor=${minor%%.*}
  out="${bin}/kubeadm-${version}"
  if [ -x "${out}" ] && [ "$("${out}" version -o short 2> /dev/null)" = "${version}" ]; then
    echo "kubeadm ${version}: already built"
    continue
  fi
  # Without the version in ldflags kubeadm reports v0.0.0 and cannot resolve its defaults.
  ldflags="-s -w"
  for var in gitVersion=${version} gitMajor=${major} gitMinor=${minor} gitTreeState=clean; do
    ldflags="${ldflags} -X k8s.io/component-base/version.${var}"
  done
  start=${SECONDS}
  (cd "${module}" && go build -ldflags "${ldflags}" -o "${out}" "$(line_package "${line}")")
  echo "kubeadm ${version}: built in $((SECONDS - start))s"
done
