package tests

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// Pods under pressure (issue 31): probes that do not restart a pod that is only busy, disk
// requests and limits the kubelet can act on, a kubelet that cleans its disk before it evicts,
// and disruption budgets that keep a pool alive through a drain without blocking it forever.

// probeCheck is what a probe checks, as text: its command, HTTP GET or TCP port.
func probeCheck(p any) string {
	return fmt.Sprint(at(p, "exec"), at(p, "httpGet"), at(p, "tcpSocket"))
}

// probeWindow is how long a probe fails before it acts: period times failure threshold, with
// Kubernetes' defaults (10 s, 3) for what is unset.
func probeWindow(p any) int {
	num := func(key string, def int) int {
		if n, ok := at(p, key).(float64); ok {
			return int(n)
		}
		return def
	}
	return num("periodSeconds", 10) * num("failureThreshold", 3)
}

// livenessProblem says why a container's liveness probe would restart it where its readiness
// probe only takes it out of service ("" if it does not): liveness must be a different check,
// or the same check given at least three times readiness's patience.
func livenessProblem(readiness, liveness any) string {
	if readiness == nil || liveness == nil || probeCheck(readiness) != probeCheck(liveness) {
		return ""
	}
	if l, r := probeWindow(liveness), probeWindow(readiness); l < 3*r {
		return fmt.Sprintf("liveness runs readiness's check %s and restarts after %d s of failures, where readiness gives %d s: "+
			"a slow moment becomes a restart (use a cheaper check, or at least %d s)", probeCheck(liveness), l, r, 3*r)
	}
	return ""
}

func TestLivenessProblemTellsABusyPodFromAStuckOne(t *testing.T) {
	health := map[string]any{"httpGet": map[string]any{"path": "/health", "port": 8000.0}, "periodSeconds": 10.0, "failureThreshold": 3.0}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := maps.Clone(m)
		out[k] = v
		return out
	}
	for _, c := range []struct {
		name                string
		readiness, liveness any
		problem             bool
	}{
		{"identical probes", health, health, true},
		{"the same check, twice as patient", health, with(health, "periodSeconds", 20.0), true},
		{"the same check, five times as patient", health, with(with(health, "periodSeconds", 30.0), "failureThreshold", 5.0), false},
		{"a different, cheaper check", health, map[string]any{"tcpSocket": map[string]any{"port": 8000.0}}, false},
		{"no readiness (a sidecar)", nil, health, false},
	} {
		if got := livenessProblem(c.readiness, c.liveness) != ""; got != c.problem {
			t.Errorf("%s: problem = %v, want %v", c.name, got, c.problem)
		}
	}
}

func TestNoLivenessProbeRestartsWhatReadinessOnlyTakesOut(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		checked := 0
		for name, pod := range podTemplates(r) {
			containers, _ := at(pod, "containers").([]any)
			for _, c := range containers {
				readiness, liveness := at(c, "readinessProbe"), at(c, "livenessProbe")
				if readiness != nil && liveness != nil {
					checked++
				}
				if p := livenessProblem(readiness, liveness); p != "" {
					t.Errorf("%s container %v: %s", name, at(c, "name"), p)
				}
			}
		}
		if checked < 10 {
			t.Errorf("only %d containers have both probes; the check is not seeing the workloads", checked)
		}
	})
}

// Slow starters have a startup probe, so that liveness does not restart them mid-start: the
// PostgreSQL server (first initialisation, recovery), the RabbitMQ brokers (boot, peer
// discovery, queue recovery), the Celery workers and beat (the app's import).
func TestSlowStartersHaveAStartupProbe(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pods := podTemplates(r)
		for _, w := range []string{"StatefulSet data/postgres", "StatefulSet data/rabbitmq", "Deployment app/celery-ai",
			"Deployment app/celery-batch", "Deployment app/celery-api", "Deployment app/celery-beat"} {
			pod, ok := pods[w]
			if !ok {
				t.Errorf("no %s", w)
				continue
			}
			c := at(pod, "containers", 0)
			if at(c, "startupProbe") == nil {
				t.Errorf("%s container %v has no startup probe", w, at(c, "name"))
			}
		}
		// A Celery worker's probes ask the worker itself, through the broker, with a timeout.
		for _, pool := range workloads.CeleryPools(r.Config) {
			c := at(pods["Deployment app/celery-"+pool.Name], "containers", 0)
			for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
				cmd := fmt.Sprint(at(c, probe, "exec", "command"))
				want := fmt.Sprintf(`celery -A %s inspect ping -d "%s@$HOSTNAME" --timeout`, workloads.CeleryApp, pool.Name)
				if !strings.Contains(cmd, want) {
					t.Errorf("celery-%s %s runs %s, want it to ping its own node (%s)", pool.Name, probe, cmd, want)
				}
			}
		}
	})
}

