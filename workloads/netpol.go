package workloads

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/config"
)

// PodCIDR is Calico's pool; node-to-pod traffic through the VXLAN tunnel comes from it.
const PodCIDR = "192.168.0.0/16"

// APIServerServiceIP is the kubernetes Service's address in the 10.96.0.0/12 service range.
const APIServerServiceIP = "10.96.0.1"

// Peer is one side of an allowed flow: pods (in a namespace, or in every namespace), or an
// address block.
type Peer struct {
	Namespace string
	// AllNamespaces selects the pods of every namespace, those made later included.
	AllNamespaces bool
	Pods          map[string]string
	CIDR          string
	Except        []string
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

// policies are every NetworkPolicy of the platform: per namespace a default deny, DNS, and the
// flows of the design. Controllers reach the API server at both its Service address and the
// master's address (Calico evaluates policy after kube-proxy's DNAT): blocking 10.96.0.1:443
// once crash-looped a controller.
func policies(cfg *config.Config) []Policy {
	shared := sharedFlowsOf(cfg)
	dns, apiServer, fromNodes, internet, fromPrometheus := shared.dns, shared.apiServer, shared.fromNodes, shared.internet, shared.fromPrometheus
	vpc := cfg.VPCCIDR.String()
	fromALB := []Peer{{CIDR: vpc}}
	data := func(name string, port int) Flow {
		return Flow{Peers: []Peer{{Namespace: NamespaceData, Pods: map[string]string{"app.kubernetes.io/name": name}}}, Ports: ports(tcp(port))}
	}
	appEgress := []Flow{
		data("postgres", postgresPort), data("redis", redisPort), data("rabbitmq", amqpPort),
		// S3 for uploads and the AI services' HTTPS APIs; STS for the pods' own role.
		{Peers: []Peer{internet}, Ports: ports(tcp(443))},
	}
	fromApp := []Peer{{Namespace: NamespaceApp}}
	// S3 and STS have no fixed addresses a NetworkPolicy could name: HTTPS to outside the cluster.
	s3 := Flow{Peers: []Peer{internet}, Ports: ports(tcp(443))}
	postgresBackupJobs := Peer{Namespace: NamespaceData, Pods: map[string]string{"app.kubernetes.io/component": "backup"}}
	rabbitPods := map[string]string{"app.kubernetes.io/name": "rabbitmq"}
	sameNamespace := func(ns string) Flow { return Flow{Peers: []Peer{{Namespace: ns}}} }

	var out []Policy
	for _, ns := range DefaultDenyNamespaces {
		out = append(out,
			Policy{Namespace: ns, Name: "default-deny", DenyIngress: true, DenyEgress: true},
			Policy{Namespace: ns, Name: "allow-dns", Egress: []Flow{dns}, DenyEgress: true},
		)
	}
	out = append(out,
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
			Ingress: []Flow{
				{Peers: fromApp, Ports: ports(tcp(postgresPort))}, {Peers: fromPrometheus, Ports: ports(tcp(postgresExporterPort))},
				{Peers: []Peer{postgresBackupJobs}, Ports: ports(tcp(postgresPort))},
			},
			// The wal-shipper beside the server uploads to S3 with its own role.
			Egress: []Flow{s3}},
		// The daily base backup and dump read from the server and upload to S3 with their role.
		Policy{Namespace: NamespaceData, Name: "postgres-backups", Pods: postgresBackupJobs.Pods,
			Egress: []Flow{data("postgres", postgresPort), s3}, DenyIngress: true},
		Policy{Namespace: NamespaceData, Name: "redis", Pods: map[string]string{"app.kubernetes.io/name": "redis"},
			Ingress: []Flow{{Peers: fromApp, Ports: ports(tcp(redisPort))}, {Peers: fromPrometheus, Ports: ports(tcp(redisExporterPort))}}},
		Policy{Namespace: NamespaceData, Name: "rabbitmq", Pods: rabbitPods,
			Ingress: []Flow{
				{Peers: fromApp, Ports: ports(tcp(amqpPort))},
				// KEDA's operator reads the Celery queues' depth (autoscaling.go).
				{Peers: []Peer{{Namespace: NamespaceKEDA, Pods: map[string]string{"app.kubernetes.io/name": "keda-operator"}}}, Ports: ports(tcp(amqpPort))},
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
		// Its Service keeps the client's address (traffic policy Local: only its node is
		// registered), so the ALB's requests arrive from the ALB's addresses in the VPC: no pod
		// address, the nodes' tunnel addresses included, reaches the server from outside Argo CD.
		Policy{Namespace: NamespaceArgoCD, Name: "argocd-server", Pods: map[string]string{"app.kubernetes.io/name": "argocd-server"},
			Ingress: []Flow{{Peers: fromALB, Ports: ports(tcp(8080))}}},

		// Logging: Fluent Bit asks the API server for the pods' metadata and ships to CloudWatch
		// Logs with its role from STS, both over HTTPS; nothing connects to it.
		Policy{Namespace: NamespaceLogging, Name: "fluent-bit", Pods: map[string]string{"app.kubernetes.io/name": "fluent-bit"},
			Egress: []Flow{apiServer, {Peers: []Peer{internet}, Ports: ports(tcp(443))}}, DenyIngress: true},

		// The nodes' exporters: Prometheus scrapes the certificate exporter (node-exporter is on
		// the host's network, which NetworkPolicies do not govern).
		Policy{Namespace: NamespaceNodeMetrics, Name: alerting.JobCerts, Pods: map[string]string{"app.kubernetes.io/name": alerting.JobCerts},
			Ingress: []Flow{{Peers: fromPrometheus, Ports: ports(tcp(certExporterPort))}}, DenyEgress: true},

		// KEDA: its three pods talk among themselves (the metrics server asks the operator over
		// gRPC) and to the API server; the operator reads the queues' depth from RabbitMQ; the API
		// server calls the metrics server (an aggregated API) and the admission webhooks, from the
		// master's address or its tunnel address.
		Policy{Namespace: NamespaceKEDA, Name: "keda", Ingress: []Flow{sameNamespace(NamespaceKEDA)},
			Egress: []Flow{sameNamespace(NamespaceKEDA), apiServer}},
		Policy{Namespace: NamespaceKEDA, Name: "keda-operator", Pods: map[string]string{"app.kubernetes.io/name": "keda-operator"},
			Egress: []Flow{data("rabbitmq", amqpPort)}},
		Policy{Namespace: NamespaceKEDA, Name: "keda-metrics-apiserver", Pods: map[string]string{"app.kubernetes.io/name": "keda-operator-metrics-apiserver"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(kedaMetricsPort))}}},
		Policy{Namespace: NamespaceKEDA, Name: "keda-admission-webhooks", Pods: map[string]string{"app.kubernetes.io/name": "keda-admission-webhooks"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(kedaWebhookPort))}}},

		// Monitoring: components talk among themselves and to the API server; Grafana takes the
		// ALB's traffic, from the VPC only (its Service keeps the client's address, as Argo CD's
		// server's: no pod address reaches it from outside monitoring); the API server calls the
		// operator's webhook; Prometheus scrapes every pod and node.
		Policy{Namespace: NamespaceMonitoring, Name: "monitoring", Ingress: []Flow{sameNamespace(NamespaceMonitoring)},
			Egress: []Flow{sameNamespace(NamespaceMonitoring), apiServer}},
		Policy{Namespace: NamespaceMonitoring, Name: "grafana", Pods: map[string]string{"app.kubernetes.io/name": "grafana"},
			Ingress: []Flow{{Peers: fromALB, Ports: ports(tcp(3000))}}},
		// Grafana's CloudWatch data source queries the CloudWatch Logs API over HTTPS.
		Policy{Namespace: NamespaceMonitoring, Name: "grafana-cloudwatch", Pods: map[string]string{"app.kubernetes.io/name": "grafana"},
			Egress: []Flow{{Peers: []Peer{internet}, Ports: ports(tcp(443))}}},
		Policy{Namespace: NamespaceMonitoring, Name: "operator-webhook", Pods: map[string]string{"app": "kube-prometheus-stack-operator"},
			Ingress: []Flow{{Peers: fromNodes, Ports: ports(tcp(10250))}}},
		Policy{Namespace: NamespaceMonitoring, Name: "prometheus-scrapes", Pods: map[string]string{"app.kubernetes.io/name": "prometheus"},
			Egress: []Flow{{Peers: fromNodes}}},
	)
	return append(out, systemPolicies(cfg, shared)...)
}

