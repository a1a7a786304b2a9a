package citrust

import (
	"strings"
	"testing"
)

func valid() Raw {
	return Raw{Region: "ap-northeast-2", Repository: "example-org/waste-coach-infra", StateBucket: "example-org-waste-coach-state", Stacks: []string{"dev", "prod"}}
}

// TestBadConfigurationNamesTheKey: each refusal names the key, the value and what is allowed,
// before anything is declared.
func TestBadConfigurationNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		what   string
		change func(*Raw)
		want   []string
	}{
		{"no region", func(r *Raw) { r.Region = "" }, []string{"aws:region"}},
		{"a repository without its owner", func(r *Raw) { r.Repository = "waste-coach-infra" }, []string{"waste-coach-ci:repository", `"waste-coach-infra"`, "owner/name"}},
		{"a repository URL", func(r *Raw) { r.Repository = "https://github.com/example-org/x" }, []string{"waste-coach-ci:repository"}},
		{"no stacks", func(r *Raw) { r.Stacks = nil }, []string{"waste-coach-ci:stacks", "empty"}},
		{"an upper-case stack", func(r *Raw) { r.Stacks = []string{"Prod"} }, []string{"waste-coach-ci:stacks", `"Prod"`}},
		{"a stack twice", func(r *Raw) { r.Stacks = []string{"dev", "dev"} }, []string{"waste-coach-ci:stacks", "twice"}},
		{"a state bucket with dots", func(r *Raw) { r.StateBucket = "state.example.com" }, []string{"waste-coach-ci:stateBucket", `"state.example.com"`}},
		{"a state bucket a deploy role manages", func(r *Raw) { r.StateBucket = "dev-sesacthon-state" }, []string{"waste-coach-ci:stateBucket", "dev-sesacthon-", "deploy role"}},
		{"ids without the slash", func(r *Raw) { r.RepositoryIDs = "123456" }, []string{"waste-coach-ci:repositoryIds", `"123456"`, "<owner id>/<repository id>"}},
		{"a production stack that is not a stack", func(r *Raw) { r.Production = []string{"production"} }, []string{"waste-coach-ci:productionStacks", `"production"`}},
		{"another issuer's provider", func(r *Raw) { r.GitHubProviderARN = "arn:aws:iam::123456789012:oidc-provider/example.com" }, []string{"waste-coach-ci:githubOidcProvider", "token.actions.githubusercontent.com"}},
	} {
		r := valid()
		tc.change(&r)
		_, err := Parse(r)
		if err == nil {
			t.Errorf("%s: accepted", tc.what)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.what, err, w)
			}
		}
	}
	if _, err := Parse(valid()); err != nil {
		t.Errorf("the example configuration is refused: %v", err)
	}
}

// TestSubjectsAreGitHubsCustomisedFormat: the subject GitHub writes with the template
// repo, context, ref, job_workflow_ref (each claim as key:value in the template's order, the
// context of a job with an environment as environment:<name>, as GitHub documents with
// repo:octo-org/octo-repo:environment:prod:job_workflow_ref:...), and the repo claim of a
// repository with immutable subject claims.
func TestSubjectsAreGitHubsCustomisedFormat(t *testing.T) {
	c, err := Parse(valid())
	if err != nil {
		t.Fatal(err)
	}
	prod := c.Stacks[1]
	if got, want := c.DeploySubject(prod), "repo:example-org/waste-coach-infra:environment:prod:ref:refs/heads/main:job_workflow_ref:example-org/waste-coach-infra/.github/workflows/up.yml@refs/heads/main"; got != want {
		t.Errorf("deploy subject\n got %s\nwant %s", got, want)
	}
	r := valid()
	r.RepositoryIDs = "123456/456789"
	c, err = Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.PreviewSubject(c.Stacks[0]), "repo:example-org@123456/waste-coach-infra@456789:environment:dev:ref:refs/pull/*/merge:job_workflow_ref:example-org/waste-coach-infra/.github/workflows/pull-request.yml@refs/pull/*/merge"; got != want {
		t.Errorf("preview subject with immutable ids\n got %s\nwant %s", got, want)
	}
}
