package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// upgradeSteps are what a kubernetesVersion change may change, each updated in place: the
// upgrade steps (cluster/upgrade.go), the master's kubeadm-init and reconfigure-master (their
// kubeadm configuration names the version; an initialised master leaves it, the reconfiguration
// keeps the running release), the nodes' first-boot preparation, and the
// cloud-controller-manager's image; the etcd snapshot's image may change too (it is kubeadm's etcd
// of the minor), and so may Calico (the release of the minor). Names are matched on the end of the resource's name, by type.
type upgradeStep struct {
	typ, suffix string
	// optional: the step may change, and need not.
	optional bool
}

var upgradeSteps = []upgradeStep{
	{"command:remote:Command", "-upgrade-master", false},
	{"command:remote:Command", "-upgrade-worker-1", false},
	{"command:remote:Command", "-upgrade-worker-2", false},
	{"command:remote:Command", "-upgrade-storage", false},
	{"command:remote:Command", "-kubeadm-init", false},
	{"command:remote:Command", "-reconfigure-master", false},
	{"aws:ssm/parameter:Parameter", "-master-prepare", false},
	{"aws:ssm/parameter:Parameter", "-worker-1-prepare", false},
	{"aws:ssm/parameter:Parameter", "-worker-2-prepare", false},
	{"aws:ssm/parameter:Parameter", "-storage-prepare", false},
	{"kubernetes:apps/v1:DaemonSet", "-ccm", false},
	{"kubernetes:batch/v1:CronJob", "-etcd-snapshot", true},
	// Calico of the new minor, where it differs (versions.CalicoFor: 1.36 moves to v3.32).
	{"command:remote:Command", "-calico", true},
}

// judgeUpgrade checks a kubernetesVersion change's preview: every step in upgradeSteps updated in
// place, and nothing else changed. It returns the steps missing and the changes not allowed.
func judgeUpgrade(ops map[string]string) (missing, wrong []string) {
	seen := make([]bool, len(upgradeSteps))
	for urn, op := range ops {
		if op == string(apitype.OpSame) || op == string(apitype.OpRead) {
			continue
		}
		name := urn[strings.LastIndex(urn, "::")+2:]
		i := slices.IndexFunc(upgradeSteps, func(s upgradeStep) bool {
			return urnType(urn) == s.typ && strings.HasSuffix(name, s.suffix)
		})
		if i < 0 || op != string(apitype.OpUpdate) {
			wrong = append(wrong, op+" "+urn)
			continue
		}
		seen[i] = true
	}
	for i, s := range upgradeSteps {
		if !seen[i] && !s.optional {
			missing = append(missing, s.typ+" *"+s.suffix)
		}
	}
	sort.Strings(wrong)
	return missing, wrong
}

// nextMinor is the minor after v's ("1.35.4" -> "1.36"), configured without a patch: the nodes
// then take the newest patch of that minor.
func nextMinor(v string) (string, error) {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return "", fmt.Errorf("kubernetesVersion %q: %w", v, err)
	}
	return fmt.Sprintf("%d.%d", major, minor+1), nil
}

// upgradeVersion raises kubernetesVersion by one minor, as an operator would: the preview must
// update exactly the upgrade steps and what names the version (judgeUpgrade), replacing nothing;
// the up must succeed; the next preview must be clean. The stack keeps the new version.
func upgradeVersion(ctx context.Context, stack auto.Stack, o options) error {
	key := config.Project + ":kubernetesVersion"
	current, err := stack.GetConfig(ctx, key)
	if err != nil {
		return err
	}
	target, err := nextMinor(current.Value)
	if err != nil {
		return err
	}
	if _, ok := versions.CCMImage(target); !ok {
		fmt.Printf("engine: kubernetesVersion %s is of the newest minor the program supports (versions.CCMImage has no %s): no upgrade to preview\n", current.Value, target)
		return nil
	}
	if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: target}); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.out, "preview-kubernetesVersion.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	start := time.Now()
	all, err := previewSteps(ctx, stack, f)
	if err != nil {
		return fmt.Errorf("preview of kubernetesVersion %s -> %s: %w", current.Value, target, err)
	}
	ops := map[string]string{}
	for urn, steps := range all {
		ops[urn] = classify(slices.DeleteFunc(steps, func(op string) bool {
			return op == string(apitype.OpSame) || op == string(apitype.OpRead)
		}))
	}
	missing, wrong := judgeUpgrade(ops)
	if len(missing) > 0 || len(wrong) > 0 {
		return fmt.Errorf("kubernetesVersion %s -> %s should update the upgrade steps, kubeadm-init, the node preparations and the CCM, in place, and nothing else; the preview (%s) misses %v and also has %v",
			current.Value, target, f.Name(), missing, wrong)
	}
	changes := 0
	for _, op := range ops {
		if op == string(apitype.OpUpdate) {
			changes++
		}
	}
	fmt.Printf("engine: preview of kubernetesVersion %s -> %s in %s: the %d upgrade changes, all in place, nothing else\n",
		current.Value, target, time.Since(start).Round(time.Second), changes)

	start = time.Now()
	if _, err := stack.Up(ctx, optup.ProgressStreams(f), optup.SuppressProgress()); err != nil {
		return fmt.Errorf("pulumi up of kubernetesVersion %s (log %s): %w", target, f.Name(), err)
	}
	fmt.Printf("engine: pulumi up of kubernetesVersion %s in %s\n", target, time.Since(start).Round(time.Second))
	start = time.Now()
	if _, err := stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(f), optpreview.SuppressProgress()); err != nil {
		return fmt.Errorf("pulumi preview --expect-no-changes after the upgrade: changes found (see %s): %w", f.Name(), err)
	}
	fmt.Printf("engine: pulumi preview --expect-no-changes after the upgrade: no changes, in %s\n", time.Since(start).Round(time.Second))
	return refuseDowngrade(ctx, stack, key, current.Value, target)
}

// refuseDowngrade checks the record the upgrade left: the stack's kubernetesVersion output names
// the target, and a preview back at the version before is refused by the program's guard
// (cluster.CheckVersionStep, which reads that output through the stack's reference to itself),
// naming the key and both versions. The stack is left at the target.
func refuseDowngrade(ctx context.Context, stack auto.Stack, key, before, target string) error {
	outputs, err := stack.Outputs(ctx)
	if err != nil {
		return err
	}
	// The stand-in upgrade step reports the release its script targets (internal/mocks).
	if got := outputs[cluster.VersionOutput].Value; got != target {
		return fmt.Errorf("after the upgrade to %s the stack's %s output is %v", target, cluster.VersionOutput, got)
	}
	if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: before}); err != nil {
		return err
	}
	start := time.Now()
	_, previewErr := stack.Preview(ctx, optpreview.SuppressProgress())
	if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: target}); err != nil {
		return err
	}
	if previewErr == nil {
		return fmt.Errorf("a preview of kubernetesVersion %s on a cluster recorded at %s went ahead: the version guard did not refuse the downgrade", before, target)
	}
	for _, want := range []string{key, "a downgrade", "the cluster runs " + target} {
		if !strings.Contains(previewErr.Error(), want) {
			return fmt.Errorf("the preview of kubernetesVersion %s failed, but not with the version guard's refusal (no %q): %w", before, want, previewErr)
		}
	}
	fmt.Printf("engine: the stack recorded %s = %s; a preview back at %s is refused by the version guard before anything is declared, in %s\n",
		cluster.VersionOutput, target, before, time.Since(start).Round(time.Second))
	return nil
}
