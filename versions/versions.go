// Package versions pins every third-party version that reaches a cluster, in one place, each
// with the reason it was chosen. A bump is a one-line change here, reviewed in a pull request.
package versions

import (
	"fmt"
	"slices"
)

// Chart is a pinned Helm chart: the repository it comes from, its name and exact version.
type Chart struct {
	// Repo is the chart repository URL.
	Repo string
	// Name is the chart's name in Repo.
	Name string
	// Version is the exact chart version; never a range.
	Version string
	// CRDFolders: the chart ships CustomResourceDefinitions in crds/ folders (its own or a
	// subchart's), which Helm never upgrades nor deletes. The program owns them instead
	// (workloads/crds.go); charts.TestCRDFoldersAreMarked keeps this flag true to the archives.
	CRDFolders bool
	// SHA256 is the sha256 of the archive as Repo publishes it: the digest its index.yaml gives
	// for Version, read from the repository's published index (where is said beside each chart).
	// An archive from the repository, a mirror or a folder installs only when its bytes have
	// this sum (charts.Verify); "" would refuse every install.
	SHA256 string
	// CheckCacheSHA256 is the sha256 of the same release as the offline checks' chart cache
	// holds it (../shared/charts, README there: packaged with Helm's packaging code from the
	// chart's Git tag, so its bytes differ from the published archive). Accepted only from a
	// chartSource folder: the engine runs and tests install these.
	CheckCacheSHA256 string
}

const (
	// Calico is installed through its operator's release manifests by a remote command. Tigera
	// tests v3.31 on Kubernetes 1.32 to 1.35; v3.31.3 is its newest patch seen.
	Calico = "v3.31.3"

	// CalicoOperatorCRDsSHA256 and CalicoOperatorSHA256 are the sha256 of manifests/operator-crds.yaml
	// and manifests/tigera-operator.yaml at tag v3.31.3 (commit
	// 2e3c880bcabff580ddd7a08340878ede207f37be), the exact bytes raw.githubusercontent.com serves
	// for that tag. Computed from a mirror of projectcalico/calico with
	// `git show v3.31.3:manifests/<file> | sha256sum` (blobs df6c2b41 and 83d876f7); the CRDs
	// file is 2,635,258 bytes, the operator 15,214 and runs quay.io/tigera/operator:v1.40.3.
	// Bumping Calico means recomputing both the same way.
	CalicoOperatorCRDsSHA256 = "d6193da8ce442328c1a14d3a3bb7ad89fcaceceac5fb293254095fbf736c2499"
	// CalicoOperatorSHA256 is the operator manifest's sha256 (see CalicoOperatorCRDsSHA256).
	CalicoOperatorSHA256 = "23d4b023fd862741b8c0fe068d27cecd18f27edda93ecc6b4433c7faeb2b940e"

	// Calico136 is the Calico release of Kubernetes 1.36 (CalicoFor): v3.32 is the first Tigera
	// tests on 1.36 (tigera/docs, version-3.32 release notes: "Kubernetes 1.36 support"; tested on
	// 1.34 to 1.36); v3.32.1 (commit 0ca9d1b93644778cafdf1812f3dda02ac0c361e8) is the newest tag in
	// a mirror of projectcalico/calico on 2026-12-07. Its two manifests' sha256, computed as for
	// v3.31.3 (blobs 7cb3ee93 and 383bacf5; 3,046,956 and 19,660 bytes; quay.io/tigera/operator:v1.42.3).
	// The custom resources the program applies (CalicoInstallation) are valid in both.
	Calico136 = "v3.32.1"
	// Calico136OperatorCRDsSHA256 is the sha256 of v3.32.1's manifests/operator-crds.yaml.
	Calico136OperatorCRDsSHA256 = "192f8b2d934ef24b62e86b7e1a6e1762d1c8af26a916f78057bc13fa5ed60f71"
	// Calico136OperatorSHA256 is the sha256 of v3.32.1's manifests/tigera-operator.yaml.
	Calico136OperatorSHA256 = "f18e073794207d372606bc3ea6f8fd73972f86d6828f4ba666dfe0d4aa8ab07f"

	// CloudControllerManagerRepo is the AWS cloud-controller-manager image. Its minor must match
	// the cluster's Kubernetes minor (cloud-provider-aws release policy), so the tag is chosen by
	// CCMImage from the configured Kubernetes version.
	CloudControllerManagerRepo = "registry.k8s.io/provider-aws/cloud-controller-manager"
)

