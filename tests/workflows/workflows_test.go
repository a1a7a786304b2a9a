// Package workflows checks the GitHub Actions workflows for what a pull request may read: a pull
// request runs its own program, so any secret its jobs can read is as good as printed.
package workflows

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a workflow file this check reads.
type workflow struct {
	On   yaml.Node      `yaml:"on"`
	Jobs map[string]job `yaml:"jobs"`
}

type job struct {
	Environment yaml.Node `yaml:"environment"`
	Secrets     yaml.Node `yaml:"secrets"`
	Strategy    struct {
		Matrix map[string]any `yaml:"matrix"`
	} `yaml:"strategy"`
}

var (
	secretRef = regexp.MustCompile(`secrets\.([A-Za-z_][A-Za-z0-9_]*)`)
	matrixRef = regexp.MustCompile(`\$\{\{\s*matrix\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}`)
)

// triggers lists the events a workflow runs on, whatever form its `on:` takes.
func triggers(n yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
		return out
	case yaml.MappingNode:
		var out []string
		for i := 0; i < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
		return out
	}
	return nil
}

// environmentName is the job's environment as written (a string or {name: ...}).
func environmentName(n yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" {
				return n.Content[i+1].Value
			}
		}
	}
	return n.Value
}

// combinations expands a job's matrix into one value map per job it starts.
func combinations(matrix map[string]any) []map[string]string {
	out := []map[string]string{{}}
	for key, v := range matrix {
		values, ok := v.([]any)
		if !ok {
			continue // include/exclude are not used here
		}
		var next []map[string]string
		for _, c := range out {
			for _, val := range values {
				m := map[string]string{key: strings.TrimSpace(yamlString(val))}
				for k, x := range c {
					m[k] = x
				}
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

func expand(s string, values map[string]string) string {
	return matrixRef.ReplaceAllStringFunc(s, func(m string) string {
		return values[matrixRef.FindStringSubmatch(m)[1]]
	})
}

// startedJob is one job a pull request starts (one per matrix combination): its text with the
// matrix values filled in, and the GitHub environment it runs in.
type startedJob struct {
	file, name, text, environment string
	inheritsSecrets               bool
}

// pullRequestJobs returns every job that a pull request can start in the workflows of dir.
func pullRequestJobs(t *testing.T, dir string) []startedJob {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows under %s (%v)", dir, err)
	}
	var out []startedJob
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(text, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		events := triggers(w.On)
		if slices.Contains(events, "pull_request_target") {
			t.Errorf("%s runs on pull_request_target: it would give a pull request's code the base repository's secrets", filepath.Base(f))
		}
		if !slices.Contains(events, "pull_request") {
			continue
		}
		var raw struct {
			Jobs map[string]yaml.Node `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(text, &raw); err != nil {
			t.Fatal(err)
		}
		for name, j := range w.Jobs {
			node := raw.Jobs[name]
			jobText, err := yaml.Marshal(&node)
			if err != nil {
				t.Fatal(err)
			}
			for _, values := range combinations(j.Strategy.Matrix) {
				out = append(out, startedJob{
					file: filepath.Base(f), name: name,
					text:            expand(string(jobText), values),
					environment:     expand(environmentName(j.Environment), values),
					inheritsSecrets: j.Secrets.Value == "inherit",
				})
			}
		}
	}
	return out
}

// checkPullRequestSecrets returns what is wrong with the jobs a pull request can start: a secret
// read outside a GitHub environment (repository secrets reach every branch), or prod's stack
// touched outside the `prod` environment (whose required reviewers gate the run).
func checkPullRequestSecrets(jobs []startedJob) []string {
	var problems []string
	for _, j := range jobs {
		refs := secretRef.FindAllStringSubmatch(j.text, -1)
		var read []string
		for _, r := range refs {
			if r[1] != "GITHUB_TOKEN" {
				read = append(read, r[1])
			}
		}
		if j.inheritsSecrets {
			read = append(read, "(secrets: inherit)")
		}
		if len(read) > 0 && j.environment == "" {
			problems = append(problems, j.file+" job "+j.name+" reads "+strings.Join(read, ", ")+
				" without a GitHub environment: as repository secrets they reach any branch's pull request")
		}
		if strings.Contains(j.text, "stack-name: prod") && j.environment != "prod" {
			problems = append(problems, j.file+" job "+j.name+" runs prod's stack in environment "+
				strconv.Quote(j.environment)+", not in `prod` with its required reviewers")
		}
	}
	return problems
}

// TestPullRequestsCannotReadProdSecrets: anyone who can push a branch opens a pull request whose
// program runs with whatever secrets the job can read; prod's kubeconfig, SSH key and passwords
// must stay behind the prod environment's approval.
func TestPullRequestsCannotReadProdSecrets(t *testing.T) {
	jobs := pullRequestJobs(t, filepath.Join("..", "..", ".github", "workflows"))
	if len(jobs) == 0 {
		t.Fatal("no job runs on pull_request: the check would pass vacuously")
	}
	for _, p := range checkPullRequestSecrets(jobs) {
		t.Error(p)
	}
}

// TestCheckRefusesTheOldPreview shows the check can fail: the first workflow ran both stacks'
// previews with repository-level secrets.
func TestCheckRefusesTheOldPreview(t *testing.T) {
	dir := t.TempDir()
	old := `
on:
  pull_request:
jobs:
  preview:
    strategy:
      matrix:
        stack: [dev, prod]
    steps:
      - uses: pulumi/actions@v6.5.0
        with:
          stack-name: ${{ matrix.stack }}
        env:
          PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE }}
`
	if err := os.WriteFile(filepath.Join(dir, "pr.yml"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	problems := checkPullRequestSecrets(pullRequestJobs(t, dir))
	if len(problems) != 3 { // dev and prod read a repository secret; prod runs outside `prod`
		t.Fatalf("want 3 problems with the old preview job, got %d: %q", len(problems), problems)
	}
}
