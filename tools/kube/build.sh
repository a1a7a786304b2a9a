#!/usr/bin/env bash
# Builds the upstream kube-apiserver, kube-controller-manager and kube-scheduler of the pinned
# release into .bin/ at the repository root (git-ignored), from the Go module proxy. A binary
# that is already there at the right version is reused; the Go build cache (shared with `go vet`,
# so no -trimpath) makes a rebuild fast.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
version=v1.35.4
major=1
minor=35
mkdir -p "${bin}"
ldflags="-s -w"
for var in gitVersion=${version} gitMajor=${major} gitMinor=${minor} gitTreeState=clean; do
  ldflags="${ldflags} -X k8s.io/component-base/version.${var}"
done
cd "${here}"
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  if [ -x "${bin}/${name}" ] && "${bin}/${name}" --version 2> /dev/null | grep -q "${version}$"; then
    echo "${name} ${version}: already built"
    continue
  fi
  start=${SECONDS}
  go build -ldflags "${ldflags}" -o "${bin}/${name}" "./cmd/${name}"
  echo "${name} ${version}: built in $((SECONDS - start))s"
done