// The program's own images, each with its pinned digest where one is (images.go): Pinned
// appends it.
var (
	// Postgres is PostgreSQL 16 (the design record's major) on Debian's stable base.
	Postgres = Pinned("docker.io/library/postgres:16.10-bookworm")
	// Redis is Redis 7 (the design record's major).
	Redis = Pinned("docker.io/library/redis:7.4.5-bookworm")
	// RabbitMQ is 3.13 with the management plugin, the last 3.x line (quorum queues, policies).
	RabbitMQ = Pinned("docker.io/library/rabbitmq:3.13.7-management")
	// DefaultBackend answers / until a front end is deployed: nginx stable 1.28, unprivileged.
	DefaultBackend = Pinned("docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine")

	// PostgresExporter is prometheus-community's postgres_exporter 0.17.1, the release that
	// supports PostgreSQL 16 and 17; it runs beside PostgreSQL in its pod.
	PostgresExporter = Pinned("quay.io/prometheuscommunity/postgres-exporter:v0.17.1")
	// RedisExporter is oliver006/redis_exporter 1.87.0 (Redis 7 supported); beside Redis.
	RedisExporter = Pinned("docker.io/oliver006/redis_exporter:v1.87.0")
	// CertificateExporter is enix's x509-certificate-exporter 3.18.1, which reports the expiry
	// of the API server's certificate and of the program's admin credential on the master.
	CertificateExporter = Pinned("docker.io/enix/x509-certificate-exporter:3.18.1")
)

// Artifact is a file the nodes download at boot, verified against a pinned sha256 before use.
type Artifact struct {
	// Version is the upstream release.
	Version string
	// URL is where the file is downloaded from.
	URL string
	// SHA256 is the file's sha256, hex.
	SHA256 string
}

// The container runtime, installed from upstream release files because Ubuntu 24.04's archive
// has containerd 1.7 and Kubernetes 1.35 is the last minor that supports containerd 1.x: with
// 2.x on the nodes the documented upgrade path to 1.36 needs no runtime change. The CNI plugins
// are not listed: the kubelet package from pkgs.k8s.io installs them (kubernetes-cni).
//
// Where the checksums come from: containerd and runc publish a sha256 file beside each release
// file; kubernetes-sigs/kubespray records those published values in
// roles/kubespray_defaults/vars/main/checksums.yml (read at commit
// 46dbdd3994b32640bcd806b0097f50e8fdf1d514, 2026-08-21; containerd_archive_checksums.amd64 and
// runc_checksums.amd64). Not downloaded or recomputed here.
var (
	// Containerd 2.2.7 (linux-amd64 release tarball, unpacked under /usr/local). 2.2 is the line
	// Kubernetes 1.35 was released against; its config keeps SystemdCgroup under the runc options
	// and moves the pause image to the pinned_images "sandbox" key, both handled at boot.
	Containerd = Artifact{
		Version: "2.2.7",
		URL:     "https://github.com/containerd/containerd/releases/download/v2.2.7/containerd-2.2.7-linux-amd64.tar.gz",
		SHA256:  "91cd216ea26a1b8b512219d3f205375c967e7b7de4dae571bc3dd16bfacd34b5",
	}
	// Runc 1.3.6, the OCI runtime containerd 2.2 is released with (1.3 line), a static binary.
	Runc = Artifact{
		Version: "1.3.6",
		URL:     "https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.amd64",
		SHA256:  "3f3921dbbee7723e9868f97e88e51ffc910206e3ba55646e74d93d24ea76023c",
	}
	// Etcd 3.6.6 (linux-amd64 release tarball), the release kubeadm 1.35 runs (EtcdDefaultTag).
	// Only its etcdutl is installed, on the master: the offline tool that checks and restores a
	// snapshot while no etcd runs. Checksum: etcd_binary_checksums.amd64 in the same kubespray
	// file as above.
	Etcd = Artifact{
		Version: "3.6.6",
		URL:     "https://github.com/etcd-io/etcd/releases/download/v3.6.6/etcd-v3.6.6-linux-amd64.tar.gz",
		SHA256:  "887afaa4a99f22d802ccdfbe65730a5e79aa5c9ce2c8799c67e9d804c50ecedb",
	}
)

// KubernetesAptKeyFingerprint is the OpenPGP fingerprint of the key that signs every
// pkgs.k8s.io repository ("isv:kubernetes OBS Project"), the same key for every minor track.
// The nodes refuse a downloaded Release.key with any other fingerprint. Source: package
// managers' own output when importing https://pkgs.k8s.io/core:/stable:/v1.28 ... v1.36 keys
// (public install logs found with the search tool), all showing this fingerprint. One source
// says the key expires 2026-12-29: when upstream rotates it, update this pin with the new one.
const KubernetesAptKeyFingerprint = "DE15B14486CD377B9E876E1A234654DA9A296436"