// quantityMiB reads a disk quantity in MiB, and whether it was set.
func quantityMiB(v any) (int, bool) {
	if v == nil {
		return 0, false
	}
	return fit.ParseMemMiB(fmt.Sprint(v)), true
}

func TestEveryContainerRequestsAndLimitsTheDiskItWrites(t *testing.T) {
	// The log budget every disk limit leaves room for is what the kubelet keeps.
	size, _ := quantityMiB(cluster.ContainerLogMaxSize)
	if got := size * cluster.ContainerLogMaxFiles; got != workloads.LogsMiB {
		t.Errorf("the kubelet keeps %d MiB of logs per container, workloads.LogsMiB says %d", got, workloads.LogsMiB)
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for name, pod := range podTemplates(r) {
			// The kubelet evicts a pod whose containers and emptyDirs write more than its
			// containers' limits add up to (or its largest init container's, if larger).
			var appLimits, initLimit, apps int
			for _, list := range []string{"containers", "initContainers"} {
				cs, _ := at(pod, list).([]any)
				for _, c := range cs {
					cn := fmt.Sprintf("%s container %v", name, at(c, "name"))
					req, hasReq := quantityMiB(at(c, "resources", "requests", "ephemeral-storage"))
					limit, hasLimit := quantityMiB(at(c, "resources", "limits", "ephemeral-storage"))
					switch {
					case !hasReq || !hasLimit:
						t.Errorf("%s has no ephemeral-storage request or limit: the kubelet evicts it first and nothing bounds it", cn)
					case limit < req:
						t.Errorf("%s: ephemeral-storage limit %dMi below its request %dMi", cn, limit, req)
					case limit < workloads.LogsHeadroomMiB:
						t.Errorf("%s: ephemeral-storage limit %dMi below the %d MiB its logs may take (this and the previous instance's files, 5 on a kubelet configured before issue 31): its pod would be evicted for logging", cn, limit, workloads.LogsHeadroomMiB)
					}
					if list == "containers" {
						appLimits += limit
						apps++
					} else {
						initLimit = max(initLimit, limit)
					}
				}
			}
			scratch := 0
			volumes, _ := at(pod, "volumes").([]any)
			for _, v := range volumes {
				if ed := at(v, "emptyDir"); ed != nil && at(ed, "medium") != "Memory" {
					size, ok := quantityMiB(at(ed, "sizeLimit"))
					if !ok {
						t.Errorf("%s: emptyDir %v has no sizeLimit", name, at(v, "name"))
					}
					scratch += size
				}
			}
			if podLimit, need := max(appLimits, initLimit), scratch+apps*workloads.LogsHeadroomMiB; podLimit < need {
				t.Errorf("%s: its containers' disk limits allow %dMi, less than its emptyDirs (%dMi) and its containers' logs (%dMi): "+
					"it would be evicted before an emptyDir reaches its sizeLimit", name, podLimit, scratch, apps*workloads.LogsHeadroomMiB)
			}
		}
	})
}

// kubeletConfiguration returns the KubeletConfiguration of the stack's kubeadm configuration.
func kubeletConfiguration(t *testing.T, r *offline.Result) map[string]any {
	t.Helper()
	for _, doc := range strings.Split(cluster.KubeadmConfig(r.Config, cluster.KubeadmParams{PublicIP: "192.0.2.1", EndpointName: "api.example.com"}), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("kubeadm configuration: %v", err)
		}
		if m["kind"] == "KubeletConfiguration" {
			return m
		}
	}
	t.Fatal("no KubeletConfiguration in the kubeadm configuration")
	return nil
}

func percent(t *testing.T, v any) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSuffix(fmt.Sprint(v), "%"))
	if err != nil || !strings.HasSuffix(fmt.Sprint(v), "%") {
		t.Fatalf("%v is not a percentage", v)
	}
	return n
}

