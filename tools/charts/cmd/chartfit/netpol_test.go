package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var testNetwork = clusterNetwork{master: netip.MustParseAddr("10.0.1.10"), pods: netip.MustParsePrefix("192.168.0.0/16")}

// withPolicies adds to a test render what the network policy check reads beside the charts: the
// program's NetworkPolicies (manifests/) and the kubeadm configuration with the master's
// address and the pod network.
func withPolicies(t *testing.T, dir string, policies ...map[string]any) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		name := dig(p, "metadata")["name"].(string)
		if err := os.WriteFile(filepath.Join(dir, "manifests", "networkpolicy-"+name+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kubeadm := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.1.10\n---\n" +
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 192.168.0.0/16\n"
	if err := os.MkdirAll(filepath.Join(dir, "kubeadm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeadm", "test-kubeadm-init.yaml"), []byte(kubeadm), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// policy is a kube-system NetworkPolicy selecting pods (nil: every pod), with ingress rules.
func policy(name string, pods map[string]any, ingress ...any) map[string]any {
	spec := map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress", "Egress"}}
	if pods != nil {
		spec["podSelector"] = map[string]any{"matchLabels": pods}
	}
	if len(ingress) > 0 {
		spec["ingress"] = ingress
	}
	return map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": name, "namespace": "kube-system"}, "spec": spec}
}

func rule(from []any, ports ...any) map[string]any {
	return map[string]any{"from": from, "ports": ports}
}
func tcpPort(p int) any { return map[string]any{"protocol": "TCP", "port": p} }
func udpPort(p int) any { return map[string]any{"protocol": "UDP", "port": p} }
func block(cidr string, except ...string) any {
	ex := []any{}
	for _, e := range except {
		ex = append(ex, e)
	}
	return map[string]any{"ipBlock": map[string]any{"cidr": cidr, "except": ex}}
}

var (
	everyNamespace = map[string]any{"namespaceSelector": map[string]any{}}
	nodes          = []any{block("10.0.0.0/16"), block("192.168.0.0/16")}
	// coreDNS lets every pod and node ask kubeadm's CoreDNS, and anyone its metrics (no
	// ServiceMonitor is rendered in these tests).
	coreDNS = policy("coredns", map[string]any{"k8s-app": "kube-dns"},
		rule(append([]any{everyNamespace}, nodes...), udpPort(53), tcpPort(53)), rule(nil, tcpPort(9153)))
	defaultDeny = policy("default-deny", nil)
)

// The real metrics-server chart in kube-system, with the program's policies as given: the
// check passes only when kube-system denies by default, metrics-server has a policy of its own,
// and the API server reaches its port (10250, the target of the APIService's Service) from the
// master's address and from its tunnel address; and kubeadm's CoreDNS answers every pod.
func TestKubeSystemPodsAgainstThePolicies(t *testing.T) {
	charts := chartsDir(t)
	ms := map[string]any{"app.kubernetes.io/name": "metrics-server"}
	for _, c := range []struct {
		name     string
		values   map[string]any
		policies []map[string]any
		want     []string // each must appear in one finding; none means no network policy finding
	}{
		{"every flow admitted", nil, []map[string]any{defaultDeny, coreDNS, policy("metrics-server", ms, rule(nodes, tcpPort(10250)))}, nil},
		{"no policy at all", nil, nil, []string{
			"namespace kube-system has no default-deny NetworkPolicy",
			"release metrics-server, pod Deployment metrics-server: no NetworkPolicy of its own in kube-system selects this pod",
			"release metrics-server, pod Deployment metrics-server: port 10250/TCP of container metrics-server is reached by the API server (the master's address or its tunnel address) through APIService v1beta1.metrics.k8s.io -> Service metrics-server, but no ingress rule",
			"pod Deployment coredns (kubeadm): port 53/UDP of container coredns is reached by every pod of every namespace through the cluster's DNS",
			"pod Deployment coredns (kubeadm): port 53/TCP of container coredns is reached by the nodes",
		}},
		{"the API server's tunnel address left out", nil, []map[string]any{defaultDeny, coreDNS, policy("metrics-server", ms, rule([]any{block("10.0.0.0/16")}, tcpPort(10250)))},
			[]string{"port 10250/TCP of container metrics-server is reached by the API server"}},
		{"the master's address excepted", nil, []map[string]any{defaultDeny, coreDNS, policy("metrics-server", ms, rule([]any{block("10.0.0.0/16", "10.0.1.0/24"), block("192.168.0.0/16")}, tcpPort(10250)))},
			[]string{"port 10250/TCP of container metrics-server is reached by the API server"}},
		{"the wrong port", nil, []map[string]any{defaultDeny, coreDNS, policy("metrics-server", ms, rule(nodes, tcpPort(443)))},
			[]string{"port 10250/TCP of container metrics-server is reached by the API server"}},
		{"the port by its name", nil, []map[string]any{defaultDeny, coreDNS, policy("metrics-server", ms, rule(nodes, map[string]any{"protocol": "TCP", "port": "https"}))}, nil},
		{"an ingress-only policy of its own", nil, []map[string]any{defaultDeny, coreDNS, func() map[string]any {
			p := policy("metrics-server", ms, rule(nodes, tcpPort(10250)))
			dig(p, "spec")["policyTypes"] = []any{"Ingress"}
			return p
		}()}, []string{"pod Deployment metrics-server: its NetworkPolicies (metrics-server) do not cover both directions: Ingress true, Egress false"}},
		// (The pod network's address block would admit every pod, and the nodes' tunnel addresses.)
		{"DNS from one namespace only", nil, []map[string]any{defaultDeny, policy("metrics-server", ms, rule(nodes, tcpPort(10250))),
			policy("coredns", map[string]any{"k8s-app": "kube-dns"},
				rule([]any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "app"}}}, block("10.0.0.0/16")}, udpPort(53), tcpPort(53)),
				rule(nil, tcpPort(9153)))},
			[]string{"port 53/UDP of container coredns is reached by every pod of every namespace", "port 53/TCP of container coredns is reached by every pod of every namespace",
				"port 53/UDP of container coredns is reached by the nodes"}},
		// On the host's network the pod is the node: no policy governs it, none is asked of it.
		{"metrics-server on the host's network", map[string]any{"hostNetwork": map[string]any{"enabled": true}}, []map[string]any{defaultDeny, coreDNS}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var report strings.Builder
			findings, err := run(withPolicies(t, stack(t, metricsServer(c.values), metricsServerPod), c.policies...), charts, &report)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range findings {
				if strings.Contains(f.String(), "NetworkPolicy") || strings.Contains(f.String(), "ingress rule") || strings.Contains(f.String(), "directions") {
					got = append(got, f.String())
				}
			}
			if len(c.want) == 0 && len(got) > 0 {
				t.Fatalf("want no network policy finding, got:\n%s\n\nreport:\n%s", strings.Join(got, "\n"), report.String())
			}
			for _, w := range c.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no finding contains %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// A Service a ServiceMonitor selects is reached by the Prometheus pods the operator makes:
// their labels (the operator's selector labels) must be admitted, from the Prometheus's own
// namespace.
func TestServiceMonitorTargetsAreAdmittedFromPrometheus(t *testing.T) {
	pod := systemPod{owner: "kubeadm", kind: "Deployment", name: "coredns", labels: map[string]string{"k8s-app": "kube-dns"},
		spec: map[string]any{"containers": []any{map[string]any{"name": "coredns", "ports": []any{map[string]any{"name": "metrics", "containerPort": 9153.0}}}}}}
	all := []owned{
		{"release kube-prometheus-stack", "kube-system", map[string]any{"kind": "Service", "metadata": map[string]any{"name": "coredns-metrics", "labels": map[string]any{"app": "coredns-metrics"}},
			"spec": map[string]any{"selector": map[string]any{"k8s-app": "kube-dns"}, "ports": []any{map[string]any{"name": "http-metrics", "port": 9153.0, "targetPort": 9153.0}}}}},
		{"release kube-prometheus-stack", "monitoring", map[string]any{"kind": "ServiceMonitor", "metadata": map[string]any{"name": "coredns"},
			"spec": map[string]any{"namespaceSelector": map[string]any{"matchNames": []any{"kube-system"}}, "selector": map[string]any{"matchLabels": map[string]any{"app": "coredns-metrics"}},
				"endpoints": []any{map[string]any{"port": "http-metrics"}}}}},
		{"release kube-prometheus-stack", "monitoring", map[string]any{"kind": "Prometheus", "metadata": map[string]any{"name": "main"}}},
	}
	reaches, _, unresolved := reachesOf(pod, all, prometheusPods(all), testNetwork)
	if len(reaches) != 1 || reaches[0].from.pod == nil || reaches[0].port.number != 9153 || len(unresolved) > 0 {
		t.Fatalf("reaches %+v, unresolved %v; want 9153 from Prometheus monitoring/main", reaches, unresolved)
	}
	fromPrometheus := func(ns string, labels map[string]any) []netPolicy {
		peer := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}}, "podSelector": map[string]any{"matchLabels": labels}}
		return []netPolicy{{"kube-system", "coredns", dig(policy("coredns", map[string]any{"k8s-app": "kube-dns"}, rule([]any{peer}, tcpPort(9153))), "spec")}}
	}
	for _, c := range []struct {
		name     string
		policies []netPolicy
		want     bool
	}{
		{"Prometheus's pods", fromPrometheus("monitoring", map[string]any{"app.kubernetes.io/name": "prometheus"}), true},
		{"by its instance", fromPrometheus("monitoring", map[string]any{"prometheus": "main"}), true},
		{"another namespace", fromPrometheus("app", map[string]any{"app.kubernetes.io/name": "prometheus"}), false},
		{"other pods", fromPrometheus("monitoring", map[string]any{"app.kubernetes.io/name": "grafana"}), false},
	} {
		if got := admitted(c.policies, pod, reaches[0], testNetwork); got != c.want {
			t.Errorf("%s: admitted = %v, want %v", c.name, got, c.want)
		}
	}
}

