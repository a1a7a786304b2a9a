package tests

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/render"
	"github.com/waste-coach/infra/workloads"
)

const (
	receiverKey       = "waste-coach-infra:alertReceiver"
	receiverSecretKey = "waste-coach-infra:alertReceiverSecret"
	slackReceiver     = `{"kind":"slack","channel":"#wc-alerts"}`
	// slackWebhook is the receiver's secret: it must appear in no input of any resource.
	slackWebhook = "https://hooks.slack.com/services/T0000/B0000/exampleWebhookSecret"
)

// TestAlertReceiverSecretNeverInPlainText: with a Slack receiver configured, the webhook URL is a
// Pulumi secret in the one Secret Alertmanager mounts, and appears in plain text nowhere else: not
// in the Alertmanager configuration (which names the mounted file), not in the chart's values,
// not in any rendered file.
func TestAlertReceiverSecretNeverInPlainText(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{receiverKey: slackReceiver, receiverSecretKey: slackWebhook}, receiverSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	holders := 0
	for _, res := range r.Resources {
		b, err := json.Marshal(manifest.PlainMap(res.Inputs))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), slackWebhook) {
			t.Errorf("%s (%s) holds the receiver's webhook URL in plain text", res.Name, res.Type)
		}
		if str(res, "metadata", "name") == alerting.SecretName && res.Type == "kubernetes:core/v1:Secret" {
			holders++
			data := resource.NewObjectProperty(res.Inputs).ObjectValue()["stringData"]
			if !data.IsSecret() {
				t.Errorf("%s: stringData is not a Pulumi secret: the webhook URL would be stored in plain text in the state", res.Name)
			}
			if got := str(res, "stringData", alerting.SecretKey); got != slackWebhook {
				t.Errorf("%s holds %q under %s, want the configured webhook URL", res.Name, got, alerting.SecretKey)
			}
		}
	}
	if holders != 1 {
		t.Fatalf("%d Secrets named %s, want exactly one holding the webhook URL", holders, alerting.SecretName)
	}
	dir := t.TempDir()
	if err := render.Write(r, dir, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "monitoring", "alertmanager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "api_url_file: "+alerting.SecretFile) || strings.Count(string(conf), "channel: '#wc-alerts'") != 2 {
		t.Errorf("the Alertmanager configuration does not send page and notify to #wc-alerts through the mounted file %s:\n%s", alerting.SecretFile, conf)
	}
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), slackWebhook) {
			t.Errorf("rendered file %s holds the webhook URL", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	values := fmt.Sprint(manifest.PlainMap(must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-monitoring-kube-prometheus-stack").Inputs)["values"])
	if !strings.Contains(values, "secrets:["+alerting.SecretName+"]") || !strings.Contains(values, "configSecret:"+alerting.ConfigSecretName) {
		t.Errorf("Alertmanager does not run with the program's configuration and the receiver's Secret mounted: %s", values)
	}
}

// TestAlertReceiverSecretRefusedInPlainText: a webhook URL in plain text in the stack file is
// refused by name before anything is declared; so is a receiver without its secret.
func TestAlertReceiverSecretRefusedInPlainText(t *testing.T) {
	for name, c := range map[string]struct {
		values  map[string]string
		secrets []string
		want    string
	}{
		"plain text":     {map[string]string{receiverKey: slackReceiver, receiverSecretKey: slackWebhook}, nil, "(plain text)"},
		"missing":        {map[string]string{receiverKey: slackReceiver}, nil, "required with alertReceiver"},
		"unknown kind":   {map[string]string{receiverKey: `{"kind":"pager"}`}, nil, "alertReceiver.kind"},
		"not a queue":    {map[string]string{"waste-coach-infra:alertQueueDepth": `{"q.nope": 100}`}, nil, "alertQueueDepth.q.nope"},
		"depth too deep": {map[string]string{"waste-coach-infra:alertQueueDepth": `{"q.ai": 6000}`}, nil, "alertQueueDepth.q.ai"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := offline.RunConfig("prod", prodWith(t, c.values, c.secrets...))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a refusal naming %q, got %v", c.want, err)
			}
			if strings.Contains(err.Error(), slackWebhook) {
				t.Errorf("the refusal repeats the secret: %v", err)
			}
			if len(r.Resources) != 0 {
				t.Errorf("%d resources were declared before the refusal", len(r.Resources))
			}
		})
	}
}

// TestExporterPodsAreLockedDown: every exporter container has requests and limits, readiness and
// liveness probes and the restricted security context, and only Prometheus may reach its port.
func TestExporterPodsAreLockedDown(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		found := map[string]bool{}
		for w, obj := range workloadObjects(r) {
			spec := at(obj, "spec", "template", "spec")
			containers, _ := at(spec, "containers").([]any)
			for _, c := range containers {
				image := fmt.Sprint(at(c, "image"))
				if !strings.Contains(image, "exporter") {
					continue
				}
				found[image] = true
				who := fmt.Sprintf("%s container %v", w.Name, at(c, "name"))
				// An exporter beside the service it watches has no readiness probe (it would take
				// PostgreSQL or Redis out of its Service); one alone in its pod has.
				want := [][]any{{"resources", "requests", "cpu"}, {"resources", "requests", "memory"}, {"resources", "limits", "cpu"}, {"resources", "limits", "memory"}, {"livenessProbe"}}
				if len(containers) == 1 {
					want = append(want, []any{"readinessProbe"})
				}
				for _, k := range want {
					if at(c, k...) == nil {
						t.Errorf("%s has no %v", who, k)
					}
				}
				if at(c, "securityContext", "allowPrivilegeEscalation") != false || at(c, "securityContext", "readOnlyRootFilesystem") != true ||
					fmt.Sprint(at(c, "securityContext", "capabilities", "drop")) != "[ALL]" {
					t.Errorf("%s is not locked down: %v", who, at(c, "securityContext"))
				}
				if at(spec, "securityContext", "runAsNonRoot") != true || at(spec, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
					t.Errorf("%s: pod may run as root or without seccomp: %v", who, at(spec, "securityContext"))
				}
			}
		}
		if len(found) != 3 {
			t.Errorf("exporter images found %v, want the PostgreSQL, Redis and certificate exporters", found)
		}
		for _, p := range []struct{ name, port string }{{"postgres", "9187"}, {"redis", "9121"}} {
			np, _ := manifest.KubernetesObject(must(t, r, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "sesacthon-data-netpol-"+p.name))
			rules := fmt.Sprint(at(np, "spec", "ingress"))
			if !strings.Contains(rules, "port:"+p.port) || !strings.Contains(rules, "app.kubernetes.io/name:prometheus") {
				t.Errorf("%s's policy does not let Prometheus (only) reach the exporter on %s: %s", p.name, p.port, rules)
			}
		}
	})
}

