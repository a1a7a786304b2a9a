package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// kubeletSettingsHash is the sha256 of KubeletPressureConfig without its comments, computed here
// independently of the program's own helper.
func kubeletSettingsHash(settings string) string {
	var kept []string
	for _, line := range strings.SplitAfter(settings, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			kept = append(kept, line)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(kept, "")))
	return hex.EncodeToString(sum[:])
}

// The kubelet settings reach a running cluster by a rollout: the ConfigMap first, then every node
// one after another, control plane first, each step triggered by the settings' hash alone.
func TestKubeletSettingsRollOutNodeByNodeOnTheirHash(t *testing.T) {
	hash := kubeletSettingsHash(cluster.KubeletPressureConfig())
	triggers := map[string][]string{}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		get := func(name string) *node { return &node{r, must(t, r, remoteCommand, "sesacthon-"+name)} }
		configMap := get("kubelet-configmap")
		if !configMap.waitsFor(get("kubeadm-init")) || !configMap.waitsFor(get("nodes-ready")) {
			t.Error("the kubelet-config ConfigMap update does not wait for kubeadm init and for every node to be Ready")
		}
		if !strings.Contains(str(configMap.Resource, "create"), "patch configmap kubelet-config") {
			t.Error("kubelet-configmap does not patch kube-system/kubelet-config")
		}
		prev, prevName := configMap, "kubelet-configmap"
		steps := []*node{configMap}
		for _, role := range []string{"master", "worker-1", "worker-2", "storage"} {
			step := get("kubelet-config-" + role)
			if !contains(step.Dependencies, prev.URN) {
				t.Errorf("kubelet-config-%s does not wait directly for %s: the nodes must go one at a time", role, prevName)
			}
			if !strings.Contains(str(step.Resource, "create"), "kubeadm upgrade node phase kubelet-config") ||
				!strings.Contains(str(step.Resource, "create"), "wait --for=condition=Ready") {
				t.Errorf("kubelet-config-%s does not rewrite the kubelet's file with kubeadm and wait for Ready", role)
			}
			host := str(step.Resource, "connection", "host")
			if role != "master" && host == str(configMap.Resource, "connection", "host") {
				t.Errorf("kubelet-config-%s runs on the master, not on its node", role)
			}
			prev, prevName = step, "kubelet-config-"+role
			steps = append(steps, step)
		}
		// One after another and nothing else: no step waits for a later one.
		for i, s := range steps {
			for _, later := range steps[i+1:] {
				if s.waitsFor(later) {
					t.Errorf("%s waits for %s, which comes after it", s.Name, later.Name)
				}
			}
		}
		for _, s := range steps {
			v := prop(s.Resource, "triggers")
			var got []string
			for _, e := range v.ArrayValue() {
				got = append(got, e.StringValue())
			}
			if len(got) != 1 || got[0] != hash {
				t.Errorf("%s is triggered by %v, want the kubelet settings' hash %s alone (an instance id would rerun it on a replacement, which joins with the settings already)", s.Name, got, hash)
			}
			triggers[r.Stack+"/"+s.Name] = got
		}
	})
	// An unrelated change (prod and dev differ in instance types, sizes, domains, spot) leaves
	// the trigger as it is; a change of a setting changes it.
	for name, got := range triggers {
		if !strings.HasPrefix(name, "prod/") {
			continue
		}
		dev := triggers["dev/"+strings.TrimPrefix(name, "prod/")]
		if len(dev) != 1 || dev[0] != got[0] {
			t.Errorf("%s: the trigger differs between prod and dev (%v, %v), whose kubelet settings are the same", name, got, dev)
		}
	}
	changed := strings.Replace(cluster.KubeletPressureConfig(), "containerLogMaxFiles: 3", "containerLogMaxFiles: 4", 1)
	if changed == cluster.KubeletPressureConfig() || kubeletSettingsHash(changed) == hash {
		t.Error("changing a kubelet setting does not change the rollout's trigger")
	}
	if kubeletSettingsHash(cluster.KubeletPressureConfig()+"# a comment\n") != hash {
		t.Error("a comment changes the rollout's trigger")
	}
}

// A node's removal gives every pod it deletes without eviction its full grace period
// (cluster.MemberDeleteScript): a Celery worker cut short would lose the tasks it is finishing.
func TestNodeRemovalOutlastsEveryGracePeriod(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for name, pod := range podTemplates(r) {
			grace, ok := at(pod, "terminationGracePeriodSeconds").(float64)
			if ok && int(grace) >= cluster.DrainDeleteSeconds {
				t.Errorf("%s has a %v s grace period; the node removal's drain without eviction waits %d s", name, grace, cluster.DrainDeleteSeconds)
			}
		}
	})
}

