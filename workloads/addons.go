package workloads

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/routing"
	"github.com/waste-coach/infra/versions"
)

// Addons are the platform's controllers, which other workloads depend on.
type Addons struct {
	// EBSCSI and the storage classes must exist before anything stateful; VolumeGuard stands
	// between them and every claim, so that a destroy waits for the volumes to be deleted.
	EBSCSI       *helmv3.Release
	StorageClass *storagev1.StorageClass
	// RetainStorageClass is the production data class; nil on other stacks.
	RetainStorageClass *storagev1.StorageClass
	VolumeGuard        *remote.Command
	// LoadBalancerController registers the nodes in the ALB's target groups (TargetGroupBinding).
	LoadBalancerController *helmv3.Release
	// Monitoring installs the Prometheus operator's CRDs (ServiceMonitor).
	Monitoring *helmv3.Release
	ArgoCD     *helmv3.Release
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
func (p ChartPod) Requests() (milliCPU, memoryMiB int) {
	for _, c := range p.Containers {
		milliCPU += c.CPU
		memoryMiB += c.MemoryMiB
	}
	for _, c := range p.InitContainers {
		milliCPU, memoryMiB = max(milliCPU, c.CPU), max(memoryMiB, c.MemoryMiB)
	}
	return
}

var (
	small   = Resources{CPU: 10, MemoryMiB: 40, CPULimit: 100, MemoryLimitMiB: 128}
	sidecar = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 96}
)

// Resources of the add-ons' pods, sized for 2-vCPU nodes (the first implementation left
// Prometheus Pending by taking the charts' defaults).
var (
	ebsController    = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 256}
	lbController     = Resources{CPU: 50, MemoryMiB: 96, CPULimit: 250, MemoryLimitMiB: 256}
	metricsServer    = Resources{CPU: 50, MemoryMiB: 64, CPULimit: 250, MemoryLimitMiB: 192}
	prometheus       = Resources{CPU: 150, MemoryMiB: 1024, CPULimit: 1000, MemoryLimitMiB: 2048}
	prometheusConfig = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 64}
	alertmanager     = Resources{CPU: 10, MemoryMiB: 64, CPULimit: 100, MemoryLimitMiB: 128}
	promOperator     = Resources{CPU: 50, MemoryMiB: 96, CPULimit: 200, MemoryLimitMiB: 256}
	kubeStateMetrics = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 192}
	nodeExporter     = Resources{CPU: 20, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 64}
	grafana          = Resources{CPU: 50, MemoryMiB: 192, CPULimit: 500, MemoryLimitMiB: 384}
	argoServer       = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 500, MemoryLimitMiB: 256}
	argoRepoServer   = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 500, MemoryLimitMiB: 384}
	argoController   = Resources{CPU: 100, MemoryMiB: 256, CPULimit: 1000, MemoryLimitMiB: 768}
	argoRedis        = Resources{CPU: 20, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 128}
	argoAppSet       = Resources{CPU: 20, MemoryMiB: 64, CPULimit: 200, MemoryLimitMiB: 192}
	// hookJob is a chart's install/upgrade hook Job (certificate generation, a first password):
	// seconds of work, but its pod must be schedulable on a full node, so it asks for little.
	hookJob = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 100, MemoryLimitMiB: 128}
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
		{Release: "kube-prometheus-stack", Name: "kube-prometheus-stack-grafana", Role: m, Replicas: 1, Containers: []Resources{grafana, sidecar, sidecar}},
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

func (b *builder) release(name, namespace string, chart versions.Chart, values pulumi.Map, deps ...pulumi.Resource) (*helmv3.Release, error) {
	// The chart from its public repository, a mirror, or an archive in a local folder (whose
	// file name pins the version, so none is given).
	var (
		chartRef                               = chart.Name
		version  pulumi.StringPtrInput         = pulumi.String(chart.Version)
		repo     helmv3.RepositoryOptsPtrInput = &helmv3.RepositoryOptsArgs{Repo: pulumi.String(chart.Repo)}
	)
	switch src := b.cfg.ChartSource; {
	case src.Mirror != "":
		repo = &helmv3.RepositoryOptsArgs{Repo: pulumi.String(src.Mirror)}
	case src.Folder != "":
		chartRef, version, repo = filepath.Join(src.Folder, chart.Archive()), nil, nil
	}
	crds, err := b.chartCRDs(chart)
	if err != nil {
		return nil, err
	}
	r, err := helmv3.NewRelease(b.ctx, b.resourceName(namespace, name), &helmv3.ReleaseArgs{
		Name:           pulumi.String(name),
		Namespace:      pulumi.String(namespace),
		Chart:          pulumi.String(chartRef),
		Version:        version,
		RepositoryOpts: repo,
		Values:         values,
		// Wait for the release's workloads; roll back a failed upgrade instead of leaving it half done.
		Atomic:        pulumi.Bool(true),
		CleanupOnFail: pulumi.Bool(true),
		Timeout:       pulumi.Int(900),
		MaxHistory:    pulumi.Int(5),
		// The program owns the chart's crds/ folders (chartCRDs); the release waits for them.
		SkipCrds: pulumi.Bool(chart.CRDFolders),
	}, b.opts(namespace, append(deps, crds...)...)...)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	return r, nil
}

func (b *builder) addons(vpcID pulumi.StringInput, controlPlane remote.ConnectionInput, secrets *Secrets, alerts *Alerting) (*Addons, error) {
	cfg, a := b.cfg, &Addons{}
	master, app := config.RoleMaster, config.RoleWorker1
	var err error

	ebsValues := placement(master)
	ebsValues["replicaCount"] = pulumi.Int(1) // one control-plane node: a second replica could not be placed
	ebsValues["region"] = pulumi.String(cfg.Region)
	ebsValues["k8sTagClusterId"] = pulumi.String(cfg.ClusterID())
	ebsValues["resources"] = ebsController.values()
	a.EBSCSI, err = b.release("aws-ebs-csi-driver", NamespaceSystem, versions.EBSCSIDriver, pulumi.Map{
		"controller": ebsValues,
		"node":       pulumi.Map{"tolerateAllTaints": pulumi.Bool(true), "resources": small.values(), "enableWindows": pulumi.Bool(false)}, // no Windows nodes
		"sidecars": pulumi.Map{
			"provisioner":         pulumi.Map{"resources": sidecar.values()},
			"attacher":            pulumi.Map{"resources": sidecar.values()},
			"snapshotter":         pulumi.Map{"resources": sidecar.values()},
			"resizer":             pulumi.Map{"resources": sidecar.values()},
			"livenessProbe":       pulumi.Map{"resources": sidecar.values()},
			"nodeDriverRegistrar": pulumi.Map{"resources": sidecar.values()},
		},
	})
	if err != nil {
		return nil, err
	}
	if a.StorageClass, err = b.storageClass(StorageClassName, "Delete", true, a.EBSCSI); err != nil {
		return nil, err
	}
	classes := []pulumi.Resource{a.StorageClass}
	if cfg.Production {
		if a.RetainStorageClass, err = b.storageClass(RetainStorageClassName, "Retain", false, a.EBSCSI); err != nil {
			return nil, err
		}
		classes = append(classes, a.RetainStorageClass)
	}
	if a.VolumeGuard, err = b.volumeGuard(controlPlane, a.EBSCSI, classes...); err != nil {
		return nil, err
	}

	lbValues := placement(master)
	lbValues["clusterName"] = pulumi.String(cfg.ClusterID())
	lbValues["region"] = pulumi.String(cfg.Region)
	lbValues["vpcId"] = vpcID
	lbValues["replicaCount"] = pulumi.Int(1)
	lbValues["resources"] = lbController.values()
	// The Service mutator would hand every new LoadBalancer Service to the controller and block
	// Service creation while the controller is down; this platform has none.
	lbValues["enableServiceMutatorWebhook"] = pulumi.Bool(false)
	// The program declares the ALB; the controller only binds target groups. No IngressClass
	// (an Ingress can create no second ALB) and no backend security group of its own.
	lbValues["createIngressClassResource"] = pulumi.Bool(false)
	lbValues["enableBackendSecurityGroup"] = pulumi.Bool(false)
	if a.LoadBalancerController, err = b.release("aws-load-balancer-controller", NamespaceSystem, versions.LoadBalancerController, lbValues); err != nil {
		return nil, err
	}

	msValues := placement(app)
	msValues["resources"] = metricsServer.values()
	// kubeadm's kubelets serve self-signed certificates; metrics-server reaches them by node IP.
	msValues["args"] = pulumi.ToStringArray([]string{"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP"})
	if _, err := b.release("metrics-server", NamespaceSystem, versions.MetricsServer, msValues); err != nil {
		return nil, err
	}

	monitoringDeps := append([]pulumi.Resource{a.StorageClass, a.VolumeGuard, secrets.grafana}, alerts.Secrets...)
	if b.grafanaCloudWatch != nil {
		monitoringDeps = append(monitoringDeps, b.grafanaCloudWatch)
	}
	if a.Monitoring, err = b.release("kube-prometheus-stack", NamespaceMonitoring, versions.KubePrometheusStack, b.monitoringValues(), monitoringDeps...); err != nil {
		return nil, err
	}
	// Grafana runs on the master, which the load balancer controller never registers (kubeadm
	// labels it exclude-from-external-load-balancers), so its Service keeps the chart's traffic
	// policy Cluster: any registered node forwards to it.
	b.served["grafana"] = served{}
	if a.ArgoCD, err = b.release("argo-cd", NamespaceArgoCD, versions.ArgoCD, argoValues(cfg)); err != nil {
		return nil, err
	}
	b.served["argocd"] = served{local: true, role: argoCDRole}
	if _, err := b.customResourceGuard(controlPlane, a.ArgoCD, a.LoadBalancerController); err != nil {
		return nil, err
	}
	return a, nil
}

// storageClass declares an encrypted gp3 class bound where the pod lands and expandable in place.
func (b *builder) storageClass(name, reclaim string, isDefault bool, driver pulumi.Resource) (*storagev1.StorageClass, error) {
	annotations := pulumi.StringMap{}
	if isDefault {
		annotations["storageclass.kubernetes.io/is-default-class"] = pulumi.String("true")
	}
	sc, err := storagev1.NewStorageClass(b.ctx, b.resourceName("cluster", name), &storagev1.StorageClassArgs{
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(name), Annotations: annotations},
		Provisioner: pulumi.String(EBSDriver),
		Parameters: pulumi.StringMap{"type": pulumi.String("gp3"), "encrypted": pulumi.String("true"), "fsType": pulumi.String("ext4"),
			// Every volume of the class carries the tag the stack's daily snapshot policy targets.
			"tagSpecification_1": pulumi.String(config.SnapshotTagKey + "=" + b.cfg.ClusterID())},
		VolumeBindingMode:    pulumi.String("WaitForFirstConsumer"),
		AllowVolumeExpansion: pulumi.Bool(true),
		ReclaimPolicy:        pulumi.String(reclaim),
	}, pulumi.Parent(b.parent), pulumi.DependsOn([]pulumi.Resource{driver}))
	if err != nil {
		return nil, fmt.Errorf("storage class %s: %w", name, err)
	}
	return sc, nil
}

func withResources(m pulumi.Map, r Resources) pulumi.Map {
	m["resources"] = r.values()
	return m
}

// monitoringValues put Prometheus, Grafana and their operator on the master, with retention and
// sizes that fit a t3.large shared with the control plane.
func (b *builder) monitoringValues() pulumi.Map {
	master := config.RoleMaster
	on := func(r Resources) pulumi.Map { return withResources(placement(master), r) }
	promSpec := on(prometheus)
	promSpec["retention"] = pulumi.String("7d")
	promSpec["retentionSize"] = pulumi.String("8GB")
	// Pick up ServiceMonitors from every namespace, not only those labelled for this release.
	promSpec["serviceMonitorSelectorNilUsesHelmValues"] = pulumi.Bool(false)
	promSpec["podMonitorSelectorNilUsesHelmValues"] = pulumi.Bool(false)
	// And the program's PrometheusRules (alerting.go), which carry no release label either.
	promSpec["ruleSelectorNilUsesHelmValues"] = pulumi.Bool(false)
	promSpec["storageSpec"] = pulumi.Map{"volumeClaimTemplate": pulumi.Map{"spec": pulumi.Map{
		"storageClassName": pulumi.String(StorageClassName),
		"accessModes":      pulumi.ToStringArray([]string{"ReadWriteOnce"}),
		"resources":        pulumi.Map{"requests": pulumi.Map{"storage": pulumi.Sprintf("%dGi", prometheusStorageGiB)}},
	}}}
	// The operator's claim is no Pulumi resource: let the StatefulSet take it (and its EBS
	// volume) along when the release is uninstalled, so a destroy leaves no volume behind.
	promSpec["persistentVolumeClaimRetentionPolicy"] = pulumi.Map{"whenDeleted": pulumi.String("Delete"), "whenScaled": pulumi.String("Retain")}
	grafanaValues := on(grafana)
	grafanaValues["admin"] = pulumi.Map{"existingSecret": pulumi.String(grafanaSecret), "userKey": pulumi.String("admin-user"), "passwordKey": pulumi.String("admin-password")}
	grafanaValues["service"] = pulumi.Map{"type": pulumi.String("NodePort"), "nodePort": pulumi.Int(routing.For("kube-prometheus-stack-grafana").NodePort)}
	grafanaValues["sidecar"] = pulumi.Map{"resources": sidecar.values()}
	grafanaValues["grafana.ini"] = pulumi.Map{"server": pulumi.Map{
		"root_url":            pulumi.String("%(protocol)s://%(domain)s/grafana"),
		"serve_from_sub_path": pulumi.Bool(true),
	}}
	b.withCloudWatch(grafanaValues)
	// The node's workload label on kube_node_labels tells NodeNotReady which role is down.
	ksm := on(kubeStateMetrics)
	ksm["metricLabelsAllowlist"] = pulumi.ToStringArray([]string{"nodes=[" + config.WorkloadLabel + "]"})
	operator := on(promOperator)
	// The certificate Jobs run as hooks on every install and upgrade; the chart gives them no requests.
	operator["admissionWebhooks"] = pulumi.Map{"patch": withResources(placement(master), hookJob)}
	// The operator passes these to the config reloader of every Prometheus and Alertmanager pod
	// (--config-reloader-cpu-request etc.); the chart's default, 0, sets no request at all.
	operator["prometheusConfigReloader"] = pulumi.Map{"resources": prometheusConfig.values()}
	return pulumi.Map{
		// kubeadm binds these to localhost: scraping them from Prometheus would only raise alerts.
		"kubeControllerManager": pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeScheduler":         pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeEtcd":              pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeProxy":             pulumi.Map{"enabled": pulumi.Bool(false)},
		"prometheus":            pulumi.Map{"prometheusSpec": promSpec},
		"alertmanager":          pulumi.Map{"alertmanagerSpec": b.alertmanagerSpec(on(alertmanager))},
		"prometheusOperator":    operator,
		"kube-state-metrics":    ksm,
		"prometheus-node-exporter": pulumi.Map{
			"resources":   nodeExporter.values(),
			"tolerations": pulumi.Array{pulumi.Map{"operator": pulumi.String("Exists")}},
		},
		"grafana": grafanaValues,
	}
}

