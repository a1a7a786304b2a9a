package tests

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// kubeSystemWorkloads are kube-system's pods on the pod network and the labels that select
// them, as their manifests set them (kubeadm's CoreDNS; the EBS CSI driver's, the load balancer
// controller's and metrics-server's charts). tools/charts' chartfit proves against the rendered
// charts that these are all of them.
var kubeSystemWorkloads = map[string]map[string]string{
	"coredns":                      {"k8s-app": "kube-dns"},
	"ebs-csi-controller":           {"app": "ebs-csi-controller"},
	"ebs-csi-node":                 {"app": "ebs-csi-node"},
	"aws-load-balancer-controller": {"app.kubernetes.io/name": "aws-load-balancer-controller"},
	"metrics-server":               {"app.kubernetes.io/name": "metrics-server"},
}

// TestKubeSystemDeniesByDefault: kube-system, where the charts of the EBS CSI driver, the load
// balancer controller and metrics-server run beside kubeadm's CoreDNS, denies every pod's traffic
// both ways unless a policy allows it; every pod may resolve names; and each of those workloads
// has a policy of its own covering both directions.
func TestKubeSystemDeniesByDefault(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nps := objects(r, "NetworkPolicy")
		ns := workloads.NamespaceSystem
		deny := nps[ns+"/default-deny"]
		selects, _ := at(deny, "spec", "podSelector", "matchLabels").(map[string]any)
		if deny == nil || len(selects) != 0 || fmt.Sprint(at(deny, "spec", "policyTypes")) != "[Ingress Egress]" ||
			at(deny, "spec", "ingress") != nil || at(deny, "spec", "egress") != nil {
			t.Errorf("kube-system has no default-deny for every pod, both directions: %v", at(deny, "spec"))
		}
		if got := flows(at(nps[ns+"/allow-dns"], "spec", "egress"), "to"); fmt.Sprint(got) != "[kube-system/k8s-app=kube-dns 53/TCP kube-system/k8s-app=kube-dns 53/UDP]" {
			t.Errorf("kube-system's pods reach DNS through %v", got)
		}
		for name, labels := range kubeSystemWorkloads {
			np := nps[ns+"/"+name]
			if np == nil {
				t.Errorf("kube-system has no NetworkPolicy %s for its pods %v", name, labels)
				continue
			}
			if got := fmt.Sprint(at(np, "spec", "podSelector", "matchLabels")); got != fmt.Sprint(labels) {
				t.Errorf("NetworkPolicy kube-system/%s selects %s, want the workload's pods %v", name, got, labels)
			}
			if got := fmt.Sprint(at(np, "spec", "policyTypes")); got != "[Ingress Egress]" {
				t.Errorf("NetworkPolicy kube-system/%s covers %s, want both directions: what reaches the pods and what they reach", name, got)
			}
		}
		for key := range nps {
			if name, ok := strings.CutPrefix(key, ns+"/"); ok && name != "default-deny" && name != "allow-dns" && kubeSystemWorkloads[name] == nil {
				t.Errorf("NetworkPolicy %s is not one of kube-system's workloads %v", key, slices.Sorted(maps.Keys(kubeSystemWorkloads)))
			}
		}
	})
}

