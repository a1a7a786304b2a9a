# shellcheck shell=sh
# S3 for the backup scripts (etcd-snapshot.sh, postgres-backup.sh), which source this file from
# their own directory: each script's ConfigMap carries it beside the script, so every container
# that mounts the script mounts it too. Functions only: sourcing it runs nothing.
#
# Requests are signed (curl --aws-sigv4) with, in this order: AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) when set (the drills); the role AWS_ROLE_ARN,
# assumed with the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE, when set (a pod's own role:
# the backup CronJobs); the instance role from IMDSv2 otherwise (the master's first boot, on the
# host). Objects are s3://BACKUP_BUCKET/KEY in AWS_REGION; S3_ENDPOINT and STS_ENDPOINT, when
# set, are used instead of AWS's addresses (the drills' and tests' stand-ins).

# json_field NAME: the value of a string field of the one-level JSON object on standard input.
json_field() {
  sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1
}

# xml_field NAME: the text of the first element NAME of the XML on standard input.
xml_field() {
  tr -d '\n' | sed -n "s/.*<$1>\([^<]*\)<\/$1>.*/\1/p"
}

# credentials: sets id, secret and token (empty for long-term keys) for s3.
credentials() {
  if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
    id=${AWS_ACCESS_KEY_ID} secret=${AWS_SECRET_ACCESS_KEY:?} token=${AWS_SESSION_TOKEN:-}
    return
  fi
  if [ -n "${AWS_ROLE_ARN:-}" ]; then
    # AssumeRoleWithWebIdentity takes no signature: the token is the proof. It goes in the
    # request body from its file (curl reads name@file itself), never on a command line.
    sts=${STS_ENDPOINT:-https://sts.${AWS_REGION:?the region}.amazonaws.com}
    creds=$(curl -fsS --retry 3 "${sts}/" \
      --data-urlencode Action=AssumeRoleWithWebIdentity --data-urlencode Version=2011-06-15 \
      --data-urlencode "RoleArn=${AWS_ROLE_ARN}" --data-urlencode "RoleSessionName=backup-$(date -u +%s)" \
      --data-urlencode DurationSeconds=3600 \
      --data-urlencode "WebIdentityToken@${AWS_WEB_IDENTITY_TOKEN_FILE:?the web identity token file}") || return 1
    id=$(printf '%s' "${creds}" | xml_field AccessKeyId)
    secret=$(printf '%s' "${creds}" | xml_field SecretAccessKey)
    token=$(printf '%s' "${creds}" | xml_field SessionToken)
    if [ -z "${id}" ] || [ -z "${secret}" ] || [ -z "${token}" ]; then
      echo "s3.sh: STS answered without credentials" >&2
      return 1
    fi
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

# put FILE KEY: upload a backup (3 retries) as a new object, never over one: If-None-Match makes
# S3 refuse (412) a key that exists, and the backups bucket refuses a backup's upload without it
# (infra.BackupsBucketPolicy). A 412 is success when the object there is this file (an earlier
# attempt got through), an error otherwise. Leaves the file's sha256 in sum; S3 checks the body
# against it, so a file damaged on the way is refused.
put() {
  sum=$(sha256sum "$1" | cut -d ' ' -f 1)
  # 409: another conditional write of the key was under way; S3 asks for a retry.
  for _ in 1 2 3; do
    code=$(s3 --retry 3 -H "x-amz-content-sha256: ${sum}" -H "If-None-Match: *" -T "$1" -o /dev/null -w '%{http_code}' "$(object_url "$2")") || return 1
    [ "${code}" = 409 ] || break
    sleep 2
  done
  case "${code}" in
    200) return 0 ;;
    412) same_object "$1" "$2" ;;
    *)
      echo "s3.sh: PUT $2: HTTP ${code}" >&2
      return 1
      ;;
  esac
}

# same_object FILE KEY: whether the object at KEY holds exactly FILE's bytes.
same_object() {
  if ! s3 -f --retry 3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$1.existing" "$(object_url "$2")"; then
    rm -f "$1.existing"
    return 1
  fi
  if cmp -s "$1" "$1.existing"; then
    rm -f "$1.existing"
    return 0
  fi
  rm -f "$1.existing"
  echo "s3.sh: s3://${BACKUP_BUCKET}/$2 exists with other content: a backup is never replaced" >&2
  return 1
}

# replace FILE KEY: upload a file over whatever is at KEY (3 retries): only for the cluster's
# mark, which holds no data and is refreshed with every snapshot.
replace() {
  s3 -f --retry 3 -H "x-amz-content-sha256: $(sha256sum "$1" | cut -d ' ' -f 1)" -T "$1" "$(object_url "$2")" > /dev/null
}
