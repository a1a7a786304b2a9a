package tests

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/cost"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/platform"
	"github.com/waste-coach/infra/workloads"
)

// TestDevNodesAreSpotThatStopAndProdNodesOnDemand: every dev node, the master included, is a
// persistent spot request that stops (keeps its disk, addresses and Kubernetes identity) when
// AWS reclaims the capacity, never terminates; every prod node is on-demand.
func TestDevNodesAreSpotThatStopAndProdNodesOnDemand(t *testing.T) {
	for stack, wantSpot := range map[string]bool{"dev": true, "prod": false} {
		r := run(t, stack)
		instances := r.OfType("aws:ec2/instance:Instance")
		if len(instances) != len(config.Roles) {
			t.Fatalf("%s declares %d instances", stack, len(instances))
		}
		for _, inst := range instances {
			market := prop(inst, "instanceMarketOptions")
			if !wantSpot {
				if !market.IsNull() {
					t.Errorf("%s: %s has instanceMarketOptions %v; prod nodes are on-demand", stack, inst.Name, market)
				}
				continue
			}
			for path, want := range map[string]string{
				"marketType":                               "spot",
				"spotOptions.spotInstanceType":             "persistent",
				"spotOptions.instanceInterruptionBehavior": "stop",
			} {
				keys := []any{"instanceMarketOptions"}
				for _, k := range strings.Split(path, ".") {
					keys = append(keys, k)
				}
				if got := str(inst, keys...); got != want {
					t.Errorf("%s: %s instanceMarketOptions.%s = %q, want %q", stack, inst.Name, path, got, want)
				}
			}
			// A persistent request ends seven days after launch unless told otherwise; after that
			// a stopped node would have nothing to bring it back.
			if until := str(inst, "instanceMarketOptions", "spotOptions", "validUntil"); until < "2030" {
				t.Errorf("%s: %s spot request valid until %q: a node stopped after that date could not come back", stack, inst.Name, until)
			}
		}
	}
}