func TestKubeletCleansItsDiskBeforeItEvicts(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		kc := kubeletConfiguration(t, r)
		hard, _ := kc["evictionHard"].(map[string]any)
		// A kubelet given only some hard thresholds sets the others to zero.
		for _, signal := range []string{"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree"} {
			if hard[signal] == nil {
				t.Errorf("evictionHard has no %s: the kubelet would never evict on it", signal)
			}
		}
		soft, _ := kc["evictionSoft"].(map[string]any)
		grace, _ := kc["evictionSoftGracePeriod"].(map[string]any)
		for signal, v := range soft {
			if grace[signal] == nil {
				t.Errorf("evictionSoft %s has no grace period: the kubelet refuses to start", signal)
			}
			if percent(t, v) <= percent(t, hard[signal]) {
				t.Errorf("evictionSoft %s=%v is not above evictionHard's %v", signal, v, hard[signal])
			}
		}
		if soft["nodefs.available"] == nil {
			t.Fatal("no soft eviction threshold on the root filesystem")
		}
		// Unused images go first: garbage collection starts below the soft threshold's usage
		// (ext4 keeps 5% for root, which the kubelet counts as used).
		high, low := kc["imageGCHighThresholdPercent"].(int), kc["imageGCLowThresholdPercent"].(int)
		if softUse := 100 - percent(t, soft["nodefs.available"]) - 5; high >= softUse || low >= high {
			t.Errorf("image GC at %d%% down to %d%% of the disk, want low < high < %d%% (where soft eviction begins)", high, low, softUse)
		}
		// The fit counts disk the way this kubelet computes its allocatable.
		sys, _ := quantityMiB(at(kc, "systemReserved", "ephemeral-storage"))
		kube, _ := quantityMiB(at(kc, "kubeReserved", "ephemeral-storage"))
		for _, n := range fit.Check(r.Config, r.Resources) {
			capacity := cluster.DiskCapacityMiB(n.RootVolumeGiB)
			if want := capacity - sys - kube - capacity*percent(t, hard["nodefs.available"])/100; n.AllocDiskMiB != want || want <= 0 {
				t.Errorf("node %s: the fit offers %dMi of disk, the kubelet configuration %dMi", n.Role, n.AllocDiskMiB, want)
			}
		}
	})
}

// budgetProblem says why the disruption budgets selecting a workload of minReplicas to
// maxReplicas pods fail the rule ("" if they do not): a workload that can run more than one pod
// has exactly one budget, which a drain can never use to take all of its pods at once, nor to
// wait forever (no evictions allowed, or an unready pod held). busyUnready is true for the
// Celery pools, whose pods are unready when busy: their budget must count unready pods
// (IfHealthyBudget), or a drain takes a whole busy pool; every other budget lets unready pods go.
func budgetProblem(minReplicas, maxReplicas int, budgets []any, busyUnready bool) string {
	switch {
	case len(budgets) > 1:
		return fmt.Sprintf("%d PodDisruptionBudgets select its pods: the eviction API refuses to evict them at all", len(budgets))
	case len(budgets) == 0 && maxReplicas > 1:
		return fmt.Sprintf("runs up to %d pods and has no PodDisruptionBudget: a drain may evict them all at once", maxReplicas)
	case len(budgets) == 0:
		return ""
	}
	spec := at(budgets[0], "spec")
	policy := at(spec, "unhealthyPodEvictionPolicy")
	switch {
	case busyUnready && policy != "IfHealthyBudget":
		return fmt.Sprintf("its pods are unready while busy, and its budget lets a drain evict every unready pod (unhealthyPodEvictionPolicy %v, not IfHealthyBudget): a drain may take the whole busy pool", policy)
	case !busyUnready && policy != "AlwaysAllow":
		return "its budget holds pods that are not Ready (unhealthyPodEvictionPolicy is not AlwaysAllow): a crash-looping pod blocks a drain"
	}
	mu, hasMax := at(spec, "maxUnavailable").(float64)
	ma, hasMin := at(spec, "minAvailable").(float64)
	switch {
	case !hasMax && !hasMin:
		return "its budget sets neither maxUnavailable nor minAvailable as a number of pods"
	case hasMax && mu < 1, hasMin && int(ma) >= minReplicas:
		return fmt.Sprintf("its budget allows no eviction of its %d pod(s): a drain waits forever", minReplicas)
	case minReplicas > 1 && (hasMax && int(mu) >= minReplicas || hasMin && ma < 1):
		return fmt.Sprintf("its budget lets a drain evict all %d pods at once", minReplicas)
	}
	return ""
}

