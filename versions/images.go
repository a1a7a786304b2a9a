package versions

import (
	"maps"
	"slices"
	"strings"
)

// Image digests. A tag can be moved to other content (Docker Hub rebuilds its official images'
// tags for base-image fixes; a registry can be written to); a digest cannot. Every image the
// platform runs is pinned here by the sha256 of its tag's multi-arch index, the digest `docker
// pull` and Renovate pin, or is listed in tagOnly with the reason it still runs by tag. None was
// read from a registry here (this machine reaches none): each digest is the one a public source
// published for the tag, named beside it, from the upstream project where it publishes them,
// otherwise from at least two unrelated public repositories that pin the same digest for the tag
// (read with the search tool on 2026-12-07). A digest seen in one place only is not pinned: its
// image is in tagOnly, so that a wrong digest never stops a deploy on an image that cannot pull.
//
// To pin one more, or to bump an image, read the tag's index digest from the registry
// (`crane digest <image>` or `docker buildx imagetools inspect <image>`) on a machine that
// reaches it, and move the image here from tagOnly.
var digests = map[string]string{
	// Docker official images: docker-library/repo-info, repos/<name>/remote/<tag>.md (a fork's
	// copy), and unrelated repositories that pin the same build. Docker Hub rebuilds these tags;
	// the pinned build is named, and stays pullable by digest.
	"docker.io/library/postgres:16.10-bookworm":    "sha256:38471f330eb885e04de130b768d6db4e10469e2311879c7e5c699f6d2d8a1c74", // 2025-11-04, the tag's last build (16.11 followed); 6+ repositories
	"docker.io/library/redis:7.4.5-bookworm":       "sha256:09153b57c664fdd8a0136cf0d3fa31c173e4502afa9f642a037790acb4c7cb2f", // 2025-09-30, repo-info
	"docker.io/library/rabbitmq:3.13.7-management": "sha256:e582c0bc7766f3342496d8485efb5a1df782b5ce3886ad017e2eaae442311f69", // 2025-12-02; 4+ repositories
	// Argo CD's Redis, which its chart pulls from ECR Public's copy of the official image (the
	// same manifests, so the same digest; one of the two repositories pins it under that name).
	"ecr-public.aws.com/docker/library/redis:8.2.2-alpine":  "sha256:59b6e694653476de2c992937ebe1c64182af4728e54bb49e9b7a6c26614d8933",
	"docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine":   "sha256:c97ff0bf7cbae369953c6da1232ec14ad9f971d66360c5698db0856a4cd657a0", // 6+ repositories
	"quay.io/prometheuscommunity/postgres-exporter:v0.17.1": "sha256:38606faa38c54787525fb0ff2fd6b41b4cfb75d455c1df294927c5f611699b17",
	"docker.io/curlimages/curl:8.14.1":                      "sha256:9a1ed35addb45476afa911696297f8e115993df459278ed036182dd2cd22b67b", // 8+ repositories

	// registry.k8s.io: the image promoter's manifests (kubernetes/k8s.io,
	// registry.k8s.io/images/<staging project>/images.yaml, which map a digest to its tags) or,
	// for tags newer than the stored manifests, the promotion pull request and the project's
	// own release manifests.
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.28.4": "sha256:69685c3c4a3f5a622626af9fffe4b2f656c6e2f125e2b9d2593ceee0130cd0a2",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.29.6": "sha256:8074b8828a33fb273833e8fd374dda6a0ab10335ae8e19684fbd61eeff7d3594",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.30.2": "sha256:75539b9ce54bc473446f4eaea51b5865414b93a46a247b76f79d36f607f95b6e",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.0": "sha256:c4658f5c583e85ef58a096ac9901a8ced3cb9699d8eeceb59d3bb54c5d0db72f",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.32.1": "sha256:25bb877bbc690604e99f28a2783e0f81655d9e92851cc3e419eb703817248fb0",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.33.0": "sha256:101c01cd5e9fd44331cc0e80d727b476be90018a84c2bd32b161d5c692b49980",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.34.0": "sha256:389f84eb8be523c1f3dc97b8e6cf48013a20f19e6c23dad7259ac26297b11940",
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.35.0": "sha256:bf5a41be5f0dd5049cc1f69e1a23ff2691f2f46483546204676cea78796e75cd",
	"registry.k8s.io/etcd:3.5.12-0":                                 "sha256:44a8e24dcbba3470ee1fee21d5e88d128c936e9b55d4bc51fbef8086f8ed123b",
	"registry.k8s.io/etcd:3.5.15-0":                                 "sha256:a6dc63e6e8cfa0307d7851762fa6b629afb18f28d8aa3fab5a6e91b4af60026a",
	"registry.k8s.io/etcd:3.5.24-0":                                 "sha256:251e7e490f64859d329cd963bc879dc04acf3d7195bb52c4c50b4a07bedf37d6", // kubernetes/k8s.io#8676
	"registry.k8s.io/etcd:3.6.6-0":                                  "sha256:60a30b5d81b2217555e2cfb9537f655b7ba97220b99c39ee2e162a7127225890", // kubernetes/k8s.io#8752
	"registry.k8s.io/metrics-server/metrics-server:v0.8.0":          "sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2",
	"registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.4":     "sha256:bcfc926ed57831edf102d62c5c0e259572591df4796ef1420b87f9cf6092497f", // ingress-nginx's chart values and deploy.yaml
	"registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.17.0": "sha256:2bbc915567334b13632bf62c0a97084aff72a36e13c4dabd5f2f11c898c5bacd", // two unrelated repositories

	// Chart images on quay.io, Docker Hub and ghcr.io: unrelated repositories that pin them.
	"docker.io/grafana/grafana:12.3.0":                "sha256:70d9599b186ce287be0d2c5ba9a78acb2e86c1a68c9c41449454d0fc3eeb84e8",
	"quay.io/prometheus/prometheus:v3.7.3":            "sha256:49214755b6153f90a597adcbff0252cc61069f8ab69ce8411285cd4a560e8038", // 8+ sources
	"quay.io/prometheus/alertmanager:v0.29.0":         "sha256:88743b63b3e09ea6e31e140ced5bf45f4a8e82c617c2a963f78841f4995ad1d7",
	"quay.io/prometheus/node-exporter:v1.10.2":        "sha256:337ff1d356b68d39cef853e8c6345de11ce7556bb34cda8bd205bcf2ed30b565",
	"ghcr.io/kedacore/keda:2.20.2":                    "sha256:fe74c7b8849586a67ad2201bcb89e7f5ac221ff90399ecaa8fd28427f1ef11e6",
	"ghcr.io/kedacore/keda-metrics-apiserver:2.20.2":  "sha256:27286536a8a775aeeee37a7e343f8ecebb27ebf680ee1181a4f99e82eefb253b",
	"ghcr.io/kedacore/keda-admission-webhooks:2.20.2": "sha256:41f74102aba7959c6e8d08b433ab8a5fd6cae7c5646c78f7fe3de40a52df3439",
}

