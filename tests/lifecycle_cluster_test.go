package tests

import (
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

var nodeRoles = []string{"master", "worker-1", "worker-2", "storage"}

// instanceIDs returns each role's instance id as the program used it: the trigger of the
// node's local SSH wait.
func instanceIDs(t *testing.T, r *offline.Result) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, role := range nodeRoles {
		w := must(t, r, "command:local:Command", "sesacthon-wait-ssh-"+role)
		if ids[role] = str(w, "triggers", 0); ids[role] == "" {
			t.Fatalf("the SSH wait of %s is not tied to an instance id", role)
		}
	}
	return ids
}

func triggers(c *mocks.Resource) map[string]bool {
	out := map[string]bool{}
	v := prop(c, "triggers")
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e.IsString() {
				out[e.StringValue()] = true
			}
		}
	}
	return out
}

// TestNodesReadyIsTiedToEveryNode: `pulumi up --replace` of any node re-runs nodes-ready, so
// the update returns only when the new node is Ready and initialised by the CCM.
func TestNodesReadyIsTiedToEveryNode(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		ids := instanceIDs(t, r)
		got := triggers(must(t, r, remoteCommand, "sesacthon-nodes-ready"))
		for _, role := range nodeRoles {
			if !got[ids[role]] {
				t.Errorf("nodes-ready's triggers lack the %s instance id %s: a replaced %s is not awaited", role, ids[role], role)
			}
		}
	})
}

// TestWorkersRejoinAReplacedMaster: a new master is a new CA; every worker's join must run
// again (the join script resets only a node whose CA differs from the join command's).
func TestWorkersRejoinAReplacedMaster(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		ids := instanceIDs(t, r)
		for _, w := range nodeRoles[1:] {
			got := triggers(must(t, r, remoteCommand, "sesacthon-join-"+w))
			if !got[ids["master"]] {
				t.Errorf("join-%s is not tied to the master instance %s: after a master replacement it stays joined to a dead cluster", w, ids["master"])
			}
			if !got[ids[w]] {
				t.Errorf("join-%s is not tied to its own instance", w)
			}
		}
	})
}

// TestProvidersIdentifyTheClusterWithoutTheCredential: a new or unknown kubeconfig must be an
// update of the providers, never a replacement of every object they manage.
func TestProvidersIdentifyTheClusterWithoutTheCredential(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		want := r.Stack + "-sesacthon"
		for _, p := range r.OfType("pulumi:providers:kubernetes") {
			v := prop(p, "clusterIdentifier")
			if !v.IsString() || v.StringValue() != want {
				t.Errorf("provider %s: clusterIdentifier is %v, want %q (plain config, not derived from the kubeconfig)", p.Name, v, want)
			}
		}
		if len(r.OfType("pulumi:providers:kubernetes")) < 2 {
			t.Error("expected the bootstrap and the workloads' providers")
		}
	})
}
