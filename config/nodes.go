// The nodes: one EC2 instance per role with its instance type, subnet and root volume, the
// storage node's subnet against the data zone, the image every node boots from, and the master's
// fixed private address (keys nodes and nodeImage). The roles are in roles.go, the instance
// types in instancetypes.go, spot capacity in costsavings.go.

package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Node is one EC2 instance of the cluster.
type Node struct {
	// Role is what the node is for.
	Role Role `json:"role"`
	// InstanceType is the EC2 instance type, one of InstanceTypes.
	InstanceType string `json:"instanceType"`
	// Subnet is the index (0-2) of the subnet in SubnetCIDRs the node is launched in.
	Subnet int `json:"subnet"`
	// RootVolumeGiB is the size of the encrypted gp3 root volume.
	RootVolumeGiB int `json:"rootVolumeGiB"`
	// Capacity is how the node's capacity is bought. Parse fills it when the node does not set
	// it: a worker or the storage node from the stack's capacity, the master on-demand (a
	// stack-wide change never moves the master).
	Capacity Capacity `json:"capacity,omitempty"`
	// CPUCredits is the credit mode of a burstable instance type, standard or unlimited ("" for
	// a type without credits). Parse fills it when the node does not set it: standard on a spot
	// worker or storage node (AWS's advice for spot: no surplus credits, billed per vCPU-hour),
	// unlimited on the master and on demand (EC2's own default for T3). A new T3 instance in
	// standard mode starts with no credits and runs at its baseline until it earns some, which
	// the control plane's first boot (kubeadm's timeouts) must not meet.
	CPUCredits string `json:"cpuCredits,omitempty"`

	// at is the node's index in the stack file's nodes list, for `pulumi config set --path`.
	at int
}

// ConfigPath is the `pulumi config set --path` key of one of the node's fields, such as
// waste-coach-infra:nodes[2].capacity.
func (n Node) ConfigPath(field string) string {
	return fmt.Sprintf("%s[%d].%s", qualify("nodes"), n.at, field)
}

// Name returns the node's name as used in resource names and Kubernetes labels.
func (n Node) Name() string { return string(n.Role) }

// Node returns the node of the given role; Parse guarantees there is exactly one.
func (c *Config) Node(role Role) Node {
	for _, n := range c.Nodes {
		if n.Role == role {
			return n
		}
	}
	panic(fmt.Sprintf("config: no node with role %q (Parse guarantees one)", role))
}

// nodes reads one node per role, each with a known instance type, a subnet index and a root
// volume the role works with, and keeps them in the order of Roles.
func (p *parser) nodes(c *Config) {
	key := qualify("nodes")
	var nodes []Node
	if !p.object("nodes", &nodes, true) {
		return
	}
	seen := map[Role]int{}
	for i, n := range nodes {
		at := fmt.Sprintf("%s[%d]", key, i)
		if !slices.Contains(Roles, n.Role) {
			p.fail(at+".role", strconv.Quote(string(n.Role)), fmt.Sprintf("one of %v", Roles))
			continue
		}
		if j, dup := seen[n.Role]; dup {
			p.fail(at+".role", strconv.Quote(string(n.Role)), fmt.Sprintf("each role once (also at %s[%d])", key, j))
			continue
		}
		seen[n.Role] = i
		if _, ok := InstanceTypes[n.InstanceType]; !ok {
			p.fail(at+".instanceType", strconv.Quote(n.InstanceType), "one of "+instanceTypeNames())
		}
		if n.Subnet < 0 || n.Subnet > 2 {
			p.fail(at+".subnet", strconv.Itoa(n.Subnet), "0, 1 or 2 (an index into subnetCidrs)")
		}
		if n.RootVolumeGiB < n.Role.MinRootGiB() || n.RootVolumeGiB > 1024 {
			p.fail(at+".rootVolumeGiB", strconv.Itoa(n.RootVolumeGiB), fmt.Sprintf("%d to 1024 GiB for a %s node", n.Role.MinRootGiB(), n.Role))
		}
	}
	for _, r := range Roles {
		if _, ok := seen[r]; !ok {
			p.fail(key, fmt.Sprintf("%d nodes without role %q", len(nodes), r), fmt.Sprintf("exactly one node of each role %v", Roles))
		}
	}
	// Keep the declared order stable whatever order the stack file lists them in.
	for _, r := range Roles {
		if i, ok := seen[r]; ok {
			nodes[i].at = i
			c.Nodes = append(c.Nodes, nodes[i])
		}
	}
}

// storageZone refuses, where the data zone is pinned, a storage node placed in a subnet of
// another zone: its EBS volumes (PostgreSQL, RabbitMQ, Redis) are zonal and could not follow it.
func (p *parser) storageZone(c *Config) {
	if c.DataZone == "" || len(c.AvailabilityZones) != len(c.SubnetCIDRs) {
		return
	}
	i := slices.IndexFunc(c.Nodes, func(n Node) bool { return n.Role == RoleStorage })
	if i < 0 || c.Nodes[i].Subnet < 0 || c.Nodes[i].Subnet >= len(c.AvailabilityZones) {
		return
	}
	if zone := c.AvailabilityZones[c.Nodes[i].Subnet]; zone != c.DataZone {
		p.fail(qualify("nodes")+"[storage].subnet", fmt.Sprintf("%d (zone %s)", c.Nodes[i].Subnet, zone), fmt.Sprintf(
			"a subnet in the data zone %s ("+qualify("dataZone")+"): the storage node's EBS volumes cannot leave their zone, so moving it would strand the data; "+
				"move the data first (docs/operations.md), then change dataZone", c.DataZone))
	}
}

var (
	amiID       = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	ubuntuImage = regexp.MustCompile(`^ubuntu/images/[a-z0-9-]+/ubuntu-[a-z]+-[0-9.]+-(amd64|arm64)-server-[0-9.]+$`)
)

// nodeImage reads the image new nodes boot from. Production must name one exact image, a
// reviewed choice: unset, a node that has no instance (lost, or a new stack) boots whatever
// image Canonical published last, and the others keep theirs (infra.nodeImages).
func (p *parser) nodeImage(c *Config) {
	c.NodeImage = strings.TrimSpace(p.str("nodeImage", "", false))
	switch {
	case c.NodeImage == "" && c.Production:
		p.fail(qualify("nodeImage"), "", "required on a production stack: an AMI id (ami-...) or an exact Canonical image name (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-YYYYMMDD), so that nodes move to a new image only when an operator changes it")
	case c.NodeImage != "" && !amiID.MatchString(c.NodeImage) && !ubuntuImage.MatchString(c.NodeImage):
		p.fail(qualify("nodeImage"), strconv.Quote(c.NodeImage), "an AMI id (ami-0123456789abcdef0) or an exact Canonical image name (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-YYYYMMDD), no wildcards")
	}
}

// MasterPrivateIP is the master's fixed private address: the tenth host of its subnet. Fixing it
// keeps the in-VPC control-plane endpoint stable when the instance is replaced, and known at
// preview time so the kubeadm configuration can be rendered before anything exists.
func (c *Config) MasterPrivateIP() netip.Addr {
	a := c.SubnetCIDRs[c.Node(RoleMaster).Subnet].Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}
