package workloads

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/routing"
	"github.com/waste-coach/infra/versions"
)

// Addons are the platform's controllers that other workloads depend on: the load balancer
// controller, metrics-server and Argo CD, with the guard that empties their finalized custom
// resources on destroy while they still run.
type Addons struct {
	pulumi.ResourceState

	// LoadBalancerController registers the nodes in the ALB's target groups (TargetGroupBinding).
	LoadBalancerController *helmv3.Release
	// ArgoCD syncs the application manifests from Git.
	ArgoCD *helmv3.Release
	// Served is how Argo CD's routed Service answers, by route name.
	Served map[string]Served
}

// addonsArgs are the inputs of the platform's controllers.
type addonsArgs struct {
	// tierArgs name the resources and carry the stack's configuration (Argo CD's SSO, the
	// cluster's name and region for the load balancer controller).
	tierArgs
	// Charts install the controllers' charts and declare their CRDs.
	Charts chartArgs
	// VPCID is the cluster's VPC, where the load balancer controller finds the target groups.
	VPCID pulumi.StringInput
	// ControlPlane is the SSH connection (a secret) the custom resource guard's delete step
	// runs over.
	ControlPlane remote.ConnectionInput
}

// ChartPod is one pod a chart runs, with the resources this program gives it. The same values
// go into the chart and into the fit check.
type ChartPod struct {
	// Release is the Helm release the pod belongs to.
	Release string
	// Name identifies the pod within the release.
	Name string
	// Role is where it runs; empty for a DaemonSet, which runs on every node.
	Role config.Role
	// DaemonSet runs one pod on every node.
	DaemonSet bool
	// Hook marks a Helm hook Job's pod: it runs during an install or upgrade, then completes.
	Hook     bool
	Replicas int
	// Containers are the pod's containers' resources; InitContainers those that run to
	// completion before them.
	Containers     []Resources
	InitContainers []Resources
}

// Requests are what the scheduler counts for the pod: the sum of its containers' requests, or
// its largest init container's where that is larger.
func (p ChartPod) Requests() (milliCPU, memoryMiB, diskMiB int) {
	for _, c := range p.Containers {
		milliCPU += c.CPU
		memoryMiB += c.MemoryMiB
		diskMiB += c.DiskMiB
	}
	for _, c := range p.InitContainers {
		milliCPU, memoryMiB, diskMiB = max(milliCPU, c.CPU), max(memoryMiB, c.MemoryMiB), max(diskMiB, c.DiskMiB)
	}
	return
}

