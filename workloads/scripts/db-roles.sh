#!/bin/sh
# The database's roles, applied on every start of PostgreSQL's pod by its db-roles container
# (postgres image, the server's user): wait for the server itself (on 127.0.0.1: the image's
# first-initialisation server listens only on the socket), apply roles.sql beside this script
# as the superuser over the pod's local socket, then mark it done, which the container's
# readiness probe checks. A failed run is logged and tried again every 10 s. The initialisation
# scripts of the image run only on an empty data directory; this runs on every start, so a stack
# deployed before the roles existed gets them, and anything changed by hand is set back.
# Environment (the container's; tools/pgdrill runs it the same way):
#   PGHOST, PGPORT, PGUSER, PGDATABASE  the server's socket directory and port, the superuser,
#                                       the application's database
#   APP_ROLE, BACKUP_ROLE, MONITOR_ROLE and APP_PASSWORD, BACKUP_PASSWORD, MONITOR_PASSWORD
#                                       the roles and their passwords (read by roles.sql with
#                                       \getenv: no password is ever in a command line)
#   ROLES_APPLIED                       the mark of a successful run
#   ROLES_ONCE                          when set, exit once applied instead of staying up
set -eu

log() { echo "db-roles: $*" >&2; }

for v in PGHOST PGPORT PGUSER PGDATABASE ROLES_APPLIED APP_ROLE APP_PASSWORD BACKUP_ROLE BACKUP_PASSWORD MONITOR_ROLE MONITOR_PASSWORD; do
  if [ -z "$(printenv "${v}")" ]; then
    log "${v} is not set"
    exit 1
  fi
done
rm -f "${ROLES_APPLIED}"

# As the application connects (pg_hba.conf asks it for its password, so the probe is never
# logged as a refused connection).
until pg_isready -q -h 127.0.0.1 -p "${PGPORT}" -U "${APP_ROLE}" -d "${PGDATABASE}"; do
  sleep 2
done
until psql -X -q -v ON_ERROR_STOP=1 -f "${0%/*}/roles.sql"; do
  log "the roles were not applied; again in 10 s"
  sleep 10
done
touch "${ROLES_APPLIED}"
log "roles applied: ${APP_ROLE} owns the application's schemas, ${BACKUP_ROLE} backs up, ${MONITOR_ROLE} monitors"
[ -z "${ROLES_ONCE:-}" ] || exit 0
exec sleep infinity
