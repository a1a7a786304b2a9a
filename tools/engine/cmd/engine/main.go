// Command engine runs the whole program, platform.Program, through the real Pulumi engine and the
// real Kubernetes provider against the local cluster that `verify-local -serve` keeps.
//
// -mode full (the default) checks what operators meet on a new stack: `pulumi up` succeeds, a
// second preview has no changes, a one-line config change previews exactly the resources it
// should, the state holds every secret only encrypted, on production the master can be replaced
// with the cluster intact (replace.go), and `pulumi destroy` completes and leaves
// nothing of ours in the cluster. Before destroying, it proves its no-change check can fail: the
// program with one object stamped on every run must fail it.
//
// -mode compat is the release-compatibility check (compat.go): on the stack the released
// commit's program deployed, this commit's preview may replace or delete only what the allowlist
// names.
//
// The AWS, command, TLS and random providers are stand-ins (internal/standin).
// tools/engine/run.sh builds everything, makes the private network namespace and starts the
// cluster; run it, not this, by hand.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/standin"
	"github.com/waste-coach/infra/platform"
	"github.com/waste-coach/infra/tools/engine/workspace"
)

func main() {
	var o options
	flag.StringVar(&o.stack, "stack", "prod", "the stack whose Pulumi.<stack>.yaml is deployed")
	flag.StringVar(&o.repo, "repo", ".", "the repository root (Pulumi.yaml and the stack files)")
	flag.StringVar(&o.state, "state", "", "the local cluster's state folder (verify-local -serve)")
	flag.StringVar(&o.charts, "charts", "", "the folder of pinned chart archives, given to the program as chartSource")
	flag.StringVar(&o.out, "out", "", "where the preview texts and the engine logs are written")
	flag.StringVar(&o.mode, "mode", "full", "full: the run from an empty stack; compat: the release-compatibility check on the stack engine-up deployed into -work")
	flag.StringVar(&o.work, "work", "", "-mode compat: the workspace folder the released commit's engine-up deployed")
	flag.StringVar(&o.allowlist, "allowlist", "", "-mode compat: the replacements and deletions a release may make, with reasons")
	flag.Parse()
	runMode := map[string]func(context.Context, options) error{"full": run, "compat": compat}[o.mode]
	if runMode == nil {
		fmt.Fprintf(os.Stderr, "engine: -mode %q: want full or compat\n", o.mode)
		os.Exit(2)
	}
	if err := o.prepare(); err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(2)
	}
	if err := runMode(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(1)
	}
}

type options struct {
	stack, repo, state, charts, out string
	mode, work, allowlist           string
}

// prepare checks the flags every mode needs and makes the output folder.
func (o options) prepare() error {
	for _, need := range []struct{ flag, val string }{{"-state", o.state}, {"-charts", o.charts}, {"-out", o.out}} {
		if need.val == "" {
			return fmt.Errorf("%s is required", need.flag)
		}
	}
	return os.MkdirAll(o.out, 0o755)
}

// stampKey is the data key the negative check stamps with the time of each run.
const stampKey = "engine-run-timestamp"

