package infra

import (
	"cmp"
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
// hours, by hand, or interrupted spot capacity). A `pulumi up` cannot work on them: the remote
// commands cannot reach a stopped node and the Kubernetes API is down with the master. So an
// update is refused with what to do, before anything is changed; a preview only warns, so that
// pull requests still get their diff at night.
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
	stopped, err := StoppedNodes(ctx, cfg)
	if err != nil || len(stopped) == 0 {
		return err
	}
	msg := StoppedNodesMessage(cfg, stopped)
	if ctx.DryRun() {
		return ctx.Log.Warn(msg+" (a preview goes on; `pulumi up` would stop here)", nil)
	}
	return fmt.Errorf("%s", msg)
}

// SpotInterruptionStateReason is the state reason code EC2 gives a spot instance it stopped to
// take its capacity back (StateReason in the EC2 API reference: "Server.SpotInstanceShutdown:
// The instance was stopped because the number of Spot requests with a maximum price equal to or
// higher than the Spot price exceeded available capacity or because of an increase in the Spot
// price"; https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html).
// DescribeInstances filters on it as state-reason-code ("The reason code for the state change",
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html).
const SpotInterruptionStateReason = "Server.SpotInstanceShutdown"

// stoppedInstanceStates are the states CheckNodesRunning refuses an update in.
var stoppedInstanceStates = []string{"stopping", "stopped"}

// StoppedNode is an instance of the stack that is stopped or stopping.
type StoppedNode struct {
	// Role is the instance's Role tag, ID its instance id.
	Role, ID string
	// Interrupted is set for a spot instance EC2 stopped to take its capacity back
	// (SpotInterruptionStateReason). Only EC2 starts such an instance again ("Only Amazon EC2
	// can restart an interrupted stopped Spot Instance", "Behavior of Spot Instance
	// interruptions" in the EC2 user guide): StartInstances fails for it
	// (IncorrectSpotRequestState), the office-hours start included. Any other stopped node was
	// stopped through the API: by the office-hours schedule or by a person.
	Interrupted bool
}

// StoppedNodes lists the stack's stopped and stopping instances, those EC2 interrupted told apart,
// in the order of config.Roles. One call when none is stopped; otherwise one more for the
// interrupted ones and one lookup per stopped instance for its Role tag (which names it to the
// operator even when its role is no longer configured).
func StoppedNodes(ctx *pulumi.Context, cfg *config.Config) ([]StoppedNode, error) {
	owned := ec2.GetInstancesFilter{Name: "tag:" + ClusterTag(cfg), Values: []string{"owned"}}
	list := func(filters ...ec2.GetInstancesFilter) ([]string, error) {
		res, err := ec2.GetInstances(ctx, &ec2.GetInstancesArgs{Filters: append([]ec2.GetInstancesFilter{owned}, filters...), InstanceStateNames: stoppedInstanceStates})
		if err != nil {
			return nil, fmt.Errorf("look up stopped nodes of %s: %w", cfg.ClusterID(), err)
		}
		return res.Ids, nil
	}
	ids, err := list()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	interrupted, err := list(ec2.GetInstancesFilter{Name: "state-reason-code", Values: []string{SpotInterruptionStateReason}})
	if err != nil {
		return nil, err
	}
	nodes := make([]StoppedNode, 0, len(ids))
	for _, id := range ids {
		inst, err := ec2.LookupInstance(ctx, &ec2.LookupInstanceArgs{InstanceId: pulumi.StringRef(id)})
		if err != nil {
			return nil, fmt.Errorf("look up stopped node %s of %s: %w", id, cfg.ClusterID(), err)
		}
		nodes = append(nodes, StoppedNode{Role: inst.Tags["Role"], ID: id, Interrupted: slices.Contains(interrupted, id)})
	}
	slices.SortFunc(nodes, func(a, b StoppedNode) int {
		return cmp.Or(cmp.Compare(roleRank(a.Role), roleRank(b.Role)), cmp.Compare(a.Role, b.Role), cmp.Compare(a.ID, b.ID))
	})
	return nodes, nil
}

// roleRank orders roles as config.Roles does, any other after them.
func roleRank(role string) int {
	if i := slices.Index(config.Roles, config.Role(role)); i >= 0 {
		return i
	}
	return len(config.Roles)
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
		"%s", role, cfg.Stack, id, NewNodeCommand(cfg, role))
}

