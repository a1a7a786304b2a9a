package workloads

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PodCIDR is Calico's pool; node-to-pod traffic through the VXLAN tunnel comes from it.
const PodCIDR = "192.168.0.0/16"

// APIServerServiceIP is the kubernetes Service's address in the 10.96.0.0/12 service range.
const APIServerServiceIP = "10.96.0.1"

// Peer is one side of an allowed flow: pods (in a namespace), or an address block.
type Peer struct {
	Namespace string
	Pods      map[string]string
	CIDR      string
	Except    []string
}

// Port is a protocol and a port or port range (To is 0 for a single port).
type Port struct {
	Protocol string
	From, To int
}

func tcp(p int) Port         { return Port{Protocol: "TCP", From: p} }
func udp(p int) Port         { return Port{Protocol: "UDP", From: p} }
func tcpRange(a, b int) Port { return Port{Protocol: "TCP", From: a, To: b} }

// Flow is one allowed connection: from or to Peers, on Ports (any port when empty).
type Flow struct {
	Peers []Peer
	Ports []Port
}

// Policy is a NetworkPolicy: the pods it selects and the flows they may receive and make.
// A namespace's default-deny policy makes everything not listed here fail.
type Policy struct {
	Namespace, Name string
	// Pods selects by label; nil selects every pod of the namespace.
	Pods            map[string]string
	Ingress, Egress []Flow
	// DenyIngress and DenyEgress make the policy cover that direction even with no flows.
	DenyIngress, DenyEgress bool
}

func ports(ps ...Port) []Port { return ps }

// Policies are every NetworkPolicy of the platform: per namespace a default deny, DNS, and the
// flows of the design. Controllers reach the API server at both its Service address and the
// master's address (Calico evaluates policy after kube-proxy's DNAT): blocking 10.96.0.1:443
// once crash-looped a controller.
func (b *builder) Policies() []Policy {
	master := b.cfg.MasterPrivateIP().String()
	vpc := b.cfg.VPCCIDR.String()
	dns := Flow{Peers: []Peer{{Namespace: NamespaceSystem, Pods: map[string]string{"k8s-app": "kube-dns"}}}, Ports: ports(udp(53), tcp(53))}
	apiServer := Flow{Peers: []Peer{{CIDR: APIServerServiceIP + "/32"}, {CIDR: master + "/32"}}, Ports: ports(tcp(443), tcp(6443))}
	fromALB := []Peer{{CIDR: vpc}}
	// Node-to-pod traffic arrives from the node's address or its VXLAN tunnel address.
	fromNodes := []Peer{{CIDR: vpc}, {CIDR: PodCIDR}}
	internet := Peer{CIDR: "0.0.0.0/0", Except: []string{vpc, PodCIDR}}
	imds := Flow{Peers: []Peer{{CIDR: "169.254.169.254/32"}}, Ports: ports(tcp(80))}
	data := func(name string, port int) Flow {
		return Flow{Peers: []Peer{{Namespace: NamespaceData, Pods: map[string]string{"app.kubernetes.io/name": name}}}, Ports: ports(tcp(port))}
	}
	appEgress := []Flow{
		data("postgres", postgresPort), data("redis", redisPort), data("rabbitmq", amqpPort),
		// S3 for uploads and the AI services' HTTPS APIs; credentials come from the node's
		// instance profile through IMDS.
		{Peers: []Peer{internet}, Ports: ports(tcp(443))}, imds,
	}
	fromApp := []Peer{{Namespace: NamespaceApp}}
	rabbitPods := map[string]string{"app.kubernetes.io/name": "rabbitmq"}
	sameNamespace := func(ns string) Flow { return Flow{Peers: []Peer{{Namespace: ns}}} }

	var out []Policy
	for _, ns := range []string{NamespaceApp, NamespaceData, NamespaceArgoCD, NamespaceMonitoring} {
		out = append(out,
			Policy{Namespace: ns, Name: "default-deny", DenyIngress: true, DenyEgress: true},
			Policy{Namespace: ns, Name: "allow-dns", Egress: []Flow{dns}, DenyEgress: true},
		)
	}
	return append(out,
		// Application: the API and the default backend take traffic from the ALB; the API and
		// Celery reach the data services, S3 and external HTTPS APIs.
		Policy{Namespace: NamespaceApp, Name: "api", Pods: map[string]string{"app.kubernetes.io/component": "api"},
			Ingress: []Flow{{Peers: fromALB, Ports: ports(tcp(apiPort))}}, Egress: appEgress},
		Policy{Namespace: NamespaceApp, Name: "default-backend", Pods: map[string]string{"app.kubernetes.io/name": defaultBackend},
			Ingress: []Flow{{Peers: fromALB, Ports: ports(tcp(backendPort))}}},
		Policy{Namespace: NamespaceApp, Name: "celery-workers", Pods: map[string]string{"app.kubernetes.io/component": "worker"}, Egress: appEgress, DenyIngress: true},
		Policy{Namespace: NamespaceApp, Name: "celery-beat", Pods: map[string]string{"app.kubernetes.io/component": "scheduler"},
			Egress: []Flow{data("rabbitmq", amqpPort), data("redis", redisPort)}, DenyIngress: true},

		// Data: each service takes connections from the application only; the brokers also talk
		// to each other and ask the API server for their peers; Prometheus scrapes them.
		Policy{Namespace: NamespaceData, Name: "postgres", Pods: map[string]string{"app.kubernetes.io/name": "postgres"},
			Ingress: []Flow{{Peers: fromApp, Ports: ports(tcp(postgresPort))}}},
		Policy{Namespace: NamespaceData, Name: "redis", Pods: map[string]string{"app.kubernetes.io/name": "redis"},
			Ingress: []Flow{{Peers: fromApp, Ports: ports(tcp(redisPort))}}},
		Policy{Namespace: NamespaceData, Name: "rabbitmq", Pods: rabbitPods,
			Ingress: []Flow{
				{Peers: fromApp, Ports: ports(tcp(amqpPort))},
				{Peers: []Peer{{Namespace: NamespaceData, Pods: rabbitPods}}, Ports: ports(tcp(4369), tcp(25672), tcp(amqpPort), tcpRange(35672, 35682))},
				{Peers: []Peer{{Namespace: NamespaceMonitoring}}, Ports: ports(tcp(rabbitPromPort))},
			},
			Egress: []Flow{
				{Peers: []Peer{{Namespace: NamespaceData, Pods: rabbitPods}}, Ports: ports(tcp(4369), tcp(25672), tcpRange(35672, 35682))},
				apiServer,
			}},

		// Argo CD: its components talk among themselves, its server takes the ALB's traffic, and
		// it reaches the API server and Git over HTTPS or SSH.
		Policy{Namespace: NamespaceArgoCD, Name: "argocd", Ingress: []Flow{sameNamespace(NamespaceArgoCD)},
			Egress: []Flow{sameNamespace(NamespaceArgoCD), apiServer, {Peers: []Peer{internet}, Ports: ports(tcp(443), tcp(22))}}},
		Policy{Namespace: NamespaceArgoCD, Name: "argocd-server", Pods: map[string]string{"app.kubernetes.io/name": "argocd-server"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(8080))}}},

		// Monitoring: components talk among themselves and to the API server; Grafana takes the
		// ALB's traffic; the API server calls the operator's webhook; Prometheus scrapes every
		// pod and node.
		Policy{Namespace: NamespaceMonitoring, Name: "monitoring", Ingress: []Flow{sameNamespace(NamespaceMonitoring)},
			Egress: []Flow{sameNamespace(NamespaceMonitoring), apiServer}},
		Policy{Namespace: NamespaceMonitoring, Name: "grafana", Pods: map[string]string{"app.kubernetes.io/name": "grafana"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(3000))}}},
		Policy{Namespace: NamespaceMonitoring, Name: "operator-webhook", Pods: map[string]string{"app": "kube-prometheus-stack-operator"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(10250))}}},
		Policy{Namespace: NamespaceMonitoring, Name: "prometheus-scrapes", Pods: map[string]string{"app.kubernetes.io/name": "prometheus"},
			Egress: []Flow{{Peers: fromNodes}}},
	)
}

