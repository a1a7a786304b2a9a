#!/usr/bin/env bash
# Cancels a deleted spot node's persistent spot request (the delete step of its
# <node>-spot-request command, run on the machine that runs `pulumi up` or `pulumi destroy`).
# Terminating the instance alone leaves a persistent request open, and EC2 then launches an
# instance nobody tracks, again and again, until the request's end date. Cancelling a request
# does not terminate its instance: Pulumi deletes the instance right after this step.
# Environment: SPOT_REQUEST (sir-...), AWS_REGION.
set -euo pipefail

if [[ -z "${SPOT_REQUEST:-}" ]]; then
  echo "no spot request recorded for this node (an on-demand instance): nothing to cancel"
  exit 0
fi
if ! command -v aws >/dev/null; then
  echo "the AWS CLI is not installed here: cancel spot request ${SPOT_REQUEST} by hand (aws ec2 cancel-spot-instance-requests --region ${AWS_REGION} --spot-instance-request-ids ${SPOT_REQUEST}), or EC2 relaunches its instance" >&2
  exit 1
fi
if out=$(aws ec2 cancel-spot-instance-requests --region "${AWS_REGION}" --spot-instance-request-ids "${SPOT_REQUEST}" \
  --query 'CancelledSpotInstanceRequests[0].State' --output text 2>&1); then
  echo "spot request ${SPOT_REQUEST}: ${out}"
  exit 0
fi
# A request EC2 no longer knows (closed and aged out) has nothing left to relaunch.
if [[ "${out}" == *InvalidSpotInstanceRequestID.NotFound* ]]; then
  echo "spot request ${SPOT_REQUEST}: gone already"
  exit 0
fi
echo "cancel spot request ${SPOT_REQUEST}: ${out}" >&2
exit 1
