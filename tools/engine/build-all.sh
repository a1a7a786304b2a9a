#!/usr/bin/env bash
# Builds everything tools/engine/run.sh needs before it enters its network namespace: the local
# control plane and verify-local, which serves it (tools/kube); the Pulumi CLI, the provider and
# kwok (build.sh); the engine harness with the program, and the stand-in provider. Each step reuses
# what is already built. The three groups build side by side: each build's link and its last,
# serial packages leave a core idle that the others fill (each needs a few GiB at its peak; the
# machines this runs on have 24). .ci/run calls this once, then starts several runs at once with
# ENGINE_PREBUILT=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
bin=${BIN_DIR:-${root}/.bin}
mkdir -p "${bin}"
pids=()
{ "${root}/tools/kube/build.sh" && (cd "${root}/tools/kube" && go build -o "${bin}/verify-local" ./cmd/verify-local); } &
pids+=("$!")
"${here}/build.sh" &
pids+=("$!")
(cd "${root}" && go build -o "${bin}/engine" ./tools/engine/cmd/engine &&
  go build -o "${bin}/pulumi-resource-standin" ./tools/engine/cmd/pulumi-resource-standin) &
pids+=("$!")
failed=0
for pid in "${pids[@]}"; do wait "${pid}" || failed=1; done
[ "${failed}" = 0 ] || { echo "build-all: a build failed (above)" >&2; exit 1; }
