#!/usr/bin/env bash
# Builds everything tools/engine/run.sh needs before it enters its network namespace: the local
# control plane (tools/kube), the Pulumi CLI, the provider and kwok (build.sh), verify-local (which
# serves the cluster), the engine harness and the stand-in provider. Each step reuses what is
# already built. .ci/run calls it once, then starts several runs at once with ENGINE_PREBUILT=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
bin=${BIN_DIR:-${root}/.bin}
"${root}/tools/kube/build.sh"
"${here}/build.sh"
(cd "${root}/tools/kube" && go build -o "${bin}/verify-local" ./cmd/verify-local)
(cd "${root}" && go build -o "${bin}/engine" ./tools/engine/cmd/engine &&
  go build -o "${bin}/pulumi-resource-standin" ./tools/engine/cmd/pulumi-resource-standin)
