// Package workloads owns every workload on the cluster, as typed pulumi-kubernetes resources:
// the platform add-ons (EBS CSI, load balancer controller, metrics-server, Argo CD, monitoring),
// the data services, the application, the bindings of the ALB's target groups to their
// Services, and the network policies.
package workloads

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/config"
)

// Args are the inputs of the workloads tier.
type Args struct {
	// Config is the validated stack configuration.
	Config *config.Config
	// VPCID is the cluster's VPC, for the load balancer controller and the bindings.
	VPCID pulumi.StringInput
	// TargetGroupARNs are the ALB's target groups by route name (routing.Routes), declared by
	// the AWS tier; the workloads tier only binds them to the Services.
	TargetGroupARNs map[string]pulumi.StringOutput
	// ControlPlane is the SSH connection to the master (a secret), where the volume guard runs
	// its delete step with the admin kubeconfig.
	ControlPlane remote.ConnectionInput
	// LogsReader is Grafana's read-only login to the stack's log group; nil declares no
	// CloudWatch data source.
	LogsReader *LogsReader
	// Charts opens the pinned chart archives, whose crds/ folders the program declares
	// (crds.go); nil reads them from the stack's chart source, as its releases install them.
	Charts charts.Archives
	// CRDProvider declares those CRDs, adopting any a chart installed before (cluster.Cluster).
	CRDProvider *kubernetes.Provider
}

// Workloads is everything that runs on the cluster.
type Workloads struct {
	pulumi.ResourceState
}

// Namespaces of the platform, one per concern.
const (
	NamespaceApp        = "app"
	NamespaceData       = "data"
	NamespaceArgoCD     = "argocd"
	NamespaceMonitoring = "monitoring"
	NamespaceSystem     = "kube-system"
)

// podSecurity is each namespace's Pod Security level: restricted wherever the images allow;
// Argo CD's chart is enforced at baseline and warned at restricted; monitoring runs
// node-exporter, which needs the host's network, PID namespace and filesystem.
var podSecurity = map[string]string{
	NamespaceApp:        "restricted",
	NamespaceData:       "restricted",
	NamespaceArgoCD:     "baseline",
	NamespaceMonitoring: "privileged",
	// KEDA's chart runs its pods non-root, read-only, with every capability dropped.
	NamespaceKEDA: "restricted",
	// Fluent Bit reads the nodes' log files through host paths.
	NamespaceLogging: "privileged",
}

// New declares the workloads. Pass the cluster's provider with pulumi.Providers.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Workloads, error) {
	w := &Workloads{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:Workloads", name, w, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	b := &builder{ctx: ctx, parent: w, name: name, cfg: cfg, namespaces: map[string]*corev1.Namespace{}, charts: args.Charts, crdProvider: args.CRDProvider,
		served: map[string]served{}}
	if b.charts == nil {
		b.charts = charts.For(cfg.ChartSource)
	}

	for _, ns := range slices.Sorted(maps.Keys(podSecurity)) {
		if err := b.namespace(ns, podSecurity[ns]); err != nil {
			return nil, err
		}
	}
	secrets, err := b.secrets()
	if err != nil {
		return nil, fmt.Errorf("generated secrets: %w", err)
	}
	if b.grafanaCloudWatch, err = b.grafanaCloudWatchLogin(args.LogsReader); err != nil {
		return nil, fmt.Errorf("grafana's cloudwatch login: %w", err)
	}
	alerts, err := b.alertingSecrets()
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	addons, err := b.addons(args.VPCID, args.ControlPlane, secrets, alerts)
	if err != nil {
		return nil, fmt.Errorf("platform add-ons: %w", err)
	}
	if err := b.postgres(addons, secrets); err != nil {
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	if err := b.redis(addons, secrets); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if err := b.rabbitmq(addons, secrets); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	kedaRelease, err := b.keda()
	if err != nil {
		return nil, fmt.Errorf("keda: %w", err)
	}
	if err := b.application(secrets, kedaRelease); err != nil {
		return nil, fmt.Errorf("application: %w", err)
	}
	if _, err := b.fluentBitRelease(); err != nil {
		return nil, fmt.Errorf("fluent bit: %w", err)
	}
	if _, err := b.backups(); err != nil {
		return nil, fmt.Errorf("backups: %w", err)
	}
	if err := alerts.rules(addons); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if err := b.networkPolicies(); err != nil {
		return nil, fmt.Errorf("network policies: %w", err)
	}
	if err := b.targetGroupBindings(addons, args.TargetGroupARNs, args.VPCID); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if err := ctx.RegisterResourceOutputs(w, pulumi.Map{}); err != nil {
		return nil, err
	}
	return w, nil
}

// builder declares the tier's resources, all parented to the component.
type builder struct {
	ctx        *pulumi.Context
	parent     pulumi.Resource
	name       string
	cfg        *config.Config
	namespaces map[string]*corev1.Namespace
	// pullSecret is the private registry's login in the app namespace, nil when not configured.
	pullSecret *corev1.Secret
	// grafanaCloudWatch is Grafana's login to the log group, nil without a reader.
	grafanaCloudWatch *corev1.Secret
	// pgBackupScript is the PostgreSQL backup script's ConfigMap, declared with PostgreSQL.
	pgBackupScript *corev1.ConfigMap
	// charts opens the chart archives whose CRDs the program owns; crdProvider declares them.
	charts      charts.Archives
	crdProvider *kubernetes.Provider
	// served records, per route, how its Service answers on the nodes, as the Service is
	// declared; targetGroupBindings registers the nodes accordingly.
	served map[string]served
}

// served is how a routed Service answers on its NodePort: on every node (traffic policy
// Cluster), or only on the node of role that runs its pods (Local).
type served struct {
	local bool
	role  config.Role
}

// opts parents a resource and makes it wait for its namespace and anything else given.
func (b *builder) opts(namespace string, deps ...pulumi.Resource) []pulumi.ResourceOption {
	if ns, ok := b.namespaces[namespace]; ok {
		deps = append(deps, ns)
	}
	return []pulumi.ResourceOption{pulumi.Parent(b.parent), pulumi.DependsOn(deps)}
}

// resourceName derives a unique logical name from the component's name.
func (b *builder) resourceName(namespace, name string) string {
	return fmt.Sprintf("%s-%s-%s", b.name, namespace, name)
}

// namespace declares a namespace with its Pod Security level. A production stack's data
// namespace is protected: deleting it would delete the claims in it.
func (b *builder) namespace(name, level string) error {
	ns, err := corev1.NewNamespace(b.ctx, b.resourceName("ns", name), &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(name),
			Labels: pulumi.StringMap{
				"pod-security.kubernetes.io/enforce": pulumi.String(level),
				"pod-security.kubernetes.io/warn":    pulumi.String("restricted"),
				"pod-security.kubernetes.io/audit":   pulumi.String("restricted"),
			},
		},
	}, pulumi.Parent(b.parent), pulumi.Protect(b.cfg.Production && name == NamespaceData))
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	b.namespaces[name] = ns
	return nil
}
