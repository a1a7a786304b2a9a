// Package alerting owns what the platform's operators are told and when: the Prometheus alert
// rules for the platform's own failure modes, grouped by concern, the Alertmanager configuration
// that routes them per stack, and the Grafana dashboard. Everything here is rendered by pure
// functions from typed input, so the rendered text is what promtool and amtool check.
package alerting

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Severities of the platform's alerts. Critical pages on production; warning only notifies.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// RunbookBase is where every alert's runbook_url points: a section of docs/operations.md in the
// repository, one anchor per alert.
const RunbookBase = "https://github.com/waste-coach/infra/blob/main/docs/operations.md#"

// Rule is one alerting rule.
type Rule struct {
	// Alert is the alert's name, also the runbook section's anchor (lower case).
	Alert string
	// Expr is the PromQL expression; every series it returns is an alert.
	Expr string
	// For is how long the expression must hold before the alert fires.
	For string
	// Severity routes the alert (SeverityCritical or SeverityWarning).
	Severity string
	// Summary is one line for the notification; Description may use {{ $labels.x }} and {{ $value }}.
	Summary, Description string
	// Labels are extra static labels (workload: the node role whose outage explains the alert).
	Labels map[string]string
}

// Group is one concern's rules, one PrometheusRule object.
type Group struct {
	// Name is the concern: messaging, data, cluster, backups.
	Name  string
	Rules []Rule
}

// Params are the stack-specific inputs of the rules.
type Params struct {
	// QueueDepth is the ready-message depth above which each work queue alerts.
	QueueDepth map[string]int
	// WorkQueues maps each work queue to the node role (workload label) its consumers run on.
	WorkQueues map[string]string
	// DeadLetterQueue is the queue dead letters land in.
	DeadLetterQueue string
	// Brokers is the number of RabbitMQ nodes; a quorum is a majority of them.
	Brokers int
	// Nodes is the number of Kubernetes nodes the stack declares.
	Nodes int
	// EtcdQuotaBytes is etcd's backend quota (kubeadm leaves etcd's default, 2 GiB).
	EtcdQuotaBytes int64
	// CertFiles are the file path patterns of the API server's serving certificate and of the
	// program's admin credential, as the certificate exporter labels them.
	APIServerCertPath, AdminCredentialPath string
	// Backups are the scheduled backups (CronJobs) whose failures and staleness alert.
	Backups []ScheduledBackup
	// WALShipper is the container that ships PostgreSQL's archived WAL, in PostgresNamespace.
	WALShipper, PostgresNamespace string
}

// ScheduledBackup is a backup CronJob and how old its last success may get.
type ScheduledBackup struct {
	Namespace, CronJob string
	// MaxAge is the age of the last success that alerts: a run's interval plus its grace.
	MaxAge time.Duration
}

// Thresholds that are not stack configuration.
const (
	// ExpiryWarningDays is how long before a certificate expires its warning fires.
	ExpiryWarningDays = 30
	// ExpiryPageDays is how long before a certificate expires its critical alert fires (it pages
	// on production): the daily renewal on the master renews at 60 days, so this is a renewal
	// that has failed for more than six weeks, or a deploy credential no `pulumi up` renewed.
	ExpiryPageDays = 14
	// UsageRatio is the share of a volume or of PostgreSQL's connections that alerts.
	UsageRatio = 0.8
	// EtcdQuotaRatio is the share of etcd's quota that alerts.
	EtcdQuotaRatio = 0.8
)

// Jobs are the scrape jobs the rules read; the monitors set them (jobLabel or Service name).
const (
	JobRabbitMQ = "rabbitmq"
	JobPostgres = "postgres"
	JobRedis    = "redis"
	JobCerts    = "x509-certificate-exporter"
	// JobAPIServer is the chart's scrape of the API server (its kubeApiServer ServiceMonitor).
	JobAPIServer = "apiserver"
)

// PostgreSQL's archiving settings, as the exporter reports them from the program's query
// (workloads.PostgresExporterQueryFile): the query's name and column make the metric's name.
const (
	PostgresArchivingQueryName = "pg_archiving"
	PostgresArchivingColumn    = "as_declared"
	// PostgresArchivingMetric is 1 while the settings are the program's, 0 otherwise.
	PostgresArchivingMetric = PostgresArchivingQueryName + "_" + PostgresArchivingColumn
)

