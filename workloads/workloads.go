// Package workloads owns every workload on the cluster, as typed pulumi-kubernetes resources:
// the platform add-ons (EBS CSI, load balancer controller, metrics-server, Argo CD, monitoring),
// the data services, the application, the bindings of the ALB's target groups to their
// Services, and the network policies. Each concern is a component of its own, declared in
// order by New.
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
	// EtcdSnapshotPrefix is where the etcd snapshots of this cluster go in the backups bucket,
	// derived from its identity (cluster.EtcdSnapshotPrefix): a new master restores from there.
	EtcdSnapshotPrefix pulumi.StringInput
	// PodRoleARNs are the AWS roles of the components that call AWS, by infra.PodRole key
	// (infra.PodIdentity.PublishKeys): known once STS can verify their tokens.
	PodRoleARNs map[string]pulumi.StringOutput
}

// Workloads is everything that runs on the cluster, one component per concern.
type Workloads struct {
	pulumi.ResourceState

	// Namespaces and Secrets come first: every object waits for its namespace, and the
	// generated passwords go into several components' Secrets.
	Namespaces *Namespaces
	Secrets    *Secrets
	// Alerting's Secrets, Storage and Monitoring come before anything that is scraped or stateful.
	Alerting   *Alerting
	Storage    *Storage
	Monitoring *Monitoring
	Addons     *Addons
	// Data, Messaging and Application are the platform's own workloads; Autoscaling scales the
	// application.
	Data        *Data
	Messaging   *Messaging
	Application *Application
	Autoscaling *Autoscaling
	// Logging, Backups, NetworkPolicies and Routing (the ALB's bindings) follow what they serve.
	Logging         *Logging
	Backups         *Backups
	NetworkPolicies *NetworkPolicies
	Routing         *Routing
	// GitOps is what Argo CD syncs from Git (gitops.go); nil without the gitops key.
	GitOps *GitOps
}

// Namespaces of the platform, one per concern.
const (
	NamespaceApp        = "app"
	NamespaceData       = "data"
	NamespaceArgoCD     = "argocd"
	NamespaceMonitoring = "monitoring"
	NamespaceSystem     = "kube-system"
)

// NamespaceNodeMetrics holds the exporters that read the nodes themselves, apart from
// monitoring: node-exporter (the host's network, PID namespace and filesystem) and the
// certificate exporter (two certificate files of the master, through host paths), which only a
// privileged namespace allows.
const NamespaceNodeMetrics = "node-metrics"

// podSecurity is each namespace's Pod Security level: restricted wherever the images allow;
// Argo CD's chart and monitoring (Prometheus, Grafana, Alertmanager, served through the ALB) are
// enforced at baseline (no host namespaces, paths or privileges) and warned at restricted.
var podSecurity = map[string]string{
	NamespaceApp:         "restricted",
	NamespaceData:        "restricted",
	NamespaceArgoCD:      "baseline",
	NamespaceMonitoring:  "baseline",
	NamespaceNodeMetrics: "privileged",
	// KEDA's chart runs its pods non-root, read-only, with every capability dropped.
	NamespaceKEDA: "restricted",
	// Fluent Bit reads the nodes' log files through host paths.
	NamespaceLogging: "privileged",
}

// Namespaces are the namespaces the tier declares, each with its Pod Security level.
type Namespaces struct {
	pulumi.ResourceState

	// ByName are the namespaces by name: every object in one waits for it.
	ByName map[string]*corev1.Namespace
}

// namespacesArgs are the inputs of the tier's namespaces.
type namespacesArgs struct {
	// tierArgs name the namespaces and say whether the stack is production (whose data
	// namespace is protected).
	tierArgs
}

