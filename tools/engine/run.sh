#!/usr/bin/env bash
# The offline engine run (README, `make engine STACK=prod`): the whole program through the real
# Pulumi CLI and engine and the real pulumi-kubernetes provider, against a local control plane
# whose nodes are played by kwok, inside a network namespace that has only a loopback interface.
# AWS, the SSH commands, TLS and random are stand-ins (internal/standin).
#   tools/engine/run.sh STACK   up, no-change preview, one-line change, secrets in the export,
#                               the negative check (a perma-diff must fail), destroy, leftovers
#   tools/engine/run.sh STACK compat
#                               the release-compatibility check: up with the program of the commit
#                               named in .ci/released, then this commit's preview on that state
#                               may replace or delete only what .ci/compat-allowlist names; then
#                               this commit's up and a clean preview; then a fixture that must fail
# Output, timings and the preview texts go to out/engine/<stack>/ (<stack>-compat/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
bin=${root}/.bin
stack=${1:?usage: run.sh STACK [compat]}
mode=${2:-full}
case "${mode}" in full | compat) ;; *) echo "usage: run.sh STACK [compat]" >&2; exit 2 ;; esac
charts=${CHARTS:-$(cd "${root}/.." && pwd)/shared/charts}

if [ "${ENGINE_IN_NETNS:-}" != 1 ]; then
  # Everything is built before the namespace is made: inside it only loopback answers.
  # ENGINE_PREBUILT=1: the caller built it all (.ci/run, which starts several runs at once, so
  # that no two of them write the same binary).
  if [ "${ENGINE_PREBUILT:-}" != 1 ]; then
    "${here}/build-all.sh"
  fi
  released_bin=
  if [ "${mode}" = compat ]; then
    released_bin=$("${here}/build-released.sh")
  fi
  standins=$(mktemp -d)
  for pkg in aws command tls random; do ln -s "${bin}/pulumi-resource-standin" "${standins}/pulumi-resource-${pkg}"; done
  # kwok's own stage definitions, read in place from its module: nodes keep a heartbeat; pods
  # become Ready, Job pods complete, deleted pods go.
  kwok_dir=$("${here}/module-dir.sh" "${here}/../charts" sigs.k8s.io/kwok)
  stages=${kwok_dir}/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  for s in pod-ready pod-complete pod-delete; do stages+=,${kwok_dir}/kustomize/stage/pod/fast/${s}.yaml; done
  ENGINE_IN_NETNS=1 ENGINE_RELEASED=${released_bin} ENGINE_STANDINS=${standins} ENGINE_KWOK_STAGES=${stages} exec unshare --net -- "$0" "$@"
fi

# Inside the new network namespace: bring up loopback and prove that nothing else exists, so no
# webhook, aggregated API or Service address the charts register can be reached from here.
ip link set lo up
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
if [ "${links}" != "lo " ] || [ -n "$(ip route show)" ] || ip -6 route show | grep -qv '^::1 '; then
  echo "engine: the network namespace has more than loopback (links: ${links}); refusing to start" >&2
  exit 1
fi
echo "engine: network namespace with loopback only (links: ${links}; no routes)"

out=${root}/out/engine/${stack}
[ "${mode}" = compat ] && out=${out}-compat
rm -rf "${out}" && mkdir -p "${out}"
state=$(mktemp -d)
export PATH="${bin}:${ENGINE_STANDINS}:${PATH}"
"${bin}/verify-local" -serve "${state}" -bin "${bin}" -kwok-stages "${ENGINE_KWOK_STAGES}" > "${out}/cluster.log" 2>&1 &
cluster=$!
cleanup() {
  kill "${cluster}" 2> /dev/null || true
  wait "${cluster}" 2> /dev/null || true
  rm -rf "${state}" "${ENGINE_STANDINS}"
}
trap cleanup EXIT
# 300 s: in CI this cluster starts while other runs and builds share the machine's two cores.
for _ in $(seq 1 300); do
  [ -e "${state}/ready" ] && break
  kill -0 "${cluster}" 2> /dev/null || { cat "${out}/cluster.log" >&2; exit 1; }
  sleep 1
done
[ -e "${state}/ready" ] || { echo "engine: local cluster not ready after 300 s" >&2; cat "${out}/cluster.log" >&2; exit 1; }

if [ "${mode}" = full ]; then
  "${bin}/engine" -stack "${stack}" -repo "${root}" -state "${state}" -charts "${charts}" -out "${out}"
  exit 0
fi
work=$(mktemp -d)
echo "engine: compat: deploying ${stack} with the released commit's program ($(cat "${ENGINE_RELEASED}/commit"))"
"${ENGINE_RELEASED}/engine-up" -stack "${stack}" -repo "${ENGINE_RELEASED}" -work "${work}" -state "${state}" -charts "${charts}" -out "${out}"
"${bin}/engine" -mode compat -allowlist "${root}/.ci/compat-allowlist" -work "${work}" \
  -stack "${stack}" -repo "${root}" -state "${state}" -charts "${charts}" -out "${out}"
rm -rf "${work}"