// ccmReleases maps a Kubernetes minor to the cloud-provider-aws release built against it, so that
// every minor from 1.28 to 1.36 can be walked one at a time (docs/operations.md, "Kubernetes
// upgrades"). Each image was promoted to registry.k8s.io: 1.28 to 1.35 are listed, with their
// digests, in the image promoter's manifest (kubernetes/k8s.io,
// registry.k8s.io/images/k8s-staging-provider-aws/images.yaml, cloud-controller-manager, read with
// the search tool on 2026-12-07); 1.36: v1.36.1 was promoted by kubernetes/k8s.io#9796 (merged
// 2026-07-30), which calls it the only usable release of its branch (v1.36.0's image build failed,
// cloud-provider-aws#1450). The module proxy also lists v1.36.2, but no promotion of its image was
// found: a module tag is not an image. None was pulled here. A minor missing here is refused by
// the config check, not guessed.
var ccmReleases = map[string]string{
	"1.28": "v1.28.4",
	"1.29": "v1.29.6",
	"1.30": "v1.30.2",
	"1.31": "v1.31.0",
	"1.32": "v1.32.1",
	"1.33": "v1.33.0",
	"1.34": "v1.34.0",
	"1.35": "v1.35.0",
	"1.36": "v1.36.1",
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
	return Pinned(CloudControllerManagerRepo + ":" + tag), true
}

// Helm charts, each pinned to an exact version and archive. The published sums are the digests
// each repository's index.yaml gives for the version (the gh-pages branches of the charts'
// repositories, read with the search tool on 2026-12-06 and 2026-12-07; kube-prometheus-stack's
// from prometheus-community/helm-charts index.yaml at commit 0163faed, its entry created
// 2025-11-21); no archive was downloaded here to recompute them.
var (
	// EBSCSIDriver 2.52.0 ships driver v1.52.0 (released 2025-10-30).
	EBSCSIDriver = Chart{Repo: "https://kubernetes-sigs.github.io/aws-ebs-csi-driver", Name: "aws-ebs-csi-driver", Version: "2.52.0",
		SHA256:           "25b262d0d089ee64d7a882a0126300c436c4596cc34882d94645f26a0ba6d506",
		CheckCacheSHA256: "2a938b38e82a6a369c6f15be2a06685bc8fabee331f0758947686e62390eb41c"}
	// LoadBalancerController 1.14.0 ships controller v2.14.0 (TargetGroupBinding, target-type instance).
	LoadBalancerController = Chart{Repo: "https://aws.github.io/eks-charts", Name: "aws-load-balancer-controller", Version: "1.14.0", CRDFolders: true,
		SHA256:           "f0c07f52c9b7cbd6ec6e806c73f37438837924cf8f6349e01dea373d47b6b8dc",
		CheckCacheSHA256: "d5c2a43fb5157f364c9f48aa73fecbf05ea94b38f1e51d650795749e1370cee0"}
	// MetricsServer 3.13.0 (released 2025-07) ships metrics-server v0.8.
	MetricsServer = Chart{Repo: "https://kubernetes-sigs.github.io/metrics-server", Name: "metrics-server", Version: "3.13.0",
		SHA256:           "fb929902e3b7565663cdd1734f31d63735c932be1541a7228b5aeef6d2348a1f",
		CheckCacheSHA256: "d477b88dcbc2cdafcc6134ce754360c45219626056e5199f7dbe9cc5471b6f89"}
	// ArgoCD 9.3.1 ships Argo CD v3.2.4.
	ArgoCD = Chart{Repo: "https://argoproj.github.io/argo-helm", Name: "argo-cd", Version: "9.3.1",
		SHA256:           "d76e83a310c6d2acaf042e46cdcfed0ec6b2386b31779d219ce690b061118bbf",
		CheckCacheSHA256: "f48391d1e1a5154f127a7efe7c09e385f587f02d637c1dc3f8f65f515938cdb3"}
	// KubePrometheusStack 79.7.1: Prometheus operator, Prometheus, Grafana, node-exporter.
	KubePrometheusStack = Chart{Repo: "https://prometheus-community.github.io/helm-charts", Name: "kube-prometheus-stack", Version: "79.7.1", CRDFolders: true,
		SHA256:           "c01cfae998bacdca3130dcfcf6957e0dc506579b656a7135bd459e86fdff26db",
		CheckCacheSHA256: "db114d406e15e125acc2dffc54c9a7b7ed3d4ddae3b25dd98410e23c02d578ab"}
	// KEDA 2.20.2 ships KEDA 2.20.2 (operator, metrics API server, admission webhooks) and its
	// CRDs (ScaledObject, TriggerAuthentication) as templates; it scales the Celery pools on
	// their RabbitMQ queues' depth (issue 17).
	KEDA = Chart{Repo: "https://kedacore.github.io/charts", Name: "keda", Version: "2.20.2",
		SHA256:           "db60b1fa60f0565fefa4ce2f87e855b6a8854363ee82962fbe28a12a70d64c4c",
		CheckCacheSHA256: "02ec70bb5870a338e850ee44e1f3b8762484606e78b6712af3176b3c83df3ff2"}
	// FluentBit 0.58.1 ships Fluent Bit 5.1.1, whose cloudwatch_logs output ships the nodes'
	// container and kubelet logs to the stack's CloudWatch Logs group (issue 17).
	FluentBit = Chart{Repo: "https://fluent.github.io/helm-charts", Name: "fluent-bit", Version: "0.58.1",
		SHA256:           "fc2235278cdb4e76befb8520464a66ff459c6d7711bbbc8755dedcc32799877b",
		CheckCacheSHA256: "b105d2c2607d9ad41fa94784eba221f48fcde66fa583584577a6a26cbfb49072"}
)

