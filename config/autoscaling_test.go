package config

import (
	"strings"
	"testing"
)

// Bad autoscaling bounds and log retentions are refused before anything is declared, with the
// key, the value and what is allowed.
func TestAutoscalingAndLogsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"api max below its replicas", map[string]string{"waste-coach-infra:apiMaxReplicas": `{"auth":1,"users":3,"waste":3}`},
			[]string{"apiMaxReplicas.auth", "1 is not allowed", "at least apiReplicas.auth (2)"}},
		{"api max above 20", map[string]string{"waste-coach-infra:apiMaxReplicas": `{"auth":3,"users":21,"waste":3}`},
			[]string{"apiMaxReplicas.users", "21", "at most 20"}},
		{"celery max below its replicas", map[string]string{"waste-coach-infra:celeryMaxReplicas": `{"ai":2,"batch":3,"api":2}`},
			[]string{"celeryMaxReplicas.ai", "2 is not allowed", "at least celeryReplicas.ai (3)"}},
		{"a pool at zero the config does not allow", map[string]string{"waste-coach-infra:celeryReplicas": `{"ai":3,"batch":0,"api":2}`},
			[]string{"celeryReplicas.batch", "0 is not allowed", "celeryScaleToZero"}},
		{"a pool allowed zero still needs a maximum", map[string]string{
			"waste-coach-infra:celeryScaleToZero": `["batch"]`,
			"waste-coach-infra:celeryReplicas":    `{"ai":3,"batch":0,"api":2}`, "waste-coach-infra:celeryMaxReplicas": `{"ai":4,"batch":0,"api":2}`},
			[]string{"celeryMaxReplicas.batch", "0 is not allowed", "at least 1"}},
		{"unknown pool", map[string]string{"waste-coach-infra:celeryScaleToZero": `["beat"]`},
			[]string{"celeryScaleToZero[0]", `"beat"`, "one of ai, batch, api"}},
		{"queue length zero", map[string]string{"waste-coach-infra:celeryQueueLength": `{"ai":0,"batch":5,"api":20}`},
			[]string{"celeryQueueLength.ai", "0 is not allowed", "1 to 1000"}},
		{"log retention CloudWatch does not offer", map[string]string{"waste-coach-infra:logRetentionDays": "10"},
			[]string{"logRetentionDays", `"10" is not allowed`, "7, 14, 30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				raw[k] = v
			}
			_, err := parse(raw)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAutoscalingDefaultsAndScaleToZero(t *testing.T) {
	c, err := parse(validRaw())
	if err != nil {
		t.Fatal(err)
	}
	if c.Autoscaling.APIMax != DefaultAPIMax || c.Autoscaling.CeleryMax != DefaultCeleryMax || c.Autoscaling.CeleryQueueLength != DefaultCeleryQueueLength {
		t.Errorf("defaults %+v", c.Autoscaling)
	}
	if c.Logs.RetentionDays != 30 || c.Logs.GroupName != "/waste-coach/prod-sesacthon" {
		t.Errorf("production logs %+v, want 30 days in /waste-coach/prod-sesacthon", c.Logs)
	}
	raw := validRaw()
	raw["waste-coach-infra:production"] = "false"
	raw["waste-coach-infra:apiReplicas"] = `{"auth":5,"users":1,"waste":1}`
	raw["waste-coach-infra:celeryScaleToZero"] = `["batch"]`
	raw["waste-coach-infra:celeryReplicas"] = `{"ai":1,"batch":0,"api":1}`
	c, err = parse(raw)
	if err != nil {
		t.Fatalf("a pool listed in celeryScaleToZero at 0 was refused: %v", err)
	}
	if c.CeleryReplicas.Batch != 0 || c.Autoscaling.CeleryMax.Batch != DefaultCeleryMax.Batch {
		t.Errorf("batch %d..%d, want 0..%d", c.CeleryReplicas.Batch, c.Autoscaling.CeleryMax.Batch, DefaultCeleryMax.Batch)
	}
	if c.Autoscaling.APIMax.Auth != 5 {
		t.Errorf("apiMaxReplicas.auth default %d, want apiReplicas.auth (5) when it is above the default", c.Autoscaling.APIMax.Auth)
	}
	if c.Logs.RetentionDays != 7 {
		t.Errorf("dev log retention %d, want 7", c.Logs.RetentionDays)
	}
}

func TestAutoscalingKeyNamesTheMaximum(t *testing.T) {
	for dep, want := range map[string]string{"celery-ai": "waste-coach-infra:celeryMaxReplicas.ai", "waste": "waste-coach-infra:apiMaxReplicas.waste"} {
		if got, ok := AutoscalingKey(dep); !ok || got != want {
			t.Errorf("AutoscalingKey(%s) = %q, want %q", dep, got, want)
		}
	}
	if _, ok := AutoscalingKey("celery-beat"); ok {
		t.Error("celery-beat has an autoscaling key")
	}
}
