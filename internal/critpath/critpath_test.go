package critpath

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/mocks"
)

// TestPathFollowsTheLongestChain: a → b (kubeadm init, 90 s) and a → c (1 s) → d (ingress, 150 s);
// the path is a, c, d because c+d outlast b.
func TestPathFollowsTheLongestChain(t *testing.T) {
	res := func(urn, typ, name string, deps ...string) *mocks.Resource {
		return &mocks.Resource{URN: urn, Type: typ, Name: name, Custom: true, Dependencies: deps, Inputs: resource.PropertyMap{}}
	}
	a := res("a", "aws:ec2/instance:Instance", "node")
	b := res("b", "command:remote:Command", "x-kubeadm-init", "a")
	c := res("c", "kubernetes:core/v1:Service", "svc", "a")
	d := res("d", "kubernetes:networking.k8s.io/v1:Ingress", "ing", "c")
	steps, total := Path([]*mocks.Resource{a, b, c, d})
	if total != 45+1+150 {
		t.Errorf("total = %d s, want 196 (45 + 1 + 150)", total)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Resource.Name)
	}
	if len(names) != 3 || names[0] != "node" || names[2] != "ing" {
		t.Errorf("path %v, want node → svc → ing", names)
	}
	// Off the path, a milestone still ends when its own chain does.
	if f, ok := Finish([]*mocks.Resource{a, b, c, d}, "-kubeadm-init"); !ok || f != 45+90 {
		t.Errorf("kubeadm init done at %d s (found %v), want 135 (45 + 90)", f, ok)
	}
	if _, ok := Finish([]*mocks.Resource{a, b, c, d}, "-nodes-ready"); ok {
		t.Errorf("a milestone no resource is named for was found")
	}
}

func TestProviderCountsAsADependency(t *testing.T) {
	p := &mocks.Resource{URN: "urn:pulumi:s::p::pulumi:providers:kubernetes::k", Type: "pulumi:providers:kubernetes", Custom: true, Inputs: resource.PropertyMap{}}
	slow := &mocks.Resource{URN: "x", Type: "command:remote:Command", Name: "c-nodes-ready", Custom: true, Inputs: resource.PropertyMap{}}
	p.Dependencies = []string{"x"}
	obj := &mocks.Resource{URN: "o", Type: "kubernetes:apps/v1:Deployment", Custom: true, Provider: p.URN + "::id", Inputs: resource.PropertyMap{}}
	if _, total := Path([]*mocks.Resource{slow, p, obj}); total != 60+1+45 {
		t.Errorf("total = %d, want 106: objects wait for their provider, which waits for the nodes", total)
	}
}

// TestKubeletRolloutPrecedesTheWorkloads: the workloads' provider waits for the last kubelet
// step (cluster.go), so a fresh deploy's objects start after the whole chain of node steps.
func TestKubeletRolloutPrecedesTheWorkloads(t *testing.T) {
	cmd := func(urn, name string, deps ...string) *mocks.Resource {
		return &mocks.Resource{URN: urn, Type: "command:remote:Command", Name: name, Custom: true, Dependencies: deps, Inputs: resource.PropertyMap{}}
	}
	ready := cmd("r", "c-nodes-ready")
	cm := cmd("m", "c-kubelet-configmap", "r")
	first := cmd("k1", "c-kubelet-config-master", "m")
	last := cmd("k2", "c-kubelet-config-storage", "k1")
	p := &mocks.Resource{URN: "urn:pulumi:s::p::pulumi:providers:kubernetes::k", Type: "pulumi:providers:kubernetes", Custom: true,
		Dependencies: []string{"r", "k2"}, Inputs: resource.PropertyMap{}}
	obj := &mocks.Resource{URN: "o", Type: "kubernetes:apps/v1:Deployment", Custom: true, Provider: p.URN + "::id", Inputs: resource.PropertyMap{}}
	steps, total := Path([]*mocks.Resource{ready, cm, first, last, p, obj})
	if want := 60 + 5 + 10 + 10 + 1 + 45; total != want {
		t.Errorf("total = %d s, want %d: the objects wait for the kubelet rollout after the nodes", total, want)
	}
	if len(steps) < 4 || steps[3].Resource.Name != "c-kubelet-config-storage" {
		t.Errorf("the path does not run through the kubelet steps: %v", steps)
	}
}

// TestMasterReplacementRerunsOnlyWhatIsTiedToIt: replacing the master terminates it first, then
// runs again the instance and the commands whose triggers hold its id, with the replacement's
// own figures (kubeadm-init restores; a join finds its node joined); the rest is already there.
func TestMasterReplacementRerunsOnlyWhatIsTiedToIt(t *testing.T) {
	tied := func(urn, name, id string, deps ...string) *mocks.Resource {
		return &mocks.Resource{URN: urn, Type: "command:remote:Command", Name: name, Custom: true, Dependencies: deps,
			Inputs: resource.PropertyMap{"triggers": resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty(id)})}}
	}
	master := &mocks.Resource{URN: "m", Type: "aws:ec2/instance:Instance", Name: "c-nodes-master", ID: "i-master", Custom: true, Inputs: resource.PropertyMap{}}
	worker := &mocks.Resource{URN: "w", Type: "aws:ec2/instance:Instance", Name: "c-nodes-worker-1", ID: "i-worker", Custom: true, Inputs: resource.PropertyMap{}}
	wait := tied("s", "c-wait-ssh-master", "i-master", "m")
	init := tied("i", "c-kubeadm-init", "i-master", "s")
	join := tied("j", "c-join-worker-1", "i-master", "i", "w")
	workerOnly := tied("o", "c-wait-node-worker-1", "i-worker", "w")
	all := []*mocks.Resource{master, worker, wait, init, join, workerOnly}
	got, ok := Replacement(all, "c-nodes-master", "-kubeadm-init")
	if want := OldInstanceGone.Seconds + 45 + 30 + 150; !ok || got != want {
		t.Errorf("API serving again at %d s (found %v), want %d: terminate, instance, SSH, restore and init", got, ok, want)
	}
	if got, ok := Replacement(all, "c-nodes-master", "-join-worker-1"); !ok || got != OldInstanceGone.Seconds+45+30+150+3 {
		t.Errorf("the worker's join done again at %d s (found %v), want 3 s after init: it finds its node joined", got, ok)
	}
	if _, ok := Replacement(all, "c-nodes-master", "-wait-node-worker-1"); ok {
		t.Error("a step tied to the worker only counts as run again by the master's replacement")
	}
}