// sharedFlows are the peers and flows that the policies of more than one namespace use.
type sharedFlows struct {
	// dns reaches CoreDNS on 53, UDP and TCP.
	dns Flow
	// apiServer reaches the API server at its Service address and at the master's own.
	apiServer Flow
	// fromNodes are the nodes: node-to-pod traffic arrives from the node's address or its
	// VXLAN tunnel address (which Calico takes from the pod range).
	fromNodes []Peer
	// internet is every address outside the VPC and the pod network (AWS's public endpoints).
	internet Peer
	// fromPrometheus is Prometheus's pods, which scrape the exporters.
	fromPrometheus []Peer
}

func sharedFlowsOf(cfg *config.Config) sharedFlows {
	master := cfg.MasterPrivateIP().String()
	vpc := cfg.VPCCIDR.String()
	return sharedFlows{
		dns:            Flow{Peers: []Peer{{Namespace: NamespaceSystem, Pods: CoreDNSPods}}, Ports: ports(udp(dnsPort), tcp(dnsPort))},
		apiServer:      Flow{Peers: []Peer{{CIDR: APIServerServiceIP + "/32"}, {CIDR: master + "/32"}}, Ports: ports(tcp(443), tcp(6443))},
		fromNodes:      []Peer{{CIDR: vpc}, {CIDR: PodCIDR}},
		internet:       Peer{CIDR: "0.0.0.0/0", Except: []string{vpc, PodCIDR}},
		fromPrometheus: []Peer{{Namespace: NamespaceMonitoring, Pods: map[string]string{"app.kubernetes.io/name": "prometheus"}}},
	}
}

