package tests

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
)

const (
	getSubnetsInvoke = "aws:ec2/getSubnets:getSubnets"
	getSubnetInvoke  = "aws:ec2/getSubnet:getSubnet"
	getVpcInvoke     = "aws:ec2/getVpc:getVpc"
)

// deployedStack returns mocks in which AWS holds what the stack's own configuration created:
// its VPC, its subnets and its four running instances with their root volumes at the configured
// sizes; and, in the same account, another stack's network, which no check may compare with.
func deployedStack(t *testing.T, stack string, sc *stackfile.Config) *mocks.Mocks {
	t.Helper()
	cfg, err := config.Parse(stack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AvailabilityZones) != len(cfg.SubnetCIDRs) {
		t.Fatalf("stack %s does not pin its zones; this test builds its subnets from them", stack)
	}
	m := mocks.New(config.Project, stack, sc.Values["aws:region"])
	m.VPCs = []mocks.VPC{{ID: "vpc-0deployed", CIDR: cfg.VPCCIDR.String()}, {ID: "vpc-0otherstack", CIDR: "172.16.0.0/16"}}
	for i, cidr := range cfg.SubnetCIDRs {
		m.Subnets = append(m.Subnets,
			mocks.Subnet{ID: fmt.Sprintf("subnet-0deployed%d", i), VPC: "vpc-0deployed", Cluster: cfg.ClusterID(), CIDR: cidr.String(), Zone: cfg.AvailabilityZones[i], Index: strconv.Itoa(i)},
			mocks.Subnet{ID: fmt.Sprintf("subnet-0otherstack%d", i), VPC: "vpc-0otherstack", Cluster: "other-" + cfg.ClusterID(), CIDR: fmt.Sprintf("172.16.%d.0/24", i), Zone: "ap-northeast-2d"})
	}
	for _, n := range cfg.Nodes {
		m.Instances = append(m.Instances,
			mocks.Instance{ID: "i-0deployed" + string(n.Role), Role: string(n.Role), Cluster: cfg.ClusterID(), Image: "ami-0" + mocks.Placeholder + "running", State: "running", RootGiB: n.RootVolumeGiB,
				Type: n.InstanceType, Spot: n.Capacity == config.Spot},
			// Another stack's node of the same role, with a far larger disk.
			mocks.Instance{ID: "i-0otherstack" + string(n.Role), Role: string(n.Role), Cluster: "other-" + cfg.ClusterID(), Image: "ami-0" + mocks.Placeholder + "running", State: "running", RootGiB: 1000})
	}
	return m
}

// deployed reads a stack's file (dev when stack is "") and returns mocks in which AWS holds what
// it created (deployedStack).
func deployed(t *testing.T, stack string) (string, *stackfile.Config, *mocks.Mocks) {
	t.Helper()
	if stack == "" {
		stack = "dev"
	}
	sc, err := stackfile.Read("..", stack)
	if err != nil {
		t.Fatal(err)
	}
	return stack, sc, deployedStack(t, stack, sc)
}

// withRootVolume returns the stack's nodes value with one role's rootVolumeGiB changed.
func withRootVolume(t *testing.T, sc *stackfile.Config, role string, gib int) string {
	t.Helper()
	return withNodeField(t, sc, role, "rootVolumeGiB", gib)
}

