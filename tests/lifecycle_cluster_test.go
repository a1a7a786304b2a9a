package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/waste-coach/infra/cluster"
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

// TestDeployCredentialRenewalIsDeclared: the providers' credential is minted with an explicit
// validity and looked at again every month, so `pulumi up` a year after init still works.
func TestDeployCredentialRenewalIsDeclared(t *testing.T) {
	before := cluster.CredentialRenewalPeriod(time.Now())
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		c := must(t, r, remoteCommand, "sesacthon-kubeconfig")
		got := triggers(c)
		if !got[before] && !got[cluster.CredentialRenewalPeriod(time.Now())] {
			t.Errorf("the kubeconfig command's triggers %v lack the current month: nothing makes `pulumi up` renew the credential", got)
		}
		script := str(c, "create")
		for _, want := range []string{
			"kubeadm kubeconfig user",
			"--client-name waste-coach-deployer",
			"--validity-period 8760h",
			"openssl x509 -noout -checkend 3888000",
			"--clusterrole=cluster-admin --user=waste-coach-deployer",
		} {
			if !strings.Contains(script, want) {
				t.Errorf("the kubeconfig command lacks %q: the credential is not minted with a known validity and renewed before expiry", want)
			}
		}
		if strings.Contains(script, "system:masters") || strings.Contains(script, "cat /etc/kubernetes/admin.conf") {
			t.Error("the providers use admin.conf or system:masters: a credential the program cannot renew or revoke")
		}
	})
}
