package infra

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/scheduler"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// spotRequestValidUntil ends the nodes' persistent spot requests. Without it RunInstances ends
// a persistent request seven days after launch, after which a node stopped for the night or by
// an interruption would have no request to bring it back. It is a constant: the market options
// are a launch setting, so a value that moved (a date computed from today) would replace every
// spot node on every `pulumi up`.
const spotRequestValidUntil = "2035-12-31T23:59:59Z"

// marketOptions buys a node's capacity: nil (on-demand) or a persistent spot request whose
// interruption stops the node, so that it keeps its root volume, private address, Elastic IP
// and Kubernetes identity and comes back by itself when capacity returns. No maximum price:
// AWS then caps it at the on-demand price, and a lower cap would only interrupt more often.
func marketOptions(node config.Node) ec2.InstanceInstanceMarketOptionsPtrInput {
	if node.Capacity != config.Spot {
		return nil
	}
	return &ec2.InstanceInstanceMarketOptionsArgs{
		MarketType: pulumi.String("spot"),
		SpotOptions: &ec2.InstanceInstanceMarketOptionsSpotOptionsArgs{
			SpotInstanceType:             pulumi.String("persistent"),
			InstanceInterruptionBehavior: pulumi.String(config.SpotInterruptionStop),
			ValidUntil:                   pulumi.String(spotRequestValidUntil),
		},
	}
}

// CheckNodesRunning looks up the stack's instances that are stopped or stopping (outside office
// hours, or interrupted spot capacity). A `pulumi up` cannot work on them: the remote commands
// cannot reach a stopped node and the Kubernetes API is down with the master. So an update is
// refused with what to do, before anything is changed; a preview only warns, so that pull
// requests still get their diff at night.
//
// First it warns about any node that was terminated rather than stopped (TerminatedNodes).
func CheckNodesRunning(ctx *pulumi.Context, cfg *config.Config) error {
	lost, err := TerminatedNodes(ctx, cfg)
	if err != nil {
		return err
	}
	for _, role := range slices.Sorted(maps.Keys(lost)) {
		if err := ctx.Log.Warn(TerminatedNodeMessage(cfg, role, lost[role]), nil); err != nil {
			return err
		}
	}
	res, err := ec2.GetInstances(ctx, &ec2.GetInstancesArgs{
		Filters:            []ec2.GetInstancesFilter{{Name: "tag:" + ClusterTag(cfg), Values: []string{"owned"}}},
		InstanceStateNames: []string{"stopping", "stopped"},
	})
	if err != nil {
		return fmt.Errorf("look up stopped nodes of %s: %w", cfg.ClusterID(), err)
	}
	if len(res.Ids) == 0 {
		return nil
	}
	ids := slices.Sorted(slices.Values(res.Ids))
	msg := StoppedNodesMessage(cfg, ids)
	if ctx.DryRun() {
		return ctx.Log.Warn(msg+" (a preview goes on; `pulumi up` would stop here)", nil)
	}
	return fmt.Errorf("%s", msg)
}

// TerminatedNodes tells a terminated node from a stopped one: each configured role (with an
// instance id) whose instance EC2 terminated (lost spot capacity, a hand termination) while no
// instance of that role is left alive. The stack's state still holds the instance, so a plain
// `pulumi up` finds nothing to do for it and the node stays gone; `pulumi up --refresh` reads it
// terminated and launches a new one. CheckNodesRunning warns, it does not refuse: the state
// cannot be read from here, and a stack destroyed and created again within the hour EC2 keeps
// terminated instances listed must still deploy. Tag filters only (no per-instance lookup, which
// a terminated instance may not answer): one call, and two per role when anything is terminated.
func TerminatedNodes(ctx *pulumi.Context, cfg *config.Config) (map[string]string, error) {
	owned := ec2.GetInstancesFilter{Name: "tag:" + ClusterTag(cfg), Values: []string{"owned"}}
	gone := []string{"shutting-down", "terminated"}
	list := func(states []string, filters ...ec2.GetInstancesFilter) ([]string, error) {
		res, err := ec2.GetInstances(ctx, &ec2.GetInstancesArgs{Filters: append([]ec2.GetInstancesFilter{owned}, filters...), InstanceStateNames: states})
		if err != nil {
			return nil, fmt.Errorf("look up the nodes of %s: %w", cfg.ClusterID(), err)
		}
		return slices.Sorted(slices.Values(res.Ids)), nil
	}
	found, err := list(gone)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	lost := map[string]string{}
	for _, n := range cfg.Nodes {
		role := ec2.GetInstancesFilter{Name: "tag:Role", Values: []string{string(n.Role)}}
		terminated, err := list(gone, role)
		if err != nil {
			return nil, err
		}
		live, err := list(liveInstanceStates, role)
		if err != nil {
			return nil, err
		}
		if len(terminated) > 0 && len(live) == 0 {
			lost[string(n.Role)] = terminated[0]
		}
	}
	return lost, nil
}

