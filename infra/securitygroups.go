package infra

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/routing"
)

// SecurityGroupsArgs are the inputs of the security groups.
type SecurityGroupsArgs struct {
	// Config is the validated stack configuration (admin and VPC CIDRs).
	Config *config.Config
	// VPCID is the VPC the groups belong to.
	VPCID pulumi.IDOutput
}

// SecurityGroups holds the three groups of the stack: Nodes, on every instance; ControlPlane,
// on the master only; and ALB, on the load balancer, the only source the NodePorts accept.
type SecurityGroups struct {
	pulumi.ResourceState

	Nodes        *ec2.SecurityGroup
	ControlPlane *ec2.SecurityGroup
	ALB          *ec2.SecurityGroup
	// Rules are every ingress and egress rule of the groups: SSH and the API from the admin
	// ranges, the cluster's own traffic, the ALB's, egress to the internet. The nodes depend on
	// them, so a destroy revokes them only once the nodes are gone (see NodesArgs.DeleteAfter).
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
	portHTTP         = 80
	portHTTPS        = 443
)

// Sources of a Rule other than CIDRs: the rule's own group, or another group of the stack.
const (
	groupSelf         = "self"
	groupNodes        = "nodes"
	groupALB          = "alb"
	groupControlPlane = "control-plane"
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
	// CIDRs are source (or, for egress, destination) ranges; empty when Group is set.
	CIDRs []string
	// Group is the peer security group: "self" (the rule's own group), "nodes" or "alb".
	Group string
}

// NodeRules are the ingress rules of the group on every node. Only the admin ranges appear as
// CIDRs: no port is open to the world, and the NodePorts take traffic from the ALB's group only
// (not from the whole VPC: a compromised instance elsewhere in it cannot reach the Services).
func NodeRules(cfg *config.Config) []Rule {
	return []Rule{
		{Name: "ssh", Description: "SSH from the operators (and the Pulumi runner)", Protocol: "tcp", From: portSSH, To: portSSH, CIDRs: prefixes(cfg.AdminCIDRs)},
		// The remote commands reach the workers through the master, at their private addresses,
		// which survive a stop and start (their public ones do not).
		{Name: "ssh-jump", Description: "SSH from the master: the Pulumi runner's jump host to the other nodes", Protocol: "tcp", From: portSSH, To: portSSH, Group: groupControlPlane},
		{Name: "kubelet", Description: "kubelet API from the control plane and metrics-server", Protocol: "tcp", From: portKubelet, To: portKubelet, Group: groupSelf},
		{Name: "vxlan", Description: "Calico VXLAN: all pod-to-pod traffic between nodes", Protocol: "udp", From: portVXLAN, To: portVXLAN, Group: groupSelf},
		{Name: "typha", Description: "Calico Typha, which the Tigera operator always deploys", Protocol: "tcp", From: portTypha, To: portTypha, Group: groupSelf},
		{Name: "node-exporter", Description: "Prometheus node-exporter scrapes", Protocol: "tcp", From: portNodeExporter, To: portNodeExporter, Group: groupSelf},
		{Name: "nodeports", Description: "NodePort services from the ALB only (target-type instance)", Protocol: "tcp", From: routing.NodePortMin, To: routing.NodePortMax, Group: groupALB},
	}
}

// ALBRules are the ingress rules of the load balancer's group: HTTP (redirected) and HTTPS from
// anywhere, the only ports of the stack open to the world.
func ALBRules() []Rule {
	world := []string{"0.0.0.0/0"}
	return []Rule{
		{Name: "http", Description: "HTTP from anywhere, redirected to HTTPS", Protocol: "tcp", From: portHTTP, To: portHTTP, CIDRs: world},
		{Name: "https", Description: "HTTPS from anywhere", Protocol: "tcp", From: portHTTPS, To: portHTTPS, CIDRs: world},
	}
}

// ALBEgressRules are the load balancer's only egress: requests and health checks to the nodes'
// NodePorts.
func ALBEgressRules() []Rule {
	return []Rule{
		{Name: "nodeports", Description: "requests and health checks to the nodes' NodePorts", Protocol: "tcp", From: routing.NodePortMin, To: routing.NodePortMax, Group: groupNodes},
	}
}

