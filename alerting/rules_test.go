package alerting

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// testFile is the part of a promtool unit test file this test reads.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func params() Params {
	return Params{
		QueueDepth:      map[string]int{"q.ai": 4000, "q.api": 1600, "q.batch": 800, "q.sched": 500},
		WorkQueues:      map[string]string{"q.ai": "async-workers", "q.batch": "async-workers", "q.sched": "async-workers", "q.api": "application"},
		DeadLetterQueue: "q.dlq", Brokers: 3, Nodes: 4, EtcdQuotaBytes: 2 << 30,
		APIServerCertPath: "/etc/kubernetes/pki/apiserver.crt", AdminCredentialPath: "/etc/kubernetes/waste-coach/waste-coach-deployer.crt",
		Backups: []ScheduledBackup{
			{Namespace: "kube-system", CronJob: "etcd-snapshot", MaxAge: 45 * time.Minute},
			{Namespace: "data", CronJob: "postgres-base-backup", MaxAge: 26 * time.Hour},
			{Namespace: "data", CronJob: "postgres-dump", MaxAge: 26 * time.Hour},
		},
		WALShipper: "wal-shipper", PostgresNamespace: "data",
	}
}

// TestEveryAlertIsFiredAndShownSilent: each group's promtool test file reads that group's rule
// file and has, for every alert of the group, a case that expects it to fire and one that
// expects it silent. A new alert without both fails here, before promtool runs.
func TestEveryAlertIsFiredAndShownSilent(t *testing.T) {
	for _, g := range Groups(params()) {
		b, err := os.ReadFile("testdata/" + g.Name + ".test.yaml")
		if err != nil {
			t.Errorf("group %s has no promtool tests: %v", g.Name, err)
			continue
		}
		var f testFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s tests: %v", g.Name, err)
		}
		if want := "rules/waste-coach-" + g.Name + ".yaml"; !slices.Equal(f.RuleFiles, []string{want}) {
			t.Errorf("%s tests read %v, want the rendered %s", g.Name, f.RuleFiles, want)
		}
		fired, silent := map[string]bool{}, map[string]bool{}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fired[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
		for _, r := range g.Rules {
			if !fired[r.Alert] {
				t.Errorf("%s: no promtool test fires %s", g.Name, r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("%s: no promtool test shows %s silent", g.Name, r.Alert)
			}
		}
	}
}

// TestEveryAlertHasARunbook: each alert's runbook_url anchor is a section of docs/operations.md.
func TestEveryAlertHasARunbook(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range Groups(params()) {
		for _, r := range g.Rules {
			if !strings.Contains(string(doc), "\n### "+r.Alert+"\n") {
				t.Errorf("%s links to %s%s, but docs/operations.md has no section \"### %s\"", r.Alert, RunbookBase, Anchor(r.Alert), r.Alert)
			}
			if r.Severity != SeverityCritical && r.Severity != SeverityWarning {
				t.Errorf("%s has severity %q, which no route sends anywhere", r.Alert, r.Severity)
			}
		}
	}
}
