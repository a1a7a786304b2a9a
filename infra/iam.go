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
	// UploadsBucketARN is the bucket the application nodes may read and write.
	UploadsBucketARN pulumi.StringOutput
	// BackupsBucketARN is the bucket the master and the storage node add backups to.
	BackupsBucketARN pulumi.StringOutput
	// LogGroupARN is the stack's log group, which every node's Fluent Bit writes to.
	LogGroupARN pulumi.StringOutput
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

// RolePolicies returns the inline policies a node role needs, by name. The master runs the
// cluster's AWS-facing controllers (cloud-controller-manager, EBS CSI controller, load balancer
// controller); the application nodes reach the uploads bucket; every node describes itself,
// reads its own preparation parameter and may open Session Manager sessions; the roles with a
// backup prefix (config.BackupPrefix) add backups there.
func RolePolicies(cfg *config.Config, role config.Role, bucketARN, backupsARN string) map[string]PolicyDocument {
	p := map[string]PolicyDocument{
		"node":            CCMNodePolicy(),
		"bootstrap":       BootstrapPolicy(cfg.Region, PreparationParameterName(cfg, role)),
		"session-manager": SessionManagerPolicy(),
	}
	if role.ControlPlane() {
		p["cloud-controller-manager"] = CCMControlPlanePolicy()
		p["ebs-csi-controller"] = EBSCSIPolicy(cfg.Region, ClusterTag(cfg))
		p["load-balancer-controller"] = LoadBalancerControllerPolicy(cfg.Region, ClusterTag(cfg))
	}
	if role.RunsApplication() {
		p["uploads"] = UploadsPolicy(bucketARN)
	}
	if prefix := config.BackupPrefix(role); prefix != "" {
		p["backups"] = BackupWriterPolicy(backupsARN, prefix)
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
			NamePrefix:       pulumi.String(awsPrefix),
			Description:      pulumi.Sprintf("waste-coach %s node (%s)", node.Role, cfg.Stack),
			AssumeRolePolicy: pulumi.String(ec2AssumeRole.JSON()),
			Tags:             tags(cfg, roleName, nil),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create role %s: %w", roleName, err)
		}
		for _, policyName := range slices.Sorted(maps.Keys(RolePolicies(cfg, node.Role, "", ""))) {
			doc := pulumi.All(args.UploadsBucketARN, args.BackupsBucketARN).ApplyT(func(arns []any) string {
				return RolePolicies(cfg, node.Role, arns[0].(string), arns[1].(string))[policyName].JSON()
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
		// Every node runs Fluent Bit, which ships its logs with the node's role (logs.go).
		logs, err := iam.NewRolePolicy(ctx, roleName+"-logs", &iam.RolePolicyArgs{
			Role:   role.Name,
			Policy: args.LogGroupARN.ApplyT(func(arn string) string { return LogWriterPolicy(arn).JSON() }).(pulumi.StringOutput),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create policy logs of %s: %w", roleName, err)
		}
		r.Policies = append(r.Policies, logs)
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