// TestOfficeHoursStartAndStopExactlyTheStacksInstances checks dev's schedules: each node has
// its own start and its own stop schedule (the cron expressions and their time zone, the group,
// the role, the retry policy) that names that node's instance and no other, so that one node EC2
// cannot start (no spot capacity, or interrupted: only EC2 restarts it) fails its own call and
// keeps no other node stopped; and the role they act as can start and stop the stack's instances
// and do nothing else. Prod has none.
func TestOfficeHoursStartAndStopExactlyTheStacksInstances(t *testing.T) {
	if n := len(run(t, "prod").OfType("aws:scheduler/schedule:Schedule")); n != 0 {
		t.Errorf("prod declares %d schedules; it runs around the clock", n)
	}
	r := run(t, "dev")
	var arns []string
	group := must(t, r, "aws:scheduler/scheduleGroup:ScheduleGroup", "sesacthon-office-hours")
	role := must(t, r, "aws:iam/role:Role", "sesacthon-office-hours")
	roleARN := role.Outputs["arn"].StringValue()

	instances := r.OfType("aws:ec2/instance:Instance")
	if len(instances) != len(config.Roles) {
		t.Fatalf("dev declares %d instances, want one per role %v", len(instances), config.Roles)
	}
	if got, want := len(r.OfType("aws:scheduler/schedule:Schedule")), 2*len(instances); got != want {
		t.Errorf("dev declares %d schedules, want %d: a start and a stop for each of its %d instances", got, want, len(instances))
	}
	for _, inst := range instances {
		arns = append(arns, inst.Outputs["arn"].StringValue())
		node := str(inst, "tags", "Role")
		for _, s := range []struct{ action, cron, target string }{
			{"start", "cron(0 9 ? * MON,TUE,WED,THU,FRI *)", infra.StartInstancesTarget},
			{"stop", "cron(0 20 ? * MON,TUE,WED,THU,FRI *)", infra.StopInstancesTarget},
		} {
			name := "sesacthon-office-hours-" + node + "-" + s.action
			sch := must(t, r, "aws:scheduler/schedule:Schedule", name)
			if got, want := str(sch, "name"), "dev-sesacthon-"+node+"-"+s.action; got != want {
				t.Errorf("%s is named %q in EventBridge Scheduler, want %q", name, got, want)
			}
			if got := str(sch, "scheduleExpression"); got != s.cron {
				t.Errorf("%s scheduleExpression = %q, want %q", name, got, s.cron)
			}
			if got := str(sch, "scheduleExpressionTimezone"); got != "Asia/Seoul" {
				t.Errorf("%s scheduleExpressionTimezone = %q, want Asia/Seoul (09:00 means Seoul's morning, not UTC's)", name, got)
			}
			if got := str(sch, "groupName"); got != str(group, "name") {
				t.Errorf("%s is in group %q, want %q (the group the role's trust is limited to)", name, got, str(group, "name"))
			}
			if got := str(sch, "target", "arn"); got != s.target {
				t.Errorf("%s target = %q, want %q", name, got, s.target)
			}
			if got := str(sch, "target", "roleArn"); got != roleARN {
				t.Errorf("%s acts as %q, want the office-hours role %q", name, got, roleARN)
			}
			// A call that fails (no spot capacity yet) is retried for an hour, never into the next window.
			if age, tries := str(sch, "target", "retryPolicy", "maximumEventAgeInSeconds"), str(sch, "target", "retryPolicy", "maximumRetryAttempts"); age != "3600" || tries != "20" {
				t.Errorf("%s retries for %s s, %s times; want 3600 s, 20 times", name, age, tries)
			}
			var input struct {
				InstanceIDs []string `json:"InstanceIds"`
			}
			if err := json.Unmarshal([]byte(str(sch, "target", "input")), &input); err != nil {
				t.Fatalf("%s target input: %v", name, err)
			}
			if !slices.Equal(input.InstanceIDs, []string{inst.ID}) {
				t.Errorf("%s acts on %v, want the %s node's instance alone [%s]: a call naming other instances fails for all of them when one cannot start", name, input.InstanceIDs, node, inst.ID)
			}
		}
	}
	slices.Sort(arns)

	var trust infra.PolicyDocument
	if err := json.Unmarshal([]byte(str(role, "assumeRolePolicy")), &trust); err != nil {
		t.Fatal(err)
	}
	if len(trust.Statement) != 1 || trust.Statement[0].Principal["Service"] != "scheduler.amazonaws.com" {
		t.Errorf("office-hours role trust = %+v, want EventBridge Scheduler only", trust.Statement)
	} else if cond, _ := json.Marshal(trust.Statement[0].Condition); !strings.Contains(string(cond), group.Outputs["arn"].StringValue()) {
		t.Errorf("office-hours role trust condition %s does not limit it to the stack's schedule group %s", cond, group.Outputs["arn"].StringValue())
	}

	var policies []*mocks.Resource
	for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
		if strings.Contains(p.Parent, "OfficeHours") {
			policies = append(policies, p)
		}
	}
	if len(policies) != 1 {
		t.Fatalf("office-hours role has %d inline policies, want 1", len(policies))
	}
	var doc struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(str(policies[0], "policy")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statement) != 1 {
		t.Fatalf("office-hours policy has %d statements, want 1: %s", len(doc.Statement), str(policies[0], "policy"))
	}
	st := doc.Statement[0]
	slices.Sort(st.Action)
	slices.Sort(st.Resource)
	if st.Effect != "Allow" || !slices.Equal(st.Action, []string{"ec2:StartInstances", "ec2:StopInstances"}) || !slices.Equal(st.Resource, arns) {
		t.Errorf("office-hours policy allows %v on %v; want only ec2:StartInstances and ec2:StopInstances on the stack's instances %v", st.Action, st.Resource, arns)
	}
}