// NewNodeCommand says how to get a new node for one whose instance is gone (terminated, or given
// up after an interruption). A worker or the storage node: `pulumi up --refresh`, whose refresh
// finds the instance gone. The master: `pulumi up --replace` of its instance, without a refresh,
// which would read every Kubernetes object through the API server that left with the master
// (pulumi-kubernetes fails such reads: unreachable cluster); the new master restores the newest
// etcd snapshot.
func NewNodeCommand(cfg *config.Config, role string) string {
	if role == string(config.RoleMaster) {
		return fmt.Sprintf("Run `pulumi up --replace '%s'` (no --refresh: a refresh reads every Kubernetes object through the API "+
			"server that left with the master, and fails): the new master restores the newest etcd snapshot "+
			"(docs/operations.md, \"Replacing the master\")", InstanceURN(cfg, config.RoleMaster))
	}
	return "Run `pulumi up --refresh`: the refresh finds it gone and the update launches and joins a new one " +
		"(docs/operations.md, \"Replacing a node\")"
}

// StoppedNodesMessage says which nodes are stopped and how to go on, each by role and instance
// id: the nodes stopped through the API (office hours, a person) with the commands that start
// exactly those, and the nodes EC2 interrupted apart, with what EC2 does and what the operator
// can do instead (start-instances fails for them).
func StoppedNodesMessage(cfg *config.Config, nodes []StoppedNode) string {
	var stopped, interrupted []StoppedNode
	for _, n := range nodes {
		if n.Interrupted {
			interrupted = append(interrupted, n)
		} else {
			stopped = append(stopped, n)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nodes of stack %s are stopped, and `pulumi up` needs them running: the remote commands reach the nodes "+
		"over SSH and the workloads need the Kubernetes API.", cfg.Stack)
	if len(stopped) > 0 {
		why := "someone stopped them"
		if cfg.OfficeHours != nil {
			why = fmt.Sprintf("outside office hours (officeHours: %s), or someone stopped them", cfg.OfficeHours)
		}
		ids := make([]string, len(stopped))
		for i, n := range stopped {
			ids[i] = n.ID
		}
		fmt.Fprintf(&b, " Stopped (%s): %s. Start them and wait until they run: `aws ec2 start-instances --instance-ids %s` "+
			"then `aws ec2 wait instance-running --instance-ids %s`. A spot node may fail to start for want of capacity "+
			"(InsufficientInstanceCapacity, also at the office-hours start): try again later, or move it to on-demand "+
			"(docs/operations.md, \"Moving a node between spot and on-demand\").",
			why, nodeList(stopped), strings.Join(ids, " "), strings.Join(ids, " "))
	}
	alsoSchedule := ""
	if cfg.OfficeHours != nil {
		alsoSchedule = ", and so does its office-hours start"
	}
	for _, n := range interrupted {
		fmt.Fprintf(&b, " Interrupted, not stopped by office hours or by hand: the %s node %s is a spot instance that EC2 stopped "+
			"to take its capacity back (state reason %s). EC2 starts it again by itself when capacity of its type returns in its zone, "+
			"and only EC2 can: `aws ec2 start-instances` fails for it (IncorrectSpotRequestState)%s. "+
			"Wait until it runs (`aws ec2 describe-instances --instance-ids %s --query 'Reservations[].Instances[].State.Name' --output text`), "+
			"or give it up for a new node: cancel its spot request, without which the request would launch an instance nobody "+
			"tracks, and which terminates the interrupted instance and its root volume (the cluster's persistent volumes stay): "+
			"`aws ec2 cancel-spot-instance-requests --spot-instance-request-ids \"$(aws ec2 describe-instances --instance-ids %s "+
			"--query 'Reservations[0].Instances[0].SpotInstanceRequestId' --output text)\"`; then make sure it is gone "+
			"(`aws ec2 terminate-instances --instance-ids %s`, `aws ec2 wait instance-terminated --instance-ids %s`). %s. A new spot "+
			"node needs the capacity EC2 lacks; an on-demand one does not (`capacity: on-demand` on that node's entry of `nodes`).",
			n.Role, n.ID, SpotInterruptionStateReason, alsoSchedule, n.ID, n.ID, n.ID, n.ID, NewNodeCommand(cfg, n.Role))
	}
	b.WriteString(" Once the nodes run, run `pulumi up` again; see docs/operations.md, \"Spot and office hours\"")
	return b.String()
}

// nodeList names nodes as "<role> <id>, ...".
func nodeList(nodes []StoppedNode) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.Role + " " + n.ID
	}
	return strings.Join(s, ", ")
}

