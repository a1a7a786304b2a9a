package tests

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
)

// awsRights is who may do what in AWS, the table of docs/operations.md ("Who holds which AWS
// rights"): for each node role and each pod role, the probes of its own stack it passes. Every
// other probe, and every probe on the other stack but the account-wide Describe calls, must be
// refused.
var awsRights = map[string][]string{
	"node master":   {"describe instances", "read master's preparation", "read etcd snapshots", "mark the cluster as run"},
	"node worker-1": {"describe instances", "read worker-1's preparation"},
	"node worker-2": {"describe instances", "read worker-2's preparation"},
	"node storage":  {"describe instances", "read storage's preparation"},

	"pod " + infra.PodRoleEBSCSI:         {"describe instances", "resize a volume", "attach a volume"},
	"pod " + infra.PodRoleLoadBalancer:   {"register targets"},
	"pod " + infra.PodRoleCCM:            {"describe instances"},
	"pod " + infra.PodRoleEtcdBackup:     {"write an etcd snapshot", "read etcd snapshots"},
	"pod " + infra.PodRolePostgresWAL:    {"write a WAL segment", "read a WAL segment"},
	"pod " + infra.PodRolePostgresBackup: {"write a base backup", "write a dump", "read a WAL segment", "read a base backup"},
	"pod " + infra.PodRoleLogs:           {"ship log events"},
	"pod " + infra.PodRoleUploads:        {"put an upload", "read an upload"},
}

// accountWide are the probes IAM cannot scope to a stack (Describe calls take no resource).
var accountWide = []string{"describe instances"}

