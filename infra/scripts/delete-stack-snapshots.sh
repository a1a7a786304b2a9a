#!/usr/bin/env bash
# Deletes a non-production stack's EBS snapshots when the stack is destroyed (the delete step of
# its snapshots-cleanup command, run on the machine that runs `pulumi destroy`, after the DLM
# policy that takes them is gone). DLM's snapshots belong to no resource of the stack: without
# this they would outlive it, and cost, for ever. Only snapshots tagged with this stack's cluster
# id are touched. Environment: SNAPSHOT_TAG (the tag key), CLUSTER_ID, AWS_REGION.
set -euo pipefail

if ! command -v aws >/dev/null; then
  echo "the AWS CLI is not installed here: delete the snapshots tagged ${SNAPSHOT_TAG}=${CLUSTER_ID} by hand (docs/operations.md, \"Destroy\")" >&2
  exit 1
fi
ids=$(aws ec2 describe-snapshots --region "${AWS_REGION}" --owner-ids self \
  --filters "Name=tag:${SNAPSHOT_TAG},Values=${CLUSTER_ID}" --query 'Snapshots[].SnapshotId' --output text)
count=0
for id in ${ids}; do
  [[ "${id}" == "None" ]] && continue
  aws ec2 delete-snapshot --region "${AWS_REGION}" --snapshot-id "${id}"
  echo "deleted snapshot ${id}"
  count=$((count + 1))
done
echo "${count} snapshot(s) of ${CLUSTER_ID} deleted"