// DefaultDenyNamespaces are the namespaces the program declares or a chart of it runs in, each
// with a default-deny NetworkPolicy and DNS (policies): kube-system too, where the charts of the
// EBS CSI driver, the load balancer controller and metrics-server run beside kubeadm's CoreDNS,
// each with its own flows (systemPolicies). Argo CD's target namespaces get the same
// (gitops.go); any other namespace, made later by hand, falls under namespaceDefaultPolicy.
var DefaultDenyNamespaces = []string{NamespaceApp, NamespaceData, NamespaceArgoCD, NamespaceMonitoring, NamespaceNodeMetrics, NamespaceLogging, NamespaceKEDA, NamespaceSystem}

// KEDA's container ports (chart defaults): the metrics server's HTTPS and the webhooks'.
const kedaMetricsPort, kedaWebhookPort = 6443, 9443

// NetworkPolicies are every namespace's NetworkPolicies (policies) and the Calico tier that
// keeps the instance metadata service from the pods that must not act with the node's role.
type NetworkPolicies struct {
	pulumi.ResourceState
}

// networkPoliciesArgs are the inputs of the network policies.
type networkPoliciesArgs struct {
	// tierArgs name the resources; the configuration gives the VPC's and the master's addresses.
	tierArgs
}

// newNetworkPolicies declares the Calico tier and policy, and the NetworkPolicies.
func newNetworkPolicies(ctx *pulumi.Context, name string, args *networkPoliciesArgs, opts ...pulumi.ResourceOption) (*NetworkPolicies, error) {
	c := &NetworkPolicies{}
	return c, component(ctx, args.tierArgs, "NetworkPolicies", name, c, opts, func(s *scope) error {
		if err := s.metadataServicePolicy(); err != nil {
			return err
		}
		if err := s.namespaceDefaultPolicy(); err != nil {
			return err
		}
		// A namespace's policies are created in stages (and deleted the other way round): each
		// workload's own flows, then DNS for every pod, then the default deny. A policy that
		// selects a pod isolates it, so any other order would leave running pods, for the
		// seconds between stages, with fewer flows than they will have: the first up that
		// brings kube-system under a default deny finds CoreDNS and the controllers running,
		// and the namespace-wide DNS policy alone would cut CoreDNS from its upstream.
		all := policies(args.Config)
		earlier := map[string][]pulumi.Resource{} // by namespace, the policies of earlier stages
		for stage := range policyStages {
			made := map[string][]pulumi.Resource{} // by namespace, this stage's policies
			for _, p := range all {
				if p.stage() != stage {
					continue
				}
				np, err := networkingv1.NewNetworkPolicy(ctx, s.resourceName(p.Namespace, "netpol-"+p.Name), &networkingv1.NetworkPolicyArgs{
					Metadata: meta(p.Name, p.Namespace, labels(p.Name, "network-policy")),
					Spec:     p.spec(),
				}, s.opts(p.Namespace, slices.Clone(earlier[p.Namespace])...)...) // opts appends to what it is given
				if err != nil {
					return fmt.Errorf("network policy %s/%s: %w", p.Namespace, p.Name, err)
				}
				made[p.Namespace] = append(made[p.Namespace], np)
			}
			for ns, ps := range made {
				earlier[ns] = append(earlier[ns], ps...)
			}
		}
		return nil
	})
}

