package main

// The release-compatibility check: the stack was deployed by the released commit's program
// (cmd/engine-up, built by run.sh from the commit named in .ci/released); this commit's program
// previews on that state. A replacement or a deletion there is what `pulumi up` would do to every
// deployed stack, and for claims, StatefulSets and CRDs it loses data, so each must be listed,
// with its reason, in the reviewed allowlist (.ci/compat-allowlist). docs/delivery.md says how
// releases and the allowlist work.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/internal/standin"
	"github.com/waste-coach/infra/platform"
	"github.com/waste-coach/infra/tools/engine/workspace"
)

// allowed is one allowlist entry: an operation on the resources of a stack whose URNs match.
type allowed struct {
	op, stack, reason string
	urn               *regexp.Regexp
	line              int
	used              bool
}

// parseAllowlist reads entries of the form
//
//	<replace|delete> <stack or *> <URN, * matching any run of characters> -- <reason>
//
// with blank lines and lines starting with # ignored. An entry without a reason is refused: the
// reason is what the reviewer of the change reads.
func parseAllowlist(r io.Reader) ([]*allowed, error) {
	var list []*allowed
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, reason, ok := strings.Cut(line, " -- ")
		fields := strings.Fields(head)
		if !ok || strings.TrimSpace(reason) == "" || len(fields) != 3 {
			return nil, fmt.Errorf("allowlist line %d: want '<replace|delete> <stack|*> <urn glob> -- <reason>', got %q", n, line)
		}
		if fields[0] != opReplace && fields[0] != opDelete {
			return nil, fmt.Errorf("allowlist line %d: operation %q: only %s and %s need an entry", n, fields[0], opReplace, opDelete)
		}
		glob := regexp.QuoteMeta(fields[2])
		list = append(list, &allowed{op: fields[0], stack: fields[1], reason: strings.TrimSpace(reason), line: n,
			urn: regexp.MustCompile("^" + strings.ReplaceAll(glob, `\*`, ".*") + "$")})
	}
	return list, sc.Err()
}

// The two operations the check stops on.
const (
	opReplace = "replace"
	opDelete  = "delete"
)

// classify names what a preview does to one URN, from the step operations the engine reported
// for it: a replacement shows as replace, create-replacement and delete-replaced (or their read,
// import and discard forms), a deletion as delete or discard.
func classify(ops []string) string {
	for _, op := range ops {
		if strings.Contains(op, "replace") {
			return opReplace
		}
	}
	for _, op := range ops {
		if op == "delete" || op == "discard" {
			return opDelete
		}
	}
	if len(ops) == 0 {
		return "same"
	}
	return ops[0]
}

// compatReport is a preview's operations per URN, with the replacements and deletions no entry
// allows.
type compatReport struct {
	ops        map[string]string // URN -> classified operation
	disallowed []string          // "<op> <urn>"
	allowedBy  map[string]*allowed
}

// judge classifies every URN's steps and checks the replacements and deletions against list.
func judge(stack string, steps map[string][]string, list []*allowed) compatReport {
	r := compatReport{ops: map[string]string{}, allowedBy: map[string]*allowed{}}
	for _, urn := range slices.Sorted(maps.Keys(steps)) {
		op := classify(steps[urn])
		r.ops[urn] = op
		if op != opReplace && op != opDelete {
			continue
		}
		i := slices.IndexFunc(list, func(a *allowed) bool {
			return a.op == op && (a.stack == "*" || a.stack == stack) && a.urn.MatchString(urn)
		})
		if i < 0 {
			r.disallowed = append(r.disallowed, op+" "+urn)
			continue
		}
		list[i].used = true
		r.allowedBy[urn] = list[i]
	}
	return r
}

// counts prints "create 2, delete 1, same 290" style totals.
func (r compatReport) counts() string {
	n := map[string]int{}
	for _, op := range r.ops {
		n[op]++
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, n[op]))
	}
	return strings.Join(parts, ", ")
}

// previewSteps previews stack and returns each URN's step operations; the text goes to w.
func previewSteps(ctx context.Context, stack auto.Stack, w io.Writer) (map[string][]string, error) {
	return collectSteps(func(evs chan<- events.EngineEvent) error {
		_, err := stack.Preview(ctx, optpreview.Diff(), optpreview.ProgressStreams(w), optpreview.EventStreams(evs), optpreview.SuppressProgress())
		return err
	})
}

