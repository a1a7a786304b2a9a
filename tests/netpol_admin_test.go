package tests

import (
	"fmt"
	"slices"
	"testing"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// TestAdminServersTakeOnlyTheALBsTraffic: Argo CD's server and Grafana, which the ALB limits to
// the admin ranges, accept from outside their namespace only what comes from the VPC: their
// Services keep the client's address (traffic policy Local), so the ALB's requests carry the
// ALB's addresses, and no pod address (the pod network, the nodes' tunnel addresses in it) is
// let in. Grafana ran on the master, reached through another node's tunnel address, and so let
// in every pod; it now runs on a registered worker.
func TestAdminServersTakeOnlyTheALBsTraffic(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, tc := range []struct{ policy, release string }{
			{"argocd/argocd-server", "sesacthon-argocd-argo-cd"},
			{"monitoring/grafana", "sesacthon-monitoring-kube-prometheus-stack"},
		} {
			np := objects(r, "NetworkPolicy")[tc.policy]
			var peers []string
			for _, rule := range asList(at(np, "spec", "ingress")) {
				for _, from := range asList(at(rule, "from")) {
					peers = append(peers, fmt.Sprint(at(from, "ipBlock", "cidr")))
				}
			}
			if len(peers) != 1 || peers[0] != r.Config.VPCCIDR.String() {
				t.Errorf("%s takes traffic from %v, want only the VPC %s (not the pod network %s)", tc.policy, peers, r.Config.VPCCIDR, workloads.PodCIDR)
			}
			values := manifest.PlainMap(must(t, r, "kubernetes:helm.sh/v3:Release", tc.release).Inputs)["values"]
			service := at(values, "server", "service")
			if tc.policy == "monitoring/grafana" {
				service = at(values, "grafana", "service")
			}
			if p := at(service, "externalTrafficPolicy"); p != "Local" {
				t.Errorf("%s's Service has traffic policy %v: without Local the ALB's requests arrive from a node's tunnel address", tc.policy, p)
			}
			// On worker-1, whose CPU the APIs at their maximum request whole, an update of
			// Grafana replaces its pod instead of adding a second one that could not be placed.
			if s := at(values, "grafana", "deploymentStrategy", "type"); tc.policy == "monitoring/grafana" && s != "Recreate" {
				t.Errorf("Grafana's update strategy is %v, want Recreate", s)
			}
		}
	})
}

// TestLoggingIsDeniedByDefault: the logging namespace, whose Fluent Bit reads every node's logs
// with the host's paths, denies everything by default like the application's and data's; Fluent
// Bit may reach DNS, the API server (pod metadata) and HTTPS outside the cluster (CloudWatch Logs,
// STS), and nothing may connect to it.
func TestLoggingIsDeniedByDefault(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nps := objects(r, "NetworkPolicy")
		deny := nps[workloads.NamespaceLogging+"/default-deny"]
		if fmt.Sprint(at(deny, "spec", "policyTypes")) != "[Ingress Egress]" || at(deny, "spec", "ingress") != nil || at(deny, "spec", "egress") != nil {
			t.Errorf("logging's default-deny is %v", at(deny, "spec"))
		}
		if nps[workloads.NamespaceLogging+"/allow-dns"] == nil {
			t.Error("logging has no DNS egress")
		}
		fb := nps[workloads.NamespaceLogging+"/fluent-bit"]
		var to []string
		for _, rule := range asList(at(fb, "spec", "egress")) {
			for _, peer := range asList(at(rule, "to")) {
				for _, port := range asList(at(rule, "ports")) {
					to = append(to, fmt.Sprintf("%v:%v", at(peer, "ipBlock", "cidr"), at(port, "port")))
				}
			}
		}
		want := []string{workloads.APIServerServiceIP + "/32:443", workloads.APIServerServiceIP + "/32:6443",
			r.Config.MasterPrivateIP().String() + "/32:443", r.Config.MasterPrivateIP().String() + "/32:6443", "0.0.0.0/0:443"}
		if fmt.Sprint(to) != fmt.Sprint(want) || at(fb, "spec", "ingress") != nil || fmt.Sprint(at(fb, "spec", "policyTypes")) != "[Ingress Egress]" {
			t.Errorf("fluent-bit may reach %v and takes ingress %v, want only %v and no ingress", to, at(fb, "spec", "ingress"), want)
		}
	})
}

