// Package mocks is the one Pulumi mock implementation of this repository. It fabricates
// plausible, clearly marked outputs for every resource type the program declares, answers every
// invoke the program makes, refuses any other invoke, and records every registration (inputs,
// parent, dependencies, options) so that tests and the render command can inspect the program.
package mocks

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Placeholder marks a value only the cloud can compute. Every fabricated string contains it, or
// is an address from the documentation ranges (RFC 5737), so nobody mistakes it for real.
const Placeholder = "offline"

// Resource is one registration the program made.
type Resource struct {
	// Type is the type token, e.g. aws:ec2/instance:Instance.
	Type string
	// Name is the logical name.
	Name string
	// URN identifies the resource; Parent and Dependencies refer to URNs.
	URN string
	// Parent is the parent's URN ("" for children of the stack).
	Parent string
	// Custom is false for component resources.
	Custom bool
	// Inputs are the inputs as registered (secrets stay marked secret).
	Inputs resource.PropertyMap
	// Outputs are the fabricated outputs.
	Outputs resource.PropertyMap
	// ID is the fabricated id.
	ID string
	// Dependencies are the URNs this resource waits for, explicit and through its inputs.
	Dependencies []string
	// Provider is the explicit provider reference, if any.
	Provider string
	// Protect, RetainOnDelete and AdditionalSecretOutputs are the resource options.
	Protect                 bool
	RetainOnDelete          bool
	AdditionalSecretOutputs []string
	IgnoreChanges           []string
	DeleteBeforeReplace     bool
	// ReplacementTrigger is the pulumi.ReplacementTrigger option's value as a string ("" for
	// none): a change of it replaces the resource.
	ReplacementTrigger string
	// Aliases are the URNs of the resource's previous identities (pulumi.Aliases), resolved as
	// the engine resolves them.
	Aliases []string
}

// ProviderURN is the URN of the explicit provider the resource was registered with ("" if none):
// a provider reference is "<urn>::<id>".
func (r *Resource) ProviderURN() string {
	if i := strings.LastIndex(r.Provider, "::"); i > 0 {
		return r.Provider[:i]
	}
	return ""
}

// Mocks implements pulumi.MockResourceMonitor.
type Mocks struct {
	project, stack, region string

	mu                sync.Mutex
	resources         []*Resource
	reads             []*Resource
	counter           int
	fabricatedSubnets map[string]subnetInfo // the declared subnets, by fabricated id
	invokes           map[string]int        // how many times each invoke was made
	hosts             map[netip.Prefix]int  // next host number per subnet

	// Instances are the EC2 instances the stack already runs, as the ec2 getInstances and
	// getInstance lookups report them: none unless a test sets them (a deployed stack, or one
	// whose nodes were stopped outside office hours).
	Instances []Instance
	// Subnets and VPCs are the subnets and VPCs AWS already holds, as the ec2 getSubnets,
	// getSubnet and getVpc lookups report them: none unless a test sets them (a deployed stack).
	Subnets []Subnet
	VPCs    []VPC
	// DeregisteredImages are AMI ids a lookup by image-id no longer finds (their owner
	// deregistered them): none unless a test sets them.
	DeregisteredImages []string
	// PreviousOutputs are the stack's outputs as its last `pulumi up` recorded them, which a
	// reference to the stack itself reads: none unless a test sets them (a deployed stack).
	PreviousOutputs map[string]any
}

// Instance is an EC2 instance as the lookups see it.
type Instance struct {
	// ID is the instance id; Role its Role tag.
	ID, Role string
	// Cluster is the cluster id of its kubernetes.io/cluster/<id> = owned tag.
	Cluster string
	// Image is the AMI it was launched from.
	Image string
	// State is EC2's instance state name: pending, running, stopping, stopped, shutting-down or
	// terminated.
	State string
	// StateReason is the code of EC2's reason for its last state change (stateReason.code), which
	// getInstances filters by state-reason-code: Server.SpotInstanceShutdown for a spot node EC2
	// interrupted and stopped, Client.UserInitiatedShutdown for a stop through the API (the
	// office-hours schedule, or a person); "" for none.
	StateReason string
	// RootGiB is the size of its root volume now; 0 leaves the root device out of the answer
	// (a test that does not look at it).
	RootGiB int
	// Type is its instance type ("" leaves it out of the answer); Spot whether it runs on spot
	// capacity (getInstances' instance-lifecycle filter).
	Type string
	Spot bool
}