// policyStages are the creation stages of a namespace's policies (Policy.stage).
const policyStages = 3

// stage orders a policy within its namespace: 0 for a workload's flows, 1 for DNS, 2 for the
// default deny.
func (p Policy) stage() int {
	switch p.Name {
	case "allow-dns":
		return 1
	case "default-deny":
		return 2
	}
	return 0
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
		if p.AllNamespaces {
			peer.NamespaceSelector = &metav1.LabelSelectorArgs{}
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

// The instance metadata service hands out the node role's credentials to anything on the node
// that asks. No pod needs it: every pod that calls AWS has a role of its own (identity.go), and
// the nodes answer only requests one network hop away (infra.MetadataHopLimit), which a pod's
// own network namespace is not. The same is denied again in the network, for every pod: a
// Calico policy in a tier of its own, evaluated before every Kubernetes NetworkPolicy, in every
// namespace (kube-system, Calico's, and any Argo CD creates). The tier passes everything else on
// to the NetworkPolicies. Pods on the host's network (kube-proxy, calico-node, the CCM, the etcd
// snapshot) are the node itself, which Calico does not police here.
const (
	// IMDSAddress is the instance metadata service's address.
	IMDSAddress = "169.254.169.254/32"
	// imdsTier orders before Calico's default tier (order 1,000,000), where Kubernetes
	// NetworkPolicies live.
	imdsTier      = "node-credentials"
	imdsTierOrder = 100
)

// IMDSDeniedSelector selects, in Calico's selector syntax, the pods denied the metadata service:
// all of them.
const IMDSDeniedSelector = "all()"

// metadataServicePolicy declares the tier and the policy that deny the metadata service to every
// pod.
func (s *scope) metadataServicePolicy() error {
	// Traffic no policy of the tier decides goes on to the next tier, not to a drop.
	return s.calicoTier(imdsTier, imdsTierOrder, "Pass", "deny-metadata-service", map[string]any{
		"selector": IMDSDeniedSelector,
		"types":    []any{"Egress"},
		"egress": []any{map[string]any{
			"action":      "Deny",
			"destination": map[string]any{"nets": []any{IMDSAddress}},
		}},
	})
}

// calicoTier declares a Calico tier (order, the action for what its policies leave undecided)
// and its one GlobalNetworkPolicy, named <tier>.<policy> as Calico names a tier's policies.
// Calico's CRDs are installed by the cluster tier, before the provider this tier uses is ready.
func (s *scope) calicoTier(tier string, order int, defaultAction, policy string, spec map[string]any) error {
	t, err := apiextensions.NewCustomResource(s.ctx, s.resourceName("cluster", "calico-tier-"+tier), &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String("crd.projectcalico.org/v1"),
		Kind:        pulumi.String("Tier"),
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(tier)},
		OtherFields: map[string]any{"spec": map[string]any{"order": order, "defaultAction": defaultAction}},
	}, s.parented()...)
	if err != nil {
		return fmt.Errorf("calico tier %s: %w", tier, err)
	}
	name := tier + "." + policy
	full := map[string]any{"tier": tier, "order": 10}
	for k, v := range spec {
		full[k] = v
	}
	if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName("cluster", "calico-"+name), &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String("crd.projectcalico.org/v1"),
		Kind:        pulumi.String("GlobalNetworkPolicy"),
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(name)},
		OtherFields: map[string]any{"spec": full},
	}, append(s.parented(), pulumi.DependsOn([]pulumi.Resource{t}))...); err != nil {
		return fmt.Errorf("calico policy %s: %w", name, err)
	}
	return nil
}