// TestEveryNamespaceOfThePlatformDeniesByDefault: every namespace the program puts an object or
// a chart in, but the system ones, has a default-deny NetworkPolicy for both directions and DNS;
// a namespace made later falls under the Calico tier after the default one, whose one policy
// lets its pods reach DNS and nothing else. Its selector leaves out exactly the system namespaces
// (Pod Security's exemptions, and Calico's API server).
func TestEveryNamespaceOfThePlatformDeniesByDefault(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		used := map[string]bool{}
		for _, res := range r.Resources {
			if obj, ok := manifest.KubernetesObject(res); ok {
				if ns, _ := at(obj, "metadata", "namespace").(string); ns != "" {
					used[ns] = true
				}
			}
			if res.Type == "kubernetes:helm.sh/v3:Release" {
				used[str(res, "namespace")] = true
			}
		}
		nps := objects(r, "NetworkPolicy")
		for ns := range used {
			if slices.Contains(workloads.NetworkDefaultExempt, ns) {
				continue
			}
			deny := nps[ns+"/default-deny"]
			selects, _ := at(deny, "spec", "podSelector", "matchLabels").(map[string]any)
			if fmt.Sprint(at(deny, "spec", "policyTypes")) != "[Ingress Egress]" || at(deny, "spec", "ingress") != nil || at(deny, "spec", "egress") != nil ||
				len(selects) != 0 {
				t.Errorf("namespace %s has no default-deny for both directions (%v)", ns, at(deny, "spec"))
			}
			if nps[ns+"/allow-dns"] == nil {
				t.Errorf("namespace %s has no DNS egress", ns)
			}
		}
		if !used[workloads.NamespaceKEDA] || !used[workloads.NamespaceLogging] {
			t.Fatalf("the charts' namespaces were not found among %v", used)
		}
		for _, ns := range cluster.PodSecurityExempt {
			if !slices.Contains(workloads.NetworkDefaultExempt, ns) {
				t.Errorf("%s is exempt from Pod Security but not from the namespace default: its host pods' flows are not listed", ns)
			}
		}
		tier := objects(r, "Tier")["<nil>/namespace-defaults"]
		if o, _ := at(tier, "spec", "order").(float64); o <= 1_000_000 || o >= 10_000_000 || at(tier, "spec", "defaultAction") != "Deny" {
			t.Errorf("tier namespace-defaults: %v; want an order after Calico's default tier (1,000,000) and before kube-baseline (10,000,000), default Deny", at(tier, "spec"))
		}
		gnp := objects(r, "GlobalNetworkPolicy")["<nil>/namespace-defaults.dns-then-deny"]
		if at(gnp, "spec", "tier") != "namespace-defaults" || at(gnp, "spec", "namespaceSelector") != `kubernetes.io/metadata.name not in {"calico-apiserver", "calico-system", "kube-system", "tigera-operator"}` {
			t.Errorf("the namespace default policy is %v", at(gnp, "spec"))
		}
		egress := asList(at(gnp, "spec", "egress"))
		if len(egress) != 3 || at(egress[0], "destination", "selector") != `k8s-app == "kube-dns"` || fmt.Sprint(at(egress[0], "destination", "ports")) != "[53]" ||
			at(egress[2], "action") != "Deny" || at(egress[2], "destination") != nil || fmt.Sprint(at(gnp, "spec", "ingress")) != "[map[action:Deny]]" {
			t.Errorf("the namespace default lets through more than DNS: egress %v ingress %v", egress, at(gnp, "spec", "ingress"))
		}
	})
}

// TestKEDATakesOnlyTheAPIServersCalls: KEDA's metrics server and webhooks accept, from outside
// their namespace, only the API server's calls (from a node's or a tunnel address) on their one
// port each; the operator reaches RabbitMQ's AMQP port and nothing else of the data namespace.
func TestKEDATakesOnlyTheAPIServersCalls(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nps := objects(r, "NetworkPolicy")
		for name, port := range map[string]string{"keda-metrics-apiserver": "6443", "keda-admission-webhooks": "9443"} {
			var from []string
			for _, rule := range asList(at(nps["keda/"+name], "spec", "ingress")) {
				for _, peer := range asList(at(rule, "from")) {
					for _, p := range asList(at(rule, "ports")) {
						from = append(from, fmt.Sprintf("%v:%v", at(peer, "ipBlock", "cidr"), at(p, "port")))
					}
				}
			}
			want := []string{r.Config.VPCCIDR.String() + ":" + port, workloads.PodCIDR + ":" + port}
			if fmt.Sprint(from) != fmt.Sprint(want) {
				t.Errorf("%s takes %v, want %v", name, from, want)
			}
		}
		op := nps["keda/keda-operator"]
		if to := at(op, "spec", "egress", 0, "to", 0, "podSelector", "matchLabels", "app.kubernetes.io/name"); to != "rabbitmq" || fmt.Sprint(at(op, "spec", "egress", 0, "ports", 0, "port")) != "5672" {
			t.Errorf("keda-operator reaches %v", at(op, "spec", "egress"))
		}
	})
}
