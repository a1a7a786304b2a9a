package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
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

// masterPolicies are all the inline policies of the master's role as one document: IAM allows
// what any of them allows. (The role also has the AWS-managed AmazonSSMManagedInstanceCore,
// which has no EC2 volume or instance action.)
func masterPolicies(t *testing.T, r *offline.Result) policyDoc {
	t.Helper()
	var all policyDoc
	for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
		if strings.HasPrefix(p.Name, "sesacthon-iam-master-") {
			all.Statement = append(all.Statement, parsePolicy(t, p).Statement...)
		}
	}
	if len(all.Statement) == 0 {
		t.Fatal("the master's role has no inline policy")
	}
	return all
}

// TestEBSDriverActsOnlyOnItsOwnStack: the master's EBS CSI controller may create, resize, delete,
// attach and detach its own stack's volumes, attach only to its own stack's nodes, and do none of
// this to the other stack in the same account; it may take and delete no snapshot at all (DLM's
// snapshots copy the volumes' tags, and a snapshot of a master's root volume would hold etcd and
// the CA keys). Every statement of every inline policy of the master's role counts, Deny
// included.
func TestEBSDriverActsOnlyOnItsOwnStack(t *testing.T) {
	results := map[string]*offline.Result{}
	for _, s := range stacks {
		results[s] = run(t, s)
	}
	for _, stack := range stacks {
		r := results[stack]
		doc := masterPolicies(t, r)
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
			}
		}
	}
}