// Namespaces made later (by hand, or by a chart the program does not know) have no
// NetworkPolicy: Calico would let their pods reach and be reached by anything. A tier after
// Calico's default tier (where every Kubernetes NetworkPolicy is) holds one policy for every pod
// outside the system namespaces: DNS, then deny. A pod that a namespace's NetworkPolicies
// select is decided in the default tier (allowed, or denied at its end) and never reaches this
// tier; only a pod no NetworkPolicy selects, in a direction none covers, does. The system
// namespaces are left out by name. Calico's run its own pods, whose flows are not the
// program's to list. kube-system has its own default deny, for both directions and every pod
// (systemPolicies): none of its pods' traffic reaches this tier, so its exemption here changes
// nothing, and it is kept rather than updating the deployed policy to no effect.
const (
	namespaceDefaultTier = "namespace-defaults"
	// After the default tier (1,000,000), before Calico's kube-baseline (10,000,000).
	namespaceDefaultTierOrder = 5_000_000
)

// NetworkDefaultExempt are the namespaces the namespace-defaults policy leaves alone, by name.
var NetworkDefaultExempt = []string{"calico-apiserver", "calico-system", NamespaceSystem, "tigera-operator"}

// NamespaceDefaultSelector is that policy's namespace selector, in Calico's syntax.
func NamespaceDefaultSelector() string {
	quoted := make([]string, len(NetworkDefaultExempt))
	for i, ns := range NetworkDefaultExempt {
		quoted[i] = strconv.Quote(ns)
	}
	return "kubernetes.io/metadata.name not in {" + strings.Join(quoted, ", ") + "}"
}

func (s *scope) namespaceDefaultPolicy() error {
	dns := map[string]any{
		"selector":          `k8s-app == "kube-dns"`,
		"namespaceSelector": `kubernetes.io/metadata.name == "` + NamespaceSystem + `"`,
		"ports":             []any{53},
	}
	return s.calicoTier(namespaceDefaultTier, namespaceDefaultTierOrder, "Deny", "dns-then-deny", map[string]any{
		"namespaceSelector": NamespaceDefaultSelector(),
		"types":             []any{"Ingress", "Egress"},
		"egress": []any{
			map[string]any{"action": "Allow", "protocol": "UDP", "destination": dns},
			map[string]any{"action": "Allow", "protocol": "TCP", "destination": dns},
			map[string]any{"action": "Deny"},
		},
		"ingress": []any{map[string]any{"action": "Deny"}},
	})
}