// TestOfficeHoursScheduleNamesFitEventBridgeScheduler: with the longest cluster id the
// configuration accepts and every role, each schedule's name is one EventBridge Scheduler
// accepts (at most 64 of [0-9a-zA-Z-_.]); a longer one would fail dev's `up` at CreateSchedule.
func TestOfficeHoursScheduleNamesFitEventBridgeScheduler(t *testing.T) {
	valid := regexp.MustCompile(`^[0-9a-zA-Z._-]+$`)
	id := strings.Repeat("x", config.MaxClusterIDLength)
	for _, role := range config.Roles {
		for _, action := range []string{"start", "stop"} {
			name := infra.OfficeHoursScheduleName(id, role, action)
			if len(name) > infra.MaxScheduleNameLength || !valid.MatchString(name) {
				t.Errorf("the %s schedule of %s with a %d-character cluster id is named %q (%d characters): EventBridge Scheduler refuses names over %d characters or outside [0-9a-zA-Z-_.]",
					action, role, config.MaxClusterIDLength, name, len(name), infra.MaxScheduleNameLength)
			}
		}
	}
}

// TestBadScheduleIsRefusedBeforeAnythingIsDeclared runs the whole program for dev with a bad
// schedule: the refusal names the key, and no resource is declared.
func TestBadScheduleIsRefusedBeforeAnythingIsDeclared(t *testing.T) {
	for _, tc := range []struct{ value, key string }{
		{`{"timeZone":"Asia/Seoul","days":["MON"],"start":"09:00","stop":"25:00"}`, "officeHours.stop"},
		{`{"timeZone":"Mars/Olympus","days":["MON"],"start":"09:00","stop":"20:00"}`, "officeHours.timeZone"},
		{`{"timeZone":"Asia/Seoul","days":["MON"],"start":"20:00","stop":"09:00"}`, "officeHours.stop"},
	} {
		sc, err := stackfile.Read("..", "dev")
		if err != nil {
			t.Fatal(err)
		}
		sc.Values[config.Project+":officeHours"] = tc.value
		res, err := offline.RunConfig("dev", sc)
		if err == nil || !strings.Contains(err.Error(), config.Project+":"+tc.key) {
			t.Errorf("officeHours %s: got %v, want a refusal naming %s", tc.value, err, tc.key)
		}
		if res != nil && len(res.Resources) > 0 {
			t.Errorf("officeHours %s: %d resources declared before the refusal", tc.value, len(res.Resources))
		}
	}
}

// TestUpdateOfAStoppedStackIsRefused: outside office hours the nodes are stopped; a `pulumi up`
// then stops before changing anything and says which nodes and how to start them, while a
// preview only warns (pull requests still get their diff at night).
func TestUpdateOfAStoppedStackIsRefused(t *testing.T) {
	sc, err := stackfile.Read("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	archives, err := offline.ChartsDir()
	if err != nil {
		t.Fatal(err)
	}
	program := platform.ProgramWith(platform.Options{Charts: charts.Folder(archives)})
	stopped := []string{"i-0stoppedworker1", "i-0stoppedmaster"}
	runStopped := func(dryRun bool) (*mocks.Mocks, error) {
		m := mocks.New(config.Project, "dev", sc.Values["aws:region"])
		m.Instances = []mocks.Instance{
			{ID: stopped[0], Role: "worker-1", Cluster: "dev-sesacthon", Image: "ami-0" + mocks.Placeholder + "running", State: "stopped", Spot: true},
			{ID: stopped[1], Role: "master", Cluster: "dev-sesacthon", Image: "ami-0" + mocks.Placeholder + "running", State: "stopped", Spot: true},
		}
		return m, pulumi.RunErr(program, pulumi.WithMocks(config.Project, "dev", m), func(info *pulumi.RunInfo) {
			info.Config, info.ConfigSecretKeys, info.DryRun = sc.Values, sc.Secrets, dryRun
		})
	}
	m, err := runStopped(false)
	if err == nil {
		t.Fatal("an update of a stack with stopped nodes went ahead")
	}
	for _, want := range []string{"master i-0stoppedmaster, worker-1 i-0stoppedworker1", "aws ec2 start-instances --instance-ids i-0stoppedmaster i-0stoppedworker1", "office hours", "Asia/Seoul"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not say %q:\n%v", want, err)
		}
	}
	for _, res := range m.Resources() {
		if res.Custom {
			t.Errorf("%s %s declared before the refusal", res.Type, res.Name)
		}
	}
	preview, err := runStopped(true)
	if err != nil {
		t.Errorf("a preview of a stack with stopped nodes failed; it should warn and go on: %v", err)
	}
	// Stopped nodes keep their image (dev's nodeImage is unset): the preview replaces neither.
	checked := 0
	for _, res := range preview.Resources() {
		if res.Type == "aws:ec2/instance:Instance" && (res.Name == "sesacthon-nodes-master" || res.Name == "sesacthon-nodes-worker-1") {
			checked++
			if got := res.Inputs["ami"].StringValue(); got != "ami-0"+mocks.Placeholder+"running" {
				t.Errorf("the preview boots stopped %s from %s, not the image it runs", res.Name, got)
			}
		}
	}
	if checked != 2 {
		t.Errorf("the preview declared %d of the two stopped nodes", checked)
	}
}

