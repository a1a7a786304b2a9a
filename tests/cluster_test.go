package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

const remoteCommand = "command:remote:Command"

func TestBootstrapGraphIsAsTheDesignSays(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		get := func(name string) *node { return &node{r, must(t, r, remoteCommand, "sesacthon-"+name)} }
		init := get("kubeadm-init")
		instance := func(role string) *node {
			return &node{r, must(t, r, "aws:ec2/instance:Instance", "sesacthon-nodes-"+role)}
		}
		if !init.waitsFor(instance("master")) {
			t.Error("kubeadm init does not wait for the master instance")
		}
		workers := []string{"worker-1", "worker-2", "storage"}
		for _, w := range workers {
			join := get("join-" + w)
			if !join.waitsFor(init) {
				t.Errorf("join of %s does not wait for kubeadm init", w)
			}
			if !join.waitsFor(instance(w)) {
				t.Errorf("join of %s is not tied to its own instance (a replaced instance would not re-join)", w)
			}
			if !join.waitsFor(get("wait-node-" + w)) {
				t.Errorf("join of %s does not wait for the node's preparation", w)
			}
			for _, other := range workers {
				if other != w && join.waitsFor(get("join-"+other)) {
					t.Errorf("join of %s waits for the join of %s: workers must join in parallel", w, other)
				}
			}
			member, retire := get("member-"+w), get("retire-"+w)
			if !strings.Contains(str(retire.Resource, "delete"), "k drain \"${node}\"") || !strings.Contains(str(retire.Resource, "delete"), "k delete node \"${node}\"") {
				t.Errorf("retire-%s has no delete step that drains and removes the node", w)
			}
			// member-<w> runs again on a new master; a delete step there would drain every node
			// that stays when the master is replaced. retire-<w> is replaced with its node only.
			if str(member.Resource, "delete") != "" {
				t.Errorf("member-%s has a delete step: replacing the master would drain and remove %s", w, w)
			}
			if triggers := retire.Inputs["triggers"]; !triggers.IsArray() || len(triggers.ArrayValue()) != 1 || !retire.waitsFor(instance(w)) {
				t.Errorf("retire-%s is not tied to its node's instance alone (triggers %v)", w, triggers)
			}
			if !get("nodes-ready").waitsFor(member) || !get("nodes-ready").waitsFor(retire) {
				t.Errorf("nodes-ready does not wait for %s's label and retirement steps (a destroy would drain it before the workloads are gone)", w)
			}
		}
		calico := get("calico")
		if !calico.waitsFor(init) {
			t.Error("Calico is installed before kubeadm init")
		}
		for _, w := range workers {
			if calico.waitsFor(get("join-" + w)) {
				t.Errorf("Calico waits for the join of %s; it only needs the control plane", w)
			}
		}
		provider := &node{r, must(t, r, "pulumi:providers:kubernetes", "sesacthon")}
		if !provider.waitsFor(get("kubeconfig")) || !provider.waitsFor(get("nodes-ready")) {
			t.Error("the workloads' provider must wait for the kubeconfig and for every node to be Ready")
		}
		waits := 0
		for _, c := range r.OfType("command:local:Command") {
			if strings.Contains(c.Name, "-wait-ssh-") {
				waits++
			}
		}
		if waits != 4 {
			t.Errorf("%d local SSH waits, want one per node", waits)
		}
	})
}

// node is a resource of the graph, with the run it belongs to.
type node struct {
	r *offline.Result
	*mocks.Resource
}

func (n *node) waitsFor(other *node) bool { return n.r.DependsOn(n.Resource, other.Resource) }

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func TestSecretsStaySecret(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, name := range []string{"kubeadm-init", "pki-read", "kubeconfig", "join-token-worker-1", "join-token-worker-2", "join-token-storage", "join-worker-1"} {
			c := must(t, r, remoteCommand, "sesacthon-"+name)
			if str(c, "logging") != "none" {
				t.Errorf("%s logs its output (logging=%q); it carries a token or a kubeconfig", name, str(c, "logging"))
			}
			if !contains(c.AdditionalSecretOutputs, "stdout") || !contains(c.AdditionalSecretOutputs, "stderr") {
				t.Errorf("%s stores stdout/stderr in plain text (additionalSecretOutputs=%v)", name, c.AdditionalSecretOutputs)
			}
		}
		for _, c := range r.OfType(remoteCommand) {
			if !prop(c, "connection").IsSecret() {
				t.Errorf("%s: its SSH connection (private key) is not secret", c.Name)
			}
			if str(c, "addPreviousOutputInEnv") != "false" {
				t.Errorf("%s replays its previous output into the next run's environment", c.Name)
			}
			if strings.HasPrefix(c.Name, "sesacthon-join-") && !strings.Contains(c.Name, "token") && !prop(c, "stdin").IsSecret() {
				t.Errorf("%s receives its join command in plain text", c.Name)
			}
		}
		if key := must(t, r, "tls:index/privateKey:PrivateKey", "sesacthon-nodes-ssh"); !contains(key.AdditionalSecretOutputs, "privateKeyOpenssh") {
			t.Error("the generated SSH private key is not marked secret")
		}
		for _, p := range r.OfType("pulumi:providers:kubernetes") {
			if !prop(p, "kubeconfig").IsSecret() {
				t.Errorf("provider %s gets the kubeconfig in plain text", p.Name)
			}
		}
	})
}

func TestCloudControllerManagerMatchesTheKubernetesMinor(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		ds := must(t, r, "kubernetes:apps/v1:DaemonSet", "sesacthon-ccm")
		image := str(ds, "spec", "template", "spec", "containers", 0, "image")
		// The 1.35 release, by the digest the image promoter published for its tag.
		if want := "registry.k8s.io/provider-aws/cloud-controller-manager:v1.35.0@sha256:bf5a41be5f0dd5049cc1f69e1a23ff2691f2f46483546204676cea78796e75cd"; image != want {
			t.Errorf("CCM image %s, want %s (Kubernetes 1.35's, by digest)", image, want)
		}
		if str(ds, "spec", "template", "spec", "nodeSelector", "node-role.kubernetes.io/control-plane") != "" ||
			!strings.Contains(prop(ds, "spec", "template", "spec", "tolerations").String(), "node.cloudprovider.kubernetes.io/uninitialized") {
			t.Error("the CCM must run on the control plane and tolerate uninitialised nodes")
		}
	})
}
