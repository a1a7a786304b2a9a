// Package versions pins every third-party version that reaches a cluster, in one place, each
// with the reason it was chosen. A bump is a one-line change here, reviewed in a pull request.
package versions

import "slices"

// Chart is a pinned Helm chart: the repository it comes from, its name and exact version.
type Chart struct {
	// Repo is the chart repository URL.
	Repo string
	// Name is the chart's name in Repo.
	Name string
	// Version is the exact chart version; never a range.
	Version string
}

const (
	// Calico is installed through its operator's release manifests by a remote command. Tigera
	// tests v3.31 on Kubernetes 1.32 to 1.35; v3.31.3 is its newest patch seen.
	Calico = "v3.31.3"

	// CloudControllerManagerRepo is the AWS cloud-controller-manager image. Its minor must match
	// the cluster's Kubernetes minor (cloud-provider-aws release policy), so the tag is chosen by
	// CCMImage from the configured Kubernetes version.
	CloudControllerManagerRepo = "registry.k8s.io/provider-aws/cloud-controller-manager"

	// Postgres is PostgreSQL 16 (the design record's major) on Debian's stable base.
	Postgres = "docker.io/library/postgres:16.10-bookworm"
	// Redis is Redis 7 (the design record's major).
	Redis = "docker.io/library/redis:7.4.5-bookworm"
	// RabbitMQ is 3.13 with the management plugin, the last 3.x line (quorum queues, policies).
	RabbitMQ = "docker.io/library/rabbitmq:3.13.7-management"
	// DefaultBackend answers / until a front end is deployed: nginx stable 1.28, unprivileged.
	DefaultBackend = "docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine"
)

// ccmReleases maps a Kubernetes minor to the cloud-provider-aws release built against it. Only
// releases that other projects' update threads show in use are listed (found with the search
// tool; not pulled here); a minor missing here is refused by the config check, not guessed.
var ccmReleases = map[string]string{
	"1.28": "v1.28.4",
	"1.30": "v1.30.2",
	"1.32": "v1.32.1",
	"1.33": "v1.33.0",
	"1.34": "v1.34.0",
	"1.35": "v1.35.0",
}

// CCMMinors lists the Kubernetes minors that have a pinned cloud-controller-manager, sorted.
func CCMMinors() []string {
	minors := make([]string, 0, len(ccmReleases))
	for m := range ccmReleases {
		minors = append(minors, m)
	}
	slices.Sort(minors)
	return minors
}

// CCMImage returns the cloud-controller-manager image for a Kubernetes minor ("1.35"), and false
// when no release is pinned for it.
func CCMImage(minor string) (string, bool) {
	tag, ok := ccmReleases[minor]
	if !ok {
		return "", false
	}
	return CloudControllerManagerRepo + ":" + tag, true
}

// Helm charts, each pinned to an exact version.
var (
	// EBSCSIDriver 2.52.0 ships driver v1.52.0 (released 2025-10-30).
	EBSCSIDriver = Chart{Repo: "https://kubernetes-sigs.github.io/aws-ebs-csi-driver", Name: "aws-ebs-csi-driver", Version: "2.52.0"}
	// LoadBalancerController 1.14.0 ships controller v2.14.0 (ingress groups, target-type instance).
	LoadBalancerController = Chart{Repo: "https://aws.github.io/eks-charts", Name: "aws-load-balancer-controller", Version: "1.14.0"}
	// MetricsServer 3.13.0 (released 2025-07) ships metrics-server v0.8.
	MetricsServer = Chart{Repo: "https://kubernetes-sigs.github.io/metrics-server", Name: "metrics-server", Version: "3.13.0"}
	// ArgoCD 9.3.1 ships Argo CD v3.2.4.
	ArgoCD = Chart{Repo: "https://argoproj.github.io/argo-helm", Name: "argo-cd", Version: "9.3.1"}
	// KubePrometheusStack 79.7.1: Prometheus operator, Prometheus, Grafana, node-exporter.
	KubePrometheusStack = Chart{Repo: "https://prometheus-community.github.io/helm-charts", Name: "kube-prometheus-stack", Version: "79.7.1"}
)
