package main

import (
	"strings"
	"testing"
)

// TestImageDigestsAreThePins: an image the charts run is accepted with the digest the program
// pins for its repository:tag, or by tag when the program says why; a moved tag, a wrong digest,
// a digest the values forgot and an unexplained tag are each named with the release and object.
func TestImageDigestsAreThePins(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	table := &Table{
		ImageDigests: map[string]string{"quay.io/prometheus/prometheus:v3.7.3": d1, "docker.io/library/redis:8.2.2-alpine": d2},
		TagOnly:      map[string]string{"public.ecr.aws/eks/aws-load-balancer-controller:v2.14.0": "no published digest found"},
	}
	img := func(image string) ChartImage { return ChartImage{"rel", "Deployment/x", image} }
	for _, tc := range []struct {
		image, want string
	}{
		{"quay.io/prometheus/prometheus:v3.7.3@" + d1, ""},
		{"redis:8.2.2-alpine@" + d2, ""}, // Docker Hub's short name, compared in full
		{"public.ecr.aws/eks/aws-load-balancer-controller:v2.14.0", ""},
		{"quay.io/prometheus/prometheus:v3.7.3@" + d2, "the program pins " + d1},
		{"quay.io/prometheus/prometheus:v3.8.0@" + d1, "pins none for quay.io/prometheus/prometheus:v3.8.0"},
		{"quay.io/prometheus/prometheus:v3.7.3", "the chart's values do not carry the digest"},
		{"busybox:latest", "busybox:latest runs by tag alone"},
	} {
		findings := checkImageDigests([]ChartImage{img(tc.image)}, table)
		switch {
		case tc.want == "" && len(findings) > 0:
			t.Errorf("%s: refused: %v", tc.image, findings)
		case tc.want != "" && (len(findings) != 1 || !strings.Contains(findings[0].String(), tc.want) || !strings.Contains(findings[0].String(), "release rel")):
			t.Errorf("%s: %v, want one finding saying %q", tc.image, findings, tc.want)
		}
	}
}

// TestChartImagesIncludeOperatorMadePodsAndSkipTests: the Prometheus resource's image and the
// operator's config reloader flag are images that run; a Helm test hook's pod is not.
func TestChartImagesIncludeOperatorMadePodsAndSkipTests(t *testing.T) {
	r := &Rendered{Release: Release{Name: "kps"}, Objects: []Object{
		{Map: map[string]any{"kind": "Prometheus", "metadata": map[string]any{"name": "p"}, "spec": map[string]any{"image": "quay.io/prometheus/prometheus:v3.7.3"}}},
		{Map: map[string]any{"kind": "Deployment", "metadata": map[string]any{"name": "op"}, "spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "op", "image": "quay.io/op:v1", "args": []any{"--prometheus-config-reloader=quay.io/reloader:v1"}}}}}}}},
		{Map: map[string]any{"kind": "Pod", "metadata": map[string]any{"name": "t"}, "spec": map[string]any{}}, Hook: []string{"test"}},
		{Map: map[string]any{"kind": "Job", "metadata": map[string]any{"name": "test"}, "spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "t", "image": "busybox:latest"}}}}}}, Hook: []string{"test"}},
	}}
	var got []string
	for _, i := range chartImages([]*Rendered{r}) {
		got = append(got, i.Image)
	}
	if want := "quay.io/prometheus/prometheus:v3.7.3 quay.io/op:v1 quay.io/reloader:v1"; strings.Join(got, " ") != want {
		t.Errorf("images %v, want %s", got, want)
	}
}
