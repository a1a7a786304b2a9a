package tests

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
)

// TestACapacityChangeReplacesOneNodeAtATime: the provider applies no change of how a running node
// is bought (spot to on-demand is no diff at all; a spot node's type change stops it and leaves it
// stopped), so each instance carries its capacity, and on spot its type, as a replacement
// trigger: a change replaces that node, visibly. On a deployed stack, a change that would move
// more than one node in one up (a stack-wide capacity change moves three) is refused before
// anything is declared, naming each node and the commands that keep all but one as they run.
// The master never follows the stack-wide capacity. Every burstable node's credit mode is set.
func TestACapacityChangeReplacesOneNodeAtATime(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stack   string
		set     map[string]func(*testing.T, *stackfile.Config) string
		refused []string
		// triggers and credits are the instances' replacement triggers and credit modes by role.
		triggers, credits map[config.Role]string
		// absent must not appear in the refusal.
		absent []string
		// masterID, if set, is the deployed master's instance id (replaceMaster names one).
		masterID string
	}{{
		name:     "dev as deployed",
		triggers: map[config.Role]string{config.RoleMaster: "spot t3.large", config.RoleWorker1: "spot t3.medium", config.RoleStorage: "spot t3.medium"},
		// The master keeps unlimited on spot: a standard T3 boots with no credits.
		credits: map[config.Role]string{config.RoleMaster: "unlimited", config.RoleWorker2: "standard", config.RoleStorage: "standard"},
	}, {
		name:     "prod as deployed",
		stack:    "prod",
		triggers: map[config.Role]string{config.RoleMaster: "on-demand", config.RoleStorage: "on-demand"},
		credits:  map[config.Role]string{config.RoleMaster: "unlimited", config.RoleWorker1: "unlimited"},
	}, {
		name: "one worker to on-demand",
		set: map[string]func(*testing.T, *stackfile.Config) string{"nodes": func(t *testing.T, sc *stackfile.Config) string {
			return withNodeField(t, sc, "worker-2", "capacity", "on-demand")
		}},
		triggers: map[config.Role]string{config.RoleWorker2: "on-demand", config.RoleWorker1: "spot t3.medium"},
		credits:  map[config.Role]string{config.RoleWorker2: "unlimited"},
	}, {
		name: "one spot worker's instance type",
		set: map[string]func(*testing.T, *stackfile.Config) string{"nodes": func(t *testing.T, sc *stackfile.Config) string {
			return withNodeField(t, sc, "worker-1", "instanceType", "t3.large")
		}},
		triggers: map[config.Role]string{config.RoleWorker1: "spot t3.large"},
	}, {
		name: "the dev master's instance type",
		set: map[string]func(*testing.T, *stackfile.Config) string{"nodes": func(t *testing.T, sc *stackfile.Config) string {
			return withNodeField(t, sc, "master", "instanceType", "t3.xlarge")
		}},
		refused: []string{"the master of stack dev (i-0deployedmaster) would move: instance type t3.large → t3.xlarge", "Replacing the master", "etcd-snapshot-now", "pulumi config set waste-coach-infra:replaceMaster i-0deployedmaster", "pulumi config set --path 'waste-coach-infra:nodes[0].instanceType' t3.large"},
		absent:  []string{"unprotect"},
	}, {
		name: "the dev master's instance type, its replacement acknowledged",
		set: map[string]func(*testing.T, *stackfile.Config) string{
			"nodes": func(t *testing.T, sc *stackfile.Config) string {
				return withNodeField(t, sc, "master", "instanceType", "t3.xlarge")
			},
			"replaceMaster": func(*testing.T, *stackfile.Config) string { return "i-0123456789abcdef0" },
		},
		masterID: "i-0123456789abcdef0",
		triggers: map[config.Role]string{config.RoleMaster: "spot t3.xlarge", config.RoleWorker1: "spot t3.medium"},
	}, {
		name: "the dev master's instance type, replaceMaster naming another instance",
		set: map[string]func(*testing.T, *stackfile.Config) string{
			"nodes": func(t *testing.T, sc *stackfile.Config) string {
				return withNodeField(t, sc, "master", "instanceType", "t3.xlarge")
			},
			// Left from an earlier replacement: it names no running master.
			"replaceMaster": func(*testing.T, *stackfile.Config) string { return "i-0fedcba9876543210" },
		},
		masterID: "i-0123456789abcdef0",
		refused:  []string{"the master of stack dev (i-0123456789abcdef0) would move", "replaceMaster i-0123456789abcdef0"},
	}, {
		name:  "the prod master to spot",
		stack: "prod",
		set: map[string]func(*testing.T, *stackfile.Config) string{"nodes": func(t *testing.T, sc *stackfile.Config) string {
			return withNodeField(t, sc, "master", "capacity", "spot")
		}},
		refused: []string{"the master of stack prod (i-0deployedmaster) would move: on-demand → spot", "pulumi state unprotect 'urn:pulumi:prod::waste-coach-infra::waste-coach-infra:infra:Infra$waste-coach-infra:infra:Nodes$aws:ec2/instance:Instance::sesacthon-nodes-master'"},
	}, {
		name:    "the stack-wide capacity",
		set:     map[string]func(*testing.T, *stackfile.Config) string{"capacity": func(*testing.T, *stackfile.Config) string { return "on-demand" }},
		refused: []string{"replace 3 nodes at once", "worker-1 (i-0deployedworker-1: spot → on-demand)", "storage (i-0deployedstorage: spot → on-demand)", "one node per `pulumi up`", "pulumi config set --path 'waste-coach-infra:nodes[1].capacity' spot", "pulumi config set --path 'waste-coach-infra:nodes[3].capacity' spot"},
		absent:  []string{"master ("},
	}, {
		name: "a type and a capacity together",
		set: map[string]func(*testing.T, *stackfile.Config) string{"nodes": func(t *testing.T, sc *stackfile.Config) string {
			sc.Values[config.Project+":nodes"] = withNodeField(t, sc, "worker-1", "instanceType", "t3.large")
			return withNodeField(t, sc, "storage", "capacity", "on-demand")
		}},
		refused: []string{"replace 2 nodes at once", "worker-1 (i-0deployedworker-1: instance type t3.medium → t3.large on spot", "pulumi config set --path 'waste-coach-infra:nodes[1].instanceType' t3.medium", "pulumi config set --path 'waste-coach-infra:nodes[3].capacity' spot"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stack, sc, m := deployed(t, tc.stack)
			for i := range m.Instances {
				if tc.masterID != "" && m.Instances[i].ID == "i-0deployedmaster" {
					m.Instances[i].ID = tc.masterID
				}
			}
			for key, value := range tc.set {
				sc.Values[config.Project+":"+key] = value(t, sc)
			}
			r, err := offline.RunMocks(stack, sc, m)
			if len(tc.refused) > 0 {
				if err == nil {
					t.Fatal("the run went ahead; want a refusal before anything is declared")
				}
				for _, w := range tc.refused {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("the refusal does not say %q:\n%v", w, err)
					}
				}
				for _, a := range tc.absent {
					if strings.Contains(err.Error(), a) {
						t.Errorf("the refusal names %q; it must not:\n%v", a, err)
					}
				}
				if n := len(m.Resources()); n > 0 {
					t.Errorf("%d resources declared before the refusal", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			cfg, err := config.Parse(stack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			for role, want := range tc.triggers {
				inst := must(t, r, instanceType, "sesacthon-nodes-"+string(role))
				if inst.ReplacementTrigger != want {
					t.Errorf("%s instance: replacement trigger %q, want %q", role, inst.ReplacementTrigger, want)
				}
				if inst.URN != infra.InstanceURN(cfg, role) {
					t.Errorf("%s instance: URN %s, but the messages' --replace commands name %s", role, inst.URN, infra.InstanceURN(cfg, role))
				}
				spot := prop(inst, "instanceMarketOptions", "marketType")
				if isSpot := spot.IsString() && spot.StringValue() == "spot"; isSpot != strings.HasPrefix(want, "spot") {
					t.Errorf("%s instance: market type %v, but its trigger says %q", role, spot, want)
				}
			}
			for role, want := range tc.credits {
				if got := prop(must(t, r, instanceType, "sesacthon-nodes-"+string(role)), "creditSpecification", "cpuCredits"); !got.IsString() || got.StringValue() != want {
					t.Errorf("%s instance: creditSpecification.cpuCredits %v, want %q (set explicitly, never EC2's default)", role, got, want)
				}
			}
		})
	}
}