// TerminatedNodeMessage says that role's node was terminated and how to bring it back.
func TerminatedNodeMessage(cfg *config.Config, role, id string) string {
	return fmt.Sprintf("the %s node of stack %s (%s) was terminated (lost spot capacity, or someone terminated it), not stopped, "+
		"and no instance of that role is left: if this stack's state still holds it, `pulumi up` changes nothing for it. "+
		"Run `pulumi up --refresh`: the refresh finds it gone and the update launches and joins a new one "+
		"(docs/operations.md, \"Replacing a node\")", role, cfg.Stack, id)
}

// StoppedNodesMessage says which nodes are stopped, why they may be, and how to go on.
func StoppedNodesMessage(cfg *config.Config, ids []string) string {
	why := "a spot interruption, or someone stopped them"
	if cfg.OfficeHours != nil {
		why = fmt.Sprintf("outside office hours (officeHours: %s), a spot interruption, or someone stopped them", cfg.OfficeHours)
	}
	return fmt.Sprintf("nodes of stack %s are stopped (%s): %s. `pulumi up` needs them running: the remote commands "+
		"reach the nodes over SSH and the workloads need the Kubernetes API. Start them and wait until they run "+
		"(`aws ec2 start-instances --instance-ids %s` then `aws ec2 wait instance-running --instance-ids %s`), "+
		"then run `pulumi up` again; see docs/operations.md, \"Spot and office hours\"",
		cfg.Stack, why, strings.Join(ids, ", "), strings.Join(ids, " "), strings.Join(ids, " "))
}

// OfficeHoursArgs are the inputs of the office-hours schedule.
type OfficeHoursArgs struct {
	// Config is the validated stack configuration; its OfficeHours must be set.
	Config *config.Config
	// Instances are the stack's instances, every one of which the schedule starts and stops.
	Instances map[config.Role]*ec2.Instance
}

// OfficeHours starts the stack's instances at the start of office hours and stops them at the
// end, with EventBridge Scheduler calling EC2 directly (no function to maintain).
type OfficeHours struct {
	pulumi.ResourceState

	// Start and Stop are the two schedules.
	Start, Stop *scheduler.Schedule
	// Role is what the schedules act as: it may start and stop the stack's instances, nothing
	// else.
	Role *iam.Role
}

// The EventBridge Scheduler universal targets: the EC2 API calls themselves.
const (
	StartInstancesTarget = "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
	StopInstancesTarget  = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
)

// OfficeHoursPolicy allows starting and stopping exactly the given instances.
func OfficeHoursPolicy(instanceARNs []string) PolicyDocument {
	return policy(allow("StartStopTheStacksInstances", instanceARNs, "ec2:StartInstances", "ec2:StopInstances"))
}

// schedulerAssumeRole lets EventBridge Scheduler assume the role for the schedules of one group
// only, so that no other schedule in the account can act with it.
func schedulerAssumeRole(groupARN string) PolicyDocument {
	return policy(Statement{
		Effect:    "Allow",
		Principal: map[string]any{"Service": "scheduler.amazonaws.com"},
		Action:    []string{"sts:AssumeRole"},
		Condition: map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": groupARN}},
	})
}

