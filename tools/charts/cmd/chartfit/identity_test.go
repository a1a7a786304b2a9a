package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodIdentity is a chart's output for a component with a role, as the program's values make it:
// the environment in one container, the token volume, and the chart's ServiceAccount.
const goodIdentity = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ctl
spec:
  template:
    spec:
      serviceAccountName: ctl-sa
      containers:
        - name: main
          env:
            - name: AWS_ROLE_ARN
              value: arn:aws:iam::123456789012:role/test-ctl
            - name: AWS_WEB_IDENTITY_TOKEN_FILE
              value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token
          volumeMounts:
            - name: aws-identity
              mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount
              readOnly: true
        - name: sidecar
      volumes:
        - name: aws-identity
          projected:
            sources:
              - serviceAccountToken:
                  audience: sts.amazonaws.com
                  expirationSeconds: 3600
                  path: token
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ctl-sa
  namespace: kube-system
`

var identityTrust = []Trust{{"test-ctl.json", "kube-system/ctl-sa"}, {"test-pg.json", "data/postgres"}}

// identityRelease parses a synthetic chart output as one release's, in kube-system.
func identityRelease(t *testing.T, archive, manifest string) *Rendered {
	t.Helper()
	objs, err := parseManifests(manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Rendered{Release: Release{Name: "ctl", Namespace: "kube-system"}, Archive: archive, Objects: objs}
}

// The good pod passes and is reported; each way of getting the identity wrong fails, naming the
// pod and what is wrong.
func TestCheckIdentitiesOnASyntheticPod(t *testing.T) {
	program := map[string]bool{"data/postgres": true}
	for _, c := range []struct {
		name     string
		old, new string   // one replacement in goodIdentity; none for the good pod
		want     []string // each must appear in one finding; none means the check passes
	}{
		{"good", "", "", nil},
		{"a StatefulSet is checked too", "kind: Deployment", "kind: StatefulSet", nil},
		{"(1) a ServiceAccount no trust policy names", "serviceAccountName: ctl-sa", "serviceAccountName: other-sa",
			[]string{"release ctl, pod Deployment ctl, container main: runs as kube-system/other-sa, which no trust policy (issuer/trust/*.json) names"}},
		{"(1) an ARN naming the role of another ServiceAccount", "role/test-ctl", "role/test-pg",
			[]string{"pod Deployment ctl, container main: AWS_ROLE_ARN names role test-pg, whose trust policy test-pg.json trusts data/postgres, not kube-system/ctl-sa"}},
		{"(2) no mount", "name: aws-identity\n              mountPath", "name: other\n              mountPath",
			[]string{"container main: does not mount the volume aws-identity"}},
		{"(2) mounted elsewhere", "mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount", "mountPath: /var/run/secrets/aws",
			[]string{"container main: mounts aws-identity at /var/run/secrets/aws, not at /var/run/secrets/eks.amazonaws.com/serviceaccount"}},
		{"(2) token file outside the mount", "value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token", "value: /var/run/secrets/kubernetes.io/serviceaccount/token",
			[]string{"AWS_WEB_IDENTITY_TOKEN_FILE /var/run/secrets/kubernetes.io/serviceaccount/token is not under the aws-identity mount"}},
		{"(2) token file the volume does not have", "value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token", "value: /var/run/secrets/eks.amazonaws.com/serviceaccount/jwt",
			[]string{"AWS_WEB_IDENTITY_TOKEN_FILE /var/run/secrets/eks.amazonaws.com/serviceaccount/jwt is no file of the volume aws-identity (its token paths: token)"}},
		{"(2) no token file", "- name: AWS_WEB_IDENTITY_TOKEN_FILE", "- name: AWS_TOKEN_FILE",
			[]string{"container main: has AWS_ROLE_ARN but no AWS_WEB_IDENTITY_TOKEN_FILE"}},
		{"(3) no volume", "- name: aws-identity\n          projected", "- name: token\n          projected",
			[]string{"the pod has no volume aws-identity projecting a serviceAccountToken with audience sts.amazonaws.com (it has: no volume aws-identity)"}},
		{"(3) a token for another audience", "audience: sts.amazonaws.com", "audience: kubernetes.default.svc",
			[]string{"the pod has no volume aws-identity projecting a serviceAccountToken with audience sts.amazonaws.com (it has: aws-identity (projected serviceAccountToken, audience kubernetes.default.svc))"}},
		{"(4) the chart renders no ServiceAccount", "kind: ServiceAccount", "kind: ConfigMap",
			[]string{"container main: the release renders no ServiceAccount kube-system/ctl-sa"}},
		{"(5) values that lose the environment", "- name: AWS_ROLE_ARN", "- name: AWS_ROLE",
			[]string{"release ctl: trust policy test-ctl.json trusts kube-system/ctl-sa, a ServiceAccount of this chart, but no pod of the charts running as it has AWS_ROLE_ARN"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			manifest := goodIdentity
			if c.old != "" {
				if !strings.Contains(manifest, c.old) {
					t.Fatalf("the synthetic pod has no %q", c.old)
				}
				manifest = strings.Replace(manifest, c.old, c.new, 1)
			}
			var report strings.Builder
			findings := checkIdentities([]*Rendered{identityRelease(t, "ctl-1.0.0.tgz", manifest)}, identityTrust, program, &report)
			got := findingText(findings)
			if len(c.want) == 0 {
				if len(findings) > 0 {
					t.Fatalf("want no finding, got:\n%s", got)
				}
				for _, line := range []string{"ok   ctl", "runs as kube-system/ctl-sa (trust test-ctl.json), ServiceAccount rendered: true; token aws-identity (projected serviceAccountToken, audience sts.amazonaws.com)",
					"trust test-ctl.json", "1 chart pod(s) with its role", "data/postgres", "the program's own ServiceAccount"} {
					if !strings.Contains(report.String(), line) {
						t.Errorf("the report lacks %q:\n%s", line, report.String())
					}
				}
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("no finding contains %q; got:\n%s", w, got)
				}
			}
		})
	}
	// A trust policy whose ServiceAccount nobody creates is a role no pod can use.
	findings := checkIdentities(nil, identityTrust, nil, &strings.Builder{})
	if got := findingText(findings); !strings.Contains(got, "trust policy test-pg.json trusts data/postgres, which neither a chart nor the program's manifests create") {
		t.Errorf("got:\n%s", got)
	}
}

// The EBS CSI node plugin has no role and reads its instance from its Node.
func TestCheckIdentitiesOnTheEBSNodePlugin(t *testing.T) {
	node := `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ebs-csi-node
