package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// SecurityGroupsArgs are the inputs of the security groups.
type SecurityGroupsArgs struct {
	// Config is the validated stack configuration (admin and VPC CIDRs).
	Config *config.Config
	// VPCID is the VPC the groups belong to.
	VPCID pulumi.IDOutput
}

// SecurityGroups holds the two groups of the cluster: Nodes, on every instance, and
// ControlPlane, on the master only. The load balancer controller creates the ALB's own group.
type SecurityGroups struct {
	pulumi.ResourceState

	Nodes        *ec2.SecurityGroup
	ControlPlane *ec2.SecurityGroup
	// Rules are every ingress and egress rule of both groups: SSH and the API from the admin
	// ranges, the cluster's own traffic, egress to the internet. The nodes depend on them, so a
	// destroy revokes them only once the nodes are gone (see NodesArgs.DeleteAfter).
	Rules []pulumi.Resource
}

// Port numbers of the cluster's protocols (kubernetes.io "Ports and Protocols").
const (
	portSSH          = 22
	portAPIServer    = 6443
	portKubelet      = 10250
	portVXLAN        = 4789
	portTypha        = 5473
	portNodeExporter = 9100
	portNodePortLow  = 30000
	portNodePortHigh = 32767
)

// Rule is one ingress rule: a port range from either CIDRs or a security group.
type Rule struct {
	// Name distinguishes the rule's resource name.
	Name string
	// Description is shown in the AWS console.
	Description string
	// Protocol is tcp or udp.
	Protocol string
	// From and To bound the port range.
	From, To int
	// CIDRs are source ranges; empty when Group is set.
	CIDRs []string
	// Group is a source security group; "self" means the rule's own group.
	Group string
}

// NodeRules are the ingress rules of the group on every node. Only the VPC and the admin
// ranges appear as CIDRs: no port is open to the world (the ALB's group is the controller's).
func NodeRules(cfg *config.Config) []Rule {
	vpcCIDR := []string{cfg.VPCCIDR.String()}
	return []Rule{
		{Name: "ssh", Description: "SSH from the operators (and the Pulumi runner)", Protocol: "tcp", From: portSSH, To: portSSH, CIDRs: prefixes(cfg.AdminCIDRs)},
		{Name: "kubelet", Description: "kubelet API from the control plane and metrics-server", Protocol: "tcp", From: portKubelet, To: portKubelet, Group: "self"},
		{Name: "vxlan", Description: "Calico VXLAN: all pod-to-pod traffic between nodes", Protocol: "udp", From: portVXLAN, To: portVXLAN, Group: "self"},
		{Name: "typha", Description: "Calico Typha, which the Tigera operator always deploys", Protocol: "tcp", From: portTypha, To: portTypha, Group: "self"},
		{Name: "node-exporter", Description: "Prometheus node-exporter scrapes", Protocol: "tcp", From: portNodeExporter, To: portNodeExporter, Group: "self"},
		{Name: "nodeports", Description: "NodePort services from inside the VPC only (the ALB, target-type instance)", Protocol: "tcp", From: portNodePortLow, To: portNodePortHigh, CIDRs: vpcCIDR},
	}
}

// ControlPlaneRules are the ingress rules of the group on the master.
func ControlPlaneRules(cfg *config.Config) []Rule {
	return []Rule{
		{Name: "apiserver-admin", Description: "Kubernetes API from the operators (and the Pulumi runner)", Protocol: "tcp", From: portAPIServer, To: portAPIServer, CIDRs: prefixes(cfg.AdminCIDRs)},
		{Name: "apiserver-vpc", Description: "Kubernetes API from the nodes and pods", Protocol: "tcp", From: portAPIServer, To: portAPIServer, CIDRs: []string{cfg.VPCCIDR.String()}},
		{Name: "etcd", Description: "etcd client and peer, control plane only", Protocol: "tcp", From: 2379, To: 2380, Group: "self"},
		{Name: "controller-manager", Description: "kube-controller-manager, control plane only", Protocol: "tcp", From: 10257, To: 10257, Group: "self"},
		{Name: "scheduler", Description: "kube-scheduler, control plane only", Protocol: "tcp", From: 10259, To: 10259, Group: "self"},
	}
}

