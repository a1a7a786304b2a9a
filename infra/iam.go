package infra

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// IAMArgs are the inputs of the node roles.
type IAMArgs struct {
	// Config is the validated stack configuration.
	Config *config.Config
	// BackupsBucketARN is the bucket a new master restores etcd from.
	BackupsBucketARN pulumi.StringOutput
}

// IAM holds one role and instance profile per node role.
type IAM struct {
	pulumi.ResourceState

	// Roles and Profiles are keyed by node role.
	Roles    map[config.Role]*iam.Role
	Profiles map[config.Role]*iam.InstanceProfile
	// Policies are every inline policy of the roles (they have no managed policy). The nodes
	// depend on them, so that on destroy the controllers keep their permissions until the
	// cluster is gone (the load balancer controller must still deregister the nodes of the
	// bindings it is deleting).
	Policies []pulumi.Resource
}

// RolePolicies returns the inline policies a node role needs, by name: only what the node's
// own boot and the kubelet use. Every node describes itself, reads its own preparation parameter
// and may open Session Manager sessions; the master, at its first boot, looks for the etcd
// snapshot to restore and marks the cluster as having run (EtcdRestorePolicy). What runs in pods
// (the AWS-facing controllers, backups, log shipping, uploads) has a role of its own
// (podidentity.go): no pod reaches the node's credentials.
func RolePolicies(cfg *config.Config, role config.Role, backupsARN string) map[string]PolicyDocument {
	p := map[string]PolicyDocument{
		"node":            CCMNodePolicy(),
		"bootstrap":       BootstrapPolicy(cfg.Region, PreparationParameterName(cfg, role)),
		"session-manager": SessionManagerPolicy(),
	}
	if role.ControlPlane() {
		p["etcd-restore"] = EtcdRestorePolicy(backupsARN, config.BackupPrefix(role), config.MarkPrefix)
	}
	return p
}

// NewIAM declares the node roles.
func NewIAM(ctx *pulumi.Context, name string, args *IAMArgs, opts ...pulumi.ResourceOption) (*IAM, error) {
	r := &IAM{Roles: map[config.Role]*iam.Role{}, Profiles: map[config.Role]*iam.InstanceProfile{}}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:IAM", name, r, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(r)

	for _, node := range cfg.Nodes {
		roleName := fmt.Sprintf("%s-%s", name, node.Role)
		// IAM names are unique per account: the prefix carries the stack's cluster id, and AWS
		// appends a unique suffix, so a replacement never waits for the old name to be freed.
		awsPrefix := fmt.Sprintf("%s-%s-", cfg.ClusterID(), node.Role)
		role, err := iam.NewRole(ctx, roleName, &iam.RoleArgs{
			PermissionsBoundary: boundary(cfg),
			NamePrefix:          pulumi.String(awsPrefix),
			Description:         pulumi.Sprintf("waste-coach %s node (%s)", node.Role, cfg.Stack),
			AssumeRolePolicy:    pulumi.String(ec2AssumeRole.JSON()),
			Tags:                tags(cfg, roleName, nil),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create role %s: %w", roleName, err)
		}
		for _, policyName := range slices.Sorted(maps.Keys(RolePolicies(cfg, node.Role, ""))) {
			doc := args.BackupsBucketARN.ApplyT(func(arn string) string {
				return RolePolicies(cfg, node.Role, arn)[policyName].JSON()
			}).(pulumi.StringOutput)
			rp, err := iam.NewRolePolicy(ctx, roleName+"-"+policyName, &iam.RolePolicyArgs{
				Role:   role.Name,
				Policy: doc,
			}, parent)
			if err != nil {
				return nil, fmt.Errorf("create policy %s of %s: %w", policyName, roleName, err)
			}
			r.Policies = append(r.Policies, rp)
		}
		profile, err := iam.NewInstanceProfile(ctx, roleName, &iam.InstanceProfileArgs{
			NamePrefix: pulumi.String(awsPrefix),
			Role:       role.Name,
			Tags:       tags(cfg, roleName, nil),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create instance profile %s: %w", roleName, err)
		}
		r.Roles[node.Role], r.Profiles[node.Role] = role, profile
	}
	if err := ctx.RegisterResourceOutputs(r, pulumi.Map{}); err != nil {
		return nil, err
	}
	return r, nil
}
