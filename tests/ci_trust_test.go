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
	if !slices.Equal(keys, []string{"repo", "context", "ref", "job_workflow_ref"}) {
		t.Errorf("subject template claims %v: the trusts are written for repo, context, ref, job_workflow_ref", keys)
	}
	provider := ciNamed(t, rs, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "github")
	if str(provider, "url") != "https://token.actions.githubusercontent.com" || str(provider, "clientIdLists", 0) != "sts.amazonaws.com" {
		t.Errorf("GitHub's provider: url %s, client ids %v", str(provider, "url"), prop(provider, "clientIdLists"))
	}
	providerARN := provider.Outputs["arn"].StringValue()
	repo := cfg.Repository()
	// job is the subject of a job in environment env of a run started for ref, running workflow
	// as it is at workflowRef (the run's own ref, or the ref a caller named in uses:).
	job := func(env, ref, workflow, workflowRef string) string {
		return fmt.Sprintf("repo:%s:environment:%s:ref:%s:job_workflow_ref:%s/.github/workflows/%s@%s", repo, env, ref, repo, workflow, workflowRef)
	}
	main, pr, branch := "refs/heads/main", "refs/pull/7/merge", "refs/heads/feature"
	for _, stack := range stacks {
		other := otherStack(stack)
		for _, tc := range []struct {
			what, sub, aud string
			deploy, review bool
		}{
			{"the deploy job on main", job(stack, main, "up.yml", main), "sts.amazonaws.com", true, false},
			{"the deploy job for another audience", job(stack, main, "up.yml", main), "https://github.com/example-org", false, false},
			{"the other stack's deploy job", job(other, main, "up.yml", main), "sts.amazonaws.com", false, false},
			{"up.yml called from a pull request", job(stack, pr, "up.yml", pr), "sts.amazonaws.com", false, false},
			{"a pull request calling up.yml as it is on main", job(stack, pr, "up.yml", main), "sts.amazonaws.com", false, false},
			{"another branch calling up.yml as it is on main", job(stack, branch, "up.yml", main), "sts.amazonaws.com", false, false},
			{"up.yml dispatched on another branch", job(stack, branch, "up.yml", branch), "sts.amazonaws.com", false, false},
			{"another workflow on main", job(stack, main, "release.yml", main), "sts.amazonaws.com", false, false},
			{"the pull request's preview", job(stack, pr, "pull-request.yml", pr), "sts.amazonaws.com", false, true},
			{"the other stack's preview", job(other, pr, "pull-request.yml", pr), "sts.amazonaws.com", false, false},
			{"pull-request.yml run on a branch", job(stack, branch, "pull-request.yml", branch), "sts.amazonaws.com", false, false},
			{"another repository's deploy job", strings.ReplaceAll(job(stack, main, "up.yml", main), repo, "someone/fork"), "sts.amazonaws.com", false, false},
			{"the subject without the run's ref (older template)", fmt.Sprintf("repo:%s:environment:%s:job_workflow_ref:%s/.github/workflows/up.yml@%s", repo, stack, repo, main), "sts.amazonaws.com", false, false},
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
	"deploy": {"read its state", "write its state", "take its lock", "write its history", "read its history", "decrypt its secrets", "describe instances",
		"launch an instance", "read a bucket's policy", "change a bucket's policy", "change a bucket's lifecycle", "write the issuer's key set",
		"read a parameter's value", "read parameters' values", "set a log retention", "create a schedule", "create a role under the boundary",
		"change a node role's policy under the boundary", "pass a node role to EC2", "create the load balancers' service role",
		"write the log reader's policy under the boundary", "create the log reader's access key"},
	"preview": {"read its state", "decrypt its secrets", "describe instances", "read a bucket's policy"},
}

// ciNonProduction are the rights a non-production stack's deploy role has besides: emptying its
// buckets when the stack is destroyed (production keeps them).
var ciNonProduction = []string{"empty a bucket"}

// ciAccountWide are the probes the deploy role cannot be scoped for: EC2 takes no name a
// condition could pin at launch, and a service-linked role is one per account. Separate accounts
// are the boundary between stacks there.
var ciAccountWide = []string{"describe instances", "launch an instance", "create the load balancers' service role"}

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
	boundary := "arn:aws:iam::123456789012:policy/" + citrust.BoundaryName(citrust.Stack{Name: c.Stack})
	return map[string]iamRequest{
		"read its state":                                   {action: "s3:GetObject", arn: state + "stacks/waste-coach-infra/" + c.Stack + ".json"},
		"write its state":                                  {action: "s3:PutObject", arn: state + "stacks/waste-coach-infra/" + c.Stack + ".json"},
		"take its lock":                                    {action: "s3:PutObject", arn: state + "locks/organization/waste-coach-infra/" + c.Stack + "/0b5e.json"},
		"decrypt its secrets":                              {action: "kms:Decrypt", arn: key},
		"describe instances":                               {action: "ec2:DescribeInstances", arn: "*"},
		"launch an instance":                               {action: "ec2:RunInstances", arn: "*"},
		"read a backup":                                    {action: "s3:GetObject", arn: backups + "/etcd/0123/2026/12/07/etcd-20261207T000000Z.db"},
		"read an upload":                                   {action: "s3:GetObject", arn: uploads + "/u/1/photo.jpg"},
		"read a bucket's policy":                           {action: "s3:GetBucketPolicy", arn: backups},
		"change a bucket's policy":                         {action: "s3:PutBucketPolicy", arn: backups},
		"write the issuer's key set":                       {action: "s3:PutObject", arn: issuer + "/openid/v1/jwks"},
		"read a parameter's value":                         {action: "ssm:GetParameter", arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter/%s/node-prepare/master", c.Region, c.ClusterID())},
		"read log events":                                  {action: "logs:GetLogEvents", arn: fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s:log-stream:audit.master", c.Region, c.Logs.GroupName)},
		"change a node role's policy under the boundary":   {action: "iam:PutRolePolicy", arn: nodeRole, context: map[string]string{"iam:PermissionsBoundary": boundary}},
		"change a node role's policy without a boundary":   {action: "iam:PutRolePolicy", arn: nodeRole},
		"create a role under the boundary":                 {action: "iam:CreateRole", arn: nodeRole, context: map[string]string{"iam:PermissionsBoundary": boundary}},
		"create a role without a boundary":                 {action: "iam:CreateRole", arn: nodeRole},
		"create a role under another stack's boundary":     {action: "iam:CreateRole", arn: nodeRole, context: map[string]string{"iam:PermissionsBoundary": strings.Replace(boundary, "-"+c.Stack+"-", "-other-", 1)}},
		"attach a managed policy":                          {action: "iam:AttachRolePolicy", arn: nodeRole},
		"remove a role's boundary":                         {action: "iam:DeleteRolePermissionsBoundary", arn: nodeRole},
		"create an administrator user":                     {action: "iam:CreateUser", arn: "arn:aws:iam::123456789012:user/" + c.ClusterID() + "-admin"},
		"pass a node role to EC2":                          {action: "iam:PassRole", arn: nodeRole, context: map[string]string{"iam:PassedToService": "ec2.amazonaws.com"}},
		"pass a node role to Lambda":                       {action: "iam:PassRole", arn: nodeRole, context: map[string]string{"iam:PassedToService": "lambda.amazonaws.com"}},
		"create the load balancers' service role":          {action: "iam:CreateServiceLinkedRole", arn: "arn:aws:iam::123456789012:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing", context: map[string]string{"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
		"change its own trust":                             {action: "iam:UpdateAssumeRolePolicy", arn: "arn:aws:iam::123456789012:role/waste-coach-ci-" + c.Stack + "-deploy"},
		"write its history":                                {action: "s3:PutObject", arn: state + "history/waste-coach-infra/" + c.Stack + "/" + c.Stack + "-1.history.json"},
		"read its history":                                 {action: "s3:GetObject", arn: state + "history/waste-coach-infra/" + c.Stack + "/" + c.Stack + "-1.checkpoint.json"},
		"read a backup's older version":                    {action: "s3:GetObjectVersion", arn: backups + "/etcd/0123/2026/12/07/etcd-20261207T000000Z.db"},
		"read parameters' values":                          {action: "ssm:GetParameters", arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter/%s/node-prepare/master", c.Region, c.ClusterID())},
		"search log events":                                {action: "logs:FilterLogEvents", arn: fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s", c.Region, c.Logs.GroupName)},
		"set a log retention":                              {action: "logs:PutRetentionPolicy", arn: fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s", c.Region, c.Logs.GroupName)},
		"change a bucket's lifecycle":                      {action: "s3:PutLifecycleConfiguration", arn: backups},
		"replicate a bucket":                               {action: "s3:PutReplicationConfiguration", arn: backups},
		"create a schedule":                                {action: "scheduler:CreateSchedule", arn: fmt.Sprintf("arn:aws:scheduler:%s:123456789012:schedule/%s-office-hours/%s-master-stop", c.Region, c.ClusterID(), c.ClusterID())},
		"empty a bucket":                                   {action: "s3:DeleteObjectVersion", arn: uploads + "/u/1/photo.jpg"},
		"set a role's boundary to another policy":          {action: "iam:PutRolePermissionsBoundary", arn: nodeRole, context: map[string]string{"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}},
		"write the log reader's policy without a boundary": {action: "iam:PutUserPolicy", arn: "arn:aws:iam::123456789012:user/" + c.ClusterID() + "-grafana-logs"},
		"write the log reader's policy under the boundary": {action: "iam:PutUserPolicy", arn: "arn:aws:iam::123456789012:user/" + c.ClusterID() + "-grafana-logs", context: map[string]string{"iam:PermissionsBoundary": boundary}},
		"create the log reader's access key":               {action: "iam:CreateAccessKey", arn: "arn:aws:iam::123456789012:user/" + c.ClusterID() + "-grafana-logs"},
		"create another user's access key":                 {action: "iam:CreateAccessKey", arn: "arn:aws:iam::123456789012:user/" + c.ClusterID() + "-x"},
		"assume a role of the stack":                       {action: "sts:AssumeRole", arn: nodeRole},
		"encrypt with its secrets key":                     {action: "kms:Encrypt", arn: key},
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
					mine := slices.Contains(ciRights[kind], name) || (kind == "deploy" && stack != "prod" && slices.Contains(ciNonProduction, name))
					want := mine && (owner == stack || slices.Contains(ciAccountWide, name))
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
						// A read of data, by whatever pattern, only on the stack's checkpoint,
						// the backend's metadata, the issuer's public documents or its own key.
						for _, data := range dataReads {
							if s.Effect == "Allow" && iamMatch(a, data) {
								for _, res := range resources(s.Resource) {
									if !strings.Contains(res, "/.pulumi/stacks/waste-coach-infra/"+stack+".") && !strings.HasSuffix(res, "/.pulumi/meta.yaml") &&
										!strings.HasSuffix(res, "/.well-known/openid-configuration") && !strings.HasSuffix(res, "/openid/v1/jwks") && !strings.Contains(res, ":key/") {
										t.Errorf("%s's preview role may %s (as %s) on %s", stack, data, a, res)
									}
								}
							}
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
	if d := str(ciNamed(t, rs, "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "state"), "rules", 0, "noncurrentVersionExpiration", "noncurrentDays"); d != "90" {
		t.Errorf("state bucket keeps old versions %q days, want 90 (every step of an update writes one)", d)
	}
	if v := str(ciNamed(t, rs, "aws:s3/bucketVersioningV2:BucketVersioningV2", "state"), "versioningConfiguration", "status"); v != "Enabled" {
		t.Errorf("state bucket versioning %s, want Enabled (a bad write is undone from the previous version)", v)
	}
}

// dataReads are the calls that return data rather than a description: objects, parameter
// values, log events, secrets, decryption.
var dataReads = []string{
	"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:GetObjectTorrent",
	"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory",
	"logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery", "logs:GetLogRecord",
	"secretsmanager:GetSecretValue", "kms:Decrypt",
}

// TestEveryInfraRoleFitsItsBoundary: CI's deploy role creates the infra stack's roles and users
// only under the stack's permissions boundary (bootstrap/), so a role's effective rights are its
// policies AND the boundary. Every Allow of every inline policy the infra program declares, on
// every resource it names, must be inside the boundary, or that role would lose the right on
// AWS; and with the key set, every role and user is created under it.
func TestEveryInfraRoleFitsItsBoundary(t *testing.T) {
	boundaryARN := func(stack string) string {
		return "arn:aws:iam::123456789012:policy/" + citrust.BoundaryName(citrust.Stack{Name: stack})
	}
	for _, stack := range stacks {
		sc, err := stackfile.Read("..", stack)
		if err != nil {
			t.Fatal(err)
		}
		sc.Values["waste-coach-infra:permissionsBoundary"] = boundaryARN(stack)
		r, err := offline.RunConfig(stack, sc)
		if err != nil {
			t.Fatal(err)
		}
		var b policyDoc
		if err := json.Unmarshal([]byte(citrust.Boundary(citrust.Account{ID: "123456789012", Region: r.Config.Region},
			citrust.Stack{Name: stack, ClusterID: r.Config.ClusterID()}).JSON()), &b); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, typ := range []string{"aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy"} {
			for _, rp := range r.OfType(typ) {
				for _, st := range parsePolicy(t, rp).Statement {
					if st.Effect != "Allow" {
						continue
					}
					for _, a := range st.Action {
						for _, res := range resources(st.Resource) {
							// A pattern's wildcard stands for a concrete name under it.
							// (an account written as * is the stack's own: IAM acts in one account).
							req := iamRequest{action: a, arn: strings.ReplaceAll(strings.Replace(res, ":*:", ":123456789012:", 1), "*", "x")}
							if res == "*" {
								req.arn = "*"
							}
							checked++
							if !allows(t, b, req) {
								t.Errorf("%s: %s (%s) may %s on %s, which the boundary %s does not allow", stack, rp.Name, typ, a, res, citrust.BoundaryName(citrust.Stack{Name: stack}))
							}
						}
					}
				}
			}
		}
		if checked < 50 {
			t.Errorf("%s: only %d grants checked; the test is not seeing the roles' policies", stack, checked)
		}
		for _, typ := range []string{"aws:iam/role:Role", "aws:iam/user:User"} {
			for _, res := range r.OfType(typ) {
				if got := str(res, "permissionsBoundary"); got != boundaryARN(stack) {
					t.Errorf("%s: %s %s is created under boundary %q, want %s", stack, typ, res.Name, got, boundaryARN(stack))
				}
			}
		}
	}
}

// TestTheBoundaryRefusesWhatNoInfraRoleNeeds: the permissions boundary is the ceiling of every
// role and user the deploy role can make or change, so what it allows is what a compromised
// deploy could give itself through them. It allows no IAM, no role assumption, no bucket policy,
// lifecycle or replication, no instance launch or user-data change, no snapshot sharing, no
// object of another stack's buckets, and KMS only through EC2 (the account's EBS key).
func TestTheBoundaryRefusesWhatNoInfraRoleNeeds(t *testing.T) {
	var b policyDoc
	if err := json.Unmarshal([]byte(citrust.Boundary(citrust.Account{ID: "123456789012", Region: "ap-northeast-2"},
		citrust.Stack{Name: "prod", ClusterID: "prod-sesacthon"}).JSON()), &b); err != nil {
		t.Fatal(err)
	}
	viaEC2 := map[string]string{"kms:ViaService": "ec2.ap-northeast-2.amazonaws.com"}
	for _, tc := range []struct {
		what string
		req  iamRequest
		want bool
	}{
		{"read its backups", iamRequest{action: "s3:GetObject", arn: "arn:aws:s3:::prod-sesacthon-backups/etcd/x.db"}, true},
		{"attach a volume", iamRequest{action: "ec2:AttachVolume", arn: "arn:aws:ec2:ap-northeast-2:123456789012:volume/vol-1"}, true},
		{"use the EBS key through EC2", iamRequest{action: "kms:CreateGrant", arn: "arn:aws:kms:ap-northeast-2:123456789012:key/1", context: viaEC2}, true},
		{"create a user", iamRequest{action: "iam:CreateUser", arn: "arn:aws:iam::123456789012:user/prod-sesacthon-x"}, false},
		{"write a role policy", iamRequest{action: "iam:PutRolePolicy", arn: "arn:aws:iam::123456789012:role/prod-sesacthon-x"}, false},
		{"pass a role", iamRequest{action: "iam:PassRole", arn: "arn:aws:iam::123456789012:role/prod-sesacthon-x"}, false},
		{"assume a role", iamRequest{action: "sts:AssumeRole", arn: "arn:aws:iam::123456789012:role/prod-sesacthon-x"}, false},
		{"decrypt with a key directly", iamRequest{action: "kms:Decrypt", arn: "arn:aws:kms:ap-northeast-2:123456789012:key/1"}, false},
		{"rewrite a bucket policy", iamRequest{action: "s3:PutBucketPolicy", arn: "arn:aws:s3:::prod-sesacthon-backups"}, false},
		{"expire every version", iamRequest{action: "s3:PutLifecycleConfiguration", arn: "arn:aws:s3:::prod-sesacthon-backups"}, false},
		{"replicate a bucket", iamRequest{action: "s3:PutReplicationConfiguration", arn: "arn:aws:s3:::prod-sesacthon-images"}, false},
		{"read the other stack's backups", iamRequest{action: "s3:GetObject", arn: "arn:aws:s3:::dev-sesacthon-backups/etcd/x.db"}, false},
		{"read the CI state", iamRequest{action: "s3:GetObject", arn: "arn:aws:s3:::example-org-waste-coach-state/.pulumi/stacks/waste-coach-infra/prod.json"}, false},
		{"launch an instance", iamRequest{action: "ec2:RunInstances", arn: "*"}, false},
		{"change an instance's user data", iamRequest{action: "ec2:ModifyInstanceAttribute", arn: "*"}, false},
		{"share a snapshot", iamRequest{action: "ec2:ModifySnapshotAttribute", arn: "*"}, false},
		{"read another stack's parameter", iamRequest{action: "ssm:GetParameter", arn: "arn:aws:ssm:ap-northeast-2:123456789012:parameter/dev-sesacthon/node-prepare/master"}, false},
		{"read a secret", iamRequest{action: "secretsmanager:GetSecretValue", arn: "*"}, false},
	} {
		if got := allows(t, b, tc.req); got != tc.want {
			t.Errorf("the boundary lets a role %s (%s on %s): %v, want %v", tc.what, tc.req.action, tc.req.arn, got, tc.want)
		}
	}
	for _, st := range b.Statement {
		for _, a := range st.Action {
			service := a[:strings.Index(a, ":")]
			if !slices.Contains([]string{"ec2", "elasticloadbalancing", "s3", "logs", "ssm", "ssmmessages", "kms"}, service) || (service == "kms" && st.Condition == nil) || strings.HasSuffix(a, ":*") {
				t.Errorf("the boundary allows %s (%v): only the calls of the infra program's roles belong there", a, st.Condition)
			}
		}
	}
}
