#!/usr/bin/env bash
# Builds etcd, etcdctl and etcdutl of the release kubeadm pins for the cluster (3.6.6 for
# Kubernetes 1.35: registry.k8s.io/etcd:3.6.6-0) into .bin/etcd-<version>/ from the Go module
# proxy, for the etcd restore drill, in the tools/kube module (its tools.go pins them; the version
# is read from its go.mod). Debian's etcd 3.4 has no etcdutl; the drill restores with the same
# etcdutl the cluster's etcd image ships. A binary already built at that version is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "${here}/../kube" && pwd)
version=$("${here}/../module-version.sh" "${module}" go.etcd.io/etcd/server/v3)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}/etcd-${version}
mkdir -p "${bin}"
cd "${module}"
for pkg in go.etcd.io/etcd/server/v3:etcd go.etcd.io/etcd/etcdctl/v3:etcdctl go.etcd.io/etcd/etcdutl/v3:etcdutl; do
  name=${pkg##*:}
  flag=version
  [ "${name}" = etcd ] && flag=--version
  if [ -x "${bin}/${name}" ] && "${bin}/${name}" "${flag}" 2> /dev/null | grep -q "${version#v}"; then
    echo "${name} ${version}: already built"
    continue
  fi
  start=${SECONDS}
  go build -ldflags "-s -w" -o "${bin}/${name}" "${pkg%%:*}"
  echo "${name} ${version}: built in $((SECONDS - start))s"
done
