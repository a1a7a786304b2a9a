#!/bin/sh
# etcd snapshot of the control plane, in two steps that run in two containers of the
# etcd-snapshot CronJob (kube-system, on the master) and, unchanged, in the restore drill
# (tools/kube verify-local -etcd-drill):
#   save    in the etcd image kubeadm runs (etcdctl and etcdutl of the server's release, and a
#           shell with no other tools): take a snapshot from the local member and verify it
#           (etcdutl snapshot status checks the file's hash and prints its revision and keys).
#   upload  in the curl image: put the snapshot in the backups bucket under
#           <prefix>/YYYY/MM/DD/etcd-<time>.db, signed
#           (SigV4) with the Job's own role, assumed with its projected token (AWS_ROLE_ARN,
#           AWS_WEB_IDENTITY_TOKEN_FILE), or with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when
#           set (the drill), by s3.sh (the S3 code both backup scripts share), mounted beside
#           this script.
# A failure of either step fails the Job, which the CronJob's history and kube-state-metrics show.
set -eu

# shellcheck source=s3.sh
. "${0%/*}/s3.sh"

: "${SNAPSHOT_DIR:?the directory the snapshot is written to}"
snapshot="${SNAPSHOT_DIR}/etcd-snapshot.db"

save() {
  : "${ETCD_ENDPOINT:?the local etcd member, such as https://127.0.0.1:2379}"
  # The member's client certificates (kubeadm's healthcheck client) when it serves TLS.
  set -- --endpoints="${ETCD_ENDPOINT}" --dial-timeout=10s --command-timeout=300s
  if [ -n "${ETCD_CERT_DIR:-}" ]; then
    set -- "$@" --cacert="${ETCD_CERT_DIR}/ca.crt" --cert="${ETCD_CERT_DIR}/client.crt" --key="${ETCD_CERT_DIR}/client.key"
  fi
  etcdctl "$@" snapshot save "${snapshot}"
  # A truncated or corrupt file fails here, before anything is uploaded.
  etcdutl snapshot status "${snapshot}" --write-out=table
}

upload() {
  : "${BACKUP_BUCKET:?the backups bucket}" "${BACKUP_PREFIX:?the prefix of etcd snapshots}" "${AWS_REGION:?the bucket region}"
  [ -s "${snapshot}" ] || { echo "etcd-snapshot: no snapshot at ${snapshot}" >&2; exit 1; }
  key="${BACKUP_PREFIX}/$(date -u +%Y/%m/%d)/etcd-$(date -u +%Y%m%dT%H%M%SZ).db"
  credentials
  # put signs with the credentials and sends the snapshot's sha256 (in sum), which S3 checks:
  # a snapshot damaged on the way is refused.
  put "${snapshot}" "${key}"
  echo "etcd-snapshot: uploaded $(wc -c < "${snapshot}") bytes to s3://${BACKUP_BUCKET}/${key} (sha256 ${sum})"
}

case "${1:-}" in
  save) save ;;
  upload) upload ;;
  *)
    echo "usage: $0 save|upload" >&2
    exit 2
    ;;
esac
