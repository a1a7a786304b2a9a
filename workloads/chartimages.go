package workloads

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/versions"
)

// chartImageValues are the values that run a chart's images by their pinned digests
// (versions/images.go), in the form each chart takes one: a sha or digest value beside the tag
// (kube-prometheus-stack and its subcharts), or, for charts whose templates print
// repository:tag, the tag with the digest after it (the reference repository:tag@sha256:<hex>,
// which the kubelet pulls by digest). The tags are those the pinned chart versions run by
// default; chartfit renders every release and fails on an image whose digest is not the pin of
// its repository:tag, or which has neither a digest nor a reason to run by tag
// (versions.TagOnly), so a chart bump that moves a tag is caught there. Images without a pinned
// digest keep the chart's reference.
func chartImageValues(chart versions.Chart) pulumi.Map {
	switch chart.Name {
	case versions.KubePrometheusStack.Name:
		return pulumi.Map{
			"prometheus":   pulumi.Map{"prometheusSpec": pulumi.Map{"image": shaValue("quay.io/prometheus/prometheus:v3.7.3")}},
			"alertmanager": pulumi.Map{"alertmanagerSpec": pulumi.Map{"image": shaValue("quay.io/prometheus/alertmanager:v0.29.0")}},
			"prometheusOperator": pulumi.Map{"admissionWebhooks": pulumi.Map{"patch": pulumi.Map{
				"image": shaValue("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.4")}}},
			"grafana": pulumi.Map{"image": shaValue("docker.io/grafana/grafana:12.3.0")},
			// These two subcharts want the digest with its algorithm.
			"kube-state-metrics":       pulumi.Map{"image": pulumi.Map{"sha": digestValue("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.17.0")}},
			"prometheus-node-exporter": pulumi.Map{"image": pulumi.Map{"digest": digestValue("quay.io/prometheus/node-exporter:v1.10.2")}},
		}
	case versions.ArgoCD.Name:
		return pulumi.Map{"redis": pulumi.Map{"image": pulumi.Map{"tag": tagWithDigest("ecr-public.aws.com/docker/library/redis:8.2.2-alpine")}}}
	case versions.MetricsServer.Name:
		return pulumi.Map{"image": pulumi.Map{"tag": tagWithDigest("registry.k8s.io/metrics-server/metrics-server:v0.8.0")}}
	case versions.KEDA.Name:
		return pulumi.Map{"image": pulumi.Map{
			"keda":             pulumi.Map{"tag": tagWithDigest("ghcr.io/kedacore/keda:2.20.2")},
			"metricsApiServer": pulumi.Map{"tag": tagWithDigest("ghcr.io/kedacore/keda-metrics-apiserver:2.20.2")},
			"webhooks":         pulumi.Map{"tag": tagWithDigest("ghcr.io/kedacore/keda-admission-webhooks:2.20.2")},
		}}
	}
	return nil
}

// shaValue is a kube-prometheus-stack image's sha value: the digest's hex, without "sha256:".
func shaValue(ref string) pulumi.Map {
	return pulumi.Map{"sha": pulumi.String(strings.TrimPrefix(pinnedDigest(ref), "sha256:"))}
}

// digestValue is the digest, "sha256:<hex>".
func digestValue(ref string) pulumi.String { return pulumi.String(pinnedDigest(ref)) }

// tagWithDigest is "<tag>@sha256:<hex>" for a chart that prints repository:tag.
func tagWithDigest(ref string) pulumi.String {
	_, tag, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	return pulumi.String(tag + "@" + pinnedDigest(ref))
}

// pinnedDigest is the pinned digest of repo:tag. The table above names only pinned images: a
// missing one is a programming error (every test that runs the program would panic).
func pinnedDigest(ref string) string {
	d, ok := versions.Digest(ref)
	if !ok {
		panic(fmt.Sprintf("workloads: no digest pinned for the chart image %s (versions/images.go)", ref))
	}
	return d
}

// mergeValues returns values with extra merged in, map into map; neither argument is modified.
// A key of extra that is a map where values holds something else than a map is an error: the
// merge would otherwise replace that whole subtree of the program's values.
func mergeValues(values, extra pulumi.Map) (pulumi.Map, error) {
	out := pulumi.Map{}
	for k, v := range values {
		out[k] = v
	}
	for k, v := range extra {
		em, isMap := v.(pulumi.Map)
		old, present := out[k]
		if !isMap || !present {
			out[k] = v
			continue
		}
		vm, ok := old.(pulumi.Map)
		if !ok {
			return nil, fmt.Errorf("values key %s is a %T, not a map to merge the image digests into", k, old)
		}
		merged, err := mergeValues(vm, em)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", k, err)
		}
		out[k] = merged
	}
	return out, nil
}