// Every workload waits for the whole kubelet rollout: its provider depends on the last node's
// step, so no pod is scheduled against a node's allocatable disk from before its kubelet runs the
// settings (a restarted kubelet would reject it). The dependency is no input of the provider:
// its inputs stay those of a stack deployed before, so nothing it manages is updated or replaced.
func TestWorkloadsWaitForTheLastKubeletStep(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		provider := must(t, r, "pulumi:providers:kubernetes", "sesacthon")
		last := must(t, r, remoteCommand, "sesacthon-kubelet-config-storage")
		if !contains(provider.Dependencies, last.URN) {
			t.Errorf("the workloads' provider does not wait for %s, the last kubelet step: workloads would roll out while kubelets restart with less allocatable disk (dependencies %v)", last.Name, provider.Dependencies)
		}
		var keys []string
		for k := range provider.Inputs {
			keys = append(keys, string(k))
		}
		slices.Sort(keys)
		if want := []string{"clusterIdentifier", "enableServerSideApply", "kubeconfig"}; !slices.Equal(keys, want) {
			t.Errorf("the workloads' provider has inputs %v, want %v: a new input would be a diff of the provider", keys, want)
		}
	})
}

// The storage node's removal evicts within the budgets long enough to move every RabbitMQ broker
// one at a time (its budget): each broker's grace period plus its volume's move and boot
// (cluster.DrainAttachBootSeconds). Past that window the data namespace's pods are never deleted
// (cluster.MemberDeleteScript), so a shorter window would fail the removal of a healthy node.
func TestStorageNodeRemovalMovesEveryBrokerWithinTheBudget(t *testing.T) {
	if cluster.DrainProtectedNamespace != workloads.NamespaceData {
		t.Errorf("the removal protects namespace %q, the data services run in %q", cluster.DrainProtectedNamespace, workloads.NamespaceData)
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		sts := named(r, "StatefulSet", "rabbitmq")
		if sts == nil || at(sts, "metadata", "namespace") != workloads.NamespaceData {
			t.Fatal("no RabbitMQ StatefulSet in the data namespace")
		}
		replicas, _ := at(sts, "spec", "replicas").(float64)
		grace, _ := at(sts, "spec", "template", "spec", "terminationGracePeriodSeconds").(float64)
		need := int(replicas) * (int(grace) + cluster.DrainAttachBootSeconds)
		if got := cluster.DrainEvictSecondsFor(config.RoleStorage); replicas == 0 || got < need {
			t.Errorf("the storage node's drain evicts for %d s; %v brokers with a %v s grace period need %d s", got, replicas, grace, need)
		}
	})
}

// When a node shuts down (dev's nightly stop, a spot interruption), its kubelet stops the pods
// within the shutdown grace period, the non-critical ones in its first part; EC2 hard-stops an
// instance after about three minutes. Every data service (PostgreSQL, Redis, the RabbitMQ
// brokers) must fit its whole grace period into that part, so that none is killed mid-write.
func TestNodeShutdownLetsEveryDataServiceStopCleanly(t *testing.T) {
	nonCritical := cluster.ShutdownGraceSeconds - cluster.ShutdownGraceCriticalSeconds
	if cluster.ShutdownGraceSeconds > 180 || nonCritical <= 0 {
		t.Fatalf("shutdown grace %d s (critical %d s): want at most EC2's ~180 s before a hard stop, with room for the non-critical pods",
			cluster.ShutdownGraceSeconds, cluster.ShutdownGraceCriticalSeconds)
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		seen := 0
		for _, kind := range []string{"Deployment", "StatefulSet"} {
			for name, obj := range objects(r, kind) {
				if at(obj, "metadata", "namespace") != workloads.NamespaceData {
					continue
				}
				seen++
				grace, ok := at(obj, "spec", "template", "spec", "terminationGracePeriodSeconds").(float64)
				if !ok {
					grace = 30 // the API server's default
				}
				if int(grace) > nonCritical {
					t.Errorf("%s %s needs %v s to stop; a node shutdown gives it %d s", kind, name, grace, nonCritical)
				}
			}
		}
		if seen == 0 {
			t.Fatal("no workload in the data namespace")
		}
	})
}