// awsProbes are the requests the table is about, against owner's resources.
func awsProbes(t *testing.T, owner *offline.Result) map[string]iamRequest {
	t.Helper()
	cfg := owner.Config
	backups, uploads := "arn:aws:s3:::"+cfg.Backups.BucketName, "arn:aws:s3:::"+cfg.Uploads.BucketName
	volume := fmt.Sprintf("arn:aws:ec2:%s:123456789012:volume/vol-0%s", cfg.Region, cfg.Stack)
	tg := owner.OfType(typeTG)[0]
	group := fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s", cfg.Region, cfg.Logs.GroupName)
	probes := map[string]iamRequest{
		"describe instances":      {action: "ec2:DescribeInstances", arn: "*"},
		"read any parameter":      {action: "ssm:GetParameter", arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter/other/secret", cfg.Region)},
		"resize a volume":         {action: "ec2:ModifyVolume", arn: volume, resourceTags: driverVolumeTags(cfg)},
		"attach a volume":         {action: "ec2:AttachVolume", arn: volume, resourceTags: driverVolumeTags(cfg)},
		"register targets":        {action: "elasticloadbalancing:RegisterTargets", arn: tg.Outputs["arn"].StringValue(), resourceTags: tagsOf(tg)},
		"write an etcd snapshot":  {action: "s3:PutObject", arn: backups + "/etcd/0123456789abcdef/2026/12/07/etcd-20261207T000000Z.db"},
		"read etcd snapshots":     {action: "s3:GetObject", arn: backups + "/etcd/0123456789abcdef/2026/12/07/etcd-20261207T000000Z.db"},
		"mark the cluster as run": {action: "s3:PutObject", arn: backups + "/" + config.ClusterMark("etcd/0123456789abcdef")},
		"write a WAL segment":     {action: "s3:PutObject", arn: backups + "/postgres/wal/000000010000000000000001.gz"},
		"read a WAL segment":      {action: "s3:GetObject", arn: backups + "/postgres/wal/000000010000000000000001.gz"},
		"write a base backup":     {action: "s3:PutObject", arn: backups + "/postgres/base/20261207T000000Z/base.tar.gz.000"},
		"read a base backup":      {action: "s3:GetObject", arn: backups + "/postgres/base/20261207T000000Z/base.tar.gz.000"},
		"write a dump":            {action: "s3:PutObject", arn: backups + "/postgres/dump/20261207T000000Z/wastecoach.dump"},
		"delete a backup":         {action: "s3:DeleteObject", arn: backups + "/postgres/base/20261207T000000Z/base.tar.gz.000"},
		"ship log events":         {action: "logs:PutLogEvents", arn: group + ":log-stream:node-1"},
		"put an upload":           {action: "s3:PutObject", arn: uploads + "/u/1.jpg"},
		"read an upload":          {action: "s3:GetObject", arn: uploads + "/u/1.jpg"},
	}
	for _, role := range config.Roles {
		probes["read "+string(role)+"'s preparation"] = iamRequest{action: "ssm:GetParameter",
			arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter%s", cfg.Region, infra.PreparationParameterName(cfg, role))}
	}
	return probes
}

// TestEachRoleHoldsExactlyItsAWSRights evaluates every node role's and pod role's declared
// policies (every Allow statement and condition, ARNs with case) against the probes of both
// stacks and compares the answers with awsRights: each role may do what the table says on its own
// stack, nothing else there, and nothing on the other stack but the account-wide Describe calls.
func TestEachRoleHoldsExactlyItsAWSRights(t *testing.T) {
	results := map[string]*offline.Result{}
	for _, s := range stacks {
		results[s] = run(t, s)
	}
	for _, stack := range stacks {
		r := results[stack]
		docs := map[string]policyDoc{}
		for _, role := range config.Roles {
			docs["node "+string(role)] = rolePolicies(t, r, role)
		}
		for _, pr := range infra.PodRoles {
			docs["pod "+pr.Key] = podRolePolicies(t, r, pr.Key)
		}
		if got, want := slices.Sorted(maps.Keys(docs)), slices.Sorted(maps.Keys(awsRights)); !slices.Equal(got, want) {
			t.Fatalf("%s declares the roles %v, the table names %v", stack, got, want)
		}
		for _, owner := range stacks {
			probes := awsProbes(t, results[owner])
			for principal, doc := range docs {
				for _, name := range slices.Sorted(maps.Keys(probes)) {
					want := slices.Contains(awsRights[principal], name) && (owner == stack || slices.Contains(accountWide, name))
					if got := allows(t, doc, probes[name]); got != want {
						t.Errorf("%s's %s role may %s of %s (%s on %s): %v, want %v", stack, principal, name, owner, probes[name].action, probes[name].arn, got, want)
					}
				}
			}
		}
	}
}

// TestOnlyItsServiceAccountAssumesAPodRole evaluates each pod role's trust policy as STS does
// for AssumeRoleWithWebIdentity: the token must come through this stack's OIDC provider, for the
// audience sts.amazonaws.com, from the role's own ServiceAccount. Another ServiceAccount (another
// role's, or the namespace's default), another audience (a token for the API server), or the
// other stack's issuer is refused.
func TestOnlyItsServiceAccountAssumesAPodRole(t *testing.T) {
	results := map[string]*offline.Result{}
	for _, s := range stacks {
		results[s] = run(t, s)
	}
	for _, stack := range stacks {
		r := results[stack]
		for _, pr := range infra.PodRoles {
			role := must(t, r, "aws:iam/role:Role", "sesacthon-pod-identity-"+pr.Key)
			var trust policyDoc
			if err := json.Unmarshal([]byte(str(role, "assumeRolePolicy")), &trust); err != nil {
				t.Fatalf("%s trust: %v", pr.Key, err)
			}
			for _, tc := range []struct {
				what             string
				issuerStack, sub string
				aud              string
				want             bool
			}{
				{"its ServiceAccount", stack, pr.Subject(), infra.STSAudience, true},
				{"its ServiceAccount, with an API server token", stack, pr.Subject(), "https://kubernetes.default.svc.cluster.local", false},
				{"the namespace's default ServiceAccount", stack, "system:serviceaccount:" + pr.Namespace + ":default", infra.STSAudience, false},
				{"another role's ServiceAccount", stack, otherSubject(pr), infra.STSAudience, false},
				{"its ServiceAccount in the other stack", otherStack(stack), pr.Subject(), infra.STSAudience, false},
			} {
				provider := must(t, results[tc.issuerStack], "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "sesacthon-pod-identity")
				host := strings.TrimPrefix(results[tc.issuerStack].Config.ServiceAccountIssuer(), "https://")
				// The mocks give both stacks' providers one ARN: the other stack's is told apart
				// by its issuer's host, which is in its ARN on AWS.
				providerARN := provider.Outputs["arn"].StringValue()
				if tc.issuerStack != stack {
					providerARN = "arn:aws:iam::123456789012:oidc-provider/" + host
				}
				got := trusts(t, trust, providerARN, map[string]string{host + ":sub": tc.sub, host + ":aud": tc.aud})
				if got != tc.want {
					t.Errorf("%s: role %s trusts %s (%s, aud %s, issuer %s): %v, want %v", stack, pr.Key, tc.what, tc.sub, tc.aud, host, got, tc.want)
				}
			}
		}
	}
}

func otherStack(s string) string { return map[string]string{"prod": "dev", "dev": "prod"}[s] }

// otherSubject is another pod role's subject.
func otherSubject(pr infra.PodRole) string {
	for _, o := range infra.PodRoles {
		if o.Key != pr.Key {
			return o.Subject()
		}
	}
	return ""
}

// trusts decides AssumeRoleWithWebIdentity against a trust policy: an Allow for the action whose
// Federated principal is the provider and whose every condition holds (StringEquals, StringLike).
func trusts(t *testing.T, doc policyDoc, providerARN string, claims map[string]string) bool {
	t.Helper()
	allowed := false
	for _, s := range doc.Statement {
		principal, _ := s.Principal.(map[string]any)
		if principal["Federated"] != providerARN || !slices.Contains(s.Action, "sts:AssumeRoleWithWebIdentity") {
			continue
		}
		match := true
		for op, keys := range s.Condition {
			var equal func(pattern, got string) bool
			switch op {
			case "StringEquals":
				equal = func(p, got string) bool { return p == got }
			case "StringLike": // * and ?, with case
				equal = arnMatch
			default:
				t.Fatalf("trust condition %s: the test evaluates StringEquals and StringLike only", op)
			}
			for key, want := range keys {
				got, ok := claims[key]
				if !ok || !slices.ContainsFunc(resources(want), func(p string) bool { return equal(p, got) }) {
					match = false
				}
			}
		}
		if s.Effect == "Deny" && match {
			return false
		}
		allowed = allowed || (s.Effect == "Allow" && match)
	}
	return allowed
}

// TestNoProgramRoleMintsServiceAccountTokens: whoever may create a ServiceAccount's token may ask
// it for the STS audience and take that account's AWS role. No Role or ClusterRole the program
// declares grants it (the CCM's upstream example does, for per-controller credentials this CCM
// does not use). The charts' roles are issue 27's RBAC review.
func TestNoProgramRoleMintsServiceAccountTokens(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, typ := range []string{"kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubernetes:rbac.authorization.k8s.io/v1:Role"} {
			for _, role := range r.OfType(typ) {
				for _, rule := range asList(at(manifest.PlainMap(role.Inputs), "rules")) {
					resources, verbs := fmt.Sprint(at(rule, "resources")), fmt.Sprint(at(rule, "verbs"))
					groups := fmt.Sprint(at(rule, "apiGroups"))
					core := strings.Contains(groups, "[ ") || groups == "[]" || strings.Contains(groups, "*")
					if core && (strings.Contains(resources, "serviceaccounts/token") || strings.Contains(resources, "*")) &&
						(strings.Contains(verbs, "create") || strings.Contains(verbs, "*")) {
						t.Errorf("%s %s may create service-account tokens (%v %v): it could take any pod role", typ, role.Name, resources, verbs)
					}
				}
			}
		}
	})
}