// Charts lists every chart the program installs.
func Charts() []Chart {
	return []Chart{EBSCSIDriver, LoadBalancerController, MetricsServer, ArgoCD, KubePrometheusStack, KEDA, FluentBit}
}

// Accepts says whether an archive whose sha256 (hex) is sum may be installed as the chart: the
// archive its repository publishes, or, from a chartSource folder, also the offline check
// cache's build of it.
func (c Chart) Accepts(sum string, fromFolder bool) bool {
	return c.SHA256 != "" && sum == c.SHA256 || fromFolder && c.CheckCacheSHA256 != "" && sum == c.CheckCacheSHA256
}

// Archive is the chart's file name as `helm package` and `helm pull` write it.
func (c Chart) Archive() string { return c.Name + "-" + c.Version + ".tgz" }

// Backup images (issue 13).
const (
	// EtcdRepo is kubeadm's etcd image; the snapshot step runs in it so that etcdctl and
	// etcdutl are those of the server's release (the image has them and a static shell only).
	EtcdRepo = "registry.k8s.io/etcd"
	// EtcdDefaultTag is the etcd kubeadm 1.35 runs (constants.DefaultEtcdVersion of v1.35.4).
	EtcdDefaultTag = "3.6.6-0"
)

// Curl uploads backups to S3 signed with the instance role (curl --aws-sigv4): no AWS CLI.
var Curl = Pinned("docker.io/curlimages/curl:8.14.1")

// CalicoRelease is a Calico release and the sha256 of its two operator manifests.
type CalicoRelease struct{ Version, OperatorCRDsSHA256, OperatorSHA256 string }

// CalicoFor returns the Calico release a cluster of a Kubernetes minor ("1.35") runs: v3.32 from
// 1.36 on, v3.31 before. The Calico step runs after the control plane's upgrade, so a 1.36 hop
// moves Calico to v3.32 in the same `pulumi up`, once the API server runs 1.36, which v3.32
// supports, as it does 1.34 and 1.35.
func CalicoFor(minor string) CalicoRelease {
	var major, m int
	if _, err := fmt.Sscanf(minor, "%d.%d", &major, &m); err == nil && (major > 1 || m >= 36) {
		return CalicoRelease{Calico136, Calico136OperatorCRDsSHA256, Calico136OperatorSHA256}
	}
	return CalicoRelease{Calico, CalicoOperatorCRDsSHA256, CalicoOperatorSHA256}
}

// etcdTags are the etcd releases kubeadm runs per Kubernetes minor, where it differs from
// EtcdDefaultTag: constants.DefaultEtcdVersion of kubeadm v1.28.15 and v1.36.3 (the modules
// tools/kubeadm builds) and of v1.29.6, v1.30.14, v1.31.14, v1.32.13, v1.33.13 and v1.34.4, the
// newest release of each minor the Go module proxy listed on 2026-12-07 (`go mod download
// k8s.io/kubernetes@<release>`, cmd/kubeadm/app/constants/constants.go). A later patch of a
// minor may name a later etcd patch; the snapshot's etcdctl only needs the server's minor.
var etcdTags = map[string]string{
	"1.28": "3.5.15-0", "1.29": "3.5.12-0", "1.30": "3.5.15-0", "1.31": "3.5.24-0",
	"1.32": "3.5.24-0", "1.33": "3.5.24-0", "1.34": "3.6.5-0", "1.36": "3.6.8-0",
}

// EtcdImage returns the etcd image kubeadm runs for a Kubernetes minor ("1.35").
func EtcdImage(minor string) string {
	if tag, ok := etcdTags[minor]; ok {
		return Pinned(EtcdRepo + ":" + tag)
	}
	return Pinned(EtcdRepo + ":" + EtcdDefaultTag)
}