// Subnet is a subnet as the lookups see it.
type Subnet struct {
	// ID is the subnet id, VPC the id of its VPC.
	ID, VPC string
	// Cluster is the cluster id of its kubernetes.io/cluster/<id> = owned tag.
	Cluster string
	// CIDR is its IPv4 range, Zone its availability zone.
	CIDR, Zone string
	// Index is its waste-coach/subnet-index tag, "" for none.
	Index string
}

// VPC is a VPC as the lookups see it.
type VPC struct {
	// ID is the VPC id, CIDR its primary IPv4 range.
	ID, CIDR string
}

// tags are the instance's tags as EC2 reports them.
func (i Instance) tags() map[string]any {
	return map[string]any{"Role": i.Role, "kubernetes.io/cluster/" + i.Cluster: "owned"}
}

// matches applies getInstances' filters to the instance's tags, its state reason and its
// instance lifecycle (spot, or empty on demand, as EC2 reports it) (filtersMatch).
func (i Instance) matches(filters resource.PropertyValue) (bool, error) {
	lifecycle := ""
	if i.Spot {
		lifecycle = "spot"
	}
	return filtersMatch("getInstances", i.tags(), map[string]string{"state-reason-code": i.StateReason, "instance-lifecycle": lifecycle}, filters)
}

// tagsMatch applies a lookup's filters to a resource's tags as EC2 does (filtersMatch): only tag
// filters are known.
func tagsMatch(invoke string, tags map[string]any, filters resource.PropertyValue) (bool, error) {
	return filtersMatch(invoke, tags, nil, filters)
}

// filtersMatch applies a lookup's filters as EC2 does: every filter must match, a filter by one
// of its values. A tag:<key> filter reads tags; any other name must be one of fields (the
// resource's value for that filter), or the lookup is refused: a filter the mocks do not model
// would otherwise match everything.
func filtersMatch(invoke string, tags map[string]any, fields map[string]string, filters resource.PropertyValue) (bool, error) {
	if !filters.IsArray() {
		return true, nil
	}
	for _, f := range filters.ArrayValue() {
		name := f.ObjectValue()["name"].StringValue()
		var have any
		if key, ok := strings.CutPrefix(name, "tag:"); ok {
			have = tags[key]
		} else if value, ok := fields[name]; ok {
			have = value
		} else {
			known := slices.Sorted(maps.Keys(fields))
			return false, fmt.Errorf("mocks: %s filter %q: only tag filters and %v are modelled", invoke, name, known)
		}
		found := false
		for _, v := range f.ObjectValue()["values"].ArrayValue() {
			found = found || have == v.StringValue()
		}
		if !found {
			return false, nil
		}
	}
	return true, nil
}

type subnetInfo struct {
	cidr netip.Prefix
	az   string
}

// New returns mocks for a project's stack that answer as AWS region would.
func New(project, stack, region string) *Mocks {
	return &Mocks{project: project, stack: stack, region: region, fabricatedSubnets: map[string]subnetInfo{}, invokes: map[string]int{}, hosts: map[netip.Prefix]int{}}
}

// Resources returns the registrations in the order they were made.
func (m *Mocks) Resources() []*Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.resources)
}

// Reads returns the resources read rather than declared (ReadResource), in order.
func (m *Mocks) Reads() []*Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reads)
}

// Invokes returns how many times the program made the invoke of a token (e.g.
// aws:ec2/getSubnet:getSubnet), answered or refused.
func (m *Mocks) Invokes(token string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.invokes[token]
}

