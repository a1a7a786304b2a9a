package workloads

import (
	"net/netip"

	"github.com/waste-coach/infra/config"
)

// CoreDNSPods selects kubeadm's CoreDNS pods, which keep the label of the kube-dns they replaced
// (kubernetes v1.35.4 cmd/kubeadm/app/phases/addons/dns/manifests.go, CoreDNSDeployment's pod
// template: "k8s-app: kube-dns").
var CoreDNSPods = map[string]string{"k8s-app": "kube-dns"}

// Ports of kube-system's pods, as their upstream manifests at the pinned versions declare them.
const (
	// dnsPort is CoreDNS's DNS port, UDP and TCP (kubeadm's CoreDNSDeployment: containerPort 53,
	// named dns and dns-tcp).
	dnsPort = 53
	// coreDNSMetricsPort is CoreDNS's Prometheus endpoint (kubeadm's Corefile: "prometheus
	// :9153"; containerPort 9153), which kube-prometheus-stack's coredns ServiceMonitor scrapes
	// through the Service the chart adds to kube-system.
	coreDNSMetricsPort = 9153
	// lbWebhookPort is the load balancer controller's webhook server
	// (aws-load-balancer-controller 1.14.0 templates/deployment.yaml: containerPort
	// webhookBindPort, default 9443), the target of aws-load-balancer-webhook-service, whose
	// TargetGroupBinding webhooks fail closed.
	lbWebhookPort = 9443
	// metricsServerPort is metrics-server's secure port (metrics-server 3.13.0 values.yaml
	// containerPort: 10250, passed as --secure-port), the target of the Service behind the
	// v1beta1.metrics.k8s.io APIService.
	metricsServerPort = 10250
	// kubeletPort is the kubelet's API (KubeletConfiguration's default; the program keeps it),
	// which metrics-server scrapes on every node (--kubelet-use-node-status-port,
	// --kubelet-preferred-address-types=InternalIP).
	kubeletPort = 10250
)

// AmazonDNSLinkLocal is the Route 53 Resolver's link-local address, the same resolver as the
// VPC's base address plus two (AWS VPC user guide, "Amazon DNS server").
const AmazonDNSLinkLocal = "169.254.169.253/32"

// VPCResolver is the Route 53 Resolver's address in the VPC, its base address plus two, which
// the default DHCP options (AmazonProvidedDNS) give every instance as its name server.
func VPCResolver(vpc netip.Prefix) netip.Addr {
	return vpc.Masked().Addr().Next().Next()
}

