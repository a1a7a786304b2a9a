#!/usr/bin/env bash
# Builds the upstream kubeadm of each supported Kubernetes version line into .bin/ at the
# repository root (git-ignored), from the Go module proxy: .bin/kubeadm-v1.35.4 and
# .bin/kubeadm-v1.28.15. Each line has its own wrapper module (v1.35/, v1.28/) that requires
# k8s.io/kubernetes at that release; the release is read from the wrapper's go.mod, so it is
# written down once. A binary that is already there at the right version is reused.
# Usage: build.sh [LINE...]   (LINE is v1.35 or v1.28; default: both)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
mkdir -p "${bin}"
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(v1.35 v1.28)
for line in "${lines[@]}"; do
  if [ ! -f "${here}/${line}/go.mod" ]; then
    echo "unknown version line ${line}: expected v1.35 or v1.28" >&2
    exit 1
  fi
  version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "${here}/${line}/go.mod")
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
  (cd "${here}/${line}" && go build -ldflags "${ldflags}" -o "${out}" k8s.io/kubernetes/cmd/kubeadm)
  echo "kubeadm ${version}: built in $((SECONDS - start))s"
done
