package infra

import (
	"encoding/json"
	"fmt"
)

// PolicyDocument is an IAM policy document. Policies are written as Go values so that tests
// can check them and a typo is a compile error rather than an AWS API error at deploy time.
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a PolicyDocument.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  any            `json:"Resource,omitempty"`
	Condition map[string]any `json:"Condition,omitempty"`
}

func allow(sid string, resource any, actions ...string) Statement {
	return Statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resource}
}

// JSON renders the document.
func (d PolicyDocument) JSON() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // only plain strings and maps: cannot fail
	}
	return string(b)
}

func policy(statements ...Statement) PolicyDocument {
	return PolicyDocument{Version: "2012-10-17", Statement: statements}
}

// ec2AssumeRole lets EC2 instances take the role through their instance profile.
var ec2AssumeRole = policy(Statement{
	Effect:    "Allow",
	Principal: map[string]any{"Service": "ec2.amazonaws.com"},
	Action:    []string{"sts:AssumeRole"},
})

// CCMControlPlanePolicy is what the cloud-controller-manager, as this program runs it, calls in
// EC2 (cloud-provider-aws v1.35, pkg/providers/v1): DescribeInstances to initialise nodes (provider
// id, addresses, instance type, zone) and to notice deleted or stopped instances;
// DescribeAvailabilityZones for the zone-id label; DescribeInstanceTopology for the topology labels
// of the instance types that have them. Nothing else is called here: the route controller is off
// (--configure-cloud-routes=false, Calico routes pods), there is no Service of type LoadBalancer
// (the ALB comes from the load balancer controller), so none of upstream's security-group, route,
// volume and ELB actions are needed, and the tagging controller, the one caller of CreateTags
// outside load balancers, is disabled by default. The upstream example policy allows deletes,
// detaches and security-group and route changes on every resource of the account; a pod that got
// the master's credentials could use them against the other stack.
func CCMControlPlanePolicy() PolicyDocument {
	return policy(allow("CloudControllerManager", "*",
		"ec2:DescribeInstances",
		"ec2:DescribeAvailabilityZones",
		"ec2:DescribeInstanceTopology",
	))
}

// CCMNodePolicy is what every node describes of EC2 (cloud-provider-aws docs/prerequisites.md).
// It has no ECR read: the nodes run no image credential provider (private images come through
// imagePullSecret, docs/operations.md), so the role's ECR rights would serve only whoever took
// the node's credentials.
func CCMNodePolicy() PolicyDocument {
	return policy(allow("Node", "*", "ec2:DescribeInstances", "ec2:DescribeRegions"))
}

// BootstrapPolicy lets a node read its own preparation parameter (parameterName, in region), which
// its first-boot bootstrap fetches (infra/scripts/node-bootstrap.sh.tmpl), and no other parameter.
// The parameter is a plain String: no KMS key is involved.
func BootstrapPolicy(region, parameterName string) PolicyDocument {
	return policy(allow("OwnPreparation", fmt.Sprintf("arn:aws:ssm:%s:*:parameter%s", region, parameterName), "ssm:GetParameter"))
}

// SessionManagerPolicy is what the SSM agent needs for Session Manager, a shell on a node without
// SSH (AWS Systems Manager docs, "Verify or add instance permissions for Session Manager"): it
// registers the instance and opens the session's channels. AWS's AmazonSSMManagedInstanceCore,
// which the nodes had, also allows ssm:GetParameter(s) on every parameter of the account, Run
// Command's messages and State Manager; none of that is used here.
func SessionManagerPolicy() PolicyDocument {
	return policy(allow("SessionManager", "*",
		"ssm:UpdateInstanceInformation",
		"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
		"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"))
}

// EBSCSIPolicy lets the EBS CSI controller (driver v1.52, as this program runs it) create,
// attach, resize and delete this stack's volumes, and nothing of any other stack. The chart's
// k8sTagClusterId makes the driver put the stack's cluster tag (kubernetes.io/cluster/<stack>-
// <cluster> = owned) on every volume it creates, in CreateVolume's own request, and the AWS tier
// puts the same tag on every node instance (not on their root volumes). So:
//   - CreateVolume only of an encrypted gp3 volume (what the storage classes ask for) with that
//     tag in the request, and CreateTags only as part of it;
//   - ModifyVolume and DeleteVolume only on volumes that carry it; AttachVolume and DetachVolume
//     only for a volume and an instance that both carry it (IAM authorises each of the two
//     resources of the call against its own tags);
//   - no snapshot call: the cluster serves no VolumeSnapshot API, so the chart runs no
//     snapshotter and the driver takes none, and the snapshots DLM takes copy the volumes' tags:
//     a tag condition on DeleteSnapshot would let the driver delete the stack's backups;
//   - of the Describe calls (which take no resource), those it makes: DescribeInstances on
//     attach and detach, DescribeVolumes while it waits, DescribeVolumesModifications on a
//     resize, DescribeAvailabilityZones in its liveness probe.
//
// Refused on purpose: before each CreateVolume the driver sends a dry-run CreateVolume tagged
// only CSIVolumeName=IopsLimitDryRun to learn the IOPS limits (pkg/cloud getVolumeLimits); on a
// refusal it uses its built-in limits, so CloudTrail shows one denied dry run per volume.
//
// Upstream's example policy conditions on ebs.csi.aws.com/cluster = true, a tag the driver puts
// on the volumes of every cluster, and allows snapshots, attachment and resizing of any volume:
// dev's master could then detach and delete prod's data volumes or snapshot prod's master.
func EBSCSIPolicy(region, clusterTag string) PolicyDocument {
	owned := map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + clusterTag: "owned"}}
	// The storage classes' volumes only: encrypted gp3 (workloads/volumes.go).
	requested := map[string]any{
		"StringEquals": map[string]any{"aws:RequestTag/" + clusterTag: "owned", "ec2:VolumeType": "gp3"},
		"Bool":         map[string]any{"ec2:Encrypted": "true"},
	}
	volumes := fmt.Sprintf("arn:aws:ec2:%s:*:volume/*", region)
	instances := fmt.Sprintf("arn:aws:ec2:%s:*:instance/*", region)
	return policy(
		allow("Describe", "*",
			"ec2:DescribeAvailabilityZones", "ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeVolumesModifications"),
		Statement{Sid: "CreateOwnVolumes", Effect: "Allow", Action: []string{"ec2:CreateVolume"},
			Resource: volumes, Condition: requested},
		Statement{Sid: "TagOnCreate", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: volumes,
			Condition: map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": "CreateVolume"}}},
		Statement{Sid: "ResizeAndDeleteOwnVolumes", Effect: "Allow", Action: []string{"ec2:ModifyVolume", "ec2:DeleteVolume"},
			Resource: volumes, Condition: owned},
		Statement{Sid: "AttachOwnVolumesToOwnNodes", Effect: "Allow", Action: []string{"ec2:AttachVolume", "ec2:DetachVolume"},
			Resource: []string{volumes, instances}, Condition: owned},
	)
}

