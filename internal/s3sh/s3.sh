# shellcheck shell=sh
# S3 for the backup scripts (etcd-snapshot.sh, postgres-backup.sh), which source this file from
# their own directory: each script's ConfigMap carries it beside the script, so every container
# that mounts the script mounts it too. Functions only: sourcing it runs nothing.
#
# Requests are signed (curl --aws-sigv4) with the node's instance role from IMDSv2, or with
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) when set (the drills).
# Objects are s3://BACKUP_BUCKET/KEY in AWS_REGION; S3_ENDPOINT, when set, is used instead of
# the bucket's AWS address (the drills' local S3).

# json_field NAME: the value of a string field of the one-level JSON object on standard input.
json_field() {
  sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1
}

# credentials: sets id, secret and token (empty for long-term keys) for s3.
credentials() {
  if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
    id=${AWS_ACCESS_KEY_ID} secret=${AWS_SECRET_ACCESS_KEY:?} token=${AWS_SESSION_TOKEN:-}
    return
  fi
  imds=http://169.254.169.254/latest
  itoken=$(curl -fsS -X PUT "${imds}/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  role=$(curl -fsS -H "X-aws-ec2-metadata-token: ${itoken}" "${imds}/meta-data/iam/security-credentials/" | head -n 1)
  creds=$(curl -fsS -H "X-aws-ec2-metadata-token: ${itoken}" "${imds}/meta-data/iam/security-credentials/${role}")
  id=$(printf '%s' "${creds}" | json_field AccessKeyId)
  secret=$(printf '%s' "${creds}" | json_field SecretAccessKey)
  token=$(printf '%s' "${creds}" | json_field Token)
}

# object_url KEY: the URL of an object of the bucket.
object_url() {
  : "${BACKUP_BUCKET:?the backups bucket}" "${AWS_REGION:?the bucket region}"
  if [ -n "${S3_ENDPOINT:-}" ]; then
    echo "${S3_ENDPOINT}/${BACKUP_BUCKET}/$1"
  else
    echo "https://${BACKUP_BUCKET}.s3.${AWS_REGION}.amazonaws.com/$1"
  fi
}

# s3 ARGS...: curl signed for S3 with the credentials; the key, secret and token reach curl on
# standard input, never on a command line.
s3() {
  {
    printf 'user = "%s:%s"\n' "${id}" "${secret}"
    [ -z "${token}" ] || printf 'header = "x-amz-security-token: %s"\n' "${token}"
  } | curl -sS -K - --aws-sigv4 "aws:amz:${AWS_REGION}:s3" "$@"
}

# put FILE KEY: upload a file (3 retries), and leave its sha256 in sum. S3 checks the body
# against that hash, so a file damaged on the way is refused.
put() {
  sum=$(sha256sum "$1" | cut -d ' ' -f 1)
  s3 -f --retry 3 -H "x-amz-content-sha256: ${sum}" -T "$1" "$(object_url "$2")" > /dev/null
}