spec:
  template:
    spec:
      serviceAccountName: ebs-csi-node-sa
      containers:
        - name: ebs-plugin
          args:
            - node
            - --metadata-sources=kubernetes
`
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"good", "", "", ""},
		{"metadata from the instance", "--metadata-sources=kubernetes", "--metadata-sources=imds", "container ebs-plugin: --metadata-sources is imds, want kubernetes"},
		{"no metadata sources", "- --metadata-sources=kubernetes", "- --v=2", "--metadata-sources is none, want kubernetes"},
		{"a role", "args:", "env:\n            - name: AWS_ROLE_ARN\n              value: arn\n          args:", "the EBS CSI node plugin has AWS_ROLE_ARN"},
		{"no node DaemonSet", "kind: DaemonSet", "kind: ConfigMap", "renders no EBS CSI node DaemonSet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			manifest := node
			if c.old != "" {
				manifest = strings.Replace(manifest, c.old, c.new, 1)
			}
			var report strings.Builder
			findings := checkIdentities([]*Rendered{identityRelease(t, "aws-ebs-csi-driver-2.52.0.tgz", manifest)}, nil, nil, &report)
			got := findingText(findings)
			if c.want == "" {
				if len(findings) > 0 {
					t.Fatalf("want no finding, got:\n%s", got)
				}
				if !strings.Contains(report.String(), "ok   ctl") || !strings.Contains(report.String(), "--metadata-sources=kubernetes") {
					t.Errorf("the report lacks the node plugin's line:\n%s", report.String())
				}
			} else if !strings.Contains(got, c.want) {
				t.Errorf("no finding contains %q; got:\n%s", c.want, got)
			}
		})
	}
}

// A render from before the pod identities has no trust folder: the check says so and passes.
func TestIdentityCheckSkipsARenderWithoutTrustPolicies(t *testing.T) {
	var report strings.Builder
	findings, err := identityCheck(t.TempDir(), []*Rendered{identityRelease(t, "ctl-1.0.0.tgz", strings.Replace(goodIdentity, "serviceAccountName: ctl-sa", "serviceAccountName: x", 1))}, &report)
	if err != nil || len(findings) > 0 || !strings.Contains(report.String(), "check skipped") {
		t.Errorf("findings %v, error %v, report %q; want a skip", findings, err, report.String())
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "issuer", "trust"), 0o755); err != nil {
		t.Fatal(err)
	}
	policy := `{"Statement":[{"Condition":{"StringEquals":{"issuer.example:aud":"sts.amazonaws.com","issuer.example:sub":"system:serviceaccount:kube-system:ctl-sa"}}}]}`
	if err := os.WriteFile(filepath.Join(dir, "issuer", "trust", "test-ctl.json"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	trust, found, err := readTrust(dir)
	if err != nil || !found || len(trust) != 1 || trust[0] != (Trust{"test-ctl.json", "kube-system/ctl-sa"}) {
		t.Errorf("readTrust = %v, %v, %v; want test-ctl.json trusting kube-system/ctl-sa", trust, found, err)
	}
}

func findingText(fs []Finding) string {
	lines := make([]string, 0, len(fs))
	for _, f := range fs {
		lines = append(lines, f.String())
	}
	return strings.Join(lines, "\n")
}
