package workloads

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/config"
)

// Alerting is the platform's alerting: the Alertmanager configuration and its receiver's
// secret (declared before the monitoring chart, which mounts them), the alert rules, the
// certificate exporter and the Grafana dashboard (declared after it, which brings their CRDs).
// The monitoring release stands between its two halves, so it is declared in two steps:
// newAlerting, then declareRules.
type Alerting struct {
	pulumi.ResourceState

	// s declares the component's children, parented to it.
	s *scope
	// Secrets are the Alertmanager configuration and the receiver's secret: the monitoring
	// release waits for them.
	Secrets []pulumi.Resource
}

// etcdQuotaBytes is etcd's default backend quota, which kubeadm leaves in place.
const etcdQuotaBytes = 2 << 30

// RuleParams are the stack's alert rule inputs.
func RuleParams(cfg *config.Config) alerting.Params {
	queues := map[string]string{}
	for _, q := range Topology.Queues {
		switch q.Name {
		case "q.api":
			queues[q.Name] = config.RoleWorker1.Workload()
		case "q.ai", "q.batch", "q.sched":
			queues[q.Name] = config.RoleWorker2.Workload()
		}
	}
	return alerting.Params{
		QueueDepth: cfg.Alerting.QueueDepth, WorkQueues: queues, DeadLetterQueue: "q.dlq",
		Brokers: RabbitReplicas, Nodes: len(cfg.Nodes), EtcdQuotaBytes: etcdQuotaBytes,
		APIServerCertPath: APIServerCertPath, AdminCredentialPath: AdminCredentialCertPath,
		// etcd is snapshotted every EtcdSnapshotInterval: two missed runs and one more interval.
		// PostgreSQL's daily backups alert once a day's run is two hours late (26 hours), or on
		// an office-hours stack once the run after the longest gap is (74 hours over a weekend).
		Backups: []alerting.ScheduledBackup{
			{Namespace: NamespaceSystem, CronJob: EtcdSnapshotName, MaxAge: 3 * EtcdSnapshotInterval},
			{Namespace: NamespaceData, CronJob: PostgresBaseBackupName, MaxAge: DailyBackupMaxAge(cfg)},
			{Namespace: NamespaceData, CronJob: PostgresDumpName, MaxAge: DailyBackupMaxAge(cfg)},
		},
		WALShipper: WALShipperContainer, PostgresNamespace: NamespaceData,
	}
}

// alertingArgs are the inputs of the alerting's first step.
type alertingArgs struct {
	// tierArgs name the resources; the configuration holds the stack's receiver and its secret.
	tierArgs
}

// alertRulesArgs are the inputs of the alerting's second step.
type alertRulesArgs struct {
	// Monitoring is the monitoring release, which brings the PrometheusRule and PodMonitor CRDs
	// and the Prometheus that loads the rules.
	Monitoring pulumi.Resource
}

// newAlerting declares the Alerting component and the Secrets Alertmanager starts with. The
// component is as old as the tier's first deployments under this name and parent, so its
// children keep their URNs without an alias.
func newAlerting(ctx *pulumi.Context, name string, args *alertingArgs, opts ...pulumi.ResourceOption) (*Alerting, error) {
	a := &Alerting{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:Alerting", name, a, opts...); err != nil {
		return nil, err
	}
	a.s = args.keptScope(ctx, a)
	s := a.s
	cfg := args.Config
	amConfig, err := alerting.AlertmanagerConfig(cfg.Stack, cfg.Production, cfg.Alerting.Receiver)
	if err != nil {
		return nil, err
	}
	// The configuration holds no secret (the receiver's is read from a file), so it stays
	// readable in the state and in a preview's diff.
	ns := NamespaceMonitoring
	conf, err := corev1.NewSecret(ctx, s.resourceName(ns, alerting.ConfigSecretName), &corev1.SecretArgs{
		Metadata:   meta(alerting.ConfigSecretName, ns, labels(alerting.ConfigSecretName, "alerting")),
		StringData: pulumi.StringMap{"alertmanager.yaml": pulumi.String(amConfig)},
	}, s.opts(ns)...)
	if err != nil {
		return nil, fmt.Errorf("alertmanager config: %w", err)
	}
	a.Secrets = append(a.Secrets, conf)
	if cfg.Alerting.Receiver != nil {
		sec, err := s.secret(ns, alerting.SecretName, pulumi.StringMap{alerting.SecretKey: cfg.Alerting.ReceiverSecret})
		if err != nil {
			return nil, err
		}
		a.Secrets = append(a.Secrets, sec)
	}
	return a, nil
}

// declareRules declares the PrometheusRules, the certificate exporter and the dashboard, and
// completes the component.
func (a *Alerting) declareRules(args *alertRulesArgs) error {
	s := a.s
	ns := NamespaceMonitoring
	for _, g := range alerting.Groups(RuleParams(s.cfg)) {
		name := "waste-coach-" + g.Name
		if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(ns, name+"-rules"), &apiextensions.CustomResourceArgs{
			ApiVersion:  pulumi.String("monitoring.coreos.com/v1"),
			Kind:        pulumi.String("PrometheusRule"),
			Metadata:    meta(name, ns, labels(name, "alerting")),
			OtherFields: map[string]any{"spec": alerting.RuleFile(g)},
		}, s.opts(ns, args.Monitoring)...); err != nil {
			return fmt.Errorf("prometheus rule %s: %w", name, err)
		}
	}
	if err := s.certificateExporter(args.Monitoring); err != nil {
		return err
	}
	// The Grafana sidecar loads every ConfigMap labelled grafana_dashboard=1.
	l := labels(alerting.DashboardUID, "dashboard")
	l["grafana_dashboard"] = pulumi.String("1")
	if _, err := corev1.NewConfigMap(s.ctx, s.resourceName(ns, alerting.DashboardUID+"-dashboard"), &corev1.ConfigMapArgs{
		Metadata: meta(alerting.DashboardUID, ns, l),
		Data:     pulumi.StringMap{alerting.DashboardUID + ".json": pulumi.String(alerting.Dashboard())},
	}, s.opts(ns, args.Monitoring)...); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return s.ctx.RegisterResourceOutputs(a, pulumi.Map{})
}