// allEgress lets nodes reach package mirrors, image registries and AWS APIs.
var allEgress = []Rule{{Name: "all", Description: "all egress: package mirrors, image registries, AWS APIs", Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}

// ControlPlaneRules are the ingress rules of the group on the master.
func ControlPlaneRules(cfg *config.Config) []Rule {
	return []Rule{
		{Name: "apiserver-admin", Description: "Kubernetes API from the operators (and the Pulumi runner)", Protocol: "tcp", From: portAPIServer, To: portAPIServer, CIDRs: prefixes(cfg.AdminCIDRs)},
		{Name: "apiserver-vpc", Description: "Kubernetes API from the nodes and pods", Protocol: "tcp", From: portAPIServer, To: portAPIServer, CIDRs: []string{cfg.VPCCIDR.String()}},
		{Name: "etcd", Description: "etcd client and peer, control plane only", Protocol: "tcp", From: 2379, To: 2380, Group: groupSelf},
		{Name: "controller-manager", Description: "kube-controller-manager, control plane only", Protocol: "tcp", From: 10257, To: 10257, Group: groupSelf},
		{Name: "scheduler", Description: "kube-scheduler, control plane only", Protocol: "tcp", From: 10259, To: 10259, Group: groupSelf},
	}
}

// NewSecurityGroups declares the node, control-plane and ALB groups, then their rules, one
// resource per rule so that a change to one rule never replaces a group (and so that the node
// and ALB groups can refer to each other).
func NewSecurityGroups(ctx *pulumi.Context, name string, args *SecurityGroupsArgs, opts ...pulumi.ResourceOption) (*SecurityGroups, error) {
	g := &SecurityGroups{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:SecurityGroups", name, g, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	var err error

	// Exactly one group per instance carries the cluster tag: the cloud-controller-manager and
	// the load balancer controller find the nodes' group by it.
	if g.Nodes, err = g.group(ctx, name, "nodes", cfg, args.VPCID, "every cluster node", map[string]string{ClusterTag(cfg): "owned"}); err != nil {
		return nil, err
	}
	if g.ControlPlane, err = g.group(ctx, name, "control-plane", cfg, args.VPCID, "the Kubernetes control plane", nil); err != nil {
		return nil, err
	}
	if g.ALB, err = g.group(ctx, name, "alb", cfg, args.VPCID, "the application load balancer", nil); err != nil {
		return nil, err
	}
	peers := map[string]*ec2.SecurityGroup{groupNodes: g.Nodes, groupALB: g.ALB, groupControlPlane: g.ControlPlane}
	for _, set := range []struct {
		name            string
		sg              *ec2.SecurityGroup
		ingress, egress []Rule
	}{
		{name + "-nodes", g.Nodes, NodeRules(cfg), allEgress},
		{name + "-control-plane", g.ControlPlane, ControlPlaneRules(cfg), allEgress},
		{name + "-alb", g.ALB, ALBRules(), ALBEgressRules()},
	} {
		if err := g.rules(ctx, set.name, set.sg, peers, set.ingress, set.egress); err != nil {
			return nil, err
		}
	}
	if err := ctx.RegisterResourceOutputs(g, pulumi.Map{"nodes": g.Nodes.ID(), "controlPlane": g.ControlPlane.ID(), "alb": g.ALB.ID()}); err != nil {
		return nil, err
	}
	return g, nil
}

// group declares one security group, kind naming it within the stack.
func (g *SecurityGroups) group(ctx *pulumi.Context, component, kind string, cfg *config.Config, vpcID pulumi.IDOutput, what string, extraTags map[string]string) (*ec2.SecurityGroup, error) {
	name := component + "-" + kind
	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{
		VpcId: vpcID,
		// Group names are unique per VPC; the cluster id keeps them apart in the console and in
		// anything that looks groups up by name across the account.
		NamePrefix:  pulumi.String(cfg.ClusterID() + "-" + kind + "-"),
		Description: pulumi.String("waste-coach: " + what),
		Tags:        tags(cfg, cfg.ClusterName+"-"+name, extraTags),
	}, pulumi.Parent(g))
	if err != nil {
		return nil, fmt.Errorf("create security group %s: %w", name, err)
	}
	return sg, nil
}

// RangeRuleName is the resource name of the ingress rule of group rules set (for example
// "sesacthon-sg-nodes") named rule for one source range: the range itself, with its "/" as "-"
// ("sesacthon-sg-nodes-ssh-198.51.100.0-24"). Adding or removing a range touches that range's
// rule only, and no rule ever takes over another range's name.
func RangeRuleName(set, rule, cidr string) string {
	return set + "-" + rule + "-" + strings.ReplaceAll(cidr, "/", "-")
}

// indexRuleName is the name a range's rule had before RangeRuleName: its position in the list.
// The stacks deployed then know the rules by it; the alias lets their first up rename each rule
// in place instead of creating a duplicate of it (InvalidPermission.Duplicate) and deleting the
// old one. Deploy that first up without changing the ranges' order in the same change: the alias
// maps position i to whichever range is at position i now.
func indexRuleName(set, rule string, i int) string { return fmt.Sprintf("%s-%s-%d", set, rule, i) }

// rules declares a group's ingress and egress rules; the peer of a Group rule is the group
// itself ("self") or one of peers.
func (g *SecurityGroups) rules(ctx *pulumi.Context, name string, sg *ec2.SecurityGroup, peers map[string]*ec2.SecurityGroup, ingress, egress []Rule) error {
	parent := pulumi.Parent(g)
	peer := func(r Rule) (pulumi.IDOutput, error) {
		if r.Group == groupSelf {
			return sg.ID(), nil
		}
		p, ok := peers[r.Group]
		if !ok {
			return pulumi.IDOutput{}, fmt.Errorf("rule %s of %s: unknown peer group %q", r.Name, name, r.Group)
		}
		return p.ID(), nil
	}
	for _, r := range ingress {
		base := vpc.SecurityGroupIngressRuleArgs{
			SecurityGroupId: sg.ID(),
			Description:     pulumi.String(r.Description),
			IpProtocol:      pulumi.String(r.Protocol),
			FromPort:        pulumi.Int(r.From),
			ToPort:          pulumi.Int(r.To),
		}
		if r.Group != "" {
			id, err := peer(r)
			if err != nil {
				return err
			}
			args := base
			args.ReferencedSecurityGroupId = id
			rule, err := vpc.NewSecurityGroupIngressRule(ctx, fmt.Sprintf("%s-%s", name, r.Name), &args, parent)
			if err != nil {
				return fmt.Errorf("create rule %s of %s: %w", r.Name, name, err)
			}
			g.Rules = append(g.Rules, rule)
			continue
		}
		for i, cidr := range r.CIDRs {
			args := base
			args.CidrIpv4 = pulumi.String(cidr)
			rule, err := vpc.NewSecurityGroupIngressRule(ctx, RangeRuleName(name, r.Name, cidr), &args, parent,
				pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(indexRuleName(name, r.Name, i))}}))
			if err != nil {
				return fmt.Errorf("create rule %s of %s: %w", r.Name, name, err)
			}
			g.Rules = append(g.Rules, rule)
		}
	}
	for _, r := range egress {
		args := vpc.SecurityGroupEgressRuleArgs{
			SecurityGroupId: sg.ID(),
			Description:     pulumi.String(r.Description),
			IpProtocol:      pulumi.String(r.Protocol),
		}
		if r.Protocol != "-1" {
			args.FromPort, args.ToPort = pulumi.Int(r.From), pulumi.Int(r.To)
		}
		if r.Group != "" {
			id, err := peer(r)
			if err != nil {
				return err
			}
			args.ReferencedSecurityGroupId = id
		} else {
			args.CidrIpv4 = pulumi.String(r.CIDRs[0])
		}
		rule, err := vpc.NewSecurityGroupEgressRule(ctx, fmt.Sprintf("%s-egress-%s", name, r.Name), &args, parent)
		if err != nil {
			return fmt.Errorf("create egress rule %s of %s: %w", r.Name, name, err)
		}
		g.Rules = append(g.Rules, rule)
	}
	return nil
}