// newNamespaces declares a namespace per entry of podSecurity. A production stack's data
// namespace is protected: deleting it would delete the claims in it.
func newNamespaces(ctx *pulumi.Context, name string, args *namespacesArgs, opts ...pulumi.ResourceOption) (*Namespaces, error) {
	c := &Namespaces{ByName: map[string]*corev1.Namespace{}}
	return c, component(ctx, args.tierArgs, "Namespaces", name, c, opts, func(s *scope) error {
		for _, ns := range slices.Sorted(maps.Keys(podSecurity)) {
			level := podSecurity[ns]
			r, err := corev1.NewNamespace(ctx, s.resourceName("ns", ns), &corev1.NamespaceArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Name: pulumi.String(ns),
					Labels: pulumi.StringMap{
						"pod-security.kubernetes.io/enforce": pulumi.String(level),
						"pod-security.kubernetes.io/warn":    pulumi.String("restricted"),
						"pod-security.kubernetes.io/audit":   pulumi.String("restricted"),
					},
				},
			}, append(s.parented(), pulumi.Protect(s.cfg.Production && ns == NamespaceData))...)
			if err != nil {
				return fmt.Errorf("namespace %s: %w", ns, err)
			}
			c.ByName[ns] = r
		}
		return nil
	})
}

// New declares the workloads, in the order they need each other. Pass the cluster's provider
// with pulumi.Providers.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Workloads, error) {
	w := &Workloads{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:Workloads", name, w, opts...); err != nil {
		return nil, err
	}
	cfg, parent := args.Config, pulumi.Parent(w)
	chartArgs := chartArgs{Archives: args.Charts, CRDProvider: args.CRDProvider}
	if chartArgs.Archives == nil {
		chartArgs.Archives = charts.For(cfg.ChartSource)
	}
	t := tierArgs{TierName: name, Workloads: w, Config: cfg, PodRoleARNs: args.PodRoleARNs}
	var err error

	if w.Namespaces, err = newNamespaces(ctx, name+"-namespaces", &namespacesArgs{tierArgs: t}, parent); err != nil {
		return nil, fmt.Errorf("namespaces: %w", err)
	}
	t.Namespaces = w.Namespaces.ByName
	if w.Secrets, err = newSecrets(ctx, name+"-secrets", &secretsArgs{tierArgs: t}, parent); err != nil {
		return nil, fmt.Errorf("generated secrets: %w", err)
	}
	if w.Alerting, err = newAlerting(ctx, name+"-alerting", &alertingArgs{tierArgs: t}, parent); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if w.Storage, err = newStorage(ctx, name+"-storage", &storageArgs{tierArgs: t, Charts: chartArgs, ControlPlane: args.ControlPlane}, parent); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if w.Monitoring, err = newMonitoring(ctx, name+"-monitoring", &monitoringArgs{tierArgs: t, Charts: chartArgs,
		Storage: w.Storage, GrafanaAdminPassword: w.Secrets.GrafanaAdmin, LogsReader: args.LogsReader, AlertingSecrets: w.Alerting.Secrets}, parent); err != nil {
		return nil, fmt.Errorf("monitoring: %w", err)
	}
	if w.Addons, err = newAddons(ctx, name+"-addons", &addonsArgs{tierArgs: t, Charts: chartArgs, VPCID: args.VPCID, ControlPlane: args.ControlPlane}, parent); err != nil {
		return nil, fmt.Errorf("platform add-ons: %w", err)
	}
	if w.Data, err = newData(ctx, name+"-data", &dataArgs{tierArgs: t, Storage: w.Storage, Monitoring: w.Monitoring.Release,
		PostgresPassword: w.Secrets.PostgresPassword, RedisPassword: w.Secrets.RedisPassword,
		PostgresLogins: postgresLogins{App: w.Secrets.PostgresApp, Backup: w.Secrets.PostgresBackup, Monitor: w.Secrets.PostgresMonitor}}, parent); err != nil {
		return nil, fmt.Errorf("data services: %w", err)
	}
	if w.Messaging, err = newMessaging(ctx, name+"-messaging", &messagingArgs{tierArgs: t, Storage: w.Storage, Monitoring: w.Monitoring.Release,
		AdminPassword: w.Secrets.RabbitAdmin, AppPassword: w.Secrets.RabbitApp, ErlangCookie: w.Secrets.ErlangCookie}, parent); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	if w.Application, err = newApplication(ctx, name+"-application", &applicationArgs{tierArgs: t, Postgres: w.Data.Postgres,
		PostgresPassword: w.Secrets.PostgresApp, RedisPassword: w.Secrets.RedisPassword, RabbitPassword: w.Secrets.RabbitApp}, parent); err != nil {
		return nil, fmt.Errorf("application: %w", err)
	}
	if w.Autoscaling, err = newAutoscaling(ctx, name+"-autoscaling", &autoscalingArgs{tierArgs: t, Charts: chartArgs,
		APIs: w.Application.APIs, CeleryPools: w.Application.CeleryPools, AppSecret: w.Application.Secret}, parent); err != nil {
		return nil, fmt.Errorf("autoscaling: %w", err)
	}
	if w.Logging, err = newLogging(ctx, name+"-logging", &loggingArgs{tierArgs: t, Charts: chartArgs}, parent); err != nil {
		return nil, fmt.Errorf("fluent bit: %w", err)
	}
	if w.Backups, err = newBackups(ctx, name+"-backups", &backupsArgs{tierArgs: t, PostgresBackupScript: w.Data.PostgresBackupScript, PostgresBackupLogin: w.Data.PostgresBackupLogin,
		EtcdSnapshotPrefix: args.EtcdSnapshotPrefix}, parent); err != nil {
		return nil, fmt.Errorf("backups: %w", err)
	}
	if err := w.Alerting.declareRules(&alertRulesArgs{Monitoring: w.Monitoring.Release}); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if w.NetworkPolicies, err = newNetworkPolicies(ctx, name+"-network-policies", &networkPoliciesArgs{tierArgs: t}, parent); err != nil {
		return nil, fmt.Errorf("network policies: %w", err)
	}
	served := maps.Clone(w.Monitoring.Served)
	maps.Copy(served, w.Addons.Served)
	maps.Copy(served, w.Application.Served)
	if w.Routing, err = newRouting(ctx, name+"-routing", &routingArgs{tierArgs: t, TargetGroupARNs: args.TargetGroupARNs, VPCID: args.VPCID,
		LoadBalancerController: w.Addons.LoadBalancerController, Served: served}, parent); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if cfg.GitOps != nil {
		if w.GitOps, err = newGitOps(ctx, name+"-gitops", &gitOpsArgs{tierArgs: t, ArgoCD: w.Addons.ArgoCD}, parent); err != nil {
			return nil, fmt.Errorf("gitops: %w", err)
		}
	}
	if err := ctx.RegisterResourceOutputs(w, pulumi.Map{}); err != nil {
		return nil, err
	}
	return w, nil
}

