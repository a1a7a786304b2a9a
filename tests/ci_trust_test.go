package tests

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/bootstrap/citrust"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
)

// ciRun is the bootstrap program (bootstrap/), run once under the mocks with its stack file.
var ciRun = sync.OnceValues(func() (*mocks.Mocks, error) {
	sc, err := stackfile.Read("../bootstrap", "ci")
	if err != nil {
		return nil, err
	}
	m := mocks.New(citrust.Project, "ci", sc.Values["aws:region"])
	err = pulumi.RunErr(citrust.Program, pulumi.WithMocks(citrust.Project, "ci", m), func(info *pulumi.RunInfo) {
		info.Config = sc.Values
		info.ConfigSecretKeys = sc.Secrets
	})
	return m, err
})

func ciResources(t *testing.T) (*citrust.Config, []*mocks.Resource) {
	t.Helper()
	m, err := ciRun()
	if err != nil {
		t.Fatalf("bootstrap program: %v", err)
	}
	sc, err := stackfile.Read("../bootstrap", "ci")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := citrust.Parse(citrust.Raw{Region: sc.Values["aws:region"], Repository: sc.Values["waste-coach-ci:repository"], StateBucket: sc.Values["waste-coach-ci:stateBucket"], Stacks: stacks})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m.Resources()
}

func ciNamed(t *testing.T, rs []*mocks.Resource, typ, name string) *mocks.Resource {
	t.Helper()
	for _, r := range rs {
		if r.Type == typ && r.Name == name {
			return r
		}
	}
	t.Fatalf("the bootstrap program declares no %s %q", typ, name)
	return nil
}

// TestOnlyUpOnMainAssumesTheDeployRole evaluates each CI role's trust as STS does for GitHub's
// tokens, with the subject GitHub writes under the repository's customised template
// (repo, context, job_workflow_ref): a pull request's job, whatever workflow it edits or calls,
// runs at refs/pull/<n>/merge; a dispatch of another branch runs at that branch; neither is
// up.yml at main, so neither gets a deploy role. The preview role takes pull-request.yml's jobs
// of its own environment only. Before the template is applied GitHub sends the default subject,
// which no role accepts.
func TestOnlyUpOnMainAssumesTheDeployRole(t *testing.T) {
	cfg, rs := ciResources(t)
	template := ciNamed(t, rs, "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate", "subject")
	if str(template, "useDefault") != "false" || str(template, "repository") != cfg.Name {
		t.Errorf("subject template: useDefault %s, repository %s; want false, %s", str(template, "useDefault"), str(template, "repository"), cfg.Name)
	}
	var keys []string
	for _, k := range prop(template, "includeClaimKeys").ArrayValue() {
		keys = append(keys, k.StringValue())
	}
	if !slices.Equal(keys, []string{"repo", "context", "job_workflow_ref"}) {
		t.Errorf("subject template claims %v: the trusts are written for repo, context, job_workflow_ref", keys)
	}
	provider := ciNamed(t, rs, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "github")
	if str(provider, "url") != "https://token.actions.githubusercontent.com" || str(provider, "clientIdLists", 0) != "sts.amazonaws.com" {
		t.Errorf("GitHub's provider: url %s, client ids %v", str(provider, "url"), prop(provider, "clientIdLists"))
	}
	providerARN := provider.Outputs["arn"].StringValue()
	repo := cfg.Repository()
	job := func(env, workflow, ref string) string {
		return fmt.Sprintf("repo:%s:environment:%s:job_workflow_ref:%s/.github/workflows/%s@%s", repo, env, repo, workflow, ref)
	}
	for _, stack := range stacks {
		other := otherStack(stack)
		for _, tc := range []struct {
			what, sub, aud string
			deploy, review bool
		}{
			{"the deploy job on main", job(stack, "up.yml", "refs/heads/main"), "sts.amazonaws.com", true, false},
			{"the deploy job for another audience", job(stack, "up.yml", "refs/heads/main"), "https://github.com/example-org", false, false},
			{"the other stack's deploy job", job(other, "up.yml", "refs/heads/main"), "sts.amazonaws.com", false, false},
			{"up.yml called from a pull request", job(stack, "up.yml", "refs/pull/7/merge"), "sts.amazonaws.com", false, false},
			{"up.yml dispatched on another branch", job(stack, "up.yml", "refs/heads/feature"), "sts.amazonaws.com", false, false},
			{"another workflow on main", job(stack, "release.yml", "refs/heads/main"), "sts.amazonaws.com", false, false},
			{"the pull request's preview", job(stack, "pull-request.yml", "refs/pull/7/merge"), "sts.amazonaws.com", false, true},
			{"the other stack's preview", job(other, "pull-request.yml", "refs/pull/7/merge"), "sts.amazonaws.com", false, false},
			{"pull-request.yml run on a branch", job(stack, "pull-request.yml", "refs/heads/feature"), "sts.amazonaws.com", false, false},
			{"another repository's deploy job", strings.ReplaceAll(job(stack, "up.yml", "refs/heads/main"), repo, "someone/fork"), "sts.amazonaws.com", false, false},
			{"the default subject (template not applied)", "repo:" + repo + ":environment:" + stack, "sts.amazonaws.com", false, false},
		} {
			claims := map[string]string{"token.actions.githubusercontent.com:sub": tc.sub, "token.actions.githubusercontent.com:aud": tc.aud}
			for kind, want := range map[string]bool{"deploy": tc.deploy, "preview": tc.review} {
				role := ciNamed(t, rs, "aws:iam/role:Role", stack+"-"+kind)
				var trust policyDoc
				if err := json.Unmarshal([]byte(str(role, "assumeRolePolicy")), &trust); err != nil {
					t.Fatalf("%s-%s trust: %v", stack, kind, err)
				}
				if got := trusts(t, trust, providerARN, claims); got != want {
					t.Errorf("%s's %s role trusts %s (%s): %v, want %v", stack, kind, tc.what, tc.sub, got, want)
				}
			}
		}
	}
}

