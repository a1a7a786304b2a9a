package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/bootstrap/citrust"
)

// stepJob is a workflow job as far as the AWS roles care: its permissions, environment,
// condition, and the text of its steps.
type stepJob struct {
	If          string            `yaml:"if"`
	Uses        string            `yaml:"uses"`
	Permissions map[string]string `yaml:"permissions"`
	Environment yaml.Node         `yaml:"environment"`
	Steps       []map[string]any  `yaml:"steps"`
}

func readJobs(t *testing.T, file string) (map[string]stepJob, string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(workflowsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Jobs map[string]stepJob `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(text, &w); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return w.Jobs, string(text)
}

var roleVar = regexp.MustCompile(`role-to-assume:\s*\$\{\{\s*vars\.([A-Z_]+)\s*\}\}`)

// TestOnlyTheTrustedWorkflowsAssumeTheStackRoles: the deploy and preview roles trust one
// workflow file each (bootstrap/citrust), by the job_workflow_ref in GitHub's subject, and a job
// that names the stack's environment. A role assumed from another file would be refused by STS
// at run time; the test says so in review instead. Every job that asks for an AWS role names its
// environment, and the stack-wide secrets never reach it: it reads no GitHub secret at all.
func TestOnlyTheTrustedWorkflowsAssumeTheStackRoles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(workflowsDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"AWS_DEPLOY_ROLE_ARN": citrust.DeployWorkflow, "AWS_PREVIEW_ROLE_ARN": citrust.PreviewWorkflow}
	found := map[string]bool{}
	for _, f := range files {
		file := filepath.Base(f)
		jobs, _ := readJobs(t, file)
		for name, j := range jobs {
			steps, err := yaml.Marshal(j.Steps)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range roleVar.FindAllStringSubmatch(string(steps), -1) {
				found[m[1]] = true
				if want[m[1]] != file {
					t.Errorf("%s job %s assumes %s; only %s is trusted for it", file, name, m[1], want[m[1]])
				}
				if environmentName(j.Environment) == "" {
					t.Errorf("%s job %s assumes %s without an environment: its subject names none, and the role trusts an environment", file, name, m[1])
				}
				if j.Permissions["id-token"] != "write" {
					t.Errorf("%s job %s assumes %s without id-token: write", file, name, m[1])
				}
			}
			if strings.Contains(string(steps), "pulumi/actions@") {
				for _, r := range secretRef.FindAllStringSubmatch(string(steps), -1) {
					t.Errorf("%s job %s runs Pulumi with secrets.%s: a stack's credentials come from its AWS role, not from GitHub", file, name, r[1])
				}
			}
		}
	}
	for v, file := range want {
		if !found[v] {
			t.Errorf("no workflow assumes %s (%s should)", v, file)
		}
	}
}

// TestDeploysRunOnlyFromMain: deploy.yml runs on pushes to main and by hand; a manual run of
// another branch skips every job (the deploy roles would refuse it anyway). Each job hands the
// called up.yml the OIDC permission it needs: a called workflow gets at most its caller's.
func TestDeploysRunOnlyFromMain(t *testing.T) {
	jobs, text := readJobs(t, "deploy.yml")
	var w struct {
		On struct {
			Push struct {
				Branches []string `yaml:"branches"`
			} `yaml:"push"`
		} `yaml:"on"`
	}
	if err := yaml.Unmarshal([]byte(text), &w); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.On.Push.Branches, []string{citrust.DeployBranch}) {
		t.Errorf("deploy.yml runs on pushes to %v, want [%s]", w.On.Push.Branches, citrust.DeployBranch)
	}
	if len(jobs) == 0 {
		t.Fatal("deploy.yml has no jobs")
	}
	onMain := "github.ref == 'refs/heads/" + citrust.DeployBranch + "'"
	for name, j := range jobs {
		// The ref check is the whole condition or one of its top-level conjuncts.
		cond := strings.Join(strings.Fields(j.If), " ")
		if cond != onMain && !strings.HasPrefix(cond, onMain+" && ") && !strings.Contains(cond, " && "+onMain+" && ") {
			t.Errorf("deploy.yml job %s runs if %q: a dispatch of another branch must deploy nothing", name, j.If)
		}
		if name == "dev-hours" {
			continue // reads the stack's office hours; deploys nothing and assumes no role
		}
		if j.Uses != "./.github/workflows/"+citrust.DeployWorkflow {
			t.Errorf("deploy.yml job %s uses %q, want ./.github/workflows/%s (the workflow the deploy roles trust)", name, j.Uses, citrust.DeployWorkflow)
		}
		if j.Permissions["id-token"] != "write" {
			t.Errorf("deploy.yml job %s does not pass id-token: write to %s", name, citrust.DeployWorkflow)
		}
	}
	var triggers struct {
		On map[string]any `yaml:"on"`
	}
	if err := yaml.Unmarshal([]byte(text), &triggers); err != nil {
		t.Fatal(err)
	}
	for event := range triggers.On {
		if event != "push" && event != "workflow_dispatch" {
			t.Errorf("deploy.yml runs on %s: only pushes to main and manual runs of main deploy", event)
		}
	}
	// No other workflow calls up.yml: the deploy runs from deploy.yml only.
	files, err := filepath.Glob(filepath.Join(workflowsDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "deploy.yml" && base != citrust.DeployWorkflow {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if regexp.MustCompile(`uses:\s*\S*/` + regexp.QuoteMeta(citrust.DeployWorkflow)).Match(b) {
				t.Errorf("%s names %s: only deploy.yml may call the deploy", base, citrust.DeployWorkflow)
			}
		}
	}
	// up.yml itself runs for main only: another branch's or a pull request's workflow can call
	// it as it is on main, and the github context is then the caller's.
	up, _ := readJobs(t, citrust.DeployWorkflow)
	for name, j := range up {
		if strings.TrimSpace(j.If) != "github.ref == 'refs/heads/"+citrust.DeployBranch+"'" {
			t.Errorf("%s job %s runs if %q: a run for another ref calling it must deploy nothing", citrust.DeployWorkflow, name, j.If)
		}
	}
}

// TestAMergeOutsideDevsOfficeHoursStillDeploysProd: dev's nodes are stopped outside its office
// hours, so its deploy would be refused and, before, prod was skipped with it. Now a job reads
// dev's hours (cmd/officehours) and skips dev, with a notice, when they are closed; prod runs
// after a successful dev deploy or after dev skipped for its hours, and never after a failed dev
// deploy or a failed hours check (which skips dev too, so it must not count as "closed").
func TestAMergeOutsideDevsOfficeHoursStillDeploysProd(t *testing.T) {
	var w struct {
		Jobs map[string]struct {
			Needs   any               `yaml:"needs"`
			If      string            `yaml:"if"`
			Outputs map[string]string `yaml:"outputs"`
			Steps   []map[string]any  `yaml:"steps"`
		} `yaml:"jobs"`
	}
	_, text := readJobs(t, "deploy.yml")
	if err := yaml.Unmarshal([]byte(text), &w); err != nil {
		t.Fatal(err)
	}
	hours, dev, prod := w.Jobs["dev-hours"], w.Jobs["dev"], w.Jobs["prod"]
	if !strings.Contains(fmt.Sprint(hours.Steps), "go run ./cmd/officehours -stack dev") || hours.Outputs["open"] == "" {
		t.Errorf("dev-hours does not run cmd/officehours for dev and output open: %v", hours.Steps)
	}
	cond := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if fmt.Sprint(dev.Needs) != "dev-hours" || !strings.Contains(cond(dev.If), "needs.dev-hours.outputs.open == 'true'") {
		t.Errorf("dev needs %v if %q: want it to run only when dev-hours says open", dev.Needs, dev.If)
	}
	p := cond(prod.If)
	for _, want := range []string{
		"!cancelled()", // a skipped need would otherwise skip prod
		"needs.dev-hours.result == 'success'",
		"(needs.dev.result == 'success' || (needs.dev.result == 'skipped' && needs.dev-hours.outputs.open == 'false'))",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("prod runs if %q, which lacks %q", prod.If, want)
		}
	}
	if strings.Contains(p, "failure()") || strings.Contains(p, "always()") {
		t.Errorf("prod runs if %q: never after a failed dev deploy", prod.If)
	}
}