var (
	small   = Resources{CPU: 10, MemoryMiB: 40, CPULimit: 100, MemoryLimitMiB: 128, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	sidecar = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 96, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
)

// Scratch the charts' pods fill (emptyDirs, MiB), each bounded through the chart's values where
// the chart offers a sizeLimit: Alertmanager's silences and notification log; Grafana's
// database and plugins (the chart offers no limit for this one: the container's limit bounds
// it) and its dashboard and data source sidecars' files; Argo CD's repo server's checkouts
// (each of its five emptyDirs is limited to this, and the pod as a whole to about as much), its
// controller's home and temp directories, and the API server's and ApplicationSet controller's.
const (
	alertmanagerScratchMiB                           = 256
	grafanaScratchMiB, dashboardsMiB, datasourcesMiB = 256, 64, 16
	argoRepoScratchMiB, argoControllerScratchMiB     = 1024, 256
	argoServerScratchMiB, argoAppSetScratchMiB       = 64, 64
)

// Resources of the add-ons' pods, sized for 2-vCPU nodes (the first implementation left
// Prometheus Pending by taking the charts' defaults). The disk of a pod's main container covers
// the logs of a container beside it that the chart gives no disk figures (the config reloader).
var (
	ebsController = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 256, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	lbController  = Resources{CPU: 50, MemoryMiB: 96, CPULimit: 250, MemoryLimitMiB: 256, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	metricsServer = Resources{CPU: 50, MemoryMiB: 64, CPULimit: 250, MemoryLimitMiB: 192, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	prometheus    = Resources{CPU: 150, MemoryMiB: 1024, CPULimit: 1000, MemoryLimitMiB: 2048, DiskMiB: 32, DiskLimitMiB: diskLimit(LogsMiB)}
	// prometheusConfig is the config reloader's: the operator takes its requests and limits as
	// flags for CPU and memory only, so it runs with no disk figures of its own.
	prometheusConfig = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 64}
	alertmanager     = Resources{CPU: 10, MemoryMiB: 64, CPULimit: 100, MemoryLimitMiB: 128, DiskMiB: 32, DiskLimitMiB: diskLimit(alertmanagerScratchMiB + LogsMiB)}
	promOperator     = Resources{CPU: 50, MemoryMiB: 96, CPULimit: 200, MemoryLimitMiB: 256, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	kubeStateMetrics = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 192, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	nodeExporter     = Resources{CPU: 20, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 64, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	grafana          = Resources{CPU: 50, MemoryMiB: 192, CPULimit: 500, MemoryLimitMiB: 384, DiskMiB: 64, DiskLimitMiB: diskLimit(grafanaScratchMiB + dashboardsMiB + datasourcesMiB)}
	argoServer       = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 500, MemoryLimitMiB: 256, DiskMiB: 32, DiskLimitMiB: diskLimit(3 * argoServerScratchMiB)}
	argoRepoServer   = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 500, MemoryLimitMiB: 384, DiskMiB: 256, DiskLimitMiB: diskLimit(argoRepoScratchMiB)}
	argoController   = Resources{CPU: 100, MemoryMiB: 256, CPULimit: 1000, MemoryLimitMiB: 768, DiskMiB: 64, DiskLimitMiB: diskLimit(2 * argoControllerScratchMiB)}
	argoRedis        = Resources{CPU: 20, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 128, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	argoAppSet       = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 192, DiskMiB: 32, DiskLimitMiB: diskLimit(2 * argoAppSetScratchMiB)}
	// hookJob is a chart's install/upgrade hook Job (certificate generation, a first password):
	// seconds of work, but its pod must be schedulable on a full node, so it asks for little.
	hookJob = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 128, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
)

// prometheusStorageGiB holds 7 days of metrics, capped at 8 GB by retentionSize.
const prometheusStorageGiB = 10

// ChartPods lists every pod the add-on charts run, where, and with what resources, named after
// the workload that owns it as the chart renders it (for the Prometheus and Alertmanager
// resources, the StatefulSet the operator creates). tools/charts renders the pinned charts with
// these releases' values and fails when this list and the rendered pods differ. Helm test pods
// are not listed: an install never runs them.
func ChartPods() []ChartPod {
	m := config.RoleMaster
	app := config.RoleWorker1
	return []ChartPod{
		// No snapshotter sidecar: the chart adds it only when the cluster serves
		// snapshot.storage.k8s.io, and no CRD here installs it (snapshots are EBS's own).
		{Release: "aws-ebs-csi-driver", Name: "ebs-csi-controller", Role: m, Replicas: 1, Containers: []Resources{ebsController, sidecar, sidecar, sidecar, sidecar}},
		{Release: "aws-ebs-csi-driver", Name: "ebs-csi-node", DaemonSet: true, Containers: []Resources{small, sidecar, sidecar}},
		{Release: "aws-load-balancer-controller", Name: "aws-load-balancer-controller", Role: m, Replicas: 1, Containers: []Resources{lbController}},
		{Release: "metrics-server", Name: "metrics-server", Role: app, Replicas: 1, Containers: []Resources{metricsServer}},
		// The operator adds a config reloader beside Prometheus and Alertmanager, and runs it once
		// before them, with the requests of its flags (prometheusConfigReloader below).
		{Release: "kube-prometheus-stack", Name: "prometheus-kube-prometheus-stack-prometheus", Role: m, Replicas: 1, Containers: []Resources{prometheus, prometheusConfig}, InitContainers: []Resources{prometheusConfig}},
		{Release: "kube-prometheus-stack", Name: "alertmanager-kube-prometheus-stack-alertmanager", Role: m, Replicas: 1, Containers: []Resources{alertmanager, prometheusConfig}, InitContainers: []Resources{prometheusConfig}},
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-operator", Role: m, Replicas: 1, Containers: []Resources{promOperator}},
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-kube-state-metrics", Role: m, Replicas: 1, Containers: []Resources{kubeStateMetrics}},
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-prometheus-node-exporter", DaemonSet: true, Containers: []Resources{nodeExporter}},
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-grafana", Role: grafanaRole, Replicas: 1, Containers: []Resources{grafana, sidecar, sidecar}},
		// The operator's admission webhook certificate: generated before install, patched in after.
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-admission-create", Role: m, Hook: true, Replicas: 1, Containers: []Resources{hookJob}},
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-admission-patch", Role: m, Hook: true, Replicas: 1, Containers: []Resources{hookJob}},
		{Release: "argo-cd", Name: "argocd-server", Role: app, Replicas: 1, Containers: []Resources{argoServer}},
		// The repo server copies the argocd binary in first, with the repo server's resources.
		{Release: "argo-cd", Name: "argocd-repo-server", Role: app, Replicas: 1, Containers: []Resources{argoRepoServer}, InitContainers: []Resources{argoRepoServer}},
		{Release: "argo-cd", Name: "argocd-application-controller", Role: app, Replicas: 1, Containers: []Resources{argoController}},
		{Release: "argo-cd", Name: "argocd-redis", Role: app, Replicas: 1, Containers: []Resources{argoRedis}},
		{Release: "argo-cd", Name: "argocd-applicationset-controller", Role: app, Replicas: 1, Containers: []Resources{argoAppSet}},
		// Redis's first password, before install and every upgrade.
		{Release: "argo-cd", Name: "argocd-redis-secret-init", Role: app, Hook: true, Replicas: 1, Containers: []Resources{hookJob}},
		// Autoscaling and central logs (autoscaling.go, logging.go).
		{Release: "keda", Name: "keda-operator", Role: kedaPlacement, Replicas: 1, Containers: []Resources{kedaOperator}},
		{Release: "keda", Name: "keda-operator-metrics-apiserver", Role: kedaPlacement, Replicas: 1, Containers: []Resources{kedaMetrics}},
		{Release: "keda", Name: "keda-admission-webhooks", Role: kedaPlacement, Replicas: 1, Containers: []Resources{kedaWebhooks}},
		{Release: "fluent-bit", Name: "fluent-bit", DaemonSet: true, Containers: []Resources{fluentBit}},
	}
}

// release installs a pinned chart, after the CRDs of its crds/ folders (chartCRDs). The archive
// is read and checked against its sha256 pin first (charts.Verify), whatever the source, and the
// release installs those very bytes: the chartSource folder's file, or the copy written to
// chartArgs.CopyDir of the one fetched from the public repository or the mirror. Helm is never
// left to fetch a chart itself (it would check no digest), so the release names a file and no
// repository or version: the file's name pins the version.
func (s *scope) release(archives chartArgs, name, namespace string, chart versions.Chart, values pulumi.Map, deps ...pulumi.Resource) (*helmv3.Release, error) {
	archive, err := archives.Archives.Archive(chart)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	chartRef := charts.Folder(s.cfg.ChartSource.Folder).Path(chart)
	if s.cfg.ChartSource.Folder == "" {
		if chartRef, err = charts.Copy(archives.copyDir(), chart, archive); err != nil {
			return nil, fmt.Errorf("release %s: keep the checked archive for Helm: %w", name, err)
		}
	}
	crds, err := s.chartCRDs(archives, chart, archive)
	if err != nil {
		return nil, err
	}
	if values, err = mergeValues(values, chartImageValues(chart)); err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	r, err := helmv3.NewRelease(s.ctx, s.resourceName(namespace, name), &helmv3.ReleaseArgs{
		Name:      pulumi.String(name),
		Namespace: pulumi.String(namespace),
		Chart:     pulumi.String(chartRef),
		Values:    values,
		// Wait for the release's workloads; roll back a failed upgrade instead of leaving it half done.
		Atomic:        pulumi.Bool(true),
		CleanupOnFail: pulumi.Bool(true),
		Timeout:       pulumi.Int(900),
		MaxHistory:    pulumi.Int(5),
		// The program owns the chart's crds/ folders (chartCRDs); the release waits for them.
		SkipCrds: pulumi.Bool(chart.CRDFolders),
	}, s.opts(namespace, append(deps, crds...)...)...)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	return r, nil
}

// newAddons declares the load balancer controller, metrics-server and Argo CD.
func newAddons(ctx *pulumi.Context, name string, args *addonsArgs, opts ...pulumi.ResourceOption) (*Addons, error) {
	c := &Addons{}
	return c, component(ctx, args.tierArgs, "Addons", name, c, opts, func(s *scope) error {
		cfg := args.Config
		master, app := config.RoleMaster, config.RoleWorker1
		var err error

		lbValues := placement(master)
		lbValues["clusterName"] = pulumi.String(cfg.ClusterID())
		lbValues["region"] = pulumi.String(cfg.Region)
		lbValues["vpcId"] = args.VPCID
		lbValues["replicaCount"] = pulumi.Int(1)
		lbValues["resources"] = lbController.values()
		// Its own role (infra.PodRoleLoadBalancer); with region and VPC given it never asks the
		// metadata service for them. The chart's env is a map of plain values.
		lbIdentity := s.awsIdentity(infra.PodRoleLoadBalancer)
		lbValues["env"] = lbIdentity.chartEnvMap()
		lbValues["extraVolumes"] = pulumi.Array{lbIdentity.chartVolume()}
		lbValues["extraVolumeMounts"] = pulumi.Array{lbIdentity.chartMount()}
		// The Service mutator would hand every new LoadBalancer Service to the controller and block
		// Service creation while the controller is down; this platform has none.
		lbValues["enableServiceMutatorWebhook"] = pulumi.Bool(false)
		// The program declares the ALB; the controller only binds target groups. No IngressClass
		// (an Ingress can create no second ALB) and no backend security group of its own.
		lbValues["createIngressClassResource"] = pulumi.Bool(false)
		lbValues["enableBackendSecurityGroup"] = pulumi.Bool(false)
		if c.LoadBalancerController, err = s.release(args.Charts, "aws-load-balancer-controller", NamespaceSystem, versions.LoadBalancerController, lbValues); err != nil {
			return err
		}

		msValues := placement(app)
		msValues["resources"] = metricsServer.values()
		// kubeadm's kubelets serve self-signed certificates; metrics-server reaches them by node IP.
		msValues["args"] = pulumi.ToStringArray([]string{"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP"})
		if _, err := s.release(args.Charts, "metrics-server", NamespaceSystem, versions.MetricsServer, msValues, s.allNamespaces()...); err != nil {
			return err
		}

		if c.ArgoCD, err = s.release(args.Charts, "argo-cd", NamespaceArgoCD, versions.ArgoCD, argoValues(cfg)); err != nil {
			return err
		}
		c.Served = map[string]Served{"argocd": {Local: true, Role: argoCDRole}}
		if err := s.lockDefaultProject(args.Charts.CRDProvider, c.ArgoCD); err != nil {
			return err
		}
		if _, err := s.customResourceGuard(OwnArgoObjects(cfg.GitOps), args.ControlPlane, c.ArgoCD, c.LoadBalancerController); err != nil {
			return err
		}
		return nil
	})
}

func withResources(m pulumi.Map, r Resources) pulumi.Map {
	m["resources"] = r.values()
	return m
}

// scratch is the value Argo CD's chart limits each emptyDir of a component with.
func scratch(mib int) pulumi.Map {
	return pulumi.Map{"emptyDir": pulumi.Map{"sizeLimit": pulumi.Sprintf("%dMi", mib)}}
}

// argoConfigs serve Argo CD under /argocd and, once an identity provider is configured, sign
// operators in through it and disable the built-in admin account, whose password otherwise
// grants everything Argo CD's controller can do in the cluster.
func argoConfigs(cfg *config.Config) pulumi.Map {
	configs := pulumi.Map{"params": pulumi.Map{
		"server.insecure": pulumi.Bool(true),
		"server.rootpath": pulumi.String("/argocd"),
		"server.basehref": pulumi.String("/argocd"),
	}}
	// Argo CD caches only the kinds it syncs and their children: its controller may read no
	// other (argocd_rbac.go).
	// respectRBAC: a kind its RBAC refuses is left out of the cache rather than failing it.
	cm := pulumi.Map{"resource.inclusions": pulumi.String(argoCDResourceInclusions()), "resource.respectRBAC": pulumi.String("normal")}
	configs["cm"] = cm
	if cfg.GitOps != nil {
		// The design record's polling interval, written out rather than left to the chart's
		// default, so that a chart bump cannot change it unseen (gitops.go).
		cm["timeout.reconciliation"] = pulumi.String(ArgoCDPollInterval)
	}
	sso := cfg.ArgoCDSSO
	if sso == nil {
		return configs
	}
	cm["admin.enabled"] = pulumi.String("false")
	cm["url"] = pulumi.String("https://" + cfg.Domain + "/argocd")
	// The secret is referenced, not inlined: Argo CD reads it from argocd-secret.
	cm["oidc.config"] = pulumi.String(fmt.Sprintf("name: SSO\nissuer: %s\nclientID: %s\nclientSecret: $oidc.clientSecret\nrequestedScopes: [openid, profile, email, groups]\n",
		strconv.Quote(sso.Issuer), strconv.Quote(sso.ClientID)))
	configs["secret"] = pulumi.Map{"extra": pulumi.Map{ArgoCDClientSecretKey: sso.ClientSecret}}
	configs["rbac"] = pulumi.Map{
		"policy.default": pulumi.String(""),
		"policy.csv":     pulumi.String("g, " + sso.AdminGroup + ", role:admin\n"),
		"scopes":         pulumi.String("[groups]"),
	}
	return configs
}

// ArgoCDClientSecretKey is the argocd-secret key that holds the identity provider's client secret.
const ArgoCDClientSecretKey = "oidc.clientSecret"

// argoCDRole is the node Argo CD runs on; its server's Service keeps the client address.
const argoCDRole = config.RoleWorker1

// argoValues serve Argo CD under /argocd behind the ALB, which terminates TLS.
func argoValues(cfg *config.Config) pulumi.Map {
	app := argoCDRole
	server := withResources(scratch(argoServerScratchMiB), argoServer)
	server["service"] = pulumi.Map{"type": pulumi.String("NodePort"), "externalTrafficPolicy": pulumi.String("Local"),
		"nodePortHttp": pulumi.Int(routing.For("argocd-server").NodePort)}
	// The cluster-wide rules of argocd_rbac.go instead of the chart's (every kind).
	server["clusterRoleRules"] = pulumi.Map{"enabled": pulumi.Bool(true), "rules": argoCDServerClusterRules()}
	controller := withResources(scratch(argoControllerScratchMiB), argoController)
	controller["clusterRoleRules"] = pulumi.Map{"enabled": pulumi.Bool(true), "rules": argoCDControllerClusterRules()}
	return pulumi.Map{
		// Short, fixed names: the ALB's binding names the argocd-server Service.
		"fullnameOverride": pulumi.String("argocd"),
		"global":           pulumi.Map{"nodeSelector": nodeSelector(app)},
		"configs":          argoConfigs(cfg),
		"server":           server,
		"repoServer":       withResources(scratch(argoRepoScratchMiB), argoRepoServer),
		"controller":       controller,
		"redis":            withResources(pulumi.Map{}, argoRedis),
		"applicationSet":   withResources(scratch(argoAppSetScratchMiB), argoAppSet),
		"redisSecretInit":  withResources(pulumi.Map{}, hookJob), // a hook Job: the chart gives it no requests
		"dex":              pulumi.Map{"enabled": pulumi.Bool(false)},
		"notifications":    pulumi.Map{"enabled": pulumi.Bool(false)},
		// Argo CD's CRDs are templates of the release, which the chart marks for Helm to keep on
		// uninstall; a destroy must not leave them (or the Applications in them) behind.
		"crds": pulumi.Map{"keep": pulumi.Bool(false)},
	}
}