// collectSteps runs an operation that streams engine events and returns each URN's step
// operations. The Automation API closes the stream when the operation's event log ends.
func collectSteps(operation func(chan<- events.EngineEvent) error) (map[string][]string, error) {
	evs := make(chan events.EngineEvent)
	steps := map[string][]string{}
	collected := make(chan struct{})
	go func() {
		for e := range evs {
			if p := e.ResourcePreEvent; p != nil {
				steps[p.Metadata.URN] = append(steps[p.Metadata.URN], string(p.Metadata.Op))
			}
		}
		close(collected)
	}()
	if err := operation(evs); err != nil {
		return nil, err
	}
	<-collected
	return steps, nil
}

// compat runs the check on the stack the released program deployed into o.work, then deploys
// this commit's program on it (the upgrade every deployed stack will get) and previews once more,
// which must find nothing to do. Last, it proves the check can fail (compatFixture).
func compat(ctx context.Context, o options) error {
	if o.work == "" || o.allowlist == "" {
		return errors.New("-mode compat needs -work (the released up's workspace) and -allowlist")
	}
	f, err := os.Open(o.allowlist)
	if err != nil {
		return err
	}
	list, err := parseAllowlist(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", o.allowlist, err)
	}
	w, err := workspace.Open(o.work, o.repo, o.stack, o.state, o.out)
	if err != nil {
		return err
	}
	stack, err := w.Stack(ctx, o.stack, platform.Program, o.charts)
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(o.out, "compat-preview.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	start := time.Now()
	steps, err := previewSteps(ctx, stack, log)
	if err != nil {
		return fmt.Errorf("preview of this commit's program on the released state (log %s): %w", log.Name(), err)
	}
	r := judge(o.stack, steps, list)
	fmt.Printf("engine: compat: this commit's preview on the released commit's state, in %s: %s\n", time.Since(start).Round(time.Second), r.counts())
	for _, urn := range slices.Sorted(maps.Keys(r.ops)) {
		if op := r.ops[urn]; op != "same" {
			note := ""
			if a := r.allowedBy[urn]; a != nil {
				note = fmt.Sprintf("   (allowed, %s line %d: %s)", filepath.Base(o.allowlist), a.line, a.reason)
			}
			fmt.Printf("engine: compat:   %-8s %s%s\n", op, urn, note)
		}
	}
	for _, a := range list {
		if !a.used && (a.stack == "*" || a.stack == o.stack) {
			fmt.Printf("engine: compat: note: %s line %d matched nothing on %s (remove it when the release moves on)\n", filepath.Base(o.allowlist), a.line, o.stack)
		}
	}
	if len(r.disallowed) > 0 {
		return fmt.Errorf("compat: on a stack deployed by the released commit, this commit's program would %d time(s) replace or delete what no entry of %s allows (each must be listed with its reason, or kept by an alias):\n  %s",
			len(r.disallowed), o.allowlist, strings.Join(r.disallowed, "\n  "))
	}

	upLog, err := os.Create(filepath.Join(o.out, "compat-up.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = upLog.Close() }()
	start = time.Now()
	// The up is judged too: a provider may decide a replacement only once an input the preview
	// saw as unknown is known.
	upSteps, err := collectSteps(func(evs chan<- events.EngineEvent) error {
		_, err := stack.Up(ctx, optup.ProgressStreams(upLog), optup.EventStreams(evs), optup.SuppressProgress())
		return err
	})
	if err != nil {
		return fmt.Errorf("compat: pulumi up of this commit's program on the released state (log %s): %w", upLog.Name(), err)
	}
	up := judge(o.stack, upSteps, list)
	fmt.Printf("engine: compat: pulumi up of this commit's program on the released state in %s: %s\n", time.Since(start).Round(time.Second), up.counts())
	if len(up.disallowed) > 0 {
		return fmt.Errorf("compat: the up replaced or deleted what the preview did not show and no entry allows:\n  %s", strings.Join(up.disallowed, "\n  "))
	}
	if _, err := stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.ProgressStreams(upLog), optpreview.SuppressProgress()); err != nil {
		return fmt.Errorf("compat: the preview after the upgrade's up has changes (log %s): %w", upLog.Name(), err)
	}
	fmt.Println("engine: compat: the preview after it has no changes")
	return compatFixture(ctx, w, o)
}

// compatFixture proves the check fails where it must. A tiny stack is deployed: a component and
// one ConfigMap under it. Then it is previewed four ways, the two moves this program makes:
// the component renamed (its type), and the ConfigMap moved under a new child component. Without
// an alias each deletes what it moved, and the check must refuse it; with the alias (a type
// alias the ConfigMap inherits, or the ConfigMap's own parent alias, as workloads/ uses) it must
// pass. The fixture stack is destroyed afterwards.
func compatFixture(ctx context.Context, w *workspace.Workspace, o options) error {
	const stackName, tierType = "compat-fixture", "waste-coach-infra:fixture:Tier"
	kubeconfig, err := os.ReadFile(w.Env[standin.EnvKubeconfig])
	if err != nil {
		return err
	}
	type shape struct {
		name      string
		tierType  string // the component's type
		typeAlias bool   // the component says what its type was
		group     bool   // the ConfigMap sits under a new component inside the first
		moveAlias bool   // the moved ConfigMap says what its parent was
		want      int    // disallowed operations
	}
	program := func(sh shape) pulumi.RunFunc {
		return func(ctx *pulumi.Context) error {
			k8s, err := kubernetes.NewProvider(ctx, "fixture", &kubernetes.ProviderArgs{Kubeconfig: pulumi.String(string(kubeconfig))})
			if err != nil {
				return err
			}
			tier := &fixtureTier{}
			var tierOpts []pulumi.ResourceOption
			if sh.typeAlias {
				tierOpts = append(tierOpts, pulumi.Aliases([]pulumi.Alias{{Type: pulumi.String(tierType)}}))
			}
			if err := ctx.RegisterComponentResource(sh.tierType, "fixture", tier, tierOpts...); err != nil {
				return err
			}
			cmOpts := []pulumi.ResourceOption{pulumi.Parent(tier), pulumi.Provider(k8s)}
			if sh.group {
				group := &fixtureTier{}
				if err := ctx.RegisterComponentResource("waste-coach-infra:fixture:Group", "fixture-group", group, pulumi.Parent(tier)); err != nil {
					return err
				}
				cmOpts = []pulumi.ResourceOption{pulumi.Parent(group), pulumi.Provider(k8s)}
				if sh.moveAlias {
					cmOpts = append(cmOpts, pulumi.Aliases([]pulumi.Alias{{Parent: tier}}))
				}
			}
			_, err = corev1.NewConfigMap(ctx, "fixture-settings", &corev1.ConfigMapArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("compat-fixture"), Namespace: pulumi.String("default")},
				Data:     pulumi.StringMap{"release": pulumi.String("released")},
			}, cmOpts...)
			return err
		}
	}
	// A project of its own, in a folder of its own: the program's Pulumi.yaml requires keys
	// the fixture does not have. The backend is the run's.
	dir := filepath.Join(w.Dir, stackName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	stack, err := auto.UpsertStackInlineSource(ctx, stackName, stackName, program(shape{tierType: tierType}), auto.WorkDir(dir), auto.EnvVars(w.Env))
	if err != nil {
		return fmt.Errorf("compat fixture: %w", err)
	}
	defer func() {
		_, _ = stack.Destroy(ctx, optdestroy.ProgressStreams(io.Discard))
		_ = stack.Workspace().RemoveStack(ctx, stackName)
	}()
	log, err := os.Create(filepath.Join(o.out, "compat-fixture.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	if _, err := stack.Up(ctx, optup.ProgressStreams(log), optup.SuppressProgress()); err != nil {
		return fmt.Errorf("compat fixture: up: %w", err)
	}
	for _, sh := range []shape{
		{name: "the component renamed without an alias", tierType: tierType + "Renamed", want: 2},
		{name: "the component renamed with a type alias", tierType: tierType + "Renamed", typeAlias: true},
		{name: "the ConfigMap moved under a new component without an alias", tierType: tierType, group: true, want: 1},
		{name: "the ConfigMap moved under a new component with a parent alias", tierType: tierType, group: true, moveAlias: true},
	} {
		stack.Workspace().SetProgram(program(sh))
		steps, err := previewSteps(ctx, stack, log)
		if err != nil {
			return fmt.Errorf("compat fixture: %s: preview: %w", sh.name, err)
		}
		r := judge(stackName, steps, nil)
		if len(r.disallowed) != sh.want {
			return fmt.Errorf("compat fixture: %s should give %d disallowed operations, got %d: %v (log %s)", sh.name, sh.want, len(r.disallowed), r.disallowed, log.Name())
		}
		verdict := "passes"
		if sh.want > 0 {
			verdict = "fails, as it must: " + strings.Join(r.disallowed, "; ")
		}
		fmt.Printf("engine: compat: fixture: %s %s\n", sh.name, verdict)
	}
	return nil
}

// fixtureTier is a component of the fixture.
type fixtureTier struct {
	pulumi.ResourceState
}