// TestDevCostsAtMost40PercentOfProd computes both stacks' monthly estimates from what the
// program declares for them and holds dev to 40% of prod.
func TestDevCostsAtMost40PercentOfProd(t *testing.T) {
	total := func(stack string) *cost.Estimate {
		r := run(t, stack)
		e, err := cost.Compute(cost.FootprintOf(r.Config, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, cost.Prices[r.Config.Region])
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dev, prod := total("dev"), total("prod")
	if ratio := cost.Ratio(dev, prod); ratio > 0.40 {
		t.Errorf("dev costs %.2f a month, %.1f%% of prod's %.2f; want at most 40%%:\n%s", dev.Total, ratio*100, prod.Total, cost.Compare("dev", dev, "prod", prod))
	}
}

// TestRemoteCommandsSurviveAStopAndStart: a stop and start (office hours, a spot interruption)
// gives a worker a new public address but keeps every private address and the master's Elastic
// IP. No remote command may connect to a worker's public address: the workers are reached
// through the master, at their private addresses.
func TestRemoteCommandsSurviveAStopAndStart(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		eip := must(t, r, "aws:ec2/eipAssociation:EipAssociation", "sesacthon-nodes-endpoint").Outputs["publicIp"].StringValue()
		public, private := map[string]string{}, map[string]bool{}
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			public[inst.Outputs["publicIp"].StringValue()] = inst.Name
			private[inst.Outputs["privateIp"].StringValue()] = true
		}
		cmds := r.OfType("command:remote:Command")
		if len(cmds) == 0 {
			t.Fatal("no remote commands")
		}
		for _, c := range cmds {
			host, proxy := str(c, "connection", "host"), str(c, "connection", "proxy", "host")
			if name, ok := public[host]; ok {
				t.Errorf("%s connects to %s's launch-time public address %s, which changes on every start", c.Name, name, host)
				continue
			}
			switch {
			case host == eip && proxy == "":
			case private[host] && proxy == eip:
			default:
				t.Errorf("%s connects to %s through %q; want the master's Elastic IP %s, or a private address through it", c.Name, host, proxy, eip)
			}
		}
	})
}

