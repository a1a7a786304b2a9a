#!/bin/sh
# PostgreSQL backups to the backups bucket, with PostgreSQL's own tools: continuous archiving of
# the write-ahead log, a daily base backup (the server's low-level backup API) and a daily
# logical dump (pg_dump -Fc). One script, one step per argument; every step runs unchanged in the
# cluster and in the restore drill (tools/pgdrill):
#   archive-wal PATH NAME  archive_command of the server (postgres image): compress a finished
#                          WAL segment into WAL_OUTBOX/NAME.gz, on the data volume, atomically.
#   ship-wal               wal-shipper container beside the server (curl image): upload each
#                          file of WAL_OUTBOX to <prefix>/wal/NAME.gz, then remove it; every
#                          SHIP_INTERVAL seconds (one pass when SHIP_ONCE is set).
#   healthy                the wal-shipper's probe: its last pass is recent.
#   base-backup            postgres image: pg_backup_start, tar of PGDATA, pg_backup_stop into
#                          BACKUP_DIR (base.tar.gz.NNN parts, backup_label, tablespace_map,
#                          start-wal).
#   dump                   postgres image: pg_dump -Fc of PGDATABASE into BACKUP_DIR, checked by
#                          pg_restore --list.
#   upload KIND            curl image: every file of BACKUP_DIR to <prefix>/KIND/<UTC time>/.
#   fetch-base STAMP DIR   restore (curl image): base backup STAMP into DIR/pgdata, and its
#                          start-wal into DIR.
#   fetch-wal DIR          restore (curl image): the archived segments from the base backup's
#                          first one on, and the timeline history files, into DIR/restore-wal.
#   recover DIR TARGET     restore (postgres image): make DIR/pgdata recover from
#                          DIR/restore-wal up to TARGET (a timestamp with time zone) and promote.
# S3 requests are signed (curl --aws-sigv4) with the pod's own role, assumed with its projected
# token (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), or with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# when set (the drill), by s3.sh (the S3 code both backup scripts share), mounted beside this script. A failed step fails its Job or, for archive-wal,
# makes PostgreSQL keep the segment and retry.
set -eu

# shellcheck source=s3.sh
. "${0%/*}/s3.sh"

log() { echo "postgres-backup: $*" >&2; }

# get KEY FILE: download an object; returns 1 when there is no such key, fails on other errors.
get() {
  code=$(s3 --retry 3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$2.part" -w '%{http_code}' "$(object_url "$1")")
  case "${code}" in
    200) mv "$2.part" "$2" ;;
    404 | 403)
      # A missing key reads as 403 to a role without s3:ListBucket on it, 404 otherwise.
      rm -f "$2.part"
      return 1
      ;;
    *)
      rm -f "$2.part"
      log "GET $1: HTTP ${code}"
      exit 1
      ;;
  esac
}

prefix() { echo "${BACKUP_PREFIX:?the prefix of PostgreSQL backups}"; }

# archive_wal: segments are compressed (a segment closed by archive_timeout is mostly unused
# space) and written under a temporary name, synced, then renamed: the outbox never holds a
# partial segment under its real name.
archive_wal() {
  : "${WAL_OUTBOX:?the outbox of finished WAL segments, on the data volume}"
  mkdir -p "${WAL_OUTBOX}"
  out="${WAL_OUTBOX}/$2.gz"
  if [ -f "${out}" ]; then
    # Archived before a crash: the same bytes are success, other bytes an error to look at.
    gzip -dc "${out}" | cmp -s - "$1" && return 0
    log "${out} exists with other content"
    exit 1
  fi
  gzip -c "$1" > "${out}.tmp"
  sync "${out}.tmp"
  mv "${out}.tmp" "${out}"
}