// systemPolicies are kube-system's flows, one policy per workload that NetworkPolicies govern;
// kube-system denies everything else by default (DefaultDenyNamespaces). tools/charts' chartfit
// renders each stack's charts and objects and fails when a kube-system pod off the host's
// network has no policy of its own, or when a port that a Service, APIService, webhook or
// ServiceMonitor sends traffic to is not admitted from whoever sends it.
//
// What runs in kube-system:
//   - on the host's network, which NetworkPolicies do not govern (Calico makes no workload
//     endpoint for such a pod): kubeadm's static pods (etcd, the API server, controller-manager,
//     scheduler), kube-proxy, the cloud-controller-manager (cluster/ccm.go) and the etcd
//     snapshot CronJob (backups.go);
//   - on the pod network: kubeadm's CoreDNS, and the charts' EBS CSI controller and node plugin,
//     load balancer controller and metrics-server (each chart's hostNetwork value is false).
//
// No rule lists the kubelet's probes (CoreDNS's 8080 and 8181, the EBS containers' 9808, the
// load balancer controller's 61779): a probe comes from the pod's own node, and Calico does not
// police host-to-local-workload traffic ("We don't currently police host -> endpoint according
// to the endpoint's ingress policy", felix/rules/static.go, filterOutputChain); Kubernetes
// documents that a pod cannot block access from its resident node. A port a pod declares and
// nobody reaches stays closed: the load balancer controller's metrics (8080; its chart's
// ServiceMonitor is off and no scrape configuration here reads prometheus.io annotations).
//
// The API server calls the webhooks and the aggregated API from the master's address or, for a
// pod on another node, its VXLAN tunnel address (fromNodes, as for KEDA's).
func systemPolicies(cfg *config.Config, f sharedFlows) []Policy {
	ns := NamespaceSystem
	aws := Flow{Peers: []Peer{f.internet}, Ports: ports(tcp(443))}
	// CoreDNS forwards what is not the cluster's own ("forward . /etc/resolv.conf") to the
	// node's resolvers: its pod's dnsPolicy is Default, so it has the kubelet's resolv.conf,
	// which kubeadm points at systemd-resolved's /run/systemd/resolve/resolv.conf on Ubuntu
	// (componentconfigs, kubeletSystemdResolverConfig), where the VPC's DHCP options put the
	// Route 53 Resolver. Not verified here, for want of an instance: that file's content on the
	// AMI. The program declares no DHCP options set, so the VPC takes the region's default one,
	// which AWS creates with AmazonProvidedDNS only (an account that changed it must add its
	// resolvers here). The link-local address is the same resolver, allowed in case the node
	// names it.
	upstreamDNS := Flow{
		Peers: []Peer{{CIDR: VPCResolver(cfg.VPCCIDR).String() + "/32"}, {CIDR: AmazonDNSLinkLocal}},
		Ports: ports(udp(dnsPort), tcp(dnsPort)),
	}
	// Every pod of every namespace resolves names, and so do the nodes: a pod on the host's
	// network with dnsPolicy ClusterFirstWithHostNet (the etcd snapshot) asks from its node's
	// address, or its tunnel address when CoreDNS runs on another node.
	everyone := append([]Peer{{AllNamespaces: true}}, f.fromNodes...)
	return []Policy{
		{Namespace: ns, Name: "coredns", Pods: CoreDNSPods,
			Ingress: []Flow{
				{Peers: everyone, Ports: ports(udp(dnsPort), tcp(dnsPort))},
				{Peers: f.fromPrometheus, Ports: ports(tcp(coreDNSMetricsPort))},
			},
			// Its kubernetes plugin watches Services, EndpointSlices and Namespaces.
			Egress: []Flow{f.apiServer, upstreamDNS}},
		// The EBS CSI controller (aws-ebs-csi-driver 2.52.0 templates/controller.yaml, pod label
		// app: ebs-csi-controller) creates, attaches and resizes volumes through the EC2 API with
		// its own role from STS, resolving their names; its sidecars watch the API server.
		// Nothing connects to it (controller.enableMetrics is false). DNS is listed here as well
		// as in allow-dns: a workload's policy is created first and carries all it needs.
		{Namespace: ns, Name: "ebs-csi-controller", Pods: map[string]string{"app": "ebs-csi-controller"},
			Egress: []Flow{f.dns, f.apiServer, aws}, DenyIngress: true},
		// The node plugin (templates/_node.tpl, pod label app: ebs-csi-node) mounts volumes
		// through the kubelet's socket and reads its instance and zone from its Node (volumes.go:
		// metadataSources kubernetes): the API server only, by address.
		{Namespace: ns, Name: "ebs-csi-node", Pods: map[string]string{"app": "ebs-csi-node"},
			Egress: []Flow{f.apiServer}, DenyIngress: true},
		// The load balancer controller binds the ALB's target groups (TargetGroupBinding) through
		// the ELBv2 and EC2 APIs with its own role, resolving their names; the API server calls
		// its webhooks.
		{Namespace: ns, Name: "aws-load-balancer-controller", Pods: map[string]string{"app.kubernetes.io/name": "aws-load-balancer-controller"},
			Ingress: []Flow{{Peers: f.fromNodes, Ports: ports(tcp(lbWebhookPort))}},
			Egress:  []Flow{f.dns, f.apiServer, aws}},
		// metrics-server serves metrics.k8s.io to the API server and scrapes every kubelet at its
		// node's address; it names nothing it connects to.
		{Namespace: ns, Name: "metrics-server", Pods: map[string]string{"app.kubernetes.io/name": "metrics-server"},
			Ingress: []Flow{{Peers: f.fromNodes, Ports: ports(tcp(metricsServerPort))}},
			Egress:  []Flow{f.apiServer, {Peers: []Peer{{CIDR: cfg.VPCCIDR.String()}}, Ports: ports(tcp(kubeletPort))}}},
	}
}
