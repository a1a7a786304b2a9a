package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestFlagValueReadsEveryFormOfAGoFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"--config-reloader-cpu-request=10m"}, "10m", true},
		{[]string{"-config-reloader-cpu-request=20m"}, "20m", true},
		{[]string{"--config-reloader-cpu-request", "30m"}, "30m", true},
		{[]string{"--config-reloader-cpu-request=1m", "--config-reloader-cpu-request=2m"}, "2m", true}, // the last wins
		{[]string{"--config-reloader-cpu-limit=10m"}, "", false},
	} {
		got, ok := flagValue(c.args, "config-reloader-cpu-request")
		if got != c.want || ok != c.ok {
			t.Errorf("flagValue(%q) = %q, %v; want %q, %v", c.args, got, ok, c.want, c.ok)
		}
	}
}

// The operator's reloader requests come from its args; an absent arg takes the operator's
// default, and "0" (the chart's default) leaves the containers without a request.
func TestOperatorPodTakesTheReloaderRequestsFromTheOperatorArgs(t *testing.T) {
	operator := func(args ...string) Object {
		all := append([]any{"--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.86.2"}, toAny(args)...)
		return Object{Map: map[string]any{"kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "operator", "args": all}},
		}}}}}
	}
	cr := map[string]any{"kind": "Prometheus", "metadata": map[string]any{"name": "p"}, "spec": map[string]any{
		"replicas": 2.0, "resources": map[string]any{"requests": map[string]any{"cpu": "150m", "memory": "1Gi"}},
	}}
	for _, c := range []struct {
		name     string
		op       Object
		reloader Container
	}{
		{"flags set", operator("--config-reloader-cpu-request=10m", "--config-reloader-memory-request=32Mi"), Container{MilliCPU: 10, MemMiB: 32, HasCPU: true, HasMem: true}},
		{"flags absent: the operator's defaults", operator(), Container{MilliCPU: 10, MemMiB: 50, HasCPU: true, HasMem: true}},
		{"flags 0: no request", operator("--config-reloader-cpu-request=0", "--config-reloader-memory-request=0"), Container{}},
	} {
		p, err := operatorPod(Pod{Name: "p", Kind: "Prometheus", Replicas: 1}, cr, []Object{c.op})
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "prometheus-p" || p.Replicas != 2 || len(p.Containers) != 3 {
			t.Fatalf("%s: pod %s x%d with %d containers, want prometheus-p x2 with prometheus, config-reloader, init-config-reloader", c.name, p.Name, p.Replicas, len(p.Containers))
		}
		if main := p.Containers[0]; main.Name != "prometheus" || main.MilliCPU != 150 || main.MemMiB != 1024 {
			t.Errorf("%s: main container %+v, want prometheus 150m/1024Mi from spec.resources", c.name, main)
		}
		for _, got := range p.Containers[1:] {
			want := c.reloader
			want.Name, want.Init = got.Name, got.Name == "init-config-reloader"
			if got != want {
				t.Errorf("%s: %+v, want %+v", c.name, got, want)
			}
		}
	}
	if _, err := operatorPod(Pod{Name: "p", Kind: "Prometheus"}, cr, nil); err == nil {
		t.Error("a Prometheus with no operator rendered must be refused: its reloader's requests are unknown")
	}
}

