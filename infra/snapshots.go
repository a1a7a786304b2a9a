package infra

import (
	_ "embed"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dlm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// SnapshotsArgs are the inputs of the volume snapshot policy.
type SnapshotsArgs struct {
	// Config is the validated stack configuration (cluster id, retention).
	Config *config.Config
}

// Snapshots is the Data Lifecycle Manager policy that snapshots every persistent volume of the
// stack daily and keeps backupRetentionDays snapshots of each, with the role it runs as.
type Snapshots struct {
	pulumi.ResourceState

	Policy *dlm.LifecyclePolicy
	Role   *iam.Role
	// RolePolicies are the role's inline policies; the nodes wait for them like for their own,
	// so that a destroy removes them after the cluster.
	RolePolicies []pulumi.Resource
}

// SnapshotTime is when the daily snapshots start (UTC): 18:00 UTC is 03:00 in Seoul, the
// quietest hour of a Korean service.
const SnapshotTime = "18:00"

var dlmAssumeRole = policy(Statement{
	Effect:    "Allow",
	Principal: map[string]any{"Service": "dlm.amazonaws.com"},
	Action:    []string{"sts:AssumeRole"},
})

// DLMPolicy is what Data Lifecycle Manager does for this stack's policy, and no more: snapshot
// the volumes tagged for this stack, tag the snapshots it creates, and delete only snapshots
// that carry this stack's tag (the retention). AWS's managed AWSDataLifecycleManagerServiceRole
// allows creating and deleting snapshots of every volume in the account.
func DLMPolicy(clusterID string) PolicyDocument {
	tagged := func(kind string) map[string]any {
		return map[string]any{"StringEquals": map[string]any{kind + "/" + config.SnapshotTagKey: clusterID}}
	}
	return policy(
		allow("Describe", "*", "ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"),
		Statement{Sid: "SnapshotTaggedVolumes", Effect: "Allow", Action: []string{"ec2:CreateSnapshot"},
			Resource: "arn:aws:ec2:*:*:volume/*", Condition: tagged("ec2:ResourceTag")},
		Statement{Sid: "CreateSnapshots", Effect: "Allow", Action: []string{"ec2:CreateSnapshot"},
			Resource: "arn:aws:ec2:*::snapshot/*", Condition: tagged("aws:RequestTag")},
		Statement{Sid: "TagOnCreate", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: "arn:aws:ec2:*::snapshot/*",
			Condition: map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": "CreateSnapshot"}}},
		Statement{Sid: "ExpireOwnSnapshots", Effect: "Allow", Action: []string{"ec2:DeleteSnapshot"},
			Resource: "arn:aws:ec2:*::snapshot/*", Condition: tagged("ec2:ResourceTag")},
	)
}

// DeleteSnapshotsScript is the delete step of a non-production stack's snapshots-cleanup
// command: it deletes the snapshots tagged with the stack's cluster id.
//
//go:embed scripts/delete-stack-snapshots.sh
var DeleteSnapshotsScript string

// NewSnapshots declares the daily snapshot policy and its role, and on a non-production stack
// the command whose delete step removes the stack's snapshots when it is destroyed (DLM's
// snapshots belong to no resource: they would outlive the stack).
func NewSnapshots(ctx *pulumi.Context, name string, args *SnapshotsArgs, opts ...pulumi.ResourceOption) (*Snapshots, error) {
	s := &Snapshots{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Snapshots", name, s, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(s)
	var err error
	if s.Role, err = iam.NewRole(ctx, name, &iam.RoleArgs{
		PermissionsBoundary: boundary(cfg),
		NamePrefix:          pulumi.String(cfg.ClusterID() + "-dlm-"),
		Description:         pulumi.Sprintf("Data Lifecycle Manager: daily EBS snapshots of %s", cfg.ClusterID()),
		AssumeRolePolicy:    pulumi.String(dlmAssumeRole.JSON()),
		Tags:                tags(cfg, name, nil),
	}, parent); err != nil {
		return nil, fmt.Errorf("create dlm role: %w", err)
	}
	rp, err := iam.NewRolePolicy(ctx, name, &iam.RolePolicyArgs{Role: s.Role.Name, Policy: pulumi.String(DLMPolicy(cfg.ClusterID()).JSON())}, parent)
	if err != nil {
		return nil, fmt.Errorf("create dlm role policy: %w", err)
	}
	s.RolePolicies = []pulumi.Resource{rp}
	policyDeps := []pulumi.Resource{rp}
	if !cfg.Production {
		// A destroy removes the stack's snapshots too: the policy waits for this command, so it
		// is deleted first and takes no snapshot after the listing. Production keeps them.
		cleanup, err := local.NewCommand(ctx, name+"-cleanup", &local.CommandArgs{
			Create:      pulumi.String(`echo "the snapshots tagged ${SNAPSHOT_TAG}=${CLUSTER_ID} are deleted when the stack is destroyed"`),
			Delete:      pulumi.String(DeleteSnapshotsScript),
			Interpreter: pulumi.StringArray{pulumi.String("/bin/bash"), pulumi.String("-c")},
			Environment: pulumi.StringMap{"SNAPSHOT_TAG": pulumi.String(config.SnapshotTagKey), "CLUSTER_ID": pulumi.String(cfg.ClusterID()), "AWS_REGION": pulumi.String(cfg.Region),
				"AWS_PAGER": pulumi.String("")},
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("snapshot clean-up: %w", err)
		}
		policyDeps = append(policyDeps, cleanup)
	}
	if s.Policy, err = dlm.NewLifecyclePolicy(ctx, name, &dlm.LifecyclePolicyArgs{
		Description:      pulumi.Sprintf("daily snapshots of %s volumes", cfg.ClusterID()),
		ExecutionRoleArn: s.Role.Arn,
		State:            pulumi.String("ENABLED"),
		PolicyDetails: &dlm.LifecyclePolicyPolicyDetailsArgs{
			PolicyType:    pulumi.String("EBS_SNAPSHOT_MANAGEMENT"),
			ResourceTypes: pulumi.ToStringArray([]string{"VOLUME"}),
			TargetTags:    pulumi.StringMap{config.SnapshotTagKey: pulumi.String(cfg.ClusterID())},
			Schedules: dlm.LifecyclePolicyPolicyDetailsScheduleArray{&dlm.LifecyclePolicyPolicyDetailsScheduleArgs{
				Name: pulumi.String("daily"),
				CreateRule: &dlm.LifecyclePolicyPolicyDetailsScheduleCreateRuleArgs{
					Interval: pulumi.Int(24), IntervalUnit: pulumi.String("HOURS"), Times: pulumi.String(SnapshotTime),
				},
				RetainRule: &dlm.LifecyclePolicyPolicyDetailsScheduleRetainRuleArgs{Count: pulumi.Int(cfg.Backups.RetentionDays)},
				// The volume's tags (its claim's name and namespace from the CSI driver) say
				// what a snapshot holds; the stack's tag lets the role delete it at expiry.
				CopyTags:  pulumi.Bool(true),
				TagsToAdd: pulumi.StringMap{config.SnapshotTagKey: pulumi.String(cfg.ClusterID()), "SnapshotBy": pulumi.String("dlm")},
			}},
		},
		Tags: tags(cfg, name, nil),
	}, parent, pulumi.DependsOn(policyDeps)); err != nil {
		return nil, fmt.Errorf("create dlm policy: %w", err)
	}
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{"policy": s.Policy.ID()}); err != nil {
		return nil, err
	}
	return s, nil
}
