#!/usr/bin/env bash
# Prints the version of MODULE that the wrapper module in DIR builds (its go.mod pins it): the
# one place the tool scripts read a pinned version from, so a bump is one line in a go.mod.
#   module-version.sh DIR MODULE
set -euo pipefail
dir=${1:?usage: module-version.sh DIR MODULE}
module=${2:?usage: module-version.sh DIR MODULE}
# go list -m fails, naming the module, when DIR's module does not require it.
cd "${dir}" && go list -m -f '{{.Version}}' "${module}"