// LoadBalancerControllerPolicy is what the AWS Load Balancer Controller (v2.14) calls when it
// only binds target groups the program created (TargetGroupBinding, instance targets, no
// spec.networking) and creates no load balancer, listener, rule or security group:
//   - elasticloadbalancing:DescribeTargetGroups: its admission webhooks read the target group of
//     a new binding (webhooks/elbv2 getTargetGroupFromAWS: target type, IP type, VPC, protocol);
//   - elasticloadbalancing:DescribeTargetHealth: it lists the registered targets before each
//     change (pkg/targetgroupbinding targets_manager ListTargets);
//   - elasticloadbalancing:RegisterTargets and DeregisterTargets: the nodes it registers and the
//     replaced nodes it removes;
//   - ec2:DescribeSecurityGroups: every reconcile looks up the cluster-tagged groups to clean up
//     rules it may once have added (pkg/networking gcIngressPermissionsFromUnusedEndpointSGs);
//     an error there aborts the reconcile before any target is registered. It revokes only rules
//     labelled as its own, which this program never creates, so it needs no write on groups.
//
// Register and Deregister are allowed only on target groups that carry this stack's cluster
// tag (kubernetes.io/cluster/<stack>-<cluster> = owned, which the AWS tier puts on each of its
// groups). Later revisions of upstream's example policy likewise condition these calls on a tag
// of the group (v2.14's allows them on every group). Another stack's controller in the same
// account cannot move this stack's targets, and the condition still covers a group the program is
// replacing (a NodePort changed), which the old binding must deregister from before the group
// goes. A list of names would not: it changes early in the up, and a deleted binding whose
// deregistration is refused keeps its finalizer (cleanupTargets forgives only a missing group),
// so the up would hang on it.
// The Describe calls cannot be scoped to a resource.
func LoadBalancerControllerPolicy(region, clusterTag string) PolicyDocument {
	owned := map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + clusterTag: "owned"}}
	return policy(
		allow("Describe", "*",
			"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
			"ec2:DescribeSecurityGroups"),
		Statement{Sid: "Targets", Effect: "Allow",
			Action:    []string{"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"},
			Resource:  fmt.Sprintf("arn:aws:elasticloadbalancing:%s:*:targetgroup/*/*", region),
			Condition: owned},
	)
}

// UploadsPolicy lets the application nodes put, get and delete objects in the uploads bucket and
// nothing else: the API hands out pre-signed URLs signed with these credentials.
func UploadsPolicy(bucketARN string) PolicyDocument {
	return policy(
		allow("Objects", bucketARN+"/*", "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"),
		allow("Bucket", bucketARN, "s3:ListBucket", "s3:GetBucketLocation"),
	)
}

// logGroupResources are the ARNs of a log group and of its streams. The group's ARN as the
// provider reports it has no ":*" suffix; stream operations are authorised on the streams' ARN.
func logGroupResources(groupARN string) []string {
	return []string{groupARN, groupARN + ":log-stream:*"}
}

// LogWriterPolicy lets a node's Fluent Bit create its log streams in the stack's log group and
// put events there, and nothing else: no other group, no group creation (the program declares
// the group, with its retention), no reads.
func LogWriterPolicy(groupARN string) PolicyDocument {
	return policy(allow("ShipLogs", logGroupResources(groupARN),
		"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"))
}

// LogReaderPolicy lets Grafana's CloudWatch data source list and query the stack's log group.
// DescribeLogGroups, GetQueryResults and StopQuery take no log group resource in IAM: the first
// reveals group names only, the others act on a query this user started, which StartQuery
// limits to the stack's group.
func LogReaderPolicy(groupARN string) PolicyDocument {
	return policy(
		allow("ListGroupsAndQueries", "*", "logs:DescribeLogGroups", "logs:GetQueryResults", "logs:StopQuery"),
		allow("ReadGroup", logGroupResources(groupARN),
			"logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:GetLogGroupFields", "logs:StartQuery"),
	)
}