// withNodeField returns the stack file's nodes with one field of one role's node set.
func withNodeField(t *testing.T, sc *stackfile.Config, role, field string, value any) string {
	t.Helper()
	var nodes []map[string]any
	if err := json.Unmarshal([]byte(sc.Values[config.Project+":nodes"]), &nodes); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range nodes {
		if n["role"] == role {
			n[field], found = value, true
		}
	}
	if !found {
		t.Fatalf("no %s node in the stack file", role)
	}
	b, err := json.Marshal(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCreateTimeSettingsAreRefusedOnAnExistingStack: a zone, a subnet range or the VPC range that
// differs from what the stack's network was created with, and a root volume smaller than the
// node's, are refused before anything is declared, naming the key, the configured value and the
// existing one (a change of any of the network's would replace the network and every node, and
// fail half-way; an EBS volume cannot shrink). The same settings unchanged on the deployed stack,
// a larger root volume, and any settings on a stack that has nothing yet, pass.
func TestCreateTimeSettingsAreRefusedOnAnExistingStack(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stack is the stack whose files the run starts from; dev unless set.
		stack string
		// set changes the stack file's values.
		set map[string]func(sc *stackfile.Config) string
		// fresh runs without anything in AWS (the stack's first up).
		fresh bool
		// aws changes what AWS holds.
		aws func(m *mocks.Mocks)
		// refused are the strings the refusal must carry (key, configured and existing value,
		// what to do); none: the run must pass.
		refused []string
		// passes checks a run that passed.
		passes func(t *testing.T, r *offline.Result, m *mocks.Mocks)
	}{{
		name: "unchanged",
		passes: func(t *testing.T, r *offline.Result, m *mocks.Mocks) {
			// Each subnet carries its position, which the next run compares.
			for i := range 3 {
				sn := must(t, r, "aws:ec2/subnet:Subnet", fmt.Sprintf("sesacthon-network-public-%d", i+1))
				if got := str(sn, "tags", infra.SubnetIndexTag); got != strconv.Itoa(i) {
					t.Errorf("subnet %s: %s = %q, want %d", sn.Name, infra.SubnetIndexTag, got, i)
				}
			}
			// One list of the stack's subnets, one lookup per subnet of this stack, one of its VPC.
			for token, want := range map[string]int{getSubnetsInvoke: 1, getSubnetInvoke: 3, getVpcInvoke: 1} {
				if got := m.Invokes(token); got != want {
					t.Errorf("%s made %d times on a deployed stack, want %d", token, got, want)
				}
			}
		},
	}, {
		name:  "a new stack with other settings",
		fresh: true,
		set: map[string]func(*stackfile.Config) string{
			"availabilityZones": func(*stackfile.Config) string { return `["ap-northeast-2a","ap-northeast-2b","ap-northeast-2d"]` },
			"vpcCidr":           func(*stackfile.Config) string { return "10.1.0.0/17" },
			"nodes":             func(sc *stackfile.Config) string { return withRootVolume(t, sc, "master", 45) },
		},
		passes: func(t *testing.T, _ *offline.Result, m *mocks.Mocks) {
			// Nothing found, nothing more looked up.
			for token, want := range map[string]int{getSubnetsInvoke: 1, getSubnetInvoke: 0, getVpcInvoke: 0} {
				if got := m.Invokes(token); got != want {
					t.Errorf("%s made %d times on a new stack, want %d", token, got, want)
				}
			}
		},
	}, {
		name: "zone changed",
		set: map[string]func(*stackfile.Config) string{
			"availabilityZones": func(*stackfile.Config) string { return `["ap-northeast-2a","ap-northeast-2b","ap-northeast-2d"]` },
		},
		refused: []string{config.Project + ":availabilityZones[2]", `"ap-northeast-2d"`, `"ap-northeast-2c"`, "subnet-0deployed2", "new stack"},
	}, {
		name: "zones unset after the region's first zones moved",
		set: map[string]func(*stackfile.Config) string{
			"availabilityZones": func(*stackfile.Config) string { return "" },
			"dataZone":          func(*stackfile.Config) string { return "" },
		},
		// Unset, the zones are the region's first three (a, b, c); the subnets were created when
		// those were b, c and d.
		aws: func(m *mocks.Mocks) {
			for i := range m.Subnets {
				if zone, ok := map[string]string{"subnet-0deployed0": "ap-northeast-2b", "subnet-0deployed1": "ap-northeast-2c", "subnet-0deployed2": "ap-northeast-2d"}[m.Subnets[i].ID]; ok {
					m.Subnets[i].Zone = zone
				}
			}
		},
		refused: []string{config.Project + ":availabilityZones", "unset", "[ap-northeast-2b, ap-northeast-2c, ap-northeast-2d]"},
	}, {
		name: "subnet range changed",
		set: map[string]func(*stackfile.Config) string{
			"subnetCidrs": func(*stackfile.Config) string { return `["10.1.1.0/24","10.1.2.0/24","10.1.4.0/24"]` },
		},
		refused: []string{config.Project + ":subnetCidrs[2]", "10.1.4.0/24", "10.1.3.0/24", "subnet-0deployed2", "new stack"},
	}, {
		// The subnets are declared by position: swapping two, ranges and zones together, moves
		// each to the other's range and zone (replaced, created before the old one is deleted:
		// InvalidSubnet.Conflict), though every range and zone is still there.
		name: "subnets reordered, zones with them",
		set: map[string]func(*stackfile.Config) string{
			"subnetCidrs":       func(*stackfile.Config) string { return `["10.1.1.0/24","10.1.3.0/24","10.1.2.0/24"]` },
			"availabilityZones": func(*stackfile.Config) string { return `["ap-northeast-2a","ap-northeast-2c","ap-northeast-2b"]` },
			"dataZone":          func(*stackfile.Config) string { return "ap-northeast-2a" },
		},
		refused: []string{config.Project + ":subnetCidrs[1]", config.Project + ":subnetCidrs[2]", config.Project + ":availabilityZones[1]", "subnet-0deployed1", "subnet-0deployed2"},
	}, {
		// A stack whose subnets predate the position tag: matched by range and zone, as before.
		name: "subnet range changed on subnets made before the position tag",
		set: map[string]func(*stackfile.Config) string{
			"subnetCidrs": func(*stackfile.Config) string { return `["10.1.1.0/24","10.1.2.0/24","10.1.4.0/24"]` },
		},
		aws: func(m *mocks.Mocks) {
			for i := range m.Subnets {
				m.Subnets[i].Index = ""
			}
		},
		refused: []string{config.Project + ":subnetCidrs[2]", "10.1.4.0/24", "10.1.3.0/24", "subnet-0deployed2"},
	}, {
		name: "VPC range changed",
		set: map[string]func(*stackfile.Config) string{
			"vpcCidr": func(*stackfile.Config) string { return "10.1.0.0/17" },
		},
		refused: []string{config.Project + ":vpcCidr", "10.1.0.0/17", "10.1.0.0/16", "vpc-0deployed", "new stack"},
	}, {
		name: "root volume decreased",
		set: map[string]func(*stackfile.Config) string{
			"nodes": func(sc *stackfile.Config) string { return withRootVolume(t, sc, "master", 45) },
		},
		refused: []string{config.Project + ":nodes[master].rootVolumeGiB", "45 is not allowed", "at least 50", "i-0deployedmaster", "never shrink", "pulumi up --refresh"},
	}, {
		// prod pins its image, so the nodes are looked up for their root volumes alone.
		name:  "root volume decreased on a stack that pins its image",
		stack: "prod",
		set: map[string]func(*stackfile.Config) string{
			"nodes": func(sc *stackfile.Config) string { return withRootVolume(t, sc, "storage", 80) },
		},
		refused: []string{config.Project + ":nodes[storage].rootVolumeGiB", "80 is not allowed", "at least 100", "i-0deployedstorage", "never shrink"},
	}, {
		name: "root volume increased",
		set: map[string]func(*stackfile.Config) string{
			"nodes": func(sc *stackfile.Config) string { return withRootVolume(t, sc, "worker-1", 60) },
		},
		passes: func(t *testing.T, r *offline.Result, _ *mocks.Mocks) {
			// Grown in place: the instance is declared with the new size.
			if got := prop(must(t, r, instanceType, "sesacthon-nodes-worker-1"), "rootBlockDevice", "volumeSize"); !got.IsNumber() || got.NumberValue() != 60 {
				t.Errorf("worker-1 rootBlockDevice.volumeSize = %v, want 60", got)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stack, sc, m := deployed(t, tc.stack)
			if tc.aws != nil {
				tc.aws(m)
			}
			if tc.fresh {
				m = mocks.New(config.Project, stack, sc.Values["aws:region"])
			}
			for key, value := range tc.set {
				if v := value(sc); v == "" {
					delete(sc.Values, config.Project+":"+key)
				} else {
					sc.Values[config.Project+":"+key] = v
				}
			}
			r, err := offline.RunMocks(stack, sc, m)
			if len(tc.refused) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tc.passes(t, r, m)
				return
			}
			if err == nil {
				t.Fatal("the run went ahead")
			}
			t.Logf("refused: %v", err)
			for _, want := range tc.refused {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal does not say %q:\n%v", want, err)
				}
			}
			for _, res := range m.Resources() {
				if res.Custom {
					t.Errorf("%s %s declared before the refusal", res.Type, res.Name)
				}
			}
		})
	}
}
