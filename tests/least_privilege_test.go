package tests

import (
	"fmt"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
)

// driverVolumeTags are the tags the EBS CSI driver v1.52 puts on a volume it creates for a stack,
// all in CreateVolume's request (pkg/driver/controller.go): its own, the claim's (the chart's
// extraCreateMetadata), the cluster's (k8sTagClusterId), then the storage classes'
// tagSpecification_1.
func driverVolumeTags(cfg *config.Config) map[string]string {
	return map[string]string{
		"CSIVolumeName":                           "pvc-0" + cfg.Stack,
		"ebs.csi.aws.com/cluster":                 "true",
		"kubernetes.io/created-for/pvc/name":      "data-postgres-0",
		"kubernetes.io/created-for/pvc/namespace": "data",
		"kubernetes.io/created-for/pv/name":       "pvc-0" + cfg.Stack,
		infra.ClusterTag(cfg):                     "owned",
		"Name":                                    cfg.ClusterID() + "-dynamic-pvc-0" + cfg.Stack,
		"KubernetesCluster":                       cfg.ClusterID(),
		config.SnapshotTagKey:                     cfg.ClusterID(),
	}
}

// rolePolicies are all the inline policies of a node role as one document: IAM allows what any
// of them allows. The roles have no managed policy (TestNodeRolesHaveNoManagedPolicy), so this
// is everything the role may do.
func rolePolicies(t *testing.T, r *offline.Result, role config.Role) policyDoc {
	t.Helper()
	return roleDocument(t, r, "sesacthon-iam-"+string(role))
}

// podRolePolicies are all the inline policies of a pod role (infra.PodRoles), as one document.
func podRolePolicies(t *testing.T, r *offline.Result, key string) policyDoc {
	t.Helper()
	return roleDocument(t, r, "sesacthon-pod-identity-"+key)
}

// roleDocument gathers every inline policy attached to the role declared as roleResource, by the
// role's AWS name (what IAM evaluates), whatever the policies are called.
func roleDocument(t *testing.T, r *offline.Result, roleResource string) policyDoc {
	t.Helper()
	name := must(t, r, "aws:iam/role:Role", roleResource).Outputs["name"].StringValue()
	var all policyDoc
	for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
		if str(p, "role") == name {
			all.Statement = append(all.Statement, parsePolicy(t, p).Statement...)
		}
	}
	if len(all.Statement) == 0 {
		t.Fatalf("the role %s (%s) has no inline policy", roleResource, name)
	}
	return all
}

// Managed policies are out of the evaluator's sight; AWS's AmazonSSMManagedInstanceCore, which
// the nodes had, reads every SSM parameter of the account.
func TestNodeRolesHaveNoManagedPolicy(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, a := range r.OfType("aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
			t.Errorf("%s attaches %s", a.Name, str(a, "policyArn"))
		}
		for _, role := range r.OfType("aws:iam/role:Role") {
			for _, key := range []string{"managedPolicyArns", "inlinePolicies"} {
				if v := prop(role, key); !v.IsNull() {
					t.Errorf("role %s sets %s (%v): policies the evaluator does not see", role.Name, key, v)
				}
			}
		}
	})
}