// Call answers the invokes the program makes; any other invoke is an error, so a new lookup
// cannot slip into the program without a mock that says what it returns.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.invokes[args.Token]++
	m.mu.Unlock()
	switch args.Token {
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		names, ids := []any{}, []any{}
		for i, s := range []string{"a", "b", "c", "d"} {
			names = append(names, m.region+s)
			ids = append(ids, fmt.Sprintf("apne2-az%d", i+1))
		}
		return resource.NewPropertyMapFromMap(map[string]any{"names": names, "zoneIds": ids, "id": m.region}), nil
	case "aws:ec2/getAmi:getAmi":
		// A lookup of one image by its id finds it, unless it was deregistered ("Your query
		// returned no results", as the provider says).
		if filters := args.Args["filters"]; filters.IsArray() {
			for _, f := range filters.ArrayValue() {
				if f.ObjectValue()["name"].StringValue() != "image-id" {
					continue
				}
				id := f.ObjectValue()["values"].ArrayValue()[0].StringValue()
				if slices.Contains(m.DeregisteredImages, id) {
					return nil, fmt.Errorf("mocks: getAmi: Your query returned no results (image %s was deregistered)", id)
				}
				return resource.NewPropertyMapFromMap(map[string]any{"id": id, "name": "kept-" + id}), nil
			}
		}
		return resource.NewPropertyMapFromMap(map[string]any{
			"id":   "ami-" + Placeholder + "0ubuntu2404",
			"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-" + Placeholder,
		}), nil
	case "aws:route53/getZone:getZone":
		name := args.Args["name"].StringValue()
		return resource.NewPropertyMapFromMap(map[string]any{
			"zoneId": "Z" + strings.ToUpper(Placeholder) + "ZONE", "name": name, "id": "Z" + strings.ToUpper(Placeholder) + "ZONE",
		}), nil
	case "aws:ec2/getInstances:getInstances":
		// Every caller names the states it wants; EC2's default (running only) is never what a
		// caller means.
		states := args.Args["instanceStateNames"]
		if !states.IsArray() || len(states.ArrayValue()) == 0 {
			return nil, fmt.Errorf("mocks: getInstances without instanceStateNames would list running instances, which no caller expects")
		}
		wanted := []string{}
		for _, s := range states.ArrayValue() {
			wanted = append(wanted, s.StringValue())
		}
		ids := []any{}
		for _, inst := range m.Instances {
			match, err := inst.matches(args.Args["filters"])
			if err != nil {
				return nil, err
			}
			if match && slices.Contains(wanted, inst.State) {
				ids = append(ids, inst.ID)
			}
		}
		return resource.NewPropertyMapFromMap(map[string]any{"ids": ids, "id": m.region}), nil
	case "aws:ec2/getInstance:getInstance":
		id := args.Args["instanceId"]
		if !id.IsString() {
			return nil, fmt.Errorf("mocks: getInstance without instanceId: every caller looks up an id getInstances returned")
		}
		for _, inst := range m.Instances {
			if inst.ID == id.StringValue() {
				root := []any{}
				if inst.RootGiB > 0 {
					root = append(root, map[string]any{"deviceName": "/dev/sda1", "volumeSize": inst.RootGiB, "volumeType": "gp3", "encrypted": true})
				}
				return resource.NewPropertyMapFromMap(map[string]any{
					"id": inst.ID, "instanceId": inst.ID, "ami": inst.Image, "instanceState": inst.State,
					"instanceType": inst.Type, "tags": inst.tags(), "rootBlockDevices": root,
				}), nil
			}
		}
		// The provider refuses an id EC2 does not know ("Your query returned no results").
		return nil, fmt.Errorf("mocks: getInstance: no instance %s", id.StringValue())
	case "aws:ec2/getSubnets:getSubnets":
		// The provider lists what matches, nothing included (no error when nothing does).
		ids := []any{}
		for _, sn := range m.Subnets {
			match, err := tagsMatch("getSubnets", map[string]any{"kubernetes.io/cluster/" + sn.Cluster: "owned"}, args.Args["filters"])
			if err != nil {
				return nil, err
			}
			if match {
				ids = append(ids, sn.ID)
			}
		}
		return resource.NewPropertyMapFromMap(map[string]any{"ids": ids, "id": m.region}), nil
	case "aws:ec2/getSubnet:getSubnet":
		id := args.Args["id"]
		if !id.IsString() {
			return nil, fmt.Errorf("mocks: getSubnet without id: every caller looks up an id getSubnets returned")
		}
		for _, sn := range m.Subnets {
			if sn.ID == id.StringValue() {
				tags := map[string]any{"kubernetes.io/cluster/" + sn.Cluster: "owned"}
				if sn.Index != "" {
					tags["waste-coach/subnet-index"] = sn.Index
				}
				return resource.NewPropertyMapFromMap(map[string]any{
					"id": sn.ID, "vpcId": sn.VPC, "cidrBlock": sn.CIDR, "availabilityZone": sn.Zone, "state": "available",
					"tags": tags,
				}), nil
			}
		}
		// The provider refuses a lookup that matches nothing ("no matching EC2 Subnet found").
		return nil, fmt.Errorf("mocks: getSubnet: no subnet %s", id.StringValue())
	case "aws:ec2/getVpc:getVpc":
		id := args.Args["id"]
		if !id.IsString() {
			return nil, fmt.Errorf("mocks: getVpc without id: every caller looks up the VPC of a subnet it found")
		}
		for _, v := range m.VPCs {
			if v.ID == id.StringValue() {
				return resource.NewPropertyMapFromMap(map[string]any{"id": v.ID, "cidrBlock": v.CIDR, "state": "available"}), nil
			}
		}
		// The provider refuses a lookup that matches nothing ("no matching EC2 VPC found").
		return nil, fmt.Errorf("mocks: getVpc: no VPC %s", id.StringValue())
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/administrator", "userId": "AIDA" + strings.ToUpper(Placeholder), "id": "123456789012",
		}), nil
	case "aws:elb/getHostedZoneId:getHostedZoneId":
		return resource.NewPropertyMapFromMap(map[string]any{"id": "Z" + strings.ToUpper(Placeholder) + "ALBZONE"}), nil
	}
	return nil, fmt.Errorf("mocks: unexpected invoke %s: add it to internal/mocks with a realistic answer", args.Token)
}