// TestATerminatedNodeIsToldFromAStoppedOne: a role whose instance EC2 terminated, with no
// instance of that role left alive, is named with its instance and `pulumi up --refresh` (a
// plain up would change nothing for it: the state still holds the instance); an old instance
// terminated by a replacement, beside its live successor, is not.
func TestATerminatedNodeIsToldFromAStoppedOne(t *testing.T) {
	sc, err := stackfile.Read("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("dev", func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	image := "ami-0" + mocks.Placeholder + "running"
	m := mocks.New(config.Project, "dev", sc.Values["aws:region"])
	m.Instances = []mocks.Instance{
		{ID: "i-0lostworker2", Role: "worker-2", Cluster: "dev-sesacthon", Image: image, State: "terminated"},
		{ID: "i-0oldmaster", Role: "master", Cluster: "dev-sesacthon", Image: image, State: "terminated"},
		{ID: "i-0newmaster", Role: "master", Cluster: "dev-sesacthon", Image: image, State: "running", Spot: true},
		{ID: "i-0prodworker2", Role: "worker-2", Cluster: "prod-sesacthon", Image: image, State: "running"},
		{ID: "i-0stoppedstorage", Role: "storage", Cluster: "dev-sesacthon", Image: image, State: "stopped", Spot: true},
		// A role the config no longer has: its instance was terminated on purpose.
		{ID: "i-0removedrole", Role: "worker-9", Cluster: "dev-sesacthon", Image: image, State: "shutting-down"},
	}
	var lost map[string]string
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		lost, err = infra.TerminatedNodes(ctx, cfg)
		return err
	}, pulumi.WithMocks(config.Project, "dev", m))
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost["worker-2"] != "i-0lostworker2" {
		t.Errorf("terminated nodes = %v, want worker-2 (i-0lostworker2) alone: prod's live worker-2 is another stack's, the old master has a successor, a stopped node is not terminated, worker-9 is not configured", lost)
	}
	msg := infra.TerminatedNodeMessage(cfg, "worker-2", "i-0lostworker2")
	for _, want := range []string{"worker-2", "i-0lostworker2", "terminated", "not stopped", "pulumi up --refresh"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the warning does not say %q: %s", want, msg)
		}
	}
}