// TestCoreDNSAnswersEveryNamespace: DNS keeps working for the whole cluster under kube-system's
// default deny. CoreDNS takes 53 over UDP and TCP from every pod of every namespace (those made
// later included) and from the nodes (host-network pods asking from a node's address or its
// tunnel address), and its metrics port from Prometheus only; it reaches the API server (its
// kubernetes plugin) and, for every other name, the VPC's Route 53 Resolver, where the node's
// resolv.conf points (kubeadm gives CoreDNS dnsPolicy Default): the VPC's base address plus two,
// or the same resolver's link-local address. Nothing else.
func TestCoreDNSAnswersEveryNamespace(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		np := objects(r, "NetworkPolicy")["kube-system/coredns"]
		vpc, resolver := r.Config.VPCCIDR.String(), workloads.VPCResolver(r.Config.VPCCIDR).String()
		base := r.Config.VPCCIDR.Masked().Addr().As4() // a /16 to /24: the last byte of the base is 0
		if want := fmt.Sprintf("%d.%d.%d.%d", base[0], base[1], base[2], base[3]+2); resolver != want {
			t.Errorf("the Route 53 Resolver of the VPC %s is at its base address plus two (%s), not %s", vpc, want, resolver)
		}
		// The rule assumes the VPC's own resolver: a DHCP options set naming other servers would
		// send CoreDNS's queries where no rule lets them go.
		for _, res := range r.Resources {
			if strings.HasPrefix(res.Type, "aws:ec2/vpcDhcpOptions") {
				t.Errorf("%s %s: the nodes would resolve through other servers than the VPC's, which CoreDNS's egress does not admit", res.Type, res.Name)
			}
		}
		var dnsFrom []string
		for _, rule := range asList(at(np, "spec", "ingress")) {
			if fmt.Sprint(portsOf(rule)) == "[53/TCP 53/UDP]" {
				dnsFrom = append(dnsFrom, peersOf(at(rule, "from"))...)
			}
		}
		for _, want := range []string{"every namespace", vpc, workloads.PodCIDR} {
			if !slices.Contains(dnsFrom, want) {
				t.Errorf("CoreDNS takes 53/UDP and 53/TCP from %v, not from %s: DNS would fail there", dnsFrom, want)
			}
		}
		wantIngress := sortedStrings(
			vpc+" 53/TCP", vpc+" 53/UDP", workloads.PodCIDR+" 53/TCP", workloads.PodCIDR+" 53/UDP",
			"every namespace 53/TCP", "every namespace 53/UDP",
			"monitoring/app.kubernetes.io/name=prometheus 9153/TCP",
		)
		if got := flows(at(np, "spec", "ingress"), "from"); fmt.Sprint(got) != fmt.Sprint(wantIngress) {
			t.Errorf("CoreDNS takes\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantIngress, "\n  "))
		}
		master := r.Config.MasterPrivateIP().String()
		wantEgress := sortedStrings(
			master+"/32 443/TCP", master+"/32 6443/TCP", workloads.APIServerServiceIP+"/32 443/TCP", workloads.APIServerServiceIP+"/32 6443/TCP",
			resolver+"/32 53/UDP", resolver+"/32 53/TCP", workloads.AmazonDNSLinkLocal+" 53/UDP", workloads.AmazonDNSLinkLocal+" 53/TCP",
		)
		if got := flows(at(np, "spec", "egress"), "to"); fmt.Sprint(got) != fmt.Sprint(wantEgress) {
			t.Errorf("CoreDNS reaches\n  %s\nwant the API server and the VPC's resolver only:\n  %s", strings.Join(got, "\n  "), strings.Join(wantEgress, "\n  "))
		}
	})
}

// TestKubeSystemControllersTakeAndReachOnlyTheirFlows: the API server calls the load balancer
// controller's webhooks (9443) and metrics-server's aggregated API (10250), from the master's
// address or its tunnel address; nothing else reaches the controllers (the kubelet's probes
// come from the pod's own node, which Calico does not police). The EBS controller and the load
// balancer controller reach the API server and AWS's HTTPS endpoints (resolving their names);
// the node plugin only the API server; metrics-server the API server and every kubelet.
func TestKubeSystemControllersTakeAndReachOnlyTheirFlows(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nps := objects(r, "NetworkPolicy")
		vpc, master := r.Config.VPCCIDR.String(), r.Config.MasterPrivateIP().String()
		apiServer := []string{master + "/32 443/TCP", master + "/32 6443/TCP", workloads.APIServerServiceIP + "/32 443/TCP", workloads.APIServerServiceIP + "/32 6443/TCP"}
		dns := []string{"kube-system/k8s-app=kube-dns 53/TCP", "kube-system/k8s-app=kube-dns 53/UDP"}
		aws := []string{"0.0.0.0/0 except " + vpc + "," + workloads.PodCIDR + " 443/TCP"}
		fromNodes := func(port int) []string {
			return []string{fmt.Sprintf("%s %d/TCP", vpc, port), fmt.Sprintf("%s %d/TCP", workloads.PodCIDR, port)}
		}
		for _, tc := range []struct {
			name            string
			ingress, egress []string
		}{
			{"ebs-csi-controller", nil, slices.Concat(dns, apiServer, aws)},
			{"ebs-csi-node", nil, apiServer},
			{"aws-load-balancer-controller", fromNodes(9443), slices.Concat(dns, apiServer, aws)},
			{"metrics-server", fromNodes(10250), slices.Concat(apiServer, []string{vpc + " 10250/TCP"})},
		} {
			np := nps["kube-system/"+tc.name]
			if got, want := flows(at(np, "spec", "ingress"), "from"), sortedStrings(tc.ingress...); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("kube-system/%s takes %v, want %v", tc.name, got, want)
			}
			if got, want := flows(at(np, "spec", "egress"), "to"), sortedStrings(tc.egress...); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("kube-system/%s reaches\n  %s\nwant\n  %s", tc.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	})
}