// tierArgs are what every component of the tier is given.
type tierArgs struct {
	// TierName is the Workloads component's name. Every child's logical name derives from it,
	// as it did when the children were the Workloads component's own: a changed name would
	// change the URN, and the engine would replace the resource (a claim's volume with it).
	TierName string
	// Workloads is the tier's component, which the children of the components declared since
	// the tier was split were registered under before: their former parent, kept as an alias.
	Workloads pulumi.Resource
	// Config is the validated stack configuration.
	Config *config.Config
	// Namespaces are the tier's namespaces by name; every object in one waits for it. Nil for
	// the Namespaces component itself.
	Namespaces map[string]*corev1.Namespace
	// PodRoleARNs are the AWS roles of the pods that call AWS (Args.PodRoleARNs).
	PodRoleARNs map[string]pulumi.StringOutput
}

// scope declares a component's children: parented to it, named from the tier's name, and, for
// a component the split introduced, aliased to their former parent (the Workloads component), so
// that every deployed resource keeps its identity.
type scope struct {
	ctx    *pulumi.Context
	parent pulumi.Resource
	// formerParent is nil for the components whose children never moved (Alerting, Backups:
	// they were components under Workloads before the split, and still are).
	formerParent pulumi.Resource
	name         string
	cfg          *config.Config
	namespaces   map[string]*corev1.Namespace
	roleARNs     map[string]pulumi.StringOutput
}

