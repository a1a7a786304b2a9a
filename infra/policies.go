package infra

import (
	"encoding/json"
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

// CCMNodePolicy is the policy every node needs (cloud-provider-aws docs/prerequisites.md): the
// kubelet's image credential provider reads ECR, and the node describes itself.
func CCMNodePolicy() PolicyDocument {
	return policy(allow("Node", "*",
		"ec2:DescribeInstances",
		"ec2:DescribeRegions",
		"ecr:GetAuthorizationToken",
		"ecr:BatchCheckLayerAvailability",
		"ecr:GetDownloadUrlForLayer",
		"ecr:GetRepositoryPolicy",
		"ecr:DescribeRepositories",
		"ecr:ListImages",
		"ecr:BatchGetImage",
	))
}

// EBSCSIPolicy lets the EBS CSI controller create, attach and delete volumes, following the
// driver's example policy: mutations are limited to volumes and snapshots the driver tagged.
func EBSCSIPolicy() PolicyDocument {
	created := map[string]any{"StringLike": map[string]any{"aws:RequestTag/ebs.csi.aws.com/cluster": "true"}}
	owned := map[string]any{"StringLike": map[string]any{"ec2:ResourceTag/ebs.csi.aws.com/cluster": "true"}}
	return policy(
		allow("Describe", "*",
			"ec2:DescribeAvailabilityZones", "ec2:DescribeInstances", "ec2:DescribeSnapshots",
			"ec2:DescribeTags", "ec2:DescribeVolumes", "ec2:DescribeVolumesModifications"),
		allow("CreateSnapshotOfVolume", "arn:aws:ec2:*:*:volume/*", "ec2:CreateSnapshot"),
		allow("AttachDetachModify", []string{"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance/*"},
			"ec2:AttachVolume", "ec2:DetachVolume", "ec2:ModifyVolume"),
		Statement{Sid: "CreateTaggedVolume", Effect: "Allow", Action: []string{"ec2:CreateVolume", "ec2:CreateSnapshot"},
			Resource: []string{"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"}, Condition: created},
		Statement{Sid: "TagOnCreate", Effect: "Allow", Action: []string{"ec2:CreateTags"},
			Resource:  []string{"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"},
			Condition: map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": []string{"CreateVolume", "CreateSnapshot"}}}},
		Statement{Sid: "DeleteOwned", Effect: "Allow", Action: []string{"ec2:DeleteVolume", "ec2:DeleteSnapshot"},
			Resource: []string{"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:snapshot/*"}, Condition: owned},
	)
}

// LoadBalancerControllerPolicy follows the AWS Load Balancer Controller's published iam_policy.json
// (v2.14): read access everywhere, and mutations only on load balancers, target groups and
// security groups that carry the controller's elbv2.k8s.aws/cluster tag.
func LoadBalancerControllerPolicy() PolicyDocument {
	requestTagged := map[string]any{"Null": map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}
	resourceTagged := map[string]any{"Null": map[string]any{"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
	lbResources := []string{
		"arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
		"arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
		"arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
	}
	listenerResources := []string{
		"arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
		"arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
		"arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
		"arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
	}
	return policy(
		Statement{Effect: "Allow", Action: []string{"iam:CreateServiceLinkedRole"}, Resource: "*",
			Condition: map[string]any{"StringEquals": map[string]any{"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
		allow("Describe", "*",
			"ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
			"ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
			"ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
			"ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:GetCoipPoolUsage",
			"ec2:DescribeCoipPools", "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools",
			"ec2:DescribeRouteTables",
			"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
			"elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
			"elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
			"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
			"elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
			"elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
			"elasticloadbalancing:DescribeCapacityReservation"),
		allow("Certificates", "*",
			"cognito-idp:DescribeUserPoolClient", "acm:ListCertificates", "acm:DescribeCertificate",
			"iam:ListServerCertificates", "iam:GetServerCertificate",
			"waf-regional:GetWebACL", "waf-regional:GetWebACLForResource", "waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
			"wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL",
			"shield:GetSubscriptionState", "shield:DescribeProtection", "shield:CreateProtection", "shield:DeleteProtection"),
		allow("SecurityGroupRules", "*", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"),
		allow("CreateSecurityGroup", "*", "ec2:CreateSecurityGroup"),
		Statement{Sid: "TagNewSecurityGroup", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: "arn:aws:ec2:*:*:security-group/*",
			Condition: map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": "CreateSecurityGroup"}, "Null": map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}},
		Statement{Sid: "TagOwnSecurityGroup", Effect: "Allow", Action: []string{"ec2:CreateTags", "ec2:DeleteTags"}, Resource: "arn:aws:ec2:*:*:security-group/*",
			Condition: map[string]any{"Null": map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "true", "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}},
		Statement{Sid: "ManageOwnSecurityGroup", Effect: "Allow", Resource: "*", Condition: resourceTagged,
			Action: []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"}},
		Statement{Sid: "CreateLoadBalancer", Effect: "Allow", Resource: "*", Condition: requestTagged,
			Action: []string{"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"}},
		allow("Listeners", "*",
			"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
			"elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"),
		Statement{Sid: "TagOwnLoadBalancer", Effect: "Allow", Resource: lbResources,
			Action:    []string{"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"},
			Condition: map[string]any{"Null": map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "true", "aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}},
		Statement{Sid: "TagListeners", Effect: "Allow", Resource: listenerResources,
			Action: []string{"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}},
		Statement{Sid: "ManageOwnLoadBalancer", Effect: "Allow", Resource: "*", Condition: resourceTagged,
			Action: []string{
				"elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
				"elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
				"elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
				"elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
				"elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:ModifyCapacityReservation",
				"elasticloadbalancing:ModifyIpPools",
			}},
		Statement{Sid: "TagOnCreate", Effect: "Allow", Resource: lbResources, Action: []string{"elasticloadbalancing:AddTags"},
			Condition: map[string]any{
				"StringEquals": map[string]any{"elasticloadbalancing:CreateAction": []string{"CreateTargetGroup", "CreateLoadBalancer"}},
				"Null":         map[string]any{"aws:RequestTag/elbv2.k8s.aws/cluster": "false"},
			}},
		allow("Targets", "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
			"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"),
		allow("ListenersAndRules", "*",
			"elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener",
			"elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
			"elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities"),
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