// ciRights is what each CI role may do, of its own stack; every other probe, and every probe of
// the other stack but the account-wide ones, is refused.
var ciRights = map[string][]string{
	"deploy": {"read its state", "write its state", "take its lock", "decrypt its secrets", "describe instances",
		"launch an instance", "read a bucket's policy", "change a bucket's policy", "write the issuer's key set", "read a parameter's value",
		"change a node role", "pass a node role to EC2"},
	"preview": {"read its state", "decrypt its secrets", "describe instances", "read a bucket's policy"},
}

// ciAccountWide are the probes the deploy role cannot be scoped for (EC2 takes no name a
// condition could pin at launch): separate accounts are the boundary between stacks there.
var ciAccountWide = []string{"describe instances", "launch an instance"}

// ciProbes are requests against owner's stack: its state, its key, and the resources the infra
// program declares for it (buckets, parameters, log group, roles).
func ciProbes(t *testing.T, cfg *citrust.Config, rs []*mocks.Resource, owner *offline.Result) map[string]iamRequest {
	t.Helper()
	c := owner.Config
	state := "arn:aws:s3:::" + cfg.StateBucket + "/.pulumi/"
	key := ciNamed(t, rs, "aws:kms/key:Key", c.Stack+"-secrets").Outputs["arn"].StringValue()
	backups, uploads := "arn:aws:s3:::"+c.Backups.BucketName, "arn:aws:s3:::"+c.Uploads.BucketName
	issuer := "arn:aws:s3:::" + strings.TrimSuffix(strings.TrimPrefix(c.ServiceAccountIssuer(), "https://"), ".s3."+c.Region+".amazonaws.com")
	nodeRole := ""
	for _, r := range owner.OfType("aws:iam/role:Role") {
		if strings.HasSuffix(r.Name, "-master") {
			nodeRole = "arn:aws:iam::123456789012:role/" + r.Outputs["name"].StringValue()
		}
	}
	if !strings.HasPrefix(nodeRole, "arn:aws:iam::123456789012:role/"+c.ClusterID()+"-") {
		t.Fatalf("%s's master role is %q, want a name with the cluster id's prefix", c.Stack, nodeRole)
	}
	return map[string]iamRequest{
		"read its state":               {action: "s3:GetObject", arn: state + "stacks/waste-coach-infra/" + c.Stack + ".json"},
		"write its state":              {action: "s3:PutObject", arn: state + "stacks/waste-coach-infra/" + c.Stack + ".json"},
		"take its lock":                {action: "s3:PutObject", arn: state + "locks/organization/waste-coach-infra/" + c.Stack + "/0b5e.json"},
		"decrypt its secrets":          {action: "kms:Decrypt", arn: key},
		"describe instances":           {action: "ec2:DescribeInstances", arn: "*"},
		"launch an instance":           {action: "ec2:RunInstances", arn: "*"},
		"read a backup":                {action: "s3:GetObject", arn: backups + "/etcd/0123/2026/12/07/etcd-20261207T000000Z.db"},
		"read an upload":               {action: "s3:GetObject", arn: uploads + "/u/1/photo.jpg"},
		"read a bucket's policy":       {action: "s3:GetBucketPolicy", arn: backups},
		"change a bucket's policy":     {action: "s3:PutBucketPolicy", arn: backups},
		"write the issuer's key set":   {action: "s3:PutObject", arn: issuer + "/openid/v1/jwks"},
		"read a parameter's value":     {action: "ssm:GetParameter", arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter/%s/node-prepare/master", c.Region, c.ClusterID())},
		"read log events":              {action: "logs:GetLogEvents", arn: fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s:log-stream:audit.master", c.Region, c.Logs.GroupName)},
		"change a node role":           {action: "iam:PutRolePolicy", arn: nodeRole},
		"pass a node role to EC2":      {action: "iam:PassRole", arn: nodeRole, context: map[string]string{"iam:PassedToService": "ec2.amazonaws.com"}},
		"change its own trust":         {action: "iam:UpdateAssumeRolePolicy", arn: "arn:aws:iam::123456789012:role/waste-coach-ci-" + c.Stack + "-deploy"},
		"encrypt with its secrets key": {action: "kms:Encrypt", arn: key},
	}
}

// TestEachCIRoleHoldsExactlyItsRights evaluates every CI role's policy against the probes of both
// stacks: the preview role reads its own state and key and descriptions, never object data (no
// backup, upload, parameter value or log event); the deploy role manages its own stack's names
// and nothing of the other stack but what EC2 cannot scope; neither may change CI's own roles.
func TestEachCIRoleHoldsExactlyItsRights(t *testing.T) {
	cfg, rs := ciResources(t)
	for _, stack := range stacks {
		for _, kind := range slices.Sorted(maps.Keys(ciRights)) {
			doc := parsePolicy(t, ciNamed(t, rs, "aws:iam/rolePolicy:RolePolicy", stack+"-"+kind))
			for _, owner := range stacks {
				probes := ciProbes(t, cfg, rs, run(t, owner))
				for _, name := range slices.Sorted(maps.Keys(probes)) {
					want := slices.Contains(ciRights[kind], name) && (owner == stack || slices.Contains(ciAccountWide, name))
					if got := allows(t, doc, probes[name]); got != want {
						t.Errorf("%s's %s role may %s of %s (%s on %s): %v, want %v", stack, kind, name, owner, probes[name].action, probes[name].arn, got, want)
					}
				}
			}
			if kind == "preview" {
				for _, s := range doc.Statement {
					for _, a := range s.Action {
						verb := a[strings.Index(a, ":")+1:]
						if s.Effect == "Allow" && !strings.HasPrefix(verb, "Describe") && !strings.HasPrefix(verb, "Get") && !strings.HasPrefix(verb, "List") && a != "kms:Decrypt" {
							t.Errorf("%s's preview role may %s: a preview only reads", stack, a)
						}
					}
				}
			}
		}
	}
}

// TestCIRolesAndKeysAreKeptPerStack: each stack's secrets key is rotated, protected and retained
// (losing it loses the stack's secrets), the deploy role's session outlasts a deploy (up.yml
// asks for two hours), and the workflows find the role ARNs in their environment's variables.
func TestCIRolesAndKeysAreKeptPerStack(t *testing.T) {
	cfg, rs := ciResources(t)
	for _, stack := range stacks {
		key := ciNamed(t, rs, "aws:kms/key:Key", stack+"-secrets")
		if str(key, "enableKeyRotation") != "true" || !key.Protect || !key.RetainOnDelete {
			t.Errorf("%s's secrets key: rotation %s, protect %v, retain %v; want all", stack, str(key, "enableKeyRotation"), key.Protect, key.RetainOnDelete)
		}
		if alias := ciNamed(t, rs, "aws:kms/alias:Alias", stack+"-secrets"); str(alias, "name") != "alias/"+stack+"-sesacthon-pulumi-secrets" {
			t.Errorf("%s's key alias is %s", stack, str(alias, "name"))
		}
		if d := str(ciNamed(t, rs, "aws:iam/role:Role", stack+"-deploy"), "maxSessionDuration"); d != "7200" {
			t.Errorf("%s's deploy role lasts %s s; up.yml asks for 7200", stack, d)
		}
		for _, v := range []string{"AWS_DEPLOY_ROLE_ARN", "AWS_PREVIEW_ROLE_ARN"} {
			found := false
			for _, r := range rs {
				if r.Type == "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable" && str(r, "environment") == stack && str(r, "variableName") == v {
					found = true
				}
			}
			if !found {
				t.Errorf("environment %s has no variable %s", stack, v)
			}
		}
	}
	state := ciNamed(t, rs, "aws:s3/bucketV2:BucketV2", "state")
	if str(state, "bucket") != cfg.StateBucket || !state.Protect || !state.RetainOnDelete {
		t.Errorf("state bucket %s: protect %v retain %v", str(state, "bucket"), state.Protect, state.RetainOnDelete)
	}
	if v := str(ciNamed(t, rs, "aws:s3/bucketVersioningV2:BucketVersioningV2", "state"), "versioningConfiguration", "status"); v != "Enabled" {
		t.Errorf("state bucket versioning %s, want Enabled (a bad write is undone from the previous version)", v)
	}
}
