package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// auditLine is one synthetic audit.k8s.io/v1 Event, as the API server's JSON log writes it.
func auditLine(t *testing.T, e map[string]any) string {
	t.Helper()
	full := map[string]any{"apiVersion": "audit.k8s.io/v1", "kind": "Event", "stage": "ResponseComplete", "user": map[string]any{"username": "verify-local-admin"}}
	for k, v := range e {
		full[k] = v
	}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func probeRef(group, resource string) map[string]any {
	return map[string]any{"apiGroup": group, "apiVersion": "v1", "resource": resource, "namespace": auditProbeNamespace, "name": auditProbeName}
}

// goodAuditEvents are the events the rendered policy makes of the probe's requests, around
// unrelated traffic.
func goodAuditEvents() []map[string]any {
	return []map[string]any{
		{"level": "Metadata", "verb": "create", "requestURI": "/api/v1/namespaces", "userAgent": "kubectl", "objectRef": map[string]any{"resource": "namespaces", "name": "app"}},
		{"level": "Metadata", "verb": "create", "requestURI": "/api/v1/namespaces/default/secrets", "userAgent": auditProbeAgent, "objectRef": probeRef("", "secrets")},
		{"level": "Metadata", "verb": "get", "requestURI": "/api/v1/namespaces/default/secrets/audit-probe", "userAgent": auditProbeAgent, "objectRef": probeRef("", "secrets")},
		{"level": "Request", "verb": "create", "requestURI": "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", "userAgent": auditProbeAgent, "objectRef": probeRef("rbac.authorization.k8s.io", "roles"),
			"requestObject": map[string]any{"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": map[string]any{"name": auditProbeName}}},
		{"level": "Request", "verb": "create", "requestURI": "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", "userAgent": auditProbeAgent, "objectRef": probeRef("rbac.authorization.k8s.io", "rolebindings"),
			"requestObject": map[string]any{"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": map[string]any{"name": auditProbeName}}},
		{"level": "Metadata", "verb": "get", "requestURI": "/api/v1/namespaces/default/pods/audit-probe/exec?command=true&stdout=true", "userAgent": auditProbeAgent,
			"objectRef": map[string]any{"resource": "pods", "subresource": "exec", "namespace": auditProbeNamespace, "name": auditProbeName, "apiVersion": "v1"}},
	}
}

func TestCheckAuditLog(t *testing.T) {
	const (
		parsed      = "each line an audit.k8s.io/v1 Event"
		secretGet   = "get secret"
		roleCreate  = "create role "
		bindCreate  = "create rolebinding"
		execGet     = "pods/exec"
		healthz     = "/healthz"
		received    = "RequestReceived"
		podsListed  = "list of pods"
		unendedLine = `{"apiVersion":"audit.k8s.io/v1","kind":"Event","stage":"RequestRec`
	)
	tests := []struct {
		name   string
		change func(events []map[string]any) []map[string]any
		raw    string // appended to the log as it is
		fail   []string
		detail string // in the failure's error
	}{
		{name: "as the policy says", change: func(e []map[string]any) []map[string]any { return e }},
		{name: "a line still being written is left for the next read", raw: unendedLine},
		{name: "no log yet", change: func([]map[string]any) []map[string]any { return nil },
			fail: []string{secretGet, roleCreate, bindCreate, execGet}, detail: "no event"},
		{name: "secret get at level Request", change: func(e []map[string]any) []map[string]any {
			e[2]["level"] = "Request"
			return e
		}, fail: []string{secretGet}, detail: "level Request"},
		{name: "secret get with its response", change: func(e []map[string]any) []map[string]any {
			e[2]["level"], e[2]["responseObject"] = "RequestResponse", map[string]any{"kind": "Secret", "data": map[string]any{"v": "c2VjcmV0"}}
			return e
		}, fail: []string{secretGet}, detail: "level RequestResponse"},
		{name: "secret get at Metadata with a requestObject", change: func(e []map[string]any) []map[string]any {
			e[2]["requestObject"] = map[string]any{"kind": "GetOptions"}
			return e
		}, fail: []string{secretGet}, detail: "requestObject"},
		{name: "secret get not logged", change: func(e []map[string]any) []map[string]any { return slices.Delete(e, 2, 3) },
			fail: []string{secretGet}, detail: "no event"},
		{name: "secret get of another client does not count", change: func(e []map[string]any) []map[string]any {
			e[2]["userAgent"] = "kubectl"
			return e
		}, fail: []string{secretGet}, detail: "no event"},
		{name: "role create at Metadata", change: func(e []map[string]any) []map[string]any {
			e[3]["level"] = "Metadata"
			delete(e[3], "requestObject")
			return e
		}, fail: []string{roleCreate}, detail: "level Metadata"},
		{name: "role create without requestObject", change: func(e []map[string]any) []map[string]any {
			delete(e[3], "requestObject")
			return e
		}, fail: []string{roleCreate}, detail: "without its requestObject"},
		{name: "role create with a null requestObject", change: func(e []map[string]any) []map[string]any {
			e[3]["requestObject"] = nil
			return e
		}, fail: []string{roleCreate}, detail: "without its requestObject"},
		{name: "role create with another object", change: func(e []map[string]any) []map[string]any {
			e[3]["requestObject"] = map[string]any{"kind": "ClusterRole", "metadata": map[string]any{"name": auditProbeName}}
			return e
		}, fail: []string{roleCreate}, detail: "not the Role"},
		{name: "role create with its response", change: func(e []map[string]any) []map[string]any {
			e[3]["responseObject"] = map[string]any{"kind": "Role"}
			return e
		}, fail: []string{roleCreate}, detail: "responseObject"},
		{name: "role create not logged", change: func(e []map[string]any) []map[string]any { return slices.Delete(e, 3, 4) },
			fail: []string{roleCreate}, detail: "no event"},
		{name: "rolebinding create not logged", change: func(e []map[string]any) []map[string]any { return slices.Delete(e, 4, 5) },
			fail: []string{bindCreate}, detail: "no event"},
		{name: "exec not logged (its GET fell to the last rule)", change: func(e []map[string]any) []map[string]any { return e[:5] },
			fail: []string{execGet}, detail: "no event"},
		{name: "exec at level Request", change: func(e []map[string]any) []map[string]any {
			e[5]["level"] = "Request"
			return e
		}, fail: []string{execGet}, detail: "level Request"},
		{name: "healthz logged", change: func(e []map[string]any) []map[string]any {
			return append(e, map[string]any{"level": "Metadata", "verb": "get", "requestURI": "/healthz?timeout=32s", "userAgent": auditProbeAgent})
		}, fail: []string{healthz}, detail: "1 event(s)"},
		{name: "a healthz check of another client logged", change: func(e []map[string]any) []map[string]any {
			return append(e, map[string]any{"level": "Metadata", "verb": "get", "requestURI": "/healthz/etcd", "userAgent": "kube-probe"})
		}, fail: []string{healthz}, detail: "kube-probe"},
		{name: "a stage RequestReceived", change: func(e []map[string]any) []map[string]any {
			received := map[string]any{}
			for k, v := range e[2] {
				received[k] = v
			}
			received["stage"] = "RequestReceived"
			return append(e, received)
		}, fail: []string{received}, detail: "stage RequestReceived"},
		{name: "pods list logged", change: func(e []map[string]any) []map[string]any {
			return append(e, map[string]any{"level": "Metadata", "verb": "list", "requestURI": "/api/v1/namespaces/default/pods", "userAgent": auditProbeAgent,
				"objectRef": map[string]any{"resource": "pods", "namespace": auditProbeNamespace, "apiVersion": "v1"}})
		}, fail: []string{podsListed}, detail: "list /api/v1/namespaces/default/pods"},
		{name: "a line not JSON", raw: "E0101 not an event\n", fail: []string{parsed}, detail: "line 7"},
		{name: "a line of another kind", raw: `{"apiVersion":"audit.k8s.io/v1beta1","kind":"Event"}` + "\n", fail: []string{parsed}, detail: "want audit.k8s.io/v1 Event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := goodAuditEvents()
			if tt.change != nil {
				events = tt.change(events)
			}
			var log strings.Builder
			for _, e := range events {
				log.WriteString(auditLine(t, e))
			}
			log.WriteString(tt.raw)
			results := checkAuditLog([]byte(log.String()))
			if len(results) != 8 {
				t.Fatalf("%d assertions, want 8: %+v", len(results), results)
			}
			var failed []string
			for _, r := range results {
				if r.err == nil {
					continue
				}
				failed = append(failed, r.what)
				if !strings.Contains(r.err.Error(), tt.detail) {
					t.Errorf("%s: %v, want it to mention %q", r.what, r.err, tt.detail)
				}
			}
			if len(failed) != len(tt.fail) {
				t.Fatalf("failed %q, want those about %q", failed, tt.fail)
			}
			for i, want := range tt.fail {
				if !strings.Contains(failed[i], want) {
					t.Errorf("failed %q, want those about %q", failed, tt.fail)
				}
			}
			if allHold(results) != (len(tt.fail) == 0) {
				t.Errorf("allHold = %v", allHold(results))
			}
		})
	}
}

