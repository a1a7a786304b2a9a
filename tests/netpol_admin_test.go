package tests

import (
	"fmt"
	"testing"

	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// TestArgoCDServerTakesOnlyTheALBsTraffic: Argo CD's server, which the ALB limits to the admin
// ranges, accepts from outside its namespace only what comes from the VPC: its Service keeps the
// client's address (traffic policy Local), so the ALB's requests carry the ALB's addresses, and no
// pod address (the pod network, the nodes' tunnel addresses in it) is let in.
func TestArgoCDServerTakesOnlyTheALBsTraffic(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		np := objects(r, "NetworkPolicy")["argocd/argocd-server"]
		var peers []string
		for _, rule := range asList(at(np, "spec", "ingress")) {
			for _, from := range asList(at(rule, "from")) {
				peers = append(peers, fmt.Sprint(at(from, "ipBlock", "cidr")))
			}
		}
		if len(peers) != 1 || peers[0] != r.Config.VPCCIDR.String() {
			t.Errorf("argocd-server takes traffic from %v, want only the VPC %s (not the pod network %s)", peers, r.Config.VPCCIDR, workloads.PodCIDR)
		}
		rel := must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-argocd-argo-cd")
		if p := at(manifest.PlainMap(rel.Inputs)["values"], "server", "service", "externalTrafficPolicy"); p != "Local" {
			t.Errorf("argocd-server's Service has traffic policy %v: without Local the ALB's requests arrive from a node's tunnel address", p)
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
