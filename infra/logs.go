package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// LogsArgs are the inputs of the stack's central logs.
type LogsArgs struct {
	// Config is the validated stack configuration (group name, retention).
	Config *config.Config
}

// Logs is where every container's and kubelet's log lines go (Fluent Bit on each node ships
// them), and the read-only login Grafana queries them with.
type Logs struct {
	pulumi.ResourceState

	// Group is the stack's CloudWatch Logs group. Its lines outlive the pod and the node.
	Group *cloudwatch.LogGroup
	// ReaderAccessKeyID and ReaderSecretAccessKey are Grafana's login (a Pulumi secret): an IAM
	// user that may only read Group.
	ReaderAccessKeyID, ReaderSecretAccessKey pulumi.StringOutput
}

// NewLogs declares the log group and Grafana's reader.
//
// Why Grafana gets an IAM user of its own instead of the master's instance role: the role
// carries the cloud-controller-manager's, the EBS CSI driver's and the load balancer
// controller's permissions, and Grafana is served to the internet through the ALB; letting it
// reach the metadata service would hand those to anyone who breaks into Grafana. The user may
// only read this stack's group; its key lives in Pulumi state as a secret and in a Kubernetes
// Secret (encrypted at rest), and is rotated by replacing the access key (docs/operations.md).
func NewLogs(ctx *pulumi.Context, name string, args *LogsArgs, opts ...pulumi.ResourceOption) (*Logs, error) {
	l := &Logs{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Logs", name, l, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(l)
	var err error
	if l.Group, err = cloudwatch.NewLogGroup(ctx, name, &cloudwatch.LogGroupArgs{
		Name:            pulumi.String(cfg.Logs.GroupName),
		RetentionInDays: pulumi.Int(cfg.Logs.RetentionDays),
		Tags:            tags(cfg, cfg.Logs.GroupName, map[string]string{"RetentionDays": fmt.Sprint(cfg.Logs.RetentionDays)}),
	}, parent); err != nil {
		return nil, fmt.Errorf("create log group %s: %w", cfg.Logs.GroupName, err)
	}

	user, err := iam.NewUser(ctx, name+"-grafana", &iam.UserArgs{
		PermissionsBoundary: boundary(cfg),
		Name:                pulumi.String(cfg.ClusterID() + "-grafana-logs"),
		Tags:                tags(cfg, name+"-grafana", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create grafana's log reader: %w", err)
	}
	if _, err := iam.NewUserPolicy(ctx, name+"-grafana", &iam.UserPolicyArgs{
		User: user.Name,
		Policy: l.Group.Arn.ApplyT(func(arn string) string {
			return LogReaderPolicy(arn).JSON()
		}).(pulumi.StringOutput),
	}, parent); err != nil {
		return nil, fmt.Errorf("grafana's log reader policy: %w", err)
	}
	key, err := iam.NewAccessKey(ctx, name+"-grafana", &iam.AccessKeyArgs{User: user.Name}, parent,
		pulumi.AdditionalSecretOutputs([]string{"secret"}))
	if err != nil {
		return nil, fmt.Errorf("grafana's log reader key: %w", err)
	}
	l.ReaderAccessKeyID = pulumi.ToSecret(key.ID().ToStringOutput()).(pulumi.StringOutput)
	l.ReaderSecretAccessKey = pulumi.ToSecret(key.Secret).(pulumi.StringOutput)

	if err := ctx.RegisterResourceOutputs(l, pulumi.Map{"logGroup": l.Group.Name}); err != nil {
		return nil, err
	}
	return l, nil
}
