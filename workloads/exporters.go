package workloads

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// The exporters run beside the service they watch, in its pod: they reach it on 127.0.0.1 with
// the credentials the pod already has, and only Prometheus may reach them (netpol.go).
const (
	postgresExporterPort = 9187
	redisExporterPort    = 9121
	certExporterPort     = 9793
	// exporterUID is nobody: the exporter images need no user of their own.
	exporterUID = 65534
)

var (
	postgresExporterResources = Resources{CPU: 20, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 96, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	redisExporterResources    = Resources{CPU: 10, MemoryMiB: 24, CPULimit: 100, MemoryLimitMiB: 64, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	certExporterResources     = Resources{CPU: 10, MemoryMiB: 24, CPULimit: 100, MemoryLimitMiB: 64, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
)

// The certificates the certificate exporter reads on the master: kubeadm's API server serving
// certificate and the public half of the program's admin credential, which the credential's
// script writes beside it (cluster.ReadKubeconfigScript). Neither file holds a key.
const (
	APIServerCertPath       = "/etc/kubernetes/pki/apiserver.crt"
	AdminCredentialCertPath = "/etc/kubernetes/waste-coach/waste-coach-deployer.crt"
)

// postgresExporter is the sidecar that turns PostgreSQL's statistics into metrics, as the
// monitoring role (pg_monitor), and runs the program's query of the archiving settings
// (PostgresExporterQueryFile). Like the other exporters it has no readiness probe: it would take
// PostgreSQL out of its Service.
func postgresExporter() Container {
	return Container{
		Name: "exporter", Image: pulumi.String(versions.PostgresExporter),
		Ports: map[string]int{"metrics": postgresExporterPort},
		Env: corev1.EnvVarArray{
			plainEnv("DATA_SOURCE_URI", fmt.Sprintf("127.0.0.1:%d/%s?sslmode=disable", postgresPort, postgresDatabase)),
			plainEnv("DATA_SOURCE_USER", PostgresMonitorRole),
			secretEnv("DATA_SOURCE_PASS", postgresMonitorSecret, postgresPasswordKey),
			plainEnv("PG_EXPORTER_EXTEND_QUERY_PATH", PostgresExporterQueries),
		},
		Resources: postgresExporterResources,
		// Its landing page, which does not query the database (/metrics does).
		Liveness: liveness(httpCheck("/", postgresExporterPort), 5),
		Mounts:   corev1.VolumeMountArray{readOnlyMount("exporter-queries", postgresExporterQueryDir)},
	}
}

// redisExporter is the sidecar that turns Redis's INFO into metrics (no readiness probe either).
func redisExporter() Container {
	return Container{
		Name: "exporter", Image: pulumi.String(versions.RedisExporter),
		Ports: map[string]int{"metrics": redisExporterPort},
		Env: corev1.EnvVarArray{
			plainEnv("REDIS_ADDR", fmt.Sprintf("redis://127.0.0.1:%d", redisPort)),
			secretEnv("REDIS_PASSWORD", redisSecret, "REDIS_PASSWORD"),
		},
		Resources: redisExporterResources,
		Liveness:  liveness(httpCheck("/health", redisExporterPort), 5),
	}
}

// podMonitor declares a PodMonitor for a component's "metrics" port; the job label is the
// component's name (jobLabel), which the alert rules select on.
func (s *scope) podMonitor(namespace, name string, deps ...pulumi.Resource) error {
	if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(namespace, name+"-podmonitor"), &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("PodMonitor"),
		Metadata:   meta(name, namespace, labels(name, "monitoring")),
		OtherFields: map[string]any{"spec": map[string]any{
			"jobLabel":            "app.kubernetes.io/name",
			"selector":            map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
			"podMetricsEndpoints": []any{map[string]any{"port": "metrics", "interval": "30s"}},
		}},
	}, s.opts(namespace, deps...)...); err != nil {
		return fmt.Errorf("pod monitor %s/%s: %w", namespace, name, err)
	}
	return nil
}

// certificateExporter runs on the master and reports when the API server's certificate and the
// admin credential expire. It mounts the two certificate files only, read-only: never a key.
// monitoring is the monitoring release, which brings the PodMonitor CRD.
func (s *scope) certificateExporter(monitoring pulumi.Resource) error {
	// Host paths: the privileged namespace of the nodes' exporters, not monitoring.
	ns, name := NamespaceNodeMetrics, alerting.JobCerts
	l := labels(name, "monitoring")
	hostFile := func(volume, path string) corev1.VolumeArgs {
		return corev1.VolumeArgs{Name: pulumi.String(volume), HostPath: &corev1.HostPathVolumeSourceArgs{Path: pulumi.String(path), Type: pulumi.String("File")}}
	}
	readOnly := func(volume, path string) corev1.VolumeMountArgs {
		return corev1.VolumeMountArgs{Name: pulumi.String(volume), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(true)}
	}
	pod := Pod{
		Labels: l, Role: config.RoleMaster, UID: exporterUID,
		// A file mount keeps the file it was made with. Until the credential's certificate was
		// rewritten in place, each re-mint made a new file, which a running exporter never saw:
		// this restarts it once onto the file as it is now.
		Annotations: pulumi.StringMap{"waste-coach.io/credential-certificate": pulumi.String("rewritten-in-place")},
		Containers: []Container{{
			Name: name, Image: pulumi.String(versions.CertificateExporter),
			Args: []string{
				fmt.Sprintf("--listen-address=:%d", certExporterPort),
				"--watch-file=" + APIServerCertPath,
				"--watch-file=" + AdminCredentialCertPath,
			},
			Ports:     map[string]int{"metrics": certExporterPort},
			Resources: certExporterResources,
			// Ready when it serves the certificates' metrics; alive while it accepts connections.
			Readiness: readiness(httpCheck("/metrics", certExporterPort), 5),
			Liveness:  liveness(tcpCheck(certExporterPort), 3),
			Mounts:    corev1.VolumeMountArray{readOnly("apiserver-cert", APIServerCertPath), readOnly("admin-credential-cert", AdminCredentialCertPath)},
		}},
		Volumes: corev1.VolumeArray{hostFile("apiserver-cert", APIServerCertPath), hostFile("admin-credential-cert", AdminCredentialCertPath)},
	}
	dep, err := appsv1.NewDeployment(s.ctx, s.resourceName(ns, name), &appsv1.DeploymentArgs{
		Metadata: meta(name, ns, l),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(name)},
			Template: pod.template(),
		},
	}, s.opts(ns)...)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", name, err)
	}
	return s.podMonitor(ns, name, monitoring, dep)
}