// NewResource records a registration and fabricates its outputs.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counter++
	r := &Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: args.Inputs, Provider: args.Provider}
	if rpc := args.RegisterRPC; rpc != nil {
		r.Parent = rpc.GetParent()
		r.Protect = rpc.GetProtect()
		r.RetainOnDelete = rpc.GetRetainOnDelete()
		r.AdditionalSecretOutputs = rpc.GetAdditionalSecretOutputs()
		r.IgnoreChanges = rpc.GetIgnoreChanges()
		r.DeleteBeforeReplace = rpc.GetDeleteBeforeReplace()
		r.ReplacementTrigger = rpc.GetReplacementTrigger().GetStringValue()
		r.Aliases = m.aliasURNs(rpc, r.Type, r.Name, r.Parent)
		deps := slices.Clone(rpc.GetDependencies())
		for _, pd := range rpc.GetPropertyDependencies() {
			deps = append(deps, pd.GetUrns()...)
		}
		slices.Sort(deps)
		r.Dependencies = slices.Compact(deps)
	}
	id, outputs := m.fabricate(args)
	r.Outputs, r.ID = outputs, id
	if rpc := args.ReadRPC; rpc != nil {
		// A read declares nothing (the stack's reference to itself): kept apart.
		r.Parent = rpc.GetParent()
		m.reads = append(m.reads, r)
		return id, outputs, nil
	}
	// The same URN the mock monitor gives the resource, so Parent and Dependencies resolve.
	parentType := tokens.Type("")
	if p := resource.URN(r.Parent); p != "" && p.QualifiedType() != resource.RootStackType {
		parentType = p.QualifiedType()
	}
	r.URN = string(resource.NewURN(tokens.QName(m.stack), tokens.PackageName(m.project), parentType, tokens.Type(r.Type), r.Name))
	m.resources = append(m.resources, r)
	return id, outputs, nil
}