func TestPlacementNeedsARoleAndTheMastersToleration(t *testing.T) {
	roles := map[string]map[string]string{"master": {controlPlaneTaint: ""}, "worker-1": {"workload": "application"}}
	tolerate := []any{map[string]any{"key": controlPlaneTaint, "operator": "Exists", "effect": "NoSchedule"}}
	for _, c := range []struct {
		name        string
		pod         Pod
		role, issue string
	}{
		{"worker", Pod{NodeSelector: map[string]string{"workload": "application", "kubernetes.io/os": "linux"}}, "worker-1", ""},
		{"master", Pod{NodeSelector: map[string]string{controlPlaneTaint: ""}, Tolerations: tolerate}, "master", ""},
		{"master without toleration", Pod{NodeSelector: map[string]string{controlPlaneTaint: ""}}, "master", "does not tolerate"},
		{"unpinned", Pod{}, "", "not pinned"},
		{"unknown label", Pod{NodeSelector: map[string]string{"workload": "gpu"}}, "", "matches no node role"},
		{"DaemonSet everywhere", Pod{DaemonSet: true, Tolerations: []any{map[string]any{"operator": "Exists"}}}, "", ""},
		{"DaemonSet off the master", Pod{DaemonSet: true}, "", "every node but the master"},
	} {
		role, issue := placement(c.pod, roles)
		if role != c.role || (c.issue == "") != (issue == "") || !strings.Contains(issue, c.issue) {
			t.Errorf("%s: placement = %q, %q; want %q and a problem containing %q", c.name, role, issue, c.role, c.issue)
		}
	}
	if !runsNowhere(Pod{NodeSelector: map[string]string{"kubernetes.io/os": "windows"}}) {
		t.Error("a pod selecting Windows nodes runs nowhere on this platform")
	}
}

// chartsDir is the chart cache the real-chart tests render from: $CHARTS or ../shared/charts
// beside the repository. A missing cache fails the test: skipping would hide the proof.
func chartsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CHARTS")
	if dir == "" {
		dir = defaultChartsDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics-server-3.13.0.tgz")); err != nil {
		t.Fatalf("the chart cache %s lacks the pinned charts (set CHARTS to the folder): %v", dir, err)
	}
	return dir
}