ship_pass() {
  signed=""
  for f in "${WAL_OUTBOX}"/*; do
    [ -f "${f}" ] || continue
    case "${f}" in *.tmp | *.existing) continue ;; esac
    # Credentials once a pass, and only for a pass with something to ship.
    if [ -z "${signed}" ]; then
      credentials || return 1
      signed=1
    fi
    name=$(basename "${f}")
    if put "${f}" "$(prefix)/wal/${name}"; then
      rm -f "${f}"
      log "shipped ${name}"
    else
      log "upload of ${name} failed; retrying next pass"
      return 1
    fi
  done
}

ship_wal() {
  : "${WAL_OUTBOX:?}" "${SHIP_INTERVAL:?seconds between passes}"
  mkdir -p "${WAL_OUTBOX}"
  while :; do
    if ship_pass; then date +%s > "${WAL_OUTBOX}/.shipped"; fi
    [ -z "${SHIP_ONCE:-}" ] || return 0
    sleep "${SHIP_INTERVAL}"
  done
}

healthy() {
  : "${WAL_OUTBOX:?}" "${SHIP_INTERVAL:?}"
  last=$(cat "${WAL_OUTBOX}/.shipped" 2> /dev/null || echo 0)
  age=$(($(date +%s) - last))
  [ "${age}" -le $((SHIP_INTERVAL * 10)) ] || {
    log "no successful pass for ${age}s"
    exit 1
  }
}

# base_backup: the low-level API keeps one session open from pg_backup_start to pg_backup_stop;
# the copy runs inside it (psql's \!). tar reads a live directory: files that change while read
# are made consistent by replaying the WAL from the start location, so tar's "file changed"
# status (1) is expected; other statuses fail.
base_backup() {
  : "${BACKUP_DIR:?}" "${PGDATA:?the data directory, mounted read-only}"
  mkdir -p "${BACKUP_DIR}"
  rm -f "${BACKUP_DIR}"/*
  cat > "${BACKUP_DIR}/copy.sh" << 'EOF'
set -u
cd "${PGDATA}"
{
  tar -czf - --warning=no-file-changed --warning=no-file-removed \
    --exclude=./pg_wal/* --exclude=./postmaster.pid --exclude=./postmaster.opts --exclude=./pg_replslot/* \
    --exclude=./pg_dynshmem/* --exclude=./pg_notify/* --exclude=./pg_serial/* --exclude=./pg_snapshots/* \
    --exclude=./pg_stat_tmp/* --exclude=./pg_subtrans/* --exclude='pgsql_tmp*' --exclude=./backup_label \
    --exclude=./tablespace_map --exclude=./recovery.signal --exclude=./standby.signal .
  echo $? > "${BACKUP_DIR}/tar.status"
} | split -b 1G -d -a 3 - "${BACKUP_DIR}/base.tar.gz." || exit 1
[ "$(cat "${BACKUP_DIR}/tar.status")" -le 1 ] || exit 1
touch "${BACKUP_DIR}/copied"
EOF
  psql -X -q -v ON_ERROR_STOP=1 -At << EOF
\o ${BACKUP_DIR}/start-wal
SELECT pg_walfile_name(pg_backup_start('scheduled', true));
\o
\! sh ${BACKUP_DIR}/copy.sh
SELECT labelfile, spcmapfile, length(spcmapfile) > 0 AS has_map FROM pg_backup_stop(true) \gset
\o ${BACKUP_DIR}/backup_label
SELECT :'labelfile';
\if :has_map
\o ${BACKUP_DIR}/tablespace_map
SELECT :'spcmapfile';
\endif
\o
EOF
  [ -f "${BACKUP_DIR}/copied" ] || {
    log "the copy of ${PGDATA} failed"
    exit 1
  }
  rm -f "${BACKUP_DIR}/copy.sh" "${BACKUP_DIR}/copied" "${BACKUP_DIR}/tar.status"
  grep -q '^START WAL LOCATION' "${BACKUP_DIR}/backup_label"
  cat "${BACKUP_DIR}"/base.tar.gz.* | tar -tzf - ./PG_VERSION ./global/pg_control > /dev/null
  log "base backup from $(cat "${BACKUP_DIR}/start-wal"): $(du -sk "${BACKUP_DIR}" | cut -f 1) KiB"
}

dump() {
  : "${BACKUP_DIR:?}" "${PGDATABASE:?}"
  mkdir -p "${BACKUP_DIR}"
  rm -f "${BACKUP_DIR}"/*
  pg_dump -Fc -f "${BACKUP_DIR}/${PGDATABASE}.dump"
  # A truncated or unreadable archive fails here, before anything is uploaded.
  pg_restore --list "${BACKUP_DIR}/${PGDATABASE}.dump" > /dev/null
  log "dump of ${PGDATABASE}: $(wc -c < "${BACKUP_DIR}/${PGDATABASE}.dump") bytes"
}

upload() {
  : "${BACKUP_DIR:?}"
  credentials
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  n=0
  for f in "${BACKUP_DIR}"/*; do
    [ -f "${f}" ] || continue
    put "${f}" "$(prefix)/$1/${stamp}/$(basename "${f}")"
    n=$((n + 1))
  done
  [ "${n}" -gt 0 ] || {
    log "nothing to upload in ${BACKUP_DIR}"
    exit 1
  }
  log "uploaded ${n} files to s3://${BACKUP_BUCKET}/$(prefix)/$1/${stamp}/"
}

fetch_base() {
  credentials
  base="$(prefix)/base/$1"
  # Never over a data directory: move the old one aside first (see docs/operations.md).
  if [ -n "$(ls -A "$2/pgdata" 2> /dev/null)" ]; then
    log "$2/pgdata is not empty"
    exit 1
  fi
  mkdir -p "$2/pgdata"
  get "${base}/start-wal" "$2/start-wal" || {
    log "no base backup at ${base}"
    exit 1
  }
  get "${base}/backup_label" "$2/pgdata/backup_label"
  get "${base}/tablespace_map" "$2/tablespace_map" || true
  i=0
  while get "${base}/base.tar.gz.$(printf '%03d' "${i}")" "$2/base.part"; do
    cat "$2/base.part" >> "$2/base.tar.gz"
    rm -f "$2/base.part"
    i=$((i + 1))
  done
  [ "${i}" -gt 0 ] || {
    log "${base} has no base.tar.gz parts"
    exit 1
  }
  tar -xzf "$2/base.tar.gz" -C "$2/pgdata"
  rm -f "$2/base.tar.gz"
  chmod 700 "$2/pgdata"
  log "base backup ${1} in $2/pgdata (${i} parts)"
}

# get_wal NAME DIR: one archived WAL file, decompressed; returns 1 when the archive lacks it.
get_wal() {
  get "$(prefix)/wal/$1.gz" "$2/$1.gz" || return 1
  gzip -d -f "$2/$1.gz"
}

# fetch_wal: segments are named TTTTTTTTXXXXXXXXYYYYYYYY (timeline, then the position in
# 16 MiB steps, YYYYYYYY from 00000000 to 000000FF). They are fetched in order from the base
# backup's first one until the first the archive does not have; then, if a later timeline
# branched off (its NNNNNNNN.history file is archived), on that timeline from its branch point.
fetch_wal() {
  credentials
  out="$1/restore-wal"
  mkdir -p "${out}"
  start=$(tr -d '[:space:]' < "$1/start-wal")
  t=$((0x$(echo "${start}" | cut -c 1-8)))
  h=$((0x$(echo "${start}" | cut -c 9-16)))
  l=$((0x$(echo "${start}" | cut -c 17-24)))
  n=0
  while :; do
    while seg=$(printf '%08X%08X%08X' "${t}" "${h}" "${l}") && get_wal "${seg}" "${out}"; do
      n=$((n + 1))
      l=$((l + 1))
      [ "${l}" -le 255 ] || { l=0 h=$((h + 1)); }
    done
    t=$((t + 1))
    history=$(printf '%08X' "${t}").history
    get_wal "${history}" "${out}" || break
    # The last line is the branch point: parent timeline, LSN X/Y, reason.
    lsn=$(tail -n 1 "${out}/${history}" | cut -f 2)
    h=$((0x${lsn%/*}))
    l=$((0x${lsn#*/} >> 24))
  done
  log "${n} WAL segments from ${start} on in ${out}"
}

recover() {
  dir=$1 target=$2
  [ -f "${dir}/pgdata/backup_label" ] || {
    log "${dir}/pgdata holds no base backup"
    exit 1
  }
  {
    echo "restore_command = 'cp ${dir}/restore-wal/%f \"%p\"'"
    echo "recovery_target_time = '${target}'"
    echo "recovery_target_action = 'promote'"
  } >> "${dir}/pgdata/postgresql.auto.conf"
  touch "${dir}/pgdata/recovery.signal"
  mkdir -p "${dir}/pgdata/pg_wal"
  log "${dir}/pgdata recovers to ${target} on its next start"
}

case "${1:-}" in
  archive-wal) archive_wal "$2" "$3" ;;
  ship-wal) ship_wal ;;
  healthy) healthy ;;
  base-backup) base_backup ;;
  dump) dump ;;
  upload) upload "$2" ;;
  fetch-base) fetch_base "$2" "$3" ;;
  fetch-wal) fetch_wal "$2" ;;
  recover) recover "$2" "$3" ;;
  *)
    echo "usage: $0 archive-wal|ship-wal|healthy|base-backup|dump|upload|fetch-base|fetch-wal|recover ..." >&2
    exit 2
    ;;
esac
