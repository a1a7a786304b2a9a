package infra

import (
	_ "embed"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// CancelSpotRequestScript is the delete step of a spot node's spot-request command.
//
//go:embed scripts/cancel-spot-request.sh
var CancelSpotRequestScript string

// spotRequestCanceller declares, for every node, a command on the deploying machine whose only
// work is its delete step: it cancels the instance's persistent spot request, if it has one (an
// on-demand instance's request id is empty, and the step does nothing). Every node has one, not
// only those configured as spot: a node whose capacity is set to on-demand stays a spot instance
// until it is replaced (the provider shows no diff), and deleting its command then would cancel
// the request under a running spot instance (which could then neither stop for office hours nor
// come back from an interruption). The AWS provider has not cancelled it (its delete compared
// the request type with a typed constant that never matched: terraform-provider-aws#38142; pull
// request #41206 addresses it), and an open persistent request relaunches an instance nobody
// tracks whenever its instance is gone, until the request's end date (2035).
//
// It depends on the instance, so Pulumi deletes it before the instance, on destroy and on a
// replacement (whose new instance has a new request: the request id is a trigger, so the
// command is replaced, and the old one's delete cancels the old request). Nothing is deleted
// when a node is only stopped (office hours, an interruption): its request stays, and brings
// an interrupted node back. Cancelling a request leaves its instance running; Pulumi terminates
// it next. The machine running `pulumi up` or `pulumi destroy` needs the AWS CLI (GitHub's
// hosted runners have it) and ec2:CancelSpotInstanceRequests.
func spotRequestCanceller(ctx *pulumi.Context, name string, cfg *config.Config, role config.Role, inst *ec2.Instance, parent pulumi.ResourceOption) (*local.Command, error) {
	cmd, err := local.NewCommand(ctx, fmt.Sprintf("%s-%s-spot-request", name, role), &local.CommandArgs{
		Create:      pulumi.String(`echo "spot request ${SPOT_REQUEST:-none (on-demand)}: cancelled when this node is deleted"`),
		Delete:      pulumi.String(CancelSpotRequestScript),
		Interpreter: pulumi.StringArray{pulumi.String("/bin/bash"), pulumi.String("-c")},
		Environment: pulumi.StringMap{"SPOT_REQUEST": inst.SpotInstanceRequestId, "AWS_REGION": pulumi.String(cfg.Region), "AWS_PAGER": pulumi.String("")},
		Triggers:    pulumi.Array{inst.SpotInstanceRequestId},
	}, parent, pulumi.DependsOn([]pulumi.Resource{inst}))
	if err != nil {
		return nil, fmt.Errorf("spot request of %s: %w", role, err)
	}
	return cmd, nil
}