// TestRulesAndMonitorsDeclared: one PrometheusRule per concern, each rule with a severity, a
// summary and a runbook link; a PodMonitor for each exporter; the dashboard for the sidecar; and
// the certificate exporter reads the file the credential's script writes.
func TestRulesAndMonitorsDeclared(t *testing.T) {
	r := run(t, "prod")
	rules := r.OfType("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
	if len(rules) != 4 {
		t.Fatalf("%d PrometheusRules, want messaging, data, cluster and backups", len(rules))
	}
	for _, pr := range rules {
		obj, _ := manifest.KubernetesObject(pr)
		for _, rule := range at(obj, "spec", "groups", 0, "rules").([]any) {
			if at(rule, "labels", "severity") == nil || at(rule, "annotations", "summary") == nil ||
				!strings.HasPrefix(fmt.Sprint(at(rule, "annotations", "runbook_url")), alerting.RunbookBase) {
				t.Errorf("%s: rule %v lacks a severity, a summary or a runbook link", pr.Name, at(rule, "alert"))
			}
		}
	}
	for _, name := range []string{"sesacthon-data-postgres-podmonitor", "sesacthon-data-redis-podmonitor", "sesacthon-node-metrics-x509-certificate-exporter-podmonitor"} {
		must(t, r, "kubernetes:monitoring.coreos.com/v1:PodMonitor", name)
	}
	dash := must(t, r, "kubernetes:core/v1:ConfigMap", "sesacthon-monitoring-waste-coach-platform-dashboard")
	if str(dash, "metadata", "labels", "grafana_dashboard") != "1" {
		t.Error("the dashboard ConfigMap lacks grafana_dashboard=1: Grafana's sidecar would not load it")
	}
	if want := "/etc/kubernetes/waste-coach/" + cluster.DeployUser + ".crt"; workloads.AdminCredentialCertPath != want {
		t.Errorf("the certificate exporter reads %s, but the credential's script writes %s", workloads.AdminCredentialCertPath, want)
	}
}