// TestNodeRolesReadOnlyTheirOwnPreparation: a node's role reads its own preparation parameter
// (its first boot needs it) and no other parameter of either stack or the account, may open
// Session Manager sessions, and has no ECR read (no node component pulls with it).
func TestNodeRolesReadOnlyTheirOwnPreparation(t *testing.T) {
	results := map[string]*offline.Result{}
	for _, s := range stacks {
		results[s] = run(t, s)
	}
	parameterARN := func(cfg *config.Config, role config.Role) string {
		return fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter%s", cfg.Region, infra.PreparationParameterName(cfg, role))
	}
	for _, stack := range stacks {
		cfg := results[stack].Config
		for _, role := range config.Roles {
			doc := rolePolicies(t, results[stack], role)
			check := func(what string, req iamRequest, want bool) {
				if got := allows(t, doc, req); got != want {
					t.Errorf("%s's %s role may %s (%s on %s): %v, want %v", stack, role, what, req.action, req.arn, got, want)
				}
			}
			check("read its own preparation", iamRequest{action: "ssm:GetParameter", arn: parameterARN(cfg, role)}, true)
			for _, owner := range stacks {
				for _, other := range config.Roles {
					if owner != stack || other != role {
						check("read another node's preparation", iamRequest{action: "ssm:GetParameter", arn: parameterARN(results[owner].Config, other)}, false)
					}
				}
			}
			check("read any other parameter", iamRequest{action: "ssm:GetParameter", arn: fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter/prod/database-password", cfg.Region)}, false)
			check("read parameters in bulk", iamRequest{action: "ssm:GetParameters", arn: parameterARN(cfg, role)}, false)
			check("open a Session Manager channel", iamRequest{action: "ssmmessages:OpenDataChannel", arn: "*"}, true)
			check("register with Systems Manager", iamRequest{action: "ssm:UpdateInstanceInformation", arn: fmt.Sprintf("arn:aws:ec2:%s:123456789012:instance/i-0node", cfg.Region)}, true)
			check("run a command elsewhere", iamRequest{action: "ssm:SendCommand", arn: "*"}, false)
			check("get an ECR login", iamRequest{action: "ecr:GetAuthorizationToken", arn: "*"}, false)
			check("pull from ECR", iamRequest{action: "ecr:BatchGetImage", arn: fmt.Sprintf("arn:aws:ecr:%s:123456789012:repository/waste", cfg.Region)}, false)
		}
	}
}

// TestEBSDriverActsOnlyOnItsOwnStack: the EBS CSI controller's pod role may create, resize,
// delete, attach and detach its own stack's volumes, attach only to its own stack's nodes, and do
// none of this to the other stack in the same account; it may take and delete no snapshot at all
// (DLM's snapshots copy the volumes' tags, and a snapshot of a master's root volume would hold
// etcd and the CA keys). Every statement of every inline policy of that role counts, Deny
// included. No node role may touch a volume at all: the driver's permissions are its pod's, not
// the master's.
func TestEBSDriverActsOnlyOnItsOwnStack(t *testing.T) {
	results := map[string]*offline.Result{}
	for _, s := range stacks {
		results[s] = run(t, s)
	}
	for _, stack := range stacks {
		r := results[stack]
		doc := podRolePolicies(t, r, infra.PodRoleEBSCSI)
		nodeDocs := map[config.Role]policyDoc{}
		for _, role := range config.Roles {
			nodeDocs[role] = rolePolicies(t, r, role)
		}
		for _, owner := range stacks {
			o := results[owner].Config
			own := owner == stack
			volume := fmt.Sprintf("arn:aws:ec2:%s:123456789012:volume/vol-0%s", o.Region, owner)
			snapshot := fmt.Sprintf("arn:aws:ec2:%s::snapshot/snap-0%s", o.Region, owner)
			node := must(t, results[owner], instanceType, "sesacthon-nodes-worker-1")
			nodeARN, nodeTags := node.Outputs["arn"].StringValue(), tagsOf(node)
			gp3 := map[string]string{"ec2:VolumeType": "gp3", "ec2:Encrypted": "true"}
			cases := []struct {
				what string
				req  iamRequest
				want bool
			}{
				{"create a volume with its tags", iamRequest{action: "ec2:CreateVolume", arn: volume, requestTags: driverVolumeTags(o), context: gp3}, own},
				{"create an unencrypted volume", iamRequest{action: "ec2:CreateVolume", arn: volume, requestTags: driverVolumeTags(o),
					context: map[string]string{"ec2:VolumeType": "gp3", "ec2:Encrypted": "false"}}, false},
				{"create an io2 volume", iamRequest{action: "ec2:CreateVolume", arn: volume, requestTags: driverVolumeTags(o),
					context: map[string]string{"ec2:VolumeType": "io2", "ec2:Encrypted": "true"}}, false},
				{"make its IOPS-limit dry run (refused: the driver then uses its built-in limits)", iamRequest{action: "ec2:CreateVolume", arn: volume,
					requestTags: map[string]string{"CSIVolumeName": "IopsLimitDryRun"}, context: map[string]string{"ec2:VolumeType": "gp3", "ec2:Encrypted": "false"}}, false},
				{"tag the volume it creates", iamRequest{action: "ec2:CreateTags", arn: volume, requestTags: driverVolumeTags(o),
					context: map[string]string{"ec2:CreateAction": "CreateVolume"}}, true},
				{"tag an existing volume", iamRequest{action: "ec2:CreateTags", arn: volume, resourceTags: driverVolumeTags(o), requestTags: driverVolumeTags(results[stack].Config)}, false},
				{"resize a volume", iamRequest{action: "ec2:ModifyVolume", arn: volume, resourceTags: driverVolumeTags(o)}, own},
				{"delete a volume", iamRequest{action: "ec2:DeleteVolume", arn: volume, resourceTags: driverVolumeTags(o)}, own},
				{"attach a volume", iamRequest{action: "ec2:AttachVolume", arn: volume, resourceTags: driverVolumeTags(o)}, own},
				{"attach to a node", iamRequest{action: "ec2:AttachVolume", arn: nodeARN, resourceTags: nodeTags}, own},
				{"detach a volume", iamRequest{action: "ec2:DetachVolume", arn: volume, resourceTags: driverVolumeTags(o)}, own},
				{"detach from a node", iamRequest{action: "ec2:DetachVolume", arn: nodeARN, resourceTags: nodeTags}, own},
				{"snapshot a volume", iamRequest{action: "ec2:CreateSnapshot", arn: volume, resourceTags: driverVolumeTags(o)}, false},
				{"create a snapshot", iamRequest{action: "ec2:CreateSnapshot", arn: snapshot, requestTags: driverVolumeTags(o)}, false},
				{"delete a DLM snapshot (tags copied from the volume)", iamRequest{action: "ec2:DeleteSnapshot", arn: snapshot,
					resourceTags: driverVolumeTags(o)}, false},
			}
			for _, c := range cases {
				if got := allows(t, doc, c.req); got != c.want {
					t.Errorf("%s's EBS driver may %s of %s (%s on %s): %v, want %v", stack, c.what, owner, c.req.action, c.req.arn, got, c.want)
				}
				for role, nd := range nodeDocs {
					if allows(t, nd, c.req) {
						t.Errorf("%s's %s node role may %s of %s (%s on %s): only the EBS driver's pod role may", stack, role, c.what, owner, c.req.action, c.req.arn)
					}
				}
			}
		}
	}
}

// TestChartsRenderNoHelmTestHooks: a chart's `helm test` hook is created only when someone runs
// helm test on the release, with whatever rights its chart gave it (the EBS driver's tester may
// create pods in kube-system, bind roles and exec): the program turns them off.
func TestChartsRenderNoHelmTestHooks(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for release, path := range map[string][]any{
			"sesacthon-kube-system-aws-ebs-csi-driver":   {"helmTester", "enabled"},
			"sesacthon-monitoring-kube-prometheus-stack": {"grafana", "testFramework", "enabled"},
		} {
			rel := must(t, r, "kubernetes:helm.sh/v3:Release", release)
			if got := at(manifest.PlainMap(rel.Inputs)["values"], path...); got != false {
				t.Errorf("release %s: values %v = %v, want false", release, path, got)
			}
		}
	})
}