// noDigestFound is the reason of an image for which no public source published a digest.
const noDigestFound = "no published digest found (2026-12-07)"

// oneSource is the reason of an image whose digest was seen in one public source only.
const oneSource = "a digest seen in one public source only, not pinned until read from the registry"

// tagOnly are the images that still run by tag, with the reason. A production stack refuses an
// image that has neither a digest nor a reason here (config), and chartfit refuses a chart image
// that has neither.
var tagOnly = map[string]string{
	"docker.io/oliver006/redis_exporter:v1.87.0":                     noDigestFound,
	"docker.io/enix/x509-certificate-exporter:3.18.1":                noDigestFound,
	"registry.k8s.io/provider-aws/cloud-controller-manager:v1.36.1":  noDigestFound + ": kubernetes/k8s.io#9796 promoted it without naming one",
	"registry.k8s.io/etcd:3.6.5-0":                                   oneSource,
	"registry.k8s.io/etcd:3.6.8-0":                                   oneSource,
	"quay.io/argoproj/argocd:v3.2.4":                                 oneSource,
	"quay.io/kiwigrid/k8s-sidecar:1.30.10":                           oneSource,
	"quay.io/prometheus-operator/prometheus-operator:v0.86.2":        oneSource,
	"quay.io/prometheus-operator/prometheus-config-reloader:v0.86.2": noDigestFound,
	"cr.fluentbit.io/fluent/fluent-bit:5.1.1":                        oneSource,
	// AWS's images on ECR Public: neither project publishes digests, and no public pin was found.
	"public.ecr.aws/eks/aws-load-balancer-controller:v2.14.0":                    noDigestFound,
	"public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.52.0":                   noDigestFound,
	"public.ecr.aws/csi-components/csi-attacher:v4.9.0-eksbuild.4":               noDigestFound,
	"public.ecr.aws/csi-components/csi-node-driver-registrar:v2.14.0-eksbuild.5": noDigestFound,
	"public.ecr.aws/csi-components/csi-provisioner:v5.3.0-eksbuild.4":            noDigestFound,
	"public.ecr.aws/csi-components/csi-resizer:v1.14.0-eksbuild.4":               noDigestFound,
	"public.ecr.aws/csi-components/livenessprobe:v2.16.0-eksbuild.5":             noDigestFound,
}

// Pinned returns repo:tag with its pinned digest, repo:tag@sha256:<hex> (the kubelet pulls by
// the digest; the tag stays for the reader), or repo:tag itself when none is pinned.
func Pinned(ref string) string {
	if d, ok := digests[ref]; ok {
		return ref + "@" + d
	}
	return ref
}

// Digest returns the pinned digest of repo:tag, "sha256:<hex>".
func Digest(ref string) (string, bool) {
	d, ok := digests[ref]
	return d, ok
}

// Unpinned returns the images of refs (repo:tag or repo:tag@digest) that carry no digest and
// have no reason in tagOnly, in order: each must not run on production.
func Unpinned(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if _, digest, ok := strings.Cut(ref, "@"); ok && strings.HasPrefix(digest, "sha256:") {
			continue
		}
		if _, ok := tagOnly[ref]; ok {
			continue
		}
		out = append(out, ref)
	}
	return out
}

// ProgramImages lists every image the program's own objects run on a cluster of a Kubernetes
// minor ("1.35"), sorted: the data services, exporters and backup steps, the default backend,
// and the etcd and cloud-controller-manager images of that minor. The charts' images are
// chartfit's to list (it renders them).
func ProgramImages(minor string) []string {
	set := map[string]bool{
		Postgres: true, Redis: true, RabbitMQ: true, DefaultBackend: true,
		PostgresExporter: true, RedisExporter: true, CertificateExporter: true, Curl: true,
		EtcdImage(minor): true,
	}
	if ccm, ok := CCMImage(minor); ok {
		set[ccm] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// Digests returns a copy of the pinned digests, by repo:tag (for tools that read the render).
func Digests() map[string]string { return maps.Clone(digests) }

// TagOnlyImages returns a copy of the images that run by tag, with the reason of each.
func TagOnlyImages() map[string]string { return maps.Clone(tagOnly) }