// platformNamespaces hold the platform's volumes: the data services' and Prometheus's.
const platformNamespaces = "data|monitoring"

func queueRegex(queues []string) string { return strings.Join(queues, "|") }

// Groups returns the platform's alert rules, by concern.
func Groups(p Params) []Group {
	queues := slices.Sorted(maps.Keys(p.WorkQueues))
	ready := func(sel string) string {
		return fmt.Sprintf(`max by (queue) (rabbitmq_queue_messages_ready{job=%q, %s})`, JobRabbitMQ, sel)
	}
	var deep []string
	for _, q := range queues {
		deep = append(deep, fmt.Sprintf(`%s > %d`, ready(fmt.Sprintf("queue=%q", q)), p.QueueDepth[q]))
	}
	// Each queue's consumers run on one node role: the label lets a NotReady node inhibit it.
	byRole := map[string][]string{}
	for _, q := range queues {
		byRole[p.WorkQueues[q]] = append(byRole[p.WorkQueues[q]], q)
	}
	var noConsumers []string
	for _, role := range slices.Sorted(maps.Keys(byRole)) {
		noConsumers = append(noConsumers, fmt.Sprintf(`label_replace(max by (queue) (rabbitmq_queue_consumers{job=%q, queue=~%q}) == 0, "workload", %q, "", "")`,
			JobRabbitMQ, queueRegex(byRole[role]), role))
	}
	brokersUp := fmt.Sprintf(`(count(up{job=%q} == 1) or on() vector(0))`, JobRabbitMQ)
	storage := map[string]string{"workload": "storage"}
	volumeRatio := fmt.Sprintf(`max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes{namespace=~%q} / kubelet_volume_stats_capacity_bytes{namespace=~%q})`,
		platformNamespaces, platformNamespaces)
	notReady := `(max by (node) (kube_node_status_condition{condition="Ready", status="true"}) == 0)`
	rootFS := `{mountpoint="/", fstype!~"tmpfs|overlay"}`
	certDays := func(path string) string {
		return fmt.Sprintf(`(min by (filepath) (x509_cert_not_after{job=%q, filepath=~%q}) - time()) / 86400`, JobCerts, path)
	}

	return []Group{
		{Name: "messaging", Rules: []Rule{
			{Alert: "DeadLetterQueueNotEmpty", Severity: SeverityWarning, For: "10m",
				Expr:        fmt.Sprintf(`max by (queue) (rabbitmq_queue_messages{job=%q, queue=%q}) > 0`, JobRabbitMQ, p.DeadLetterQueue),
				Summary:     "Messages have been dead-lettered to " + p.DeadLetterQueue + " for 10 minutes",
				Description: "{{ $value }} messages in {{ $labels.queue }}: tasks expired, were rejected or overflowed a work queue."},
			{Alert: "WorkQueueGrowing", Severity: SeverityWarning, For: "15m",
				Expr:        fmt.Sprintf(`delta(%s[5m:1m]) > 0`, ready(fmt.Sprintf("queue=~%q", queueRegex(queues)))),
				Summary:     "A work queue's ready messages have grown for 15 minutes",
				Description: "{{ $labels.queue }}'s ready messages have grown in every 5-minute window for 15 minutes: its workers do not keep up."},
			{Alert: "WorkQueueTooDeep", Severity: SeverityWarning, For: "5m",
				Expr:        strings.Join(deep, " or "),
				Summary:     "A work queue holds more ready messages than its configured depth",
				Description: "{{ $labels.queue }} has {{ $value }} ready messages; past its max-length new tasks are dead-lettered."},
			{Alert: "WorkQueueNoConsumer", Severity: SeverityCritical, For: "5m",
				Expr:        strings.Join(noConsumers, " or "),
				Summary:     "A work queue has no consumer",
				Description: "Nothing consumes {{ $labels.queue }}: its Celery pool (on the {{ $labels.workload }} node) is down or disconnected."},
			{Alert: "RabbitMQNodeDown", Severity: SeverityWarning, For: "5m", Labels: storage,
				Expr:        fmt.Sprintf(`%s < %d`, brokersUp, p.Brokers),
				Summary:     "A RabbitMQ node is down",
				Description: fmt.Sprintf("{{ $value }} of %d RabbitMQ nodes answer; quorum queues still have a majority.", p.Brokers)},
			{Alert: "RabbitMQQuorumLost", Severity: SeverityCritical, For: "2m", Labels: storage,
				Expr:        fmt.Sprintf(`%s < %d`, brokersUp, p.Brokers/2+1),
				Summary:     "Quorum queues have lost their majority",
				Description: fmt.Sprintf("Only {{ $value }} of %d RabbitMQ nodes answer: quorum queues accept no messages.", p.Brokers)},
		}},
		{Name: "data", Rules: []Rule{
			{Alert: "PostgreSQLDown", Severity: SeverityCritical, For: "2m", Labels: storage,
				Expr:        fmt.Sprintf(`(max(pg_up{job=%q}) or on() vector(0)) < 1`, JobPostgres),
				Summary:     "PostgreSQL is down",
				Description: "The PostgreSQL exporter cannot reach the database, or the database pod is gone."},
			{Alert: "PostgreSQLConnectionsHigh", Severity: SeverityWarning, For: "5m", Labels: storage,
				Expr:        fmt.Sprintf(`sum(pg_stat_activity_count{job=%q}) / max(pg_settings_max_connections{job=%q}) > %g`, JobPostgres, JobPostgres, UsageRatio),
				Summary:     "PostgreSQL connections above 80% of max_connections",
				Description: "{{ $value | humanizePercentage }} of max_connections are in use."},
			{Alert: "PlatformVolumeFilling", Severity: SeverityWarning, For: "5m",
				Expr:        fmt.Sprintf(`%s > %g`, volumeRatio, UsageRatio),
				Summary:     "A platform volume is more than 80% full",
				Description: "{{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is {{ $value | humanizePercentage }} full."},
			{Alert: "PlatformVolumeFullIn24h", Severity: SeverityCritical, For: "1h",
				Expr:        fmt.Sprintf(`max by (namespace, persistentvolumeclaim) (predict_linear(kubelet_volume_stats_available_bytes{namespace=~%q}[6h], 24 * 3600)) < 0`, platformNamespaces),
				Summary:     "A platform volume will be full within 24 hours",
				Description: "At the rate of the last 6 hours {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} fills up within a day."},
			{Alert: "NodeRootDiskFilling", Severity: SeverityWarning, For: "10m",
				Expr:        fmt.Sprintf(`max by (instance) (1 - node_filesystem_avail_bytes%s / node_filesystem_size_bytes%s) > %g`, rootFS, rootFS, UsageRatio),
				Summary:     "A node's root volume is more than 80% full",
				Description: "{{ $labels.instance }}'s root volume (images, logs) is {{ $value | humanizePercentage }} full."},
			{Alert: "RedisDown", Severity: SeverityCritical, For: "2m", Labels: storage,
				Expr:        fmt.Sprintf(`(max(redis_up{job=%q}) or on() vector(0)) < 1`, JobRedis),
				Summary:     "Redis is down",
				Description: "The Redis exporter cannot reach Redis, or the Redis pod is gone."},
			{Alert: "RedisEvictingKeys", Severity: SeverityWarning, For: "15m", Labels: storage,
				Expr:        fmt.Sprintf(`sum(rate(redis_evicted_keys_total{job=%q}[5m])) > 0`, JobRedis),
				Summary:     "Redis is evicting keys",
				Description: "Redis reached maxmemory and evicts {{ $value }} keys per second: results and caches are being lost."},
		}},
		{Name: "cluster", Rules: []Rule{
			{Alert: "NodeNotReady", Severity: SeverityCritical, For: "5m",
				// The workload label (kube-state-metrics' label_workload) says which role is down.
				// A node without the label (the master) still alerts, through the "or".
				Expr: fmt.Sprintf(`label_replace(%s * on (node) group_left (label_workload) max by (node, label_workload) (kube_node_labels) or on (node) %s, "workload", "$1", "label_workload", "(.+)")`,
					notReady, notReady),
				Summary:     "A node has been NotReady for 5 minutes",
				Description: "{{ $labels.node }} is not Ready: stopped, interrupted or unreachable."},
			{Alert: "NodeMissing", Severity: SeverityCritical, For: "10m",
				Expr:        fmt.Sprintf(`(count(kube_node_info) or on() vector(0)) < %d`, p.Nodes),
				Summary:     "A node has left the cluster",
				Description: fmt.Sprintf("{{ $value }} of %d nodes are registered: an instance was terminated (a spot interruption) and did not come back.", p.Nodes)},
			{Alert: "APIServerCertificateExpiring", Severity: SeverityWarning, For: "1h",
				Expr:        fmt.Sprintf(`%s < %d`, certDays(p.APIServerCertPath), ExpiryWarningDays),
				Summary:     "The API server's certificate expires within 30 days",
				Description: "{{ $value | humanize }} days left on {{ $labels.filepath }}."},
			{Alert: "AdminCredentialExpiring", Severity: SeverityWarning, For: "1h",
				Expr:        fmt.Sprintf(`%s < %d`, certDays(p.AdminCredentialPath), ExpiryWarningDays),
				Summary:     "The program's admin credential expires within 30 days",
				Description: "{{ $value | humanize }} days left on the deploy credential: the monthly `pulumi up` that renews it has not run."},
			{Alert: "APIServerCertificateAboutToExpire", Severity: SeverityCritical, For: "1h",
				Expr:        fmt.Sprintf(`%s < %d`, certDays(p.APIServerCertPath), ExpiryPageDays),
				Summary:     fmt.Sprintf("The API server's certificate expires within %d days", ExpiryPageDays),
				Description: "{{ $value | humanize }} days left on {{ $labels.filepath }}: the daily renewal on the master has not renewed it."},
			{Alert: "AdminCredentialAboutToExpire", Severity: SeverityCritical, For: "1h",
				Expr:        fmt.Sprintf(`%s < %d`, certDays(p.AdminCredentialPath), ExpiryPageDays),
				Summary:     fmt.Sprintf("The program's admin credential expires within %d days", ExpiryPageDays),
				Description: "{{ $value | humanize }} days left on the deploy credential: once it expires no `pulumi up` can reach the cluster."},
			// The exporter reads the files; a renewal whose restarts kept failing leaves new files
			// while the controller-manager or the scheduler still presents its old certificate.
			// The API server records each client certificate's remaining life per request, in
			// buckets of a week and then 30 days. No client of this cluster presents one with less
			// than 30 days: kubelets rotate theirs with 10% to 30% of a year left, the renewal runs
			// at 60 days, the deploy credential is minted again at 45. Prometheus writes that
			// bucket's bound as 2592000, 2592000.0 or 2.592e+06, depending on its version and the
			// scrape format.
			{Alert: "ClientCertificateAboutToExpire", Severity: SeverityCritical, For: "15m",
				Expr:        fmt.Sprintf(`sum(rate(apiserver_client_certificate_expiration_seconds_bucket{job=%q, le=~"2592000(\\.0)?|2\\.592e\\+06"}[10m])) > 0`, JobAPIServer),
				Summary:     "A client of the API server presents a certificate that expires within 30 days",
				Description: "{{ $value | humanize }} requests a second authenticate with a certificate that has less than 30 days left: a control-plane component still runs on its old certificate, or a credential was not renewed."},
			{Alert: "CertificateExporterDown", Severity: SeverityWarning, For: "30m",
				Expr:        fmt.Sprintf(`absent(up{job=%q} == 1)`, JobCerts),
				Summary:     "Certificate expiry is not watched",
				Description: "The certificate exporter on the master is not scraped: the certificate alerts cannot fire."},
			{Alert: "EtcdDatabaseNearQuota", Severity: SeverityWarning, For: "10m",
				Expr: fmt.Sprintf(`max(apiserver_storage_size_bytes or apiserver_storage_db_total_size_in_bytes) / %d > %g`,
					p.EtcdQuotaBytes, EtcdQuotaRatio),
				Summary:     "etcd's database is above 80% of its quota",
				Description: "etcd's database is at {{ $value | humanizePercentage }} of its quota; at the quota the cluster refuses writes."},
		}},
		{Name: "backups", Rules: backupRules(p)},
	}
}

