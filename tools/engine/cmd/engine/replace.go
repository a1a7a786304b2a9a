package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// instanceType is the type token of the nodes' EC2 instances.
const instanceType = "aws:ec2/instance:Instance"

// replaceMaster does what docs/operations.md ("Replacing the master") tells an operator to do,
// on the deployed stack: unprotect the master instance (production protects it) and run
// `pulumi up --replace` of it. The cluster must come through it (issue 24): the up finishes;
// only the master instance, its Elastic IP's association and commands are replaced, and no
// replaced command has a delete step (it would run against the cluster: a node's drain); no
// command is updated (an update runs its create script again, against the cluster that stays);
// no other node changes; no Kubernetes resource of the program (or the provider that deploys them) is
// replaced, deleted or created; every object of the kinds the leftover check lists keeps its UID
// (none was recreated); and a preview after it has nothing to do.
func replaceMaster(ctx context.Context, stack auto.Stack, cli func(...string) ([]byte, error), o options, kubeconfig string) error {
	master, withDelete, err := masterAndDeleteSteps(ctx, stack)
	if err != nil {
		return err
	}
	before, err := objectUIDs(ctx, kubeconfig)
	if err != nil {
		return fmt.Errorf("cluster before the replacement: %w", err)
	}
	if _, err := cli("state", "unprotect", master, "--yes"); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.out, "up-replace-master.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	start := time.Now()
	steps, err := collectSteps(func(evs chan<- events.EngineEvent) error {
		_, err := stack.Up(ctx, optup.Replace([]string{master}), optup.ProgressStreams(f), optup.EventStreams(evs), optup.SuppressProgress())
		return err
	})
	if err != nil {
		return fmt.Errorf("pulumi up --replace of the master failed (log %s): %w", f.Name(), err)
	}
	report := judge(o.stack, steps, nil)
	fmt.Printf("engine: pulumi up --replace %s in %s: %s\n", name(master), time.Since(start).Round(time.Second), report.counts())

	replaced, updated, wrong := judgeReplacement(report.ops, master, withDelete)
	fmt.Printf("engine: replaced with the master: %s\n", strings.Join(replaced, ", "))
	if len(updated) > 0 {
		fmt.Printf("engine: updated with the master: %s\n", strings.Join(updated, ", "))
	}

	after, err := objectUIDs(ctx, kubeconfig)
	if err != nil {
		return fmt.Errorf("cluster after the replacement: %w", err)
	}
	for _, key := range slices.Sorted(maps.Keys(before)) {
		switch uid, ok := after[key]; {
		case !ok:
			wrong = append(wrong, key+" is gone after the replacement")
		case uid != before[key]:
			wrong = append(wrong, key+" was recreated (another UID) by the replacement")
		}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		return fmt.Errorf("replacing the master (log %s):\n  %s", f.Name(), strings.Join(wrong, "\n  "))
	}
	fmt.Printf("engine: all %d objects of the cluster are still there, none recreated; no other node and no Kubernetes resource replaced\n", len(before))

	w, err := os.Create(filepath.Join(o.out, "preview-after-replace.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	if _, err := stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(w), optpreview.SuppressProgress()); err != nil {
		return fmt.Errorf("pulumi preview --expect-no-changes after replacing the master: changes found (see %s): %w", w.Name(), err)
	}
	fmt.Println("engine: pulumi preview --expect-no-changes after the replacement: no changes")
	return nil
}

// replaceable are the types a replacement of the master may replace: the instance, the Elastic
// IP's association with it, and the commands that run on it.
var replaceable = []string{instanceType, "aws:ec2/eipAssociation:EipAssociation", "command:remote:Command", "command:local:Command"}

// judgeReplacement checks a replacement of the master's operations (URN -> classified operation):
// it returns the names of the replaced and of the updated resources, sorted, and what must not
// have happened.
//
// A command may be replaced, not updated: pulumi-command's update runs the command's create
// script again (its update script when it has one; none here has), so an update of a command
// the master's replacement did not mean to run (one on a worker, or against the cluster: a
// drain, an upgrade, a kubelet restart) would run it against the cluster that stays, unseen.
// The commands a new master needs are tied to its instance and replaced with it; the engine's
// runs of this check have updated none.
func judgeReplacement(ops map[string]string, master string, withDelete map[string]bool) (replaced, updated, wrong []string) {
	for urn, op := range ops {
		if op == string(apitype.OpSame) || op == string(apitype.OpRead) {
			continue
		}
		typ := urnType(urn)
		switch {
		case strings.HasPrefix(typ, "kubernetes:") || typ == "pulumi:providers:kubernetes":
			if op == opReplace || op == opDelete || op == string(apitype.OpCreate) {
				wrong = append(wrong, fmt.Sprintf("%s %s: a Kubernetes resource must outlive the master", op, urn))
			}
		case typ == instanceType && urn != master:
			wrong = append(wrong, fmt.Sprintf("%s %s: only the master is replaced", op, urn))
		case op == opUpdate && strings.HasPrefix(typ, "command:"):
			wrong = append(wrong, fmt.Sprintf("%s %s: an update runs the command's create script again, against the cluster that stays; a command the new master needs is tied to its instance and replaced with it", op, urn))
		case op == opReplace && withDelete[urn]:
			wrong = append(wrong, fmt.Sprintf("%s %s: its delete step runs against the cluster that stays", op, urn))
		case op == opReplace && !slices.Contains(replaceable, typ):
			wrong = append(wrong, fmt.Sprintf("%s %s: a %s is not replaced with the master", op, urn, typ))
		case op == opDelete || op == string(apitype.OpCreate):
			wrong = append(wrong, fmt.Sprintf("%s %s: a replacement of the master creates or deletes nothing else", op, urn))
		}
		switch op {
		case opReplace:
			replaced = append(replaced, name(urn))
		case opUpdate:
			updated = append(updated, name(urn))
		}
	}
	if ops[master] != opReplace {
		wrong = append(wrong, fmt.Sprintf("the master instance %s was not replaced (%q)", master, ops[master]))
	}
	slices.Sort(replaced)
	slices.Sort(updated)
	return replaced, updated, wrong
}

// opUpdate is the engine's step for an update in place.
const opUpdate = string(apitype.OpUpdate)

// masterAndDeleteSteps finds the master's instance in the stack's state, and the commands that
// have a delete step.
func masterAndDeleteSteps(ctx context.Context, stack auto.Stack) (string, map[string]bool, error) {
	state, err := stack.Export(ctx)
	if err != nil {
		return "", nil, err
	}
	var d struct {
		Resources []struct {
			URN    string         `json:"urn"`
			Type   string         `json:"type"`
			Inputs map[string]any `json:"inputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(state.Deployment, &d); err != nil {
		return "", nil, err
	}
	var found []string
	withDelete := map[string]bool{}
	for _, r := range d.Resources {
		if r.Type == instanceType && strings.HasSuffix(r.URN, "-nodes-master") {
			found = append(found, r.URN)
		}
		// A node's spot-request command is the exception: its delete step acts on the replaced
		// instance itself (it cancels that instance's spot request, infra/spot.go), not on
		// the cluster, and must run when the master is replaced.
		if strings.HasPrefix(r.Type, "command:") && r.Inputs["delete"] != nil && !strings.HasSuffix(r.URN, "-spot-request") {
			withDelete[r.URN] = true
		}
	}
	if len(found) != 1 {
		return "", nil, fmt.Errorf("%d master instances (%s, named *-nodes-master) in the state, want 1", len(found), instanceType)
	}
	return found[0], withDelete, nil
}

// urnType is the type of a URN's resource (the last of its type chain).
func urnType(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return ""
	}
	chain := parts[len(parts)-2]
	return chain[strings.LastIndex(chain, "$")+1:]
}

// name is a URN's resource name.
func name(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }
