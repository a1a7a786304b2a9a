package workloads

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/routing"
	"github.com/waste-coach/infra/versions"
)

// Monitoring is kube-prometheus-stack (Prometheus, Alertmanager, Grafana and the Prometheus
// operator, whose CRDs the PodMonitors, ServiceMonitors and PrometheusRules need) on the master,
// with Grafana's logins.
type Monitoring struct {
	pulumi.ResourceState

	// Release is the chart's release: it brings the monitoring CRDs.
	Release *helmv3.Release
	// Served is how Grafana's routed Service answers, by route name.
	Served map[string]Served
}

// monitoringArgs are the inputs of the monitoring stack.
type monitoringArgs struct {
	// tierArgs name the resources; the configuration says whether an alert receiver is set.
	tierArgs
	// Charts install kube-prometheus-stack and declare its CRDs.
	Charts chartArgs
	// Storage holds the class Prometheus's claim uses and the volume guard, which the release
	// waits for so that a destroy deletes the claim before the guard waits for its volume.
	Storage *Storage
	// GrafanaAdminPassword is the Grafana admin's password (a secret).
	GrafanaAdminPassword pulumi.StringOutput
	// LogsReader is Grafana's read-only login to the stack's log group; nil declares no
	// CloudWatch data source.
	LogsReader *LogsReader
	// AlertingSecrets are Alertmanager's configuration and its receiver's secret, which its pod
	// mounts: the release waits for them.
	AlertingSecrets []pulumi.Resource
}

// newMonitoring declares Grafana's Secrets and the monitoring release.
func newMonitoring(ctx *pulumi.Context, name string, args *monitoringArgs, opts ...pulumi.ResourceOption) (*Monitoring, error) {
	c := &Monitoring{}
	return c, component(ctx, args.tierArgs, "Monitoring", name, c, opts, func(s *scope) error {
		grafanaAdmin, err := s.secret(NamespaceMonitoring, grafanaSecret, pulumi.StringMap{
			"admin-user": pulumi.String("admin"), "admin-password": args.GrafanaAdminPassword,
		})
		if err != nil {
			return err
		}
		cloudWatch, err := s.grafanaCloudWatchLogin(args.LogsReader)
		if err != nil {
			return fmt.Errorf("grafana's cloudwatch login: %w", err)
		}
		deps := append([]pulumi.Resource{args.Storage.StorageClass, args.Storage.VolumeGuard, grafanaAdmin, s.namespaces[NamespaceNodeMetrics]}, args.AlertingSecrets...)
		if cloudWatch != nil {
			deps = append(deps, cloudWatch)
		}
		if c.Release, err = s.release(args.Charts, "kube-prometheus-stack", NamespaceMonitoring, versions.KubePrometheusStack,
			monitoringValues(args.Config, cloudWatch != nil), deps...); err != nil {
			return err
		}
		// Grafana's Service keeps the client's address (traffic policy Local): only its node is
		// registered, and the ALB's requests arrive from the ALB's addresses in the VPC.
		c.Served = map[string]Served{"grafana": {Local: true, Role: grafanaRole}}
		return nil
	})
}

// grafanaRole is the node Grafana runs on, beside Argo CD's server: a node the ALB registers.
const grafanaRole = config.RoleWorker1

// monitoringValues put Prometheus and its operator on the master, Grafana on grafanaRole, with retention and
// sizes that fit a t3.large shared with the control plane.
func monitoringValues(cfg *config.Config, cloudWatch bool) pulumi.Map {
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
	// Grafana runs on a worker the ALB registers, not on the master (which the load balancer
	// controller never registers: kubeadm labels it exclude-from-external-load-balancers), so that
	// its Service can keep the client's address: its NetworkPolicy then admits the ALB, from the
	// VPC, and no pod (on the master, the ALB path came through another node's tunnel address,
	// from the pod network, and every pod had to be let in with it).
	grafanaValues := withResources(placement(grafanaRole), grafana)
	// Its node's CPU is all requested when the APIs run at their autoscaling maximum: a rolling
	// update's second pod would stay Pending and fail the atomic release. Grafana keeps no data
	// (its dashboards and data sources are provisioned), so the old pod goes first.
	grafanaValues["deploymentStrategy"] = pulumi.Map{"type": pulumi.String("Recreate")}
	grafanaValues["admin"] = pulumi.Map{"existingSecret": pulumi.String(grafanaSecret), "userKey": pulumi.String("admin-user"), "passwordKey": pulumi.String("admin-password")}
	grafanaValues["service"] = pulumi.Map{"type": pulumi.String("NodePort"), "externalTrafficPolicy": pulumi.String("Local"),
		"nodePort": pulumi.Int(routing.For("kube-prometheus-stack-grafana").NodePort)}
	// Grafana, served to the internet, reads only its own namespace: a Role instead of the
	// chart's ClusterRole over every Secret and ConfigMap, and its sidecars look for dashboards
	// and data sources there (every one the charts and the program make is in `monitoring`;
	// kube-prometheus-stack would otherwise search ALL namespaces, which the Role refuses).
	grafanaValues["rbac"] = pulumi.Map{"namespaced": pulumi.Bool(true)}
	// No `helm test` hook (a ServiceAccount and pod only helm test would create).
	grafanaValues["testFramework"] = pulumi.Map{"enabled": pulumi.Bool(false)}
	grafanaValues["sidecar"] = pulumi.Map{
		"resources":   sidecar.values(),
		"dashboards":  pulumi.Map{"sizeLimit": pulumi.Sprintf("%dMi", dashboardsMiB), "searchNamespace": pulumi.String(NamespaceMonitoring)},
		"datasources": pulumi.Map{"sizeLimit": pulumi.Sprintf("%dMi", datasourcesMiB), "searchNamespace": pulumi.String(NamespaceMonitoring)},
	}
	grafanaValues["grafana.ini"] = pulumi.Map{"server": pulumi.Map{
		"root_url":            pulumi.String("%(protocol)s://%(domain)s/grafana"),
		"serve_from_sub_path": pulumi.Bool(true),
	}}
	if cloudWatch {
		withCloudWatch(grafanaValues, cfg.Region)
	}
	// The node's workload label on kube_node_labels tells NodeNotReady which role is down.
	ksm := on(kubeStateMetrics)
	ksm["metricLabelsAllowlist"] = pulumi.ToStringArray([]string{"nodes=[" + config.WorkloadLabel + "]"})
	// The chart's collectors but Secrets: that one lists and watches every Secret of the cluster,
	// data included, for kube_secret_* series that no rule or dashboard reads (the chart's RBAC
	// follows the list).
	ksm["collectors"] = pulumi.ToStringArray(kubeStateMetricsCollectors)
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
		"alertmanager":          pulumi.Map{"alertmanagerSpec": alertmanagerSpec(on(alertmanager), cfg.Alerting.Receiver != nil)},
		"prometheusOperator":    operator,
		"kube-state-metrics":    ksm,
		"prometheus-node-exporter": pulumi.Map{
			// In the privileged namespace of the nodes' exporters, so that monitoring is not privileged.
			"namespaceOverride": pulumi.String(NamespaceNodeMetrics),
			"resources":         nodeExporter.values(),
			"tolerations":       pulumi.Array{pulumi.Map{"operator": pulumi.String("Exists")}},
		},
		"grafana": grafanaValues,
	}
}

// alertmanagerSpec keeps 72 h of alerts and runs Alertmanager with the program's configuration
// (alerting.go) instead of the chart's, and with the receiver's secret mounted when there is one.
func alertmanagerSpec(m pulumi.Map, receiver bool) pulumi.Map {
	m["retention"] = pulumi.String("72h")
	// Silences and the notification log, in a bounded emptyDir (the operator's default has no limit).
	m["storage"] = pulumi.Map{"emptyDir": pulumi.Map{"sizeLimit": pulumi.Sprintf("%dMi", alertmanagerScratchMiB)}}
	m["useExistingSecret"] = pulumi.Bool(true)
	m["configSecret"] = pulumi.String(alerting.ConfigSecretName)
	if receiver {
		m["secrets"] = pulumi.ToStringArray([]string{alerting.SecretName})
	}
	return m
}

// grafanaCloudWatchLogin declares the Secret Grafana's CloudWatch data source reads its login
// from, in Grafana's environment; the data source refers to the variables, so the key never
// appears in the chart's values or in the provisioning ConfigMap. Nil when no reader is given.
func (s *scope) grafanaCloudWatchLogin(reader *LogsReader) (*corev1.Secret, error) {
	if reader == nil {
		return nil, nil
	}
	return s.secret(NamespaceMonitoring, grafanaCloudWatchSecret, pulumi.StringMap{
		"CLOUDWATCH_ACCESS_KEY_ID":     reader.AccessKeyID,
		"CLOUDWATCH_SECRET_ACCESS_KEY": reader.SecretAccessKey,
	})
}

// withCloudWatch adds the CloudWatch data source to Grafana's values, so operators read the
// logs where they read the metrics.
func withCloudWatch(grafanaValues pulumi.Map, region string) {
	grafanaValues["envFromSecret"] = pulumi.String(grafanaCloudWatchSecret)
	grafanaValues["additionalDataSources"] = pulumi.Array{pulumi.Map{
		"name":     pulumi.String(CloudWatchDataSource),
		"uid":      pulumi.String("cloudwatch-logs"),
		"type":     pulumi.String("cloudwatch"),
		"access":   pulumi.String("proxy"),
		"editable": pulumi.Bool(false),
		"jsonData": pulumi.Map{
			"authType":      pulumi.String("keys"),
			"defaultRegion": pulumi.String(region),
		},
		// Grafana expands environment variables in provisioning files.
		"secureJsonData": pulumi.Map{
			"accessKey": pulumi.String("${CLOUDWATCH_ACCESS_KEY_ID}"),
			"secretKey": pulumi.String("${CLOUDWATCH_SECRET_ACCESS_KEY}"),
		},
	}}
}

// kubeStateMetricsCollectors are kube-state-metrics' default collectors (its chart's values, as
// kube-prometheus-stack 79.7.1 pins it) without secrets.
var kubeStateMetricsCollectors = []string{
	"certificatesigningrequests", "configmaps", "cronjobs", "daemonsets", "deployments", "endpoints",
	"horizontalpodautoscalers", "ingresses", "jobs", "leases", "limitranges", "mutatingwebhookconfigurations",
	"namespaces", "networkpolicies", "nodes", "persistentvolumeclaims", "persistentvolumes", "poddisruptionbudgets",
	"pods", "replicasets", "replicationcontrollers", "resourcequotas", "services", "statefulsets",
	"storageclasses", "validatingwebhookconfigurations", "volumeattachments",
}