// A pod's address is anywhere in the pod network: an address block admits every pod only when it
// holds all of it, and "every namespace" is an empty namespace selector with no pod selector.
func TestEveryPodIsAdmittedOnlyByWhatHoldsEveryPod(t *testing.T) {
	every := source{everyPod: true}
	for _, c := range []struct {
		name  string
		peers []any
		want  bool
	}{
		{"no peer: anyone", nil, true},
		{"every namespace", []any{everyNamespace}, true},
		{"the pod network", []any{block("192.168.0.0/16")}, true},
		{"part of the pod network", []any{block("192.168.0.0/17")}, false},
		{"the pod network but a block", []any{block("192.168.0.0/16", "192.168.10.0/24")}, false},
		{"every namespace, some pods", []any{map[string]any{"namespaceSelector": map[string]any{}, "podSelector": map[string]any{"matchLabels": map[string]any{"a": "b"}}}}, false},
		{"one namespace", []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "app"}}}}, false},
	} {
		if got := peersAdmit("kube-system", c.peers, every, testNetwork); got != c.want {
			t.Errorf("%s: every pod admitted = %v, want %v", c.name, got, c.want)
		}
	}
}

// The embedded kubeadm objects are what the check says they are: CoreDNS on the pod network
// with DNS on 53 over UDP and TCP behind the kube-dns Service, kube-proxy on the host's.
func TestKubeadmSystemObjects(t *testing.T) {
	objs, err := parseManifests(kubeadmSystem, nil)
	if err != nil {
		t.Fatal(err)
	}
	var all []owned
	for _, o := range objs {
		all = append(all, owned{"kubeadm", str(dig(o.Map, "metadata"), "namespace"), o.Map})
	}
	pods := systemPods(all)
	if len(pods) != 2 || pods[0].name != "coredns" || pods[0].hostNetwork || pods[1].name != "kube-proxy" || !pods[1].hostNetwork {
		t.Fatalf("kubeadm's pods: %+v", pods)
	}
	reaches, probes, _ := reachesOf(pods[0], all, nil, testNetwork)
	var got []string
	for _, r := range reaches {
		got = append(got, r.port.String()+" "+r.from.what)
	}
	for _, want := range []string{"53/UDP every pod of every namespace", "53/TCP every pod of every namespace", "53/UDP the nodes", "53/TCP the nodes", "9153/TCP whoever uses it"} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}
		if !found {
			t.Errorf("CoreDNS is not reached as %q; reached: %v", want, got)
		}
	}
	if len(probes) != 2 || probes[0].number != 8080 || probes[1].number != 8181 {
		t.Errorf("CoreDNS's probes: %v, want 8080 and 8181", probes)
	}
}