// alertmanagerSpec keeps 72 h of alerts and runs Alertmanager with the program's configuration
// (alerting.go) instead of the chart's, and with the receiver's secret mounted when there is one.
func (b *builder) alertmanagerSpec(m pulumi.Map) pulumi.Map {
	m["retention"] = pulumi.String("72h")
	m["useExistingSecret"] = pulumi.Bool(true)
	m["configSecret"] = pulumi.String(alerting.ConfigSecretName)
	if b.cfg.Alerting.Receiver != nil {
		m["secrets"] = pulumi.ToStringArray([]string{alerting.SecretName})
	}
	return m
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
	sso := cfg.ArgoCDSSO
	if sso == nil {
		return configs
	}
	configs["cm"] = pulumi.Map{
		"admin.enabled": pulumi.String("false"),
		"url":           pulumi.String("https://" + cfg.Domain + "/argocd"),
		// The secret is referenced, not inlined: Argo CD reads it from argocd-secret.
		"oidc.config": pulumi.String(fmt.Sprintf("name: SSO\nissuer: %s\nclientID: %s\nclientSecret: $oidc.clientSecret\nrequestedScopes: [openid, profile, email, groups]\n",
			strconv.Quote(sso.Issuer), strconv.Quote(sso.ClientID))),
	}
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
	server := withResources(pulumi.Map{}, argoServer)
	server["service"] = pulumi.Map{"type": pulumi.String("NodePort"), "externalTrafficPolicy": pulumi.String("Local"),
		"nodePortHttp": pulumi.Int(routing.For("argocd-server").NodePort)}
	return pulumi.Map{
		// Short, fixed names: the ALB's binding names the argocd-server Service.
		"fullnameOverride": pulumi.String("argocd"),
		"global":           pulumi.Map{"nodeSelector": nodeSelector(app)},
		"configs":          argoConfigs(cfg),
		"server":           server,
		"repoServer":       withResources(pulumi.Map{}, argoRepoServer),
		"controller":       withResources(pulumi.Map{}, argoController),
		"redis":            withResources(pulumi.Map{}, argoRedis),
		"applicationSet":   withResources(pulumi.Map{}, argoAppSet),
		"redisSecretInit":  withResources(pulumi.Map{}, hookJob), // a hook Job: the chart gives it no requests
		"dex":              pulumi.Map{"enabled": pulumi.Bool(false)},
		"notifications":    pulumi.Map{"enabled": pulumi.Bool(false)},
		// Argo CD's CRDs are templates of the release, which the chart marks for Helm to keep on
		// uninstall; a destroy must not leave them (or the Applications in them) behind.
		"crds": pulumi.Map{"keep": pulumi.Bool(false)},
	}
}