func (b *builder) networkPolicies() error {
	for _, p := range b.Policies() {
		if _, err := networkingv1.NewNetworkPolicy(b.ctx, b.resourceName(p.Namespace, "netpol-"+p.Name), &networkingv1.NetworkPolicyArgs{
			Metadata: meta(p.Name, p.Namespace, labels(p.Name, "network-policy")),
			Spec:     p.spec(),
		}, b.opts(p.Namespace)...); err != nil {
			return fmt.Errorf("network policy %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

func (p Policy) spec() networkingv1.NetworkPolicySpecArgs {
	types := []string{}
	if p.DenyIngress || len(p.Ingress) > 0 {
		types = append(types, "Ingress")
	}
	if p.DenyEgress || len(p.Egress) > 0 {
		types = append(types, "Egress")
	}
	spec := networkingv1.NetworkPolicySpecArgs{
		PodSelector: metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(p.Pods)},
		PolicyTypes: pulumi.ToStringArray(types),
	}
	if len(p.Ingress) > 0 {
		rules := networkingv1.NetworkPolicyIngressRuleArray{}
		for _, f := range p.Ingress {
			rules = append(rules, networkingv1.NetworkPolicyIngressRuleArgs{From: peers(f.Peers), Ports: policyPorts(f.Ports)})
		}
		spec.Ingress = rules
	}
	if len(p.Egress) > 0 {
		rules := networkingv1.NetworkPolicyEgressRuleArray{}
		for _, f := range p.Egress {
			rules = append(rules, networkingv1.NetworkPolicyEgressRuleArgs{To: peers(f.Peers), Ports: policyPorts(f.Ports)})
		}
		spec.Egress = rules
	}
	return spec
}

func peers(ps []Peer) networkingv1.NetworkPolicyPeerArray {
	out := networkingv1.NetworkPolicyPeerArray{}
	for _, p := range ps {
		if p.CIDR != "" {
			out = append(out, networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: pulumi.String(p.CIDR), Except: pulumi.ToStringArray(p.Except)}})
			continue
		}
		peer := networkingv1.NetworkPolicyPeerArgs{
			NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(p.Namespace)}},
		}
		if p.Pods != nil {
			peer.PodSelector = &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(p.Pods)}
		}
		out = append(out, peer)
	}
	return out
}

func policyPorts(ps []Port) networkingv1.NetworkPolicyPortArray {
	out := networkingv1.NetworkPolicyPortArray{}
	for _, p := range ps {
		port := networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String(p.Protocol), Port: pulumi.Int(p.From)}
		if p.To > 0 {
			port.EndPort = pulumi.Int(p.To)
		}
		out = append(out, port)
	}
	return out
}