// backupRules: a backup Job that failed, a backup whose last success is too old, PostgreSQL's
// archiving settings changed from the program's, and a PostgreSQL WAL shipper that cannot upload
// (the recovery point grows while it lasts).
func backupRules(p Params) []Rule {
	var namespaces, jobs, stale, never []string
	for _, b := range p.Backups {
		if !slices.Contains(namespaces, b.Namespace) {
			namespaces = append(namespaces, b.Namespace)
		}
		jobs = append(jobs, b.CronJob)
		sel := fmt.Sprintf(`namespace=%q, cronjob=%q`, b.Namespace, b.CronJob)
		stale = append(stale, fmt.Sprintf(`(time() - max by (namespace, cronjob) (kube_cronjob_status_last_successful_time{%s})) > %d`,
			sel, int(b.MaxAge.Seconds())))
		// kube-state-metrics has no last-success series for a CronJob that never succeeded: its
		// age then counts from the CronJob's creation.
		never = append(never, fmt.Sprintf(`((time() - max by (namespace, cronjob) (kube_cronjob_created{%s})) > %d unless on (namespace, cronjob) kube_cronjob_status_last_successful_time{%s})`,
			sel, int(b.MaxAge.Seconds()), sel))
	}
	jobSel := fmt.Sprintf(`namespace=~%q, job_name=~"(%s)-[0-9]+"`, strings.Join(namespaces, "|"), strings.Join(jobs, "|"))
	return []Rule{
		{Alert: "BackupJobFailed", Severity: SeverityWarning, For: "1m",
			// A failed Job stays in the CronJob's history; the alert covers the six hours after it started.
			Expr: fmt.Sprintf(`max by (namespace, job_name) (kube_job_status_failed{%s}) > 0 and on (namespace, job_name) (time() - max by (namespace, job_name) (kube_job_status_start_time{%s})) < 21600`,
				jobSel, jobSel),
			Summary:     "A backup Job failed",
			Description: "{{ $labels.namespace }}/{{ $labels.job_name }} failed: see its logs; the next scheduled run retries."},
		{Alert: "BackupTooOld", Severity: SeverityWarning, For: "10m",
			Expr:        strings.Join(append(stale, never...), " or "),
			Summary:     "A scheduled backup is overdue",
			Description: "{{ $labels.namespace }}/{{ $labels.cronjob }} has not succeeded for {{ $value | humanizeDuration }} (since its last success, or since the CronJob was created if it never has)."},
		// Absent counts as changed: a query the monitoring role can no longer run must not
		// silence the alert. While the exporter reaches no server at all, PostgreSQLDown says so.
		{Alert: "PostgreSQLArchivingNotAsDeclared", Severity: SeverityCritical, For: "5m", Labels: map[string]string{"workload": "storage"},
			Expr: fmt.Sprintf(`(max(%s{job=%q}) or on() vector(0)) < 1 and on() max(pg_up{job=%q}) == 1`,
				PostgresArchivingMetric, JobPostgres, JobPostgres),
			Summary:     "PostgreSQL's WAL archiving settings are not the program's",
			Description: "wal_level, archive_mode, archive_command, archive_timeout or archive_library differ from what the program set (or cannot be read): archived WAL may not reach the backups bucket."},
		{Alert: "WALShippingStalled", Severity: SeverityCritical, For: "5m", Labels: map[string]string{"workload": "storage"},
			Expr: fmt.Sprintf(`max by (namespace, pod) (kube_pod_container_status_ready{namespace=%q, container=%q}) == 0`,
				p.PostgresNamespace, p.WALShipper),
			Summary:     "PostgreSQL's write-ahead log is not reaching the backups bucket",
			Description: "{{ $labels.pod }}'s WAL shipper has not uploaded for minutes: a point-in-time restore would lose everything since its last upload."},
	}
}

// Anchor is an alert's section anchor in docs/operations.md.
func Anchor(alert string) string { return strings.ToLower(alert) }

// RuleFile renders a group as a Prometheus rule file, the body of its PrometheusRule's spec.
func RuleFile(g Group) map[string]any {
	var rules []any
	for _, r := range g.Rules {
		labels := map[string]any{"severity": r.Severity}
		for k, v := range r.Labels {
			labels[k] = v
		}
		rules = append(rules, map[string]any{
			"alert":  r.Alert,
			"expr":   r.Expr,
			"for":    r.For,
			"labels": labels,
			"annotations": map[string]any{
				"summary":     r.Summary,
				"description": r.Description,
				"runbook_url": RunbookBase + Anchor(r.Alert),
			},
		})
	}
	return map[string]any{"groups": []any{map[string]any{"name": "waste-coach-" + g.Name, "rules": rules}}}
}