// stack writes a render's two input files for one release.
func stack(t *testing.T, r Release, pods ...TablePod) string {
	t.Helper()
	dir := t.TempDir()
	b, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "helm-releases.yaml"), append([]byte("# "+r.Name+"\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	table := Table{Stack: "test", KubernetesVersion: "1.35.4",
		Charts: map[string]string{"metrics-server": "metrics-server-3.13.0.tgz", "kube-prometheus-stack": "kube-prometheus-stack-79.7.1.tgz"},
		Roles:  map[string]map[string]string{"master": {controlPlaneTaint: ""}, "worker-1": {"workload": "application"}},
		Pods:   pods,
		// The image checks have their own test (images_test.go): here the chart's image runs by tag.
		ImageDigests: map[string]string{"example.com/other:1": "sha256:" + strings.Repeat("0", 64)},
		TagOnly:      map[string]string{"registry.k8s.io/metrics-server/metrics-server:v0.8.0": "the pod-table tests"}}
	j, err := json.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chart-pods.json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func metricsServer(values map[string]any) Release {
	v := map[string]any{"nodeSelector": map[string]any{"workload": "application"},
		"resources": map[string]any{"requests": map[string]any{"cpu": "50m", "memory": "64Mi"}}}
	for k, val := range values {
		v[k] = val
	}
	return Release{Name: "metrics-server", Namespace: "kube-system", Chart: "metrics-server", Version: "3.13.0", Values: v}
}

var metricsServerPod = TablePod{Release: "metrics-server", Name: "metrics-server", Role: "worker-1", Replicas: 1, Containers: []Requests{{50, 64, 0}}}

// The real metrics-server chart, rendered: a table that agrees passes, and each kind of
// disagreement, or a values set that leaves a container without a request, fails with a message
// naming the release, the pod and what differs.
func TestTheRealChartAgainstTheTable(t *testing.T) {
	charts := chartsDir(t)
	other := metricsServerPod
	other.Name = "metrics-server-extra"
	twice, bigger, elsewhere := metricsServerPod, metricsServerPod, metricsServerPod
	twice.Replicas = 2
	bigger.Containers = []Requests{{100, 64, 0}}
	elsewhere.Role = "master"
	// Disk requests reach the pod through the chart's resources value, or the table is wrong.
	withDisk := metricsServerPod
	withDisk.Containers = []Requests{{50, 64, 16}}
	diskValues := map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "16Mi"}}}
	for _, c := range []struct {
		name    string
		release Release
		pods    []TablePod
		want    []string // each must appear in one finding; none means the check passes
	}{
		{"agrees", metricsServer(nil), []TablePod{metricsServerPod}, nil},
		{"values without a request", metricsServer(map[string]any{"resources": map[string]any{"requests": nil}}), []TablePod{metricsServerPod},
			[]string{"release metrics-server, pod metrics-server, container metrics-server: container has no CPU or memory request"}},
		{"a pod the table misses", metricsServer(nil), nil, []string{"pod metrics-server: the chart renders this pod (Deployment, 1 replicas on worker-1"}},
		{"a table pod the chart does not render", metricsServer(nil), []TablePod{metricsServerPod, other}, []string{"pod metrics-server-extra: workloads.ChartPods() lists this pod, but the chart does not render it"}},
		{"replicas", metricsServer(nil), []TablePod{twice}, []string{"replicas: the chart renders 1, workloads.ChartPods() says 2"}},
		{"request", metricsServer(nil), []TablePod{bigger}, []string{"container metrics-server: requests 50m/64Mi, which no entry of workloads.ChartPods() for this pod has (unmatched there: 100m/64Mi)"}},
		{"node role", metricsServer(nil), []TablePod{elsewhere}, []string{"node role: the chart renders worker-1, workloads.ChartPods() says master"}},
		{"disk agrees", metricsServer(diskValues), []TablePod{withDisk}, nil},
		{"disk the values do not set", metricsServer(nil), []TablePod{withDisk},
			[]string{"container metrics-server: requests 50m/64Mi, which no entry of workloads.ChartPods() for this pod has (unmatched there: 50m/64Mi/disk 16Mi)"}},
		{"container count", metricsServer(map[string]any{"addonResizer": map[string]any{"enabled": true, "resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}}}}), []TablePod{metricsServerPod},
			[]string{"2 containers rendered (metrics-server 50m/64Mi, metrics-server-nanny 10m/32Mi), workloads.ChartPods() lists 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			findings, err := run(stack(t, c.release, c.pods...), charts, &strings.Builder{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range findings {
				got = append(got, f.String())
			}
			if len(c.want) == 0 && len(got) > 0 {
				t.Fatalf("want no finding, got:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range c.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("no finding contains %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// The issue's own case, on the real kube-prometheus-stack: without the reloader's resources in the
// values, the operator runs every Prometheus and Alertmanager pod's config reloaders without a
// request; with them, they carry the requests given.
func TestTheRealPrometheusConfigReloaderNeedsItsValues(t *testing.T) {
	charts := chartsDir(t)
	for _, withValues := range []bool{false, true} {
		values := map[string]any{}
		if withValues {
			values["prometheusOperator"] = map[string]any{"prometheusConfigReloader": map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}}}}
		}
		dir := stack(t, Release{Name: "kube-prometheus-stack", Namespace: "monitoring", Chart: "kube-prometheus-stack", Version: "79.7.1", Values: values})
		releases, err := readReleases(dir)
		if err != nil {
			t.Fatal(err)
		}
		table, err := readTable(dir)
		if err != nil {
			t.Fatal(err)
		}
		pods, _, err := renderPods(releases, table, dir, charts, &strings.Builder{})
		if err != nil {
			t.Fatal(err)
		}
		var reloaders []Container
		for _, p := range pods {
			if p.Kind == "Prometheus" || p.Kind == "Alertmanager" {
				for _, c := range p.Containers {
					if strings.HasSuffix(c.Name, "config-reloader") {
						reloaders = append(reloaders, c)
					}
				}
			}
		}
		if len(reloaders) != 4 {
			t.Fatalf("found %d config reloaders, want 4 (a config-reloader and an init-config-reloader in each of the Prometheus and Alertmanager pods): %+v", len(reloaders), reloaders)
		}
		findings := checkRequests(pods)
		for _, c := range reloaders {
			refused := false
			for _, f := range findings {
				refused = refused || (f.Container == c.Name && strings.Contains(f.Problem, "no CPU or memory request"))
			}
			if withValues && (c.MilliCPU != 10 || c.MemMiB != 32 || refused) {
				t.Errorf("with the values: %+v, want 10m/32Mi and no finding", c)
			}
			if !withValues && (c.HasCPU || c.HasMem || !refused) {
				t.Errorf("without the values: %+v should have no request and be refused (findings %v)", c, findings)
			}
		}
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