func run(ctx context.Context, o options) error {
	kubeconfig := filepath.Join(o.state, "kubeconfig")
	work, err := os.MkdirTemp("", "engine-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	ws, err := workspace.Open(work, o.repo, o.stack, o.state, o.out)
	if err != nil {
		return err
	}
	cli := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "pulumi", append(args, "--stack", o.stack, "--non-interactive")...)
		cmd.Dir = work
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("pulumi %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return out, nil
	}

	stack, err := ws.Stack(ctx, o.stack, platform.Program, o.charts)
	if err != nil {
		return err
	}
	fmt.Printf("engine: stack %s, real: Pulumi CLI, engine, pulumi-kubernetes provider, kube-apiserver, controller-manager, scheduler, charts from %s\n", o.stack, o.charts)
	fmt.Printf("engine: stood in: %s (internal/standin; instances register as kwok nodes, the kubeconfig command returns the local cluster's)\n", strings.Join(slices.Sorted(maps.Keys(standin.Versions)), ", "))

	baseline, err := snapshot(ctx, kubeconfig)
	if err != nil {
		return fmt.Errorf("cluster before up: %w", err)
	}
	// After the baseline, so that the leftover check also wants it gone after destroy.
	if err := installAsHelmDid(ctx, kubeconfig, o.charts); err != nil {
		return fmt.Errorf("installing %s as Helm did: %w", adoptedCRD, err)
	}
	fmt.Printf("engine: %s installed first, as Helm did before the program owned the charts' CRDs: up must adopt it\n", adoptedCRD)
	log := func(name string) (io.Writer, func(), error) {
		f, err := os.Create(filepath.Join(o.out, name))
		if err != nil {
			return nil, nil, err
		}
		return f, func() { _ = f.Close() }, nil
	}

	// 1. pulumi up
	w, done, err := log("up.txt")
	if err != nil {
		return err
	}
	start := time.Now()
	up, err := stack.Up(ctx, optup.ProgressStreams(w), optup.SuppressProgress())
	done()
	if err != nil {
		return fmt.Errorf("pulumi up failed (log %s): %w", filepath.Join(o.out, "up.txt"), err)
	}
	created := 0
	if up.Summary.ResourceChanges != nil {
		created = (*up.Summary.ResourceChanges)["create"]
	}
	fmt.Printf("engine: pulumi up: %d resources created in %s\n", created, time.Since(start).Round(time.Second))
	if err := podsRequestResources(ctx, kubeconfig); err != nil {
		return err
	}

	// 2. A second run changes nothing.
	w, done, err = log("preview-no-changes.txt")
	if err != nil {
		return err
	}
	start = time.Now()
	_, noop := stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(w), optpreview.SuppressProgress())
	done()
	if noop != nil {
		return fmt.Errorf("pulumi preview --expect-no-changes after up: changes found (a perma-diff; see %s): %w", filepath.Join(o.out, "preview-no-changes.txt"), noop)
	}
	fmt.Printf("engine: pulumi preview --expect-no-changes: no changes, in %s\n", time.Since(start).Round(time.Second))

	// 3. A one-line config change previews exactly what it should.
	if err := previewChange(ctx, stack, o); err != nil {
		return err
	}

	// 3b. kubernetesVersion one minor up: the upgrade steps, in place, and a clean preview after.
	if err := upgradeVersion(ctx, stack, o); err != nil {
		return err
	}

	// 4. The state holds secrets only encrypted.
	if err := secretsStayEncrypted(cli, kubeconfig, o.out); err != nil {
		return err
	}

	// 5. Production: the master replaced as docs/operations.md says; the cluster comes through.
	if o.stack == "prod" {
		if err := replaceMaster(ctx, stack, cli, o, kubeconfig); err != nil {
			return err
		}
	}

	// 6. The check can fail: the same stack with one object that changes on every run.
	if err := perpetualDiffIsCaught(ctx, stack, o); err != nil {
		return err
	}

	// 7. pulumi destroy
	return destroy(ctx, stack, cli, o, kubeconfig, baseline)
}

// perpetualDiffIsCaught deploys the program with one object stamped with the time of each run,
// then previews again: --expect-no-changes must fail, or the no-change check above proves
// nothing.
func perpetualDiffIsCaught(ctx context.Context, stack auto.Stack, o options) error {
	stack.Workspace().SetProgram(withTimestamp(platform.Program))
	defer stack.Workspace().SetProgram(platform.Program)
	f, err := os.Create(filepath.Join(o.out, "negative.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if _, err := stack.Up(ctx, optup.ProgressStreams(f), optup.SuppressProgress()); err != nil {
		return fmt.Errorf("negative check: pulumi up with a timestamped object: %w", err)
	}
	start := time.Now()
	_, err = stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.Diff(), optpreview.ProgressStreams(f), optpreview.SuppressProgress())
	if err == nil {
		return errors.New("negative check: an object that changes on every run passed pulumi preview --expect-no-changes: the no-change check cannot fail")
	}
	fmt.Printf("engine: negative check: a timestamped object fails pulumi preview --expect-no-changes, as it must (%s)\n", time.Since(start).Round(time.Second))
	return nil
}

// withTimestamp is the program with one object that differs on every run: a perma-diff, which
// the no-change preview must catch.
func withTimestamp(program pulumi.RunFunc) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if err := ctx.RegisterResourceTransform(func(_ context.Context, args *pulumi.ResourceTransformArgs) *pulumi.ResourceTransformResult {
			if args.Type != "kubernetes:core/v1:ConfigMap" || !strings.HasSuffix(args.Name, "app-config") {
				return nil
			}
			// The engine hands a transform the properties as plain Pulumi values (a Map), the
			// program's typed StringMap only when it runs in-process; take either.
			now := pulumi.String(time.Now().Format(time.RFC3339Nano))
			var stamped pulumi.Input
			switch data := args.Props["data"].(type) {
			case pulumi.StringMap:
				m := pulumi.StringMap{stampKey: now}
				for k, v := range data {
					m[k] = v
				}
				stamped = m
			case pulumi.Map:
				m := pulumi.Map{stampKey: now}
				for k, v := range data {
					m[k] = v
				}
				stamped = m
			default:
				panic(fmt.Sprintf("engine: the app-config ConfigMap's data is a %T; the negative check cannot stamp it", args.Props["data"]))
			}
			args.Props["data"] = stamped
			return &pulumi.ResourceTransformResult{Props: args.Props, Opts: args.Opts}
		}); err != nil {
			return err
		}
		return program(ctx)
	}
}