// NewSecurityGroups declares the node and control-plane groups, one resource per rule so that a
// change to one rule never replaces the group.
func NewSecurityGroups(ctx *pulumi.Context, name string, args *SecurityGroupsArgs, opts ...pulumi.ResourceOption) (*SecurityGroups, error) {
	g := &SecurityGroups{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:SecurityGroups", name, g, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	var err error

	g.Nodes, err = g.group(ctx, name, "nodes", cfg, args.VPCID, "every cluster node",
		// Exactly one group per instance carries the cluster tag: the load balancer controller
		// adds its ALB-to-NodePort rule to that group.
		map[string]string{ClusterTag(cfg): "owned"}, NodeRules(cfg))
	if err != nil {
		return nil, err
	}
	g.ControlPlane, err = g.group(ctx, name, "control-plane", cfg, args.VPCID, "the Kubernetes control plane", nil, ControlPlaneRules(cfg))
	if err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(g, pulumi.Map{"nodes": g.Nodes.ID(), "controlPlane": g.ControlPlane.ID()}); err != nil {
		return nil, err
	}
	return g, nil
}

// group declares one security group, kind naming it within the stack, with its rules.
func (g *SecurityGroups) group(ctx *pulumi.Context, component, kind string, cfg *config.Config, vpcID pulumi.IDOutput, what string, extraTags map[string]string, rules []Rule) (*ec2.SecurityGroup, error) {
	parent := pulumi.Parent(g)
	name := component + "-" + kind
	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{
		// Group names are unique per VPC; the cluster id keeps them apart in the console and in
		// anything that looks groups up by name across the account.
		NamePrefix:  pulumi.String(cfg.ClusterID() + "-" + kind + "-"),
		VpcId:       vpcID,
		Description: pulumi.String("waste-coach: " + what),
		Tags:        tags(cfg, cfg.ClusterName+"-"+name, extraTags),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create security group %s: %w", name, err)
	}
	egress, err := vpc.NewSecurityGroupEgressRule(ctx, name+"-egress-all", &vpc.SecurityGroupEgressRuleArgs{
		SecurityGroupId: sg.ID(),
		Description:     pulumi.String("all egress: package mirrors, image registries, AWS APIs"),
		IpProtocol:      pulumi.String("-1"),
		CidrIpv4:        pulumi.String("0.0.0.0/0"),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create egress rule of %s: %w", name, err)
	}
	g.Rules = append(g.Rules, egress)
	for _, r := range rules {
		base := &vpc.SecurityGroupIngressRuleArgs{
			SecurityGroupId: sg.ID(),
			Description:     pulumi.String(r.Description),
			IpProtocol:      pulumi.String(r.Protocol),
			FromPort:        pulumi.Int(r.From),
			ToPort:          pulumi.Int(r.To),
		}
		if r.Group == "self" {
			args := *base
			args.ReferencedSecurityGroupId = sg.ID()
			rule, err := vpc.NewSecurityGroupIngressRule(ctx, fmt.Sprintf("%s-%s", name, r.Name), &args, parent)
			if err != nil {
				return nil, fmt.Errorf("create rule %s of %s: %w", r.Name, name, err)
			}
			g.Rules = append(g.Rules, rule)
			continue
		}
		for i, cidr := range r.CIDRs {
			args := *base
			args.CidrIpv4 = pulumi.String(cidr)
			rule, err := vpc.NewSecurityGroupIngressRule(ctx, fmt.Sprintf("%s-%s-%d", name, r.Name, i), &args, parent)
			if err != nil {
				return nil, fmt.Errorf("create rule %s of %s: %w", r.Name, name, err)
			}
			g.Rules = append(g.Rules, rule)
		}
	}
	return sg, nil
}