// NewOfficeHours declares the schedule group, the role and the start and stop schedules.
func NewOfficeHours(ctx *pulumi.Context, name string, args *OfficeHoursArgs, opts ...pulumi.ResourceOption) (*OfficeHours, error) {
	o := &OfficeHours{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:OfficeHours", name, o, opts...); err != nil {
		return nil, err
	}
	cfg, hours := args.Config, args.Config.OfficeHours
	parent := pulumi.Parent(o)

	group, err := scheduler.NewScheduleGroup(ctx, name, &scheduler.ScheduleGroupArgs{
		Name: pulumi.String(cfg.ClusterID() + "-office-hours"),
		Tags: tags(cfg, cfg.ClusterID()+"-office-hours", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create schedule group: %w", err)
	}
	o.Role, err = iam.NewRole(ctx, name, &iam.RoleArgs{
		PermissionsBoundary: boundary(cfg),
		// Within IAM's 38-character prefix limit for the longest cluster id (MaxClusterIDLength).
		NamePrefix:       pulumi.String(cfg.ClusterID() + "-schedule-"),
		Description:      pulumi.Sprintf("EventBridge Scheduler: start and stop the instances of %s (office hours %s)", cfg.ClusterID(), hours),
		AssumeRolePolicy: group.Arn.ApplyT(func(arn string) string { return schedulerAssumeRole(arn).JSON() }).(pulumi.StringOutput),
		Tags:             tags(cfg, name, nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create schedule role: %w", err)
	}

	var arns, ids []any
	for _, n := range cfg.Nodes {
		arns = append(arns, args.Instances[n.Role].Arn)
		ids = append(ids, args.Instances[n.Role].ID().ToStringOutput())
	}
	rolePolicy, err := iam.NewRolePolicy(ctx, name+"-start-stop", &iam.RolePolicyArgs{
		Role: o.Role.Name,
		Policy: pulumi.All(arns...).ApplyT(func(v []any) string {
			return OfficeHoursPolicy(strs(v)).JSON()
		}).(pulumi.StringOutput),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create schedule policy: %w", err)
	}
	input := pulumi.All(ids...).ApplyT(func(v []any) (string, error) {
		b, err := json.Marshal(map[string][]string{"InstanceIds": strs(v)})
		return string(b), err
	}).(pulumi.StringOutput)

	schedule := func(action, at, target string) (*scheduler.Schedule, error) {
		s, err := scheduler.NewSchedule(ctx, name+"-"+action, &scheduler.ScheduleArgs{
			Name:                       pulumi.String(cfg.ClusterID() + "-" + action),
			GroupName:                  group.Name,
			Description:                pulumi.Sprintf("%s the instances of %s at %s (%s)", action, cfg.ClusterID(), at, hours),
			ScheduleExpression:         pulumi.String(hours.Cron(at)),
			ScheduleExpressionTimezone: pulumi.String(hours.TimeZone),
			FlexibleTimeWindow:         &scheduler.ScheduleFlexibleTimeWindowArgs{Mode: pulumi.String("OFF")},
			Target: &scheduler.ScheduleTargetArgs{
				Arn:     pulumi.String(target),
				RoleArn: o.Role.Arn,
				Input:   input,
				// A call that fails (a spot node without capacity yet) is retried for an hour,
				// never into the next window.
				RetryPolicy: &scheduler.ScheduleTargetRetryPolicyArgs{
					MaximumEventAgeInSeconds: pulumi.Int(3600),
					MaximumRetryAttempts:     pulumi.Int(20),
				},
			},
		}, parent, pulumi.DependsOn([]pulumi.Resource{rolePolicy}))
		if err != nil {
			return nil, fmt.Errorf("create %s schedule: %w", action, err)
		}
		return s, nil
	}
	if o.Start, err = schedule("start", hours.Start, StartInstancesTarget); err != nil {
		return nil, err
	}
	if o.Stop, err = schedule("stop", hours.Stop, StopInstancesTarget); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(o, pulumi.Map{"start": o.Start.Arn, "stop": o.Stop.Arn}); err != nil {
		return nil, err
	}
	return o, nil
}

func strs(v []any) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = s.(string)
	}
	return out
}
