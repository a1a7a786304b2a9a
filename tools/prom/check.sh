#!/usr/bin/env bash
# Checks what the program renders for alerting, with the real tools (build.sh): for each stack,
# out/<stack>/monitoring/ must hold rule files that pass `promtool check rules` and the unit tests
# of alerting/testdata and alerting/testdata/<stack> (every alert fired once and shown silent under
# normal load), and an
# Alertmanager configuration that passes `amtool check-config` and routes each severity to the
# receiver this script expects: production pages on critical, other stacks only notify.
# Usage: check.sh STACK...   (after `go run ./cmd/render -stack STACK -out out/STACK`)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN_DIR:-${root}/.bin}
promtool="${bin}/promtool"
amtool="${bin}/amtool"
[ $# -gt 0 ] || set -- prod dev

for stack in "$@"; do
  dir="${root}/out/${stack}/monitoring"
  if [ ! -f "${dir}/alertmanager.yaml" ] || ! ls "${dir}"/rules/*.yaml > /dev/null 2>&1; then
    echo "${stack}: ${dir} has no rendered rules or alertmanager.yaml: run cmd/render first" >&2
    exit 1
  fi
  echo "== ${stack}: promtool check rules"
  "${promtool}" check rules "${dir}"/rules/*.yaml

  echo "== ${stack}: promtool test rules"
  # The daily backups' alert window depends on the stack's office hours: each stack has its own
  # tests, beside the common ones (other names, so that neither replaces the other).
  if ! compgen -G "${root}/alerting/testdata/${stack}/*.test.yaml" > /dev/null; then
    echo "${stack}: no alerting/testdata/${stack}/*.test.yaml (the stack's own backup alert windows)" >&2
    exit 1
  fi
  work=$(mktemp -d)
  cp -r "${dir}/rules" "${work}/rules"
  cp "${root}"/alerting/testdata/*.test.yaml "${work}/"
  for f in "${root}/alerting/testdata/${stack}"/*.test.yaml; do
    if [ -e "${work}/$(basename "${f}")" ]; then
      echo "${stack}: ${f} has the name of a common test file, which it would replace" >&2
      rm -rf "${work}"
      exit 1
    fi
    cp "${f}" "${work}/"
  done
  (cd "${work}" && "${promtool}" test rules ./*.test.yaml)
  rm -rf "${work}"

  echo "== ${stack}: amtool check-config"
  "${amtool}" check-config "${dir}/alertmanager.yaml"

  echo "== ${stack}: amtool config routes test"
  critical=notify
  [ "${stack}" = prod ] && critical=page
  while read -r want labels; do
    # shellcheck disable=SC2086 # the label set is one word per label
    got=$("${amtool}" config routes test --config.file="${dir}/alertmanager.yaml" ${labels})
    if [ "${got}" != "${want}" ]; then
      echo "${stack}: ${labels} reaches ${got}, want ${want}" >&2
      exit 1
    fi
    echo "${labels} -> ${got}"
  done << ROUTES
${critical} severity=critical alertname=PostgreSQLDown
notify severity=warning alertname=WorkQueueGrowing
null severity=info alertname=KubeQuotaAlmostFull
null severity=none alertname=Watchdog
ROUTES
done
