#!/usr/bin/env bash
# Builds the upstream kube-apiserver of a newer Kubernetes version line than the pinned one into
# .bin/kube-apiserver-<release> at the repository root (git-ignored), from the same wrapper module
# as that line's kubeadm (lines.sh): verify-local -apiserver runs the rendered objects through the
# API server an upgrade walks to (issue 25). The pinned line's API server is tools/kube/build.sh's.
# A binary that is already there at the right version is reused.
# Usage: build-apiserver.sh LINE   (v1.36)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/kubeadm/lines.sh
. "${here}/lines.sh"
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
line=${1:?usage: build-apiserver.sh LINE}
case "${line}" in
  v1.35) echo "the pinned line's API server is tools/kube/build.sh's" >&2; exit 1 ;;
  v1.28) echo "v1.28 is older than the pinned line: no API server to walk to" >&2; exit 1 ;;
esac
module=$(line_module "${line}")
version=$(line_version "${line}")
minor=${version#v*.}
minor=${minor%%.*}
out="${bin}/kube-apiserver-${version}"
mkdir -p "${bin}"
if [ -x "${out}" ] && "${out}" --version 2> /dev/null | grep -q " ${version}$"; then
  echo "kube-apiserver ${version}: already built"
  exit 0
fi
ldflags="-s -w"
for var in gitVersion=${version} gitMajor=1 gitMinor=${minor} gitTreeState=clean; do
  ldflags="${ldflags} -X k8s.io/component-base/version.${var}"
done
start=${SECONDS}
(cd "${module}" && go build -ldflags "${ldflags}" -o "${out}" k8s.io/kubernetes/cmd/kube-apiserver)
echo "kube-apiserver ${version}: built in $((SECONDS - start))s"
