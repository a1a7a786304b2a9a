#!/usr/bin/env bash
# Builds engine-up from the released commit (the first commit named in .ci/released) into
# .bin/released/<commit>-<hash of the harness>/, with that commit's Pulumi.yaml and stack files
# beside it, and prints the folder. The released tree is taken with git archive into a scratch
# folder; this commit's cmd/engine-up and workspace package are copied over it, so the released
# program is deployed by the same harness as this commit's. A folder already built for the same
# commit and harness is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
bin=${BIN_DIR:-${root}/.bin}
commit=$(awk '!/^#/ && NF { print $1; exit }' "${root}/.ci/released")
[ -n "${commit}" ] || { echo "build-released: .ci/released names no commit" >&2; exit 1; }
if [ "$(git -C "${root}" rev-parse --is-shallow-repository)" = true ]; then
  echo "build-released: this is a shallow clone; the released commit may be missing: git fetch --unshallow first" >&2
  exit 1
fi
sha=$(git -C "${root}" rev-parse --verify "${commit}^{commit}") ||
  { echo "build-released: ${commit} (.ci/released) is not a commit of this repository" >&2; exit 1; }
git -C "${root}" merge-base --is-ancestor "${sha}" HEAD ||
  { echo "build-released: ${sha} (.ci/released) is not an ancestor of HEAD: a release is a commit of main" >&2; exit 1; }
harness=$(cd "${here}" && cat cmd/engine-up/*.go workspace/*.go | sha256sum | cut -c1-12)
out=${bin}/released/${sha}-${harness}
if [ -x "${out}/engine-up" ]; then
  echo "engine-up of ${sha}: already built" >&2
  echo "${out}"
  exit 0
fi
start=${SECONDS}
tree=$(mktemp -d)
trap 'rm -rf "${tree}"' EXIT
git -C "${root}" archive "${sha}" | tar -x -C "${tree}"
for d in cmd/engine-up workspace; do
  rm -rf "${tree}/tools/engine/${d}"
  mkdir -p "${tree}/tools/engine/${d}"
  cp "${here}/${d}"/*.go "${tree}/tools/engine/${d}/"
done
rm -f "${tree}"/tools/engine/cmd/engine-up/*_test.go "${tree}"/tools/engine/workspace/*_test.go
mkdir -p "${out}.tmp"
(cd "${tree}" && go build -o "${out}.tmp/engine-up" ./tools/engine/cmd/engine-up)
cp "${tree}"/Pulumi.*yaml "${out}.tmp/"
echo "${sha}" > "${out}.tmp/commit"
rm -rf "${out}" && mv "${out}.tmp" "${out}"
echo "engine-up of ${sha}: built in $((SECONDS - start))s" >&2
echo "${out}"
