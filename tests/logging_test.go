package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
)

// The log group is the program's, one per stack, with the stack's retention.
func TestLogGroupKeepsLogsForTheStacksRetention(t *testing.T) {
	want := map[string]int{"prod": 30, "dev": 7}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		groups := r.OfType("aws:cloudwatch/logGroup:LogGroup")
		if len(groups) != 1 {
			t.Fatalf("%d log groups, want 1", len(groups))
		}
		g := groups[0]
		if name := str(g, "name"); name != "/waste-coach/"+r.Config.ClusterID() {
			t.Errorf("log group %q, want /waste-coach/%s (one per stack)", name, r.Config.ClusterID())
		}
		if days := prop(g, "retentionInDays"); !days.IsNumber() || int(days.NumberValue()) != want[r.Stack] {
			t.Errorf("log group retention %v days, want %d on %s", days, want[r.Stack], r.Stack)
		}
	})
}

// Fluent Bit runs on every node, the master included, and ships container and kubelet logs with
// their Kubernetes metadata, and the API server's audit log, to the stack's group, and nowhere
// else; no pod can take itself out of the shipping (the fluentbit.io/exclude annotation is
// ignored).
func TestFluentBitShipsEveryNodesLogsToTheGroup(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		rel := must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-logging-fluent-bit")
		values, _ := manifest.PlainMap(rel.Inputs)["values"].(map[string]any)
		if at(values, "kind") != "DaemonSet" {
			t.Errorf("fluent-bit kind %v, want DaemonSet", at(values, "kind"))
		}
		if tol := at(values, "tolerations", 0); at(tol, "operator") != "Exists" || at(tol, "key") != nil {
			t.Errorf("fluent-bit tolerations %v, want every taint tolerated (the master's included)", at(values, "tolerations"))
		}
		inputs, filters, outputs := fmt.Sprint(at(values, "config", "inputs")), fmt.Sprint(at(values, "config", "filters")), fmt.Sprint(at(values, "config", "outputs"))
		for _, want := range []string{"Path /var/log/containers/*.log", "_SYSTEMD_UNIT=kubelet.service", "Path " + cluster.AuditLogPath + "\n    Tag audit.*"} {
			if !strings.Contains(inputs, want) {
				t.Errorf("fluent-bit inputs lack %q:\n%s", want, inputs)
			}
		}
		if !strings.Contains(filters, "Name kubernetes") {
			t.Errorf("fluent-bit adds no Kubernetes metadata:\n%s", filters)
		}
		if !strings.Contains(filters, "K8S-Logging.Exclude Off") {
			t.Errorf("a pod can exclude itself from the shipping with an annotation:\n%s", filters)
		}
		if n := strings.Count(outputs, "Name cloudwatch_logs"); n != 3 || strings.Count(outputs, "[OUTPUT]") != 3 || !strings.Contains(outputs, "Match audit.*") {
			t.Errorf("fluent-bit outputs, want exactly the container, host and audit streams to CloudWatch:\n%s", outputs)
		}
		if n := strings.Count(outputs, "log_group_name "+r.Config.Logs.GroupName+"\n"); n != 3 || !strings.Contains(outputs, "auto_create_group Off") {
			t.Errorf("fluent-bit outputs do not all go to %s (created by the program, not by Fluent Bit):\n%s", r.Config.Logs.GroupName, outputs)
		}
	})
}

// Fluent Bit's role may write to the stack's log group, only to it, and only write; no node role
// may touch CloudWatch Logs (Fluent Bit no longer ships with the node's credentials).
func TestFluentBitsRoleMayWriteOnlyToTheLogGroup(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		groupARN := fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s", r.Config.Region, r.Config.Logs.GroupName)
		p := must(t, r, "aws:iam/rolePolicy:RolePolicy", "sesacthon-pod-identity-"+infra.PodRoleLogs)
		var doc infra.PolicyDocument
		if err := json.Unmarshal([]byte(str(p, "policy")), &doc); err != nil {
			t.Fatalf("Fluent Bit's policy: %v", err)
		}
		for _, st := range doc.Statement {
			for _, res := range st.Resource.([]any) {
				if !strings.HasPrefix(res.(string), groupARN) {
					t.Errorf("Fluent Bit may write to %v, outside the log group %s", res, groupARN)
				}
			}
			for _, a := range st.Action {
				if a != "logs:CreateLogStream" && a != "logs:PutLogEvents" && a != "logs:DescribeLogStreams" {
					t.Errorf("Fluent Bit's policy allows %s: it needs streams and events only", a)
				}
			}
		}
		for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
			if p.Name != "sesacthon-pod-identity-"+infra.PodRoleLogs && strings.Contains(str(p, "policy"), "logs:") {
				t.Errorf("policy %s grants CloudWatch Logs actions outside Fluent Bit's role", p.Name)
			}
		}
	})
}

// Fluent Bit ships with a role of its own; Grafana has a read-only login of its own, which
// reaches Grafana only as a secret.
func TestGrafanaReadsTheLogsWithItsOwnLogin(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		rel := must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-monitoring-kube-prometheus-stack")
		grafana := at(manifest.PlainMap(rel.Inputs)["values"], "grafana")
		ds := at(grafana, "additionalDataSources", 0)
		if at(ds, "type") != "cloudwatch" || at(ds, "jsonData", "authType") != "keys" || at(ds, "jsonData", "defaultRegion") != r.Config.Region {
			t.Errorf("Grafana's first additional data source %v, want CloudWatch with keys in %s", ds, r.Config.Region)
		}
		if at(ds, "secureJsonData", "secretKey") != "${CLOUDWATCH_SECRET_ACCESS_KEY}" || at(grafana, "envFromSecret") != "grafana-cloudwatch" {
			t.Errorf("Grafana's CloudWatch key must come from its environment (Secret grafana-cloudwatch), got %v", at(ds, "secureJsonData"))
		}
		sec := must(t, r, "kubernetes:core/v1:Secret", "sesacthon-monitoring-grafana-cloudwatch")
		if v := sec.Inputs["stringData"]; !v.ContainsSecrets() {
			t.Error("Secret grafana-cloudwatch's data is not a Pulumi secret")
		}
		if !r.DependsOn(rel, sec) {
			t.Error("the monitoring release does not wait for Grafana's CloudWatch login")
		}
		policy := must(t, r, "aws:iam/userPolicy:UserPolicy", "sesacthon-logs-grafana")
		var doc infra.PolicyDocument
		if err := json.Unmarshal([]byte(str(policy, "policy")), &doc); err != nil {
			t.Fatal(err)
		}
		for _, st := range doc.Statement {
			for _, a := range st.Action {
				if strings.Contains(a, "Put") || strings.Contains(a, "Create") || strings.Contains(a, "Delete") || !strings.HasPrefix(a, "logs:") {
					t.Errorf("Grafana's login may %s: it only reads logs", a)
				}
			}
		}
		key := must(t, r, "aws:iam/accessKey:AccessKey", "sesacthon-logs-grafana")
		if !slices.Contains(key.AdditionalSecretOutputs, "secret") {
			t.Error("Grafana's access key secret is not an additional secret output")
		}
	})
}