// TestAnInterruptedNodeIsToldFromAnOfficeHoursStop: a spot node that EC2 interrupted (state
// reason Server.SpotInstanceShutdown) can only be started by EC2, so the refusal of an `up` names
// it apart, by role and instance id, with what EC2 does and how to give it up for a new node,
// and never hands it to `aws ec2 start-instances` (which fails for it, IncorrectSpotRequestState);
// the nodes stopped by office hours or by hand are named with the commands that start exactly
// them. Once the interrupted node is given up as the refusal says (its request cancelled, the
// instance terminated), the `up` is no longer refused.
func TestAnInterruptedNodeIsToldFromAnOfficeHoursStop(t *testing.T) {
	sc, err := stackfile.Read("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	image := "ami-0" + mocks.Placeholder + "running"
	node := func(id, role, cluster, state, reason string) mocks.Instance {
		// Dev's nodes are all spot, as its stack file buys them.
		return mocks.Instance{ID: id, Role: role, Cluster: cluster, Image: image, State: state, StateReason: reason, Spot: true}
	}
	m := mocks.New(config.Project, "dev", sc.Values["aws:region"])
	m.Instances = []mocks.Instance{
		node("i-0officeworker1", "worker-1", "dev-sesacthon", "stopped", "Client.UserInitiatedShutdown"),
		node("i-0officemaster", "master", "dev-sesacthon", "stopped", "Client.UserInitiatedShutdown"),
		node("i-0spotstorage", "storage", "dev-sesacthon", "stopped", infra.SpotInterruptionStateReason),
		node("i-0runningworker2", "worker-2", "dev-sesacthon", "running", ""),
		// Another stack's interrupted node is none of dev's business.
		node("i-0prodstorage", "storage", "prod-sesacthon", "stopped", infra.SpotInterruptionStateReason),
	}
	res, err := offline.RunMocks("dev", sc, m)
	if err == nil {
		t.Fatal("an update of a stack with stopped and interrupted nodes went ahead")
	}
	msg := err.Error()
	for _, r := range res.Resources {
		if r.Custom {
			t.Errorf("%s %s declared before the refusal", r.Type, r.Name)
		}
	}
	// Exactly the nodes a start brings back are started; the interrupted one is not among them.
	if n := strings.Count(msg, "start-instances --instance-ids"); n != 1 {
		t.Errorf("the refusal gives %d start-instances commands, want one for the nodes stopped by office hours:\n%s", n, msg)
	}
	for _, cmd := range []string{"aws ec2 start-instances --instance-ids ", "aws ec2 wait instance-running --instance-ids "} {
		_, rest, _ := strings.Cut(msg, cmd)
		ids, _, _ := strings.Cut(rest, "`")
		if ids != "i-0officemaster i-0officeworker1" {
			t.Errorf("`%s` names %q, want the master's and worker-1's instances alone (the interrupted storage node cannot be started by hand):\n%s", strings.TrimSpace(cmd), ids, msg)
		}
	}
	for _, want := range []string{
		"master i-0officemaster, worker-1 i-0officeworker1", "office hours", "Asia/Seoul",
		"Interrupted", "the storage node i-0spotstorage", infra.SpotInterruptionStateReason,
		"EC2 starts it again by itself", "IncorrectSpotRequestState",
		"aws ec2 cancel-spot-instance-requests", "aws ec2 terminate-instances --instance-ids i-0spotstorage", "pulumi up --refresh",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "i-0prodstorage") || strings.Contains(msg, "i-0runningworker2") {
		t.Errorf("the refusal names another stack's node or a running one:\n%s", msg)
	}

	// Only the interrupted node is down: no start command at all.
	cfg, err := config.Parse("dev", func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	only := mocks.New(config.Project, "dev", sc.Values["aws:region"])
	only.Instances = []mocks.Instance{
		node("i-0spotmaster", "master", "dev-sesacthon", "stopping", infra.SpotInterruptionStateReason),
		node("i-0runningworker1", "worker-1", "dev-sesacthon", "running", ""),
	}
	var stopped []infra.StoppedNode
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		stopped, err = infra.StoppedNodes(ctx, cfg)
		return err
	}, pulumi.WithMocks(config.Project, "dev", only))
	if err != nil {
		t.Fatal(err)
	}
	if want := []infra.StoppedNode{{Role: "master", ID: "i-0spotmaster", Interrupted: true}}; !slices.Equal(stopped, want) {
		t.Fatalf("stopped nodes = %+v, want %+v", stopped, want)
	}
	// A lost master gets `up --replace` of its instance, never `up --refresh`: the refresh would
	// read every Kubernetes object through the API server that left with it (pulumi-kubernetes
	// fails each read of an unreachable cluster) and stop the up.
	replace := "pulumi up --replace '" + infra.InstanceURN(cfg, config.RoleMaster) + "'"
	if msg := infra.StoppedNodesMessage(cfg, stopped); strings.Contains(msg, "start-instances --instance-ids") || !strings.Contains(msg, "Replacing the master") ||
		!strings.Contains(msg, replace) || strings.Contains(msg, "--refresh`") {
		t.Errorf("for an interrupted master alone the message must advise no start-instances and no refresh, and give %s (\"Replacing the master\"):\n%s", replace, msg)
	}
	if msg := infra.TerminatedNodeMessage(cfg, "master", "i-0lostmaster"); !strings.Contains(msg, replace) || strings.Contains(msg, "--refresh`") {
		t.Errorf("for a terminated master the warning must give %s and no refresh:\n%s", replace, msg)
	}

	// The interrupted node given up as advised: the up goes on (and warns of the terminated node).
	m = mocks.New(config.Project, "dev", sc.Values["aws:region"])
	m.Instances = []mocks.Instance{
		node("i-0officeworker1", "worker-1", "dev-sesacthon", "running", ""),
		node("i-0officemaster", "master", "dev-sesacthon", "running", ""),
		node("i-0spotstorage", "storage", "dev-sesacthon", "terminated", "Client.UserInitiatedShutdown"),
		node("i-0runningworker2", "worker-2", "dev-sesacthon", "running", ""),
	}
	if _, err := offline.RunMocks("dev", sc, m); err != nil {
		t.Errorf("after the interrupted node was cancelled and terminated, `pulumi up --refresh` is still refused: %v", err)
	}
}