// OfficeHoursArgs are the inputs of the office-hours schedules.
type OfficeHoursArgs struct {
	// Config is the validated stack configuration; its OfficeHours must be set.
	Config *config.Config
	// Instances are the stack's instances, each of which has its own start and stop schedule.
	Instances map[config.Role]*ec2.Instance
}

// OfficeHours starts the stack's instances at the start of office hours and stops them at the
// end, with EventBridge Scheduler calling EC2 directly (no function to maintain).
type OfficeHours struct {
	pulumi.ResourceState

	// Start and Stop are each node's schedules, by role, each naming that node's instance alone.
	// A StartInstances call naming several instances can fail as a whole when one of them cannot
	// start (a spot node without capacity yet, or one EC2 interrupted, which only EC2 starts
	// again): with one call for all, one such node would keep the others stopped.
	Start, Stop map[config.Role]*scheduler.Schedule
	// Role is what the schedules act as: it may start and stop the stack's instances, nothing
	// else.
	Role *iam.Role
}

// The EventBridge Scheduler universal targets: the EC2 API calls themselves.
const (
	StartInstancesTarget = "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
	StopInstancesTarget  = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
)

// MaxScheduleNameLength is EventBridge Scheduler's limit on a schedule's name (CreateSchedule:
// 1 to 64 characters of [0-9a-zA-Z-_.]).
const MaxScheduleNameLength = 64

// OfficeHoursScheduleName is the name of the schedule that starts or stops (action) the node of
// a role: "<cluster id>-<role>-<action>", at most 28+1+8+1+5 = 43 characters
// (config.MaxClusterIDLength, the longest role, "start").
func OfficeHoursScheduleName(clusterID string, role config.Role, action string) string {
	return clusterID + "-" + string(role) + "-" + action
}

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

// NewOfficeHours declares the schedule group, the role and, for each node, its start and stop
// schedules.
func NewOfficeHours(ctx *pulumi.Context, name string, args *OfficeHoursArgs, opts ...pulumi.ResourceOption) (*OfficeHours, error) {
	o := &OfficeHours{Start: map[config.Role]*scheduler.Schedule{}, Stop: map[config.Role]*scheduler.Schedule{}}
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

	var arns []any
	for _, n := range cfg.Nodes {
		arns = append(arns, args.Instances[n.Role].Arn)
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

	schedule := func(role config.Role, action, at, target string) (*scheduler.Schedule, error) {
		input := args.Instances[role].ID().ToStringOutput().ApplyT(func(id string) (string, error) {
			b, err := json.Marshal(map[string][]string{"InstanceIds": {id}})
			return string(b), err
		}).(pulumi.StringOutput)
		s, err := scheduler.NewSchedule(ctx, fmt.Sprintf("%s-%s-%s", name, role, action), &scheduler.ScheduleArgs{
			Name:                       pulumi.String(OfficeHoursScheduleName(cfg.ClusterID(), role, action)),
			GroupName:                  group.Name,
			Description:                pulumi.Sprintf("%s the %s node of %s at %s (%s)", action, role, cfg.ClusterID(), at, hours),
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
			return nil, fmt.Errorf("create %s schedule of %s: %w", action, role, err)
		}
		return s, nil
	}
	starts, stops := pulumi.StringMap{}, pulumi.StringMap{}
	for _, n := range cfg.Nodes {
		if o.Start[n.Role], err = schedule(n.Role, "start", hours.Start, StartInstancesTarget); err != nil {
			return nil, err
		}
		if o.Stop[n.Role], err = schedule(n.Role, "stop", hours.Stop, StopInstancesTarget); err != nil {
			return nil, err
		}
		starts[string(n.Role)], stops[string(n.Role)] = o.Start[n.Role].Arn, o.Stop[n.Role].Arn
	}
	if err := ctx.RegisterResourceOutputs(o, pulumi.Map{"start": starts, "stop": stops}); err != nil {
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
