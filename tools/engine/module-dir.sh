#!/usr/bin/env bash
# Prints the folder of a module's source as the Go module cache holds it, downloading the module
# first: `go list -m -f '{{.Dir}}'` alone prints an empty folder for a module that is not in the
# cache yet, which is the case on a fresh machine even when the binary built from it is reused.
#   module-dir.sh WRAPPER_DIR MODULE   (the wrapper module's go.mod and go.sum pin the version)
set -euo pipefail
wrapper=${1:?usage: module-dir.sh WRAPPER_DIR MODULE}
module=${2:?usage: module-dir.sh WRAPPER_DIR MODULE}
cd "${wrapper}"
go mod download "${module}"
dir=$(go list -m -f '{{.Dir}}' "${module}")
if [ -z "${dir}" ] || [ ! -d "${dir}" ]; then
  echo "module-dir: ${module} is not in the module cache after go mod download (got '${dir}')" >&2
  exit 1
fi
echo "${dir}"
