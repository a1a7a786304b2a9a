# shellcheck shell=sh
# Reading the backups bucket, for the master's first boot (cluster/kubeadm-init): functions only,
# defined on top of s3.sh's (credentials, object_url, s3), which must be sourced first. Kept apart
# from s3.sh, which the backup CronJobs' ConfigMaps carry: a change there would replace those
# ConfigMaps on every running stack (pulumi-kubernetes replaces a ConfigMap whose data changes).

# download KEY FILE: an object into FILE (3 retries); any error fails, a missing key included.
download() {
  s3 -f --retry 3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$2" "$(object_url "$1")"
}

# keys PREFIX: the keys under PREFIX, one a line, in S3's order (ascending). It reads one page of
# ListObjectsV2 (up to 1,000 keys): a longer listing fails rather than read as complete.
keys() {
  listing=$(s3 -f --retry 3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    "$(object_url "")?list-type=2&prefix=$(printf '%s' "$1" | sed 's|/|%2F|g')") || return 1
  case "${listing}" in
    *"<IsTruncated>true</IsTruncated>"*)
      echo "s3.sh: more than one page of keys under $1" >&2
      return 1
      ;;
  esac
  printf '%s\n' "${listing}" | tr '<' '\n' | sed -n 's/^Key>//p'
}