// previewChange sets apiReplicas.auth one higher and previews: exactly the auth service's
// replica count must change, in place. The preview text is kept; the change is not applied.
func previewChange(ctx context.Context, stack auto.Stack, o options) error {
	key := config.Project + ":apiReplicas"
	current := config.APIReplicas{Auth: 2, Users: 2, Waste: 2} // Pulumi.yaml's default
	v, unset := stack.GetConfig(ctx, key)
	if unset == nil {
		if err := json.Unmarshal([]byte(v.Value), &current); err != nil {
			return fmt.Errorf("%s %q: %w", key, v.Value, err)
		}
	}
	// What an operator types: `pulumi config set --path apiReplicas.auth 3` (with the others as
	// they are, since a path set on an unset key replaces Pulumi.yaml's whole default object).
	path := &auto.ConfigOptions{Path: true}
	for field, n := range map[string]int{"auth": current.Auth + 1, "users": current.Users, "waste": current.Waste} {
		if err := stack.SetConfigWithOptions(ctx, key+"."+field, auto.ConfigValue{Value: fmt.Sprint(n)}, path); err != nil {
			return err
		}
	}
	// Put the stack's own setting back (dev sets it; removing it would give Pulumi.yaml's default
	// to every later step, whose previews would then change the API's replica counts).
	defer func() {
		if unset != nil {
			_ = stack.RemoveConfig(ctx, key)
			return
		}
		for field, n := range map[string]int{"auth": current.Auth, "users": current.Users, "waste": current.Waste} {
			_ = stack.SetConfigWithOptions(ctx, key+"."+field, auto.ConfigValue{Value: fmt.Sprint(n)}, path)
		}
	}()
	cfg := current
	cfg.Auth++
	f, err := os.Create(filepath.Join(o.out, "preview-apiReplicas-auth.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	start := time.Now()
	all, err := previewSteps(ctx, stack, f)
	if err != nil {
		return fmt.Errorf("preview of apiReplicas.auth %d -> %d: %w", cfg.Auth-1, cfg.Auth, err)
	}
	fmt.Printf("engine: preview of apiReplicas.auth %d -> %d in %s: %s\n", cfg.Auth-1, cfg.Auth, time.Since(start).Round(time.Second), judge(o.stack, all, nil).counts())
	steps := map[string]string{}
	for urn, ops := range all {
		ops = slices.DeleteFunc(ops, func(op string) bool { return op == string(apitype.OpSame) || op == string(apitype.OpRead) })
		if len(ops) > 0 {
			steps[urn] = classify(ops)
		}
	}
	// The auth service's replica count lives on its Deployment, or on its autoscaler's minimum
	// when one owns the count: those may be updated in place, and nothing else may change.
	var changed, wrong []string
	for urn, op := range steps {
		auth := strings.HasSuffix(urn, "-app-auth") &&
			(strings.Contains(urn, "$kubernetes:apps/v1:Deployment::") || strings.Contains(urn, "$kubernetes:autoscaling/v2:HorizontalPodAutoscaler::"))
		if auth && op == string(apitype.OpUpdate) {
			changed = append(changed, urn[strings.LastIndex(urn, "$")+1:])
			continue
		}
		wrong = append(wrong, op+" "+urn)
	}
	sort.Strings(wrong)
	if len(changed) == 0 || len(wrong) > 0 {
		return fmt.Errorf("apiReplicas.auth %d -> %d should update the auth service's replica count and nothing else; the preview (%s) updates %v and also %v",
			cfg.Auth-1, cfg.Auth, f.Name(), changed, wrong)
	}
	sort.Strings(changed)
	fmt.Printf("engine: exactly the auth service's replica count changes (%s, in place); preview text in %s\n", strings.Join(changed, ", "), f.Name())
	return nil
}

// destroy unprotects a production stack's data first, as docs/operations.md tells an operator
// to, then destroys and looks for anything of ours left in the cluster.
func destroy(ctx context.Context, stack auto.Stack, cli func(...string) ([]byte, error), o options, kubeconfig string, baseline map[string][]string) error {
	if _, err := cli("state", "unprotect", "--all", "--yes"); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.out, "destroy.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	start := time.Now()
	res, err := stack.Destroy(ctx, optdestroy.ProgressStreams(f), optdestroy.SuppressProgress())
	if err != nil {
		return fmt.Errorf("pulumi destroy failed (log %s): %w", f.Name(), err)
	}
	deleted := 0
	if res.Summary.ResourceChanges != nil {
		deleted = (*res.Summary.ResourceChanges)["delete"]
	}
	fmt.Printf("engine: pulumi destroy: %d resources deleted in %s\n", deleted, time.Since(start).Round(time.Second))
	return nothingLeft(ctx, kubeconfig, baseline)
}