// TestNamespacePoliciesAreCreatedBeforeTheirDefaultDeny: a policy isolates the pods it selects,
// so a namespace's policies are declared in an order that never leaves a running pod with fewer
// flows than it will have (the first up that brings kube-system's running CoreDNS and
// controllers under a default deny): each workload's own policy first, then the namespace's DNS
// policy, then its default deny, each waiting for the ones before it.
func TestNamespacePoliciesAreCreatedBeforeTheirDefaultDeny(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		urns := map[string]string{}   // namespace/name -> URN
		deps := map[string][]string{} // namespace/name -> dependencies
		for _, res := range r.OfType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
			obj, _ := manifest.KubernetesObject(res)
			key := fmt.Sprintf("%v/%v", at(obj, "metadata", "namespace"), at(obj, "metadata", "name"))
			urns[key], deps[key] = res.URN, res.Dependencies
		}
		for _, ns := range workloads.DefaultDenyNamespaces {
			for key, urn := range urns {
				name, ok := strings.CutPrefix(key, ns+"/")
				if !ok || name == "default-deny" {
					continue
				}
				if !slices.Contains(deps[ns+"/default-deny"], urn) {
					t.Errorf("%s/default-deny does not wait for %s: for a moment the namespace's pods would be denied its flows", ns, key)
				}
				if name != "allow-dns" && !slices.Contains(deps[ns+"/allow-dns"], urn) {
					t.Errorf("%s/allow-dns does not wait for %s: for a moment its pods could reach DNS only", ns, key)
				}
			}
		}
		if len(deps["kube-system/default-deny"]) < len(kubeSystemWorkloads)+1 {
			t.Errorf("kube-system/default-deny waits for %v", deps["kube-system/default-deny"])
		}
	})
}

// flows flattens NetworkPolicy rules into sorted "peer port/protocol" lines; side is "from" or
// "to". A rule without peers is "anyone", one without ports "any port".
func flows(rules any, side string) []string {
	var out []string
	for _, rule := range asList(rules) {
		peers := peersOf(at(rule, side))
		if len(peers) == 0 {
			peers = []string{"anyone"}
		}
		ports := portsOf(rule)
		if len(ports) == 0 {
			ports = []string{"any port"}
		}
		for _, p := range peers {
			for _, port := range ports {
				out = append(out, p+" "+port)
			}
		}
	}
	sort.Strings(out)
	return out
}

// peersOf names NetworkPolicy peers: an address block with its exceptions, "every namespace",
// or namespace/label=value.
func peersOf(v any) []string {
	var out []string
	for _, peer := range asList(v) {
		if cidr := at(peer, "ipBlock", "cidr"); cidr != nil {
			s := fmt.Sprint(cidr)
			if except := asList(at(peer, "ipBlock", "except")); len(except) > 0 {
				s += " except " + strings.Trim(strings.ReplaceAll(fmt.Sprint(except), " ", ","), "[]")
			}
			out = append(out, s)
			continue
		}
		nsSel, _ := at(peer, "namespaceSelector").(map[string]any)
		ns := "every namespace"
		if name := at(nsSel, "matchLabels", "kubernetes.io/metadata.name"); name != nil {
			ns = fmt.Sprint(name)
		} else if len(nsSel) != 0 || nsSel == nil {
			ns = fmt.Sprintf("namespaces %v", nsSel)
		}
		labels, _ := at(peer, "podSelector", "matchLabels").(map[string]any)
		var sel []string
		for k, val := range labels {
			sel = append(sel, fmt.Sprintf("%s=%v", k, val))
		}
		sort.Strings(sel)
		if len(sel) > 0 {
			ns += "/" + strings.Join(sel, ",")
		}
		out = append(out, ns)
	}
	return out
}

func portsOf(rule any) []string {
	var out []string
	for _, p := range asList(at(rule, "ports")) {
		out = append(out, fmt.Sprintf("%v/%v", at(p, "port"), at(p, "protocol")))
	}
	sort.Strings(out)
	return out
}

func sortedStrings(s ...string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