// movedScope declares the children of a component the split introduced.
func (t tierArgs) movedScope(ctx *pulumi.Context, component pulumi.Resource) *scope {
	return &scope{ctx: ctx, parent: component, formerParent: t.Workloads, name: t.TierName, cfg: t.Config, namespaces: t.Namespaces, roleARNs: t.PodRoleARNs}
}

// keptScope declares the children of a component that existed under Workloads before the split:
// their parent, and so their URN, does not change.
func (t tierArgs) keptScope(ctx *pulumi.Context, component pulumi.Resource) *scope {
	return &scope{ctx: ctx, parent: component, name: t.TierName, cfg: t.Config, namespaces: t.Namespaces, roleARNs: t.PodRoleARNs}
}

// parented parents a resource to the component, aliased to its former parent where it had one.
func (s *scope) parented() []pulumi.ResourceOption {
	opts := []pulumi.ResourceOption{pulumi.Parent(s.parent)}
	if s.formerParent != nil {
		opts = append(opts, pulumi.Aliases([]pulumi.Alias{{Parent: s.formerParent}}))
	}
	return opts
}

// opts parents a resource and makes it wait for its namespace and anything else given.
func (s *scope) opts(namespace string, deps ...pulumi.Resource) []pulumi.ResourceOption {
	if ns, ok := s.namespaces[namespace]; ok {
		deps = append(deps, ns)
	}
	return append(s.parented(), pulumi.DependsOn(deps))
}

// allNamespaces returns the tier's namespaces, in name order. A release that serves an aggregated
// API (metrics-server's metrics.k8s.io, KEDA's external.metrics.k8s.io) waits for them all, so
// that a destroy uninstalls it, and deletes its APIService, before any namespace: the namespace
// controller finalizes no namespace while discovery of an APIService fails, and a destroy that
// deletes the namespaces first, with the API's pods already gone or never run, waits on them
// for its full timeout (seen in the offline engine run, whose pods never serve: its parallel
// slots taken by the namespaces, the release's uninstall never started).
func (s *scope) allNamespaces() []pulumi.Resource {
	var out []pulumi.Resource
	for _, name := range slices.Sorted(maps.Keys(s.namespaces)) {
		out = append(out, s.namespaces[name])
	}
	return out
}

// resourceName derives a unique logical name from the tier's name.
func (s *scope) resourceName(namespace, name string) string {
	return fmt.Sprintf("%s-%s-%s", s.name, namespace, name)
}

// Served is how a routed Service answers on its NodePort: on every node (traffic policy
// Cluster), or only on the node of Role that runs its pods (Local). The components that declare
// routed Services report it per route; Routing registers the nodes accordingly.
type Served struct {
	// Local is set when the Service keeps the client's address (traffic policy Local): only
	// Role's node answers, so only it may be registered in the route's target group.
	Local bool
	// Role is the node role that runs the Service's pods; it matters only when Local is set.
	Role config.Role
}

// component registers c, a component the split introduced, as the tier's component typ, declares
// its children with declare in a scope that parents them to it (aliased to their former
// parent), and completes it.
func component(ctx *pulumi.Context, t tierArgs, typ, name string, c pulumi.ComponentResource, opts []pulumi.ResourceOption, declare func(s *scope) error) error {
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:"+typ, name, c, opts...); err != nil {
		return err
	}
	if err := declare(t.movedScope(ctx, c)); err != nil {
		return err
	}
	return ctx.RegisterResourceOutputs(c, pulumi.Map{})
}