func TestRenderedAuditConfig(t *testing.T) {
	dir := t.TempDir()
	policy := "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n"
	sum := sha256.Sum256([]byte(policy))
	named := "/etc/kubernetes/audit/policy-" + hex.EncodeToString(sum[:6]) + ".yaml"
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := func(policyFile string) string {
		return `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  extraArgs:
    - name: audit-policy-file
      value: "` + policyFile + `"
    - name: audit-log-path
      value: "/var/log/kubernetes/audit/audit.log"
    - name: audit-log-maxsize
      value: "100"
    - name: audit-log-maxage
      value: "7"
`
	}
	write("kubeadm/audit-policy.yaml", policy)
	write("kubeadm/init.yaml", config(named))
	a, err := renderedAuditConfig(dir, "/tmp/work")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--audit-policy-file=" + filepath.Join(dir, "kubeadm/audit-policy.yaml"), "--audit-log-path=/tmp/work/audit.log", "--audit-log-maxsize=100", "--audit-log-maxage=7"}
	if !slices.Equal(a.flags(), want) || a.masterPolicy != named || a.masterLog != "/var/log/kubernetes/audit/audit.log" {
		t.Errorf("flags %q (master %s, %s), want %q", a.flags(), a.masterPolicy, a.masterLog, want)
	}

	write("kubeadm/init.yaml", config("/etc/kubernetes/audit/policy-000000000000.yaml"))
	if _, err := renderedAuditConfig(dir, "/tmp/work"); err == nil || !strings.Contains(err.Error(), "not named after") {
		t.Errorf("a flag naming another policy: %v", err)
	}
	write("kubeadm/init.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n")
	if _, err := renderedAuditConfig(dir, "/tmp/work"); err == nil || !strings.Contains(err.Error(), "sets audit-policy-file") {
		t.Errorf("no audit flags: %v", err)
	}
}

// TestWaitReadyExited: an API server that exits (a policy it refuses) fails the start at once,
// with its log's end.
func TestWaitReadyExited(t *testing.T) {
	c := &controlPlane{work: t.TempDir()}
	defer c.stop()
	if err := c.run("kube-apiserver", "/bin/sh", "-c", `echo 'Error: loading audit policy file: unknown level "Everything"'; exit 1`); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	c.client = client
	start := time.Now()
	err = c.waitReady(t.Context(), c.procs[0])
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), `unknown level "Everything"`) {
		t.Errorf("waitReady = %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("waitReady took %s", time.Since(start))
	}
}