func TestBudgetProblemCatchesBudgetsThatFailADrain(t *testing.T) {
	budget := func(kv ...any) any {
		spec := map[string]any{"unhealthyPodEvictionPolicy": "AlwaysAllow"}
		if len(kv) > 0 && kv[0] == "busy" {
			spec["unhealthyPodEvictionPolicy"] = "IfHealthyBudget"
			kv = kv[1:]
		}
		for i := 0; i < len(kv); i += 2 {
			spec[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"spec": spec}
	}
	for _, c := range []struct {
		name     string
		min, max int
		budgets  []any
		problem  bool
		busy     bool
	}{
		{"a pool of three, one at a time", 3, 3, []any{budget("maxUnavailable", 1.0)}, false, false},
		{"a pool of three without a budget", 3, 3, nil, true, false},
		{"a pool of one that scales to four, without a budget", 1, 4, nil, true, false},
		{"a pool of two that may lose both", 2, 3, []any{budget("maxUnavailable", 2.0)}, true, false},
		{"a pool of two that keeps none", 2, 2, []any{budget("minAvailable", 0.0)}, true, false},
		{"a single pod without a budget", 1, 1, nil, false, false},
		{"a single pod that may go", 1, 1, []any{budget("maxUnavailable", 1.0)}, false, false},
		{"a single pod held forever", 1, 1, []any{budget("minAvailable", 1.0)}, true, false},
		{"a budget that holds unready pods", 3, 3, []any{map[string]any{"spec": map[string]any{"maxUnavailable": 1.0}}}, true, false},
		{"two budgets", 3, 3, []any{budget("maxUnavailable", 1.0), budget("maxUnavailable", 1.0)}, true, false},
		{"a Celery pool whose busy workers all may go", 3, 3, []any{budget("maxUnavailable", 1.0)}, true, true},
		{"a Celery pool that keeps its budget", 3, 3, []any{budget("busy", "maxUnavailable", 1.0)}, false, true},
		{"an API service that holds unready pods", 2, 4, []any{budget("busy", "maxUnavailable", 1.0)}, true, false},
	} {
		if got := budgetProblem(c.min, c.max, c.budgets, c.busy) != ""; got != c.problem {
			t.Errorf("%s: problem = %v, want %v", c.name, got, c.problem)
		}
	}
}

func TestEveryPoolHasADisruptionBudgetThatLetsADrainFinish(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		budgets := objects(r, "PodDisruptionBudget")
		maxima := fit.Maxima(r.Resources)
		used := map[string]bool{}
		budgeted := 0
		for _, kind := range []string{"Deployment", "StatefulSet"} {
			for name, obj := range objects(r, kind) {
				ns := strings.SplitN(name, "/", 2)[0]
				podLabels, _ := at(obj, "spec", "template", "metadata", "labels").(map[string]any)
				var selecting []any
				for _, key := range slices.Sorted(maps.Keys(budgets)) {
					sel, _ := at(budgets[key], "spec", "selector", "matchLabels").(map[string]any)
					if strings.HasPrefix(key, ns+"/") && len(sel) > 0 && subset(sel, podLabels) {
						selecting = append(selecting, budgets[key])
						used[key] = true
					}
				}
				replicas := 1
				if n, ok := at(obj, "spec", "replicas").(float64); ok {
					replicas = int(n)
				}
				most := replicas
				if m, ok := maxima[name]; ok && kind == "Deployment" {
					most = max(most, m)
				}
				if most > 1 {
					budgeted++
				}
				busy := false
				for _, pool := range workloads.CeleryPools(r.Config) {
					busy = busy || name == workloads.NamespaceApp+"/celery-"+pool.Name
				}
				if p := budgetProblem(replicas, most, selecting, busy); p != "" {
					t.Errorf("%s %s (%d to %d pods): %s", kind, name, replicas, most, p)
				}
			}
		}
		// The Celery pools, the API services and the brokers at least.
		if budgeted < 7 {
			t.Errorf("only %d workloads run more than one pod; the check is not seeing the pools", budgeted)
		}
		for key := range budgets {
			if !used[key] {
				t.Errorf("PodDisruptionBudget %s selects no Deployment or StatefulSet of the program", key)
			}
		}
	})
}

// subset reports whether every label of sel is in labels with the same value.
func subset(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
