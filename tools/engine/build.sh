#!/usr/bin/env bash
# Builds what the real-engine run needs into .bin/ (git-ignored), from the Go module proxy, each
# from a wrapper module: the Pulumi CLI from pulumi/ here; the pulumi-kubernetes provider and kwok
# from tools/charts, whose chart check renders with the provider's own Helm SDK (one module graph:
# a cold machine compiles Helm and the Kubernetes libraries once for all three). The CLI stays in
# a module of its own: the provider does not compile against the CLI's pulumi/pkg (v3.274.1
# changed codegen/schema's types). A
# binary already there at the right version is reused. Nothing upstream is copied into the
# repository: the provider's main package, which must have its schema generated next to it before
# it compiles, is copied into a scratch folder for the build and the folder is removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "${here}/../.." && pwd)/.bin}
mkdir -p "${bin}"

pulumi_version=v3.274.1
provider_module=github.com/pulumi/pulumi-kubernetes/provider/v4
provider_wrapper=$(cd "${here}/../charts" && pwd) # its go.mod pins the provider (tools.go)
provider_version=4.32.0 # what pulumi-kubernetes/sdk/v4 v4.32.0 asks the engine for
kwok_version=$("${here}/../module-version.sh" "${provider_wrapper}" sigs.k8s.io/kwok)

built() { echo "$1: built in $((SECONDS - $2))s"; }

if "${bin}/pulumi" version 2> /dev/null | grep -qx "${pulumi_version}"; then
  echo "pulumi ${pulumi_version}: already built"
else
  start=${SECONDS}
  (cd "${here}/pulumi" && go build -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${pulumi_version}" \
    -o "${bin}/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  built "pulumi ${pulumi_version}" "${start}"
fi

# The provider prints no version of its own: a stamp beside it records what was built.
stamp="${bin}/pulumi-resource-kubernetes.version"
if [ -x "${bin}/pulumi-resource-kubernetes" ] && [ "$(cat "${stamp}" 2> /dev/null)" = "${provider_version}" ]; then
  echo "pulumi-resource-kubernetes ${provider_version}: already built"
else
  start=${SECONDS}
  scratch=$(mktemp -d)
  trap 'rm -rf "${scratch}"' EXIT
  src=$("${here}/module-dir.sh" "${provider_wrapper}" "${provider_module}")
  cp "${provider_wrapper}/go.mod" "${provider_wrapper}/go.sum" "${scratch}/"
  mkdir -p "${scratch}/cmd/pulumi-resource-kubernetes"
  cp "${src}"/cmd/pulumi-resource-kubernetes/{main.go,generate.go,schema.json,terraform-mapping.json} "${scratch}/cmd/pulumi-resource-kubernetes/"
  chmod -R u+w "${scratch}"
  (cd "${scratch}/cmd/pulumi-resource-kubernetes" && VERSION=${provider_version} go run generate.go &&
    go build -ldflags "-s -w -X ${provider_module}/pkg/version.Version=${provider_version}" -o "${bin}/pulumi-resource-kubernetes" .)
  echo "${provider_version}" > "${stamp}"
  built "pulumi-resource-kubernetes ${provider_version}" "${start}"
fi

if "${bin}/kwok" --version 2> /dev/null | grep -q "${kwok_version}"; then
  echo "kwok ${kwok_version}: already built"
else
  start=${SECONDS}
  (cd "${provider_wrapper}" && go build -ldflags "-s -w" -o "${bin}/kwok" sigs.k8s.io/kwok/cmd/kwok)
  built "kwok ${kwok_version}" "${start}"
fi
