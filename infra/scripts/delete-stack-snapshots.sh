#!/usr/bin/env bash
# Deletes a non-production stack's EBS snapshots when the stack is destroyed (the delete step of
# its snapshots-cleanup command, run on the machine that runs `pulumi destroy`, after the DLM
# policy that takes them is gone; if it still exists, the step deletes nothing). DLM's snapshots belong to no resource of the stack: without
# this they would outlive it, and cost, for ever. Only snapshots tagged with this stack's cluster
# id are touched. Environment: SNAPSHOT_TAG (the tag key), CLUSTER_ID, AWS_REGION.
set -euo pipefail

if ! command -v aws >/dev/null; then
  echo "the AWS CLI is not installed here: delete the snapshots tagged ${SNAPSHOT_TAG}=${CLUSTER_ID} by hand (docs/operations.md, \"Destroy\")" >&2
  exit 1
fi
# Only when the stack's DLM policy is gone, as in a destroy (it waits for this command): a
# replacement of this command alone, in an ordinary `up`, must not delete the snapshots.
# GetLifecyclePolicies answers ResourceNotFoundException when no policy matches.
if policies=$(aws dlm get-lifecycle-policies --region "${AWS_REGION}" --target-tags "${SNAPSHOT_TAG}=${CLUSTER_ID}" \
  --query 'Policies[].PolicyId' --output text 2>&1); then
  if [[ -n "${policies}" && "${policies}" != "None" ]]; then
    echo "the DLM policy ${policies} of ${CLUSTER_ID} still exists: not a destroy, no snapshot deleted"
    exit 0
  fi
elif [[ "${policies}" != *ResourceNotFoundException* ]]; then
  echo "look up the DLM policy of ${CLUSTER_ID}: ${policies}" >&2
  exit 1
fi
ids=$(aws ec2 describe-snapshots --region "${AWS_REGION}" --owner-ids self \
  --filters "Name=tag:${SNAPSHOT_TAG},Values=${CLUSTER_ID}" --query 'Snapshots[].SnapshotId' --output text)
count=0
failed=()
for id in ${ids}; do
  [[ "${id}" == "None" ]] && continue
  # One that cannot go (behind an AMI, locked) must not keep the others.
  if aws ec2 delete-snapshot --region "${AWS_REGION}" --snapshot-id "${id}"; then
    echo "deleted snapshot ${id}"
    count=$((count + 1))
  else
    failed+=("${id}")
  fi
done
echo "${count} snapshot(s) of ${CLUSTER_ID} deleted"
if ((${#failed[@]} > 0)); then
  echo "not deleted: ${failed[*]} (see the errors above); delete them by hand, then run the destroy again" >&2
  exit 1
fi
