package alerting

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Receiver kinds an operator can configure (config key alertReceiver).
const (
	ReceiverSlack = "slack"
	ReceiverEmail = "email"
)

// Receiver is where a stack's alerts are delivered. Its secret (the Slack webhook URL or the
// SMTP password) is not part of it: Alertmanager reads it from SecretFile, a Kubernetes Secret
// mounted into its pod, so the configuration carries no secret and can be rendered and checked.
type Receiver struct {
	// Kind is ReceiverSlack or ReceiverEmail.
	Kind string `json:"kind"`
	// Channel is the Slack channel (slack).
	Channel string `json:"channel,omitempty"`
	// To, From, Smarthost (host:port) and Username are the mail settings (email).
	To        string `json:"to,omitempty"`
	From      string `json:"from,omitempty"`
	Smarthost string `json:"smarthost,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Receiver names of the routing tree.
const (
	// ReceiverPage gets production's critical alerts, repeated hourly until resolved.
	ReceiverPage = "page"
	// ReceiverNotify gets warnings, and every alert on a stack that does not page.
	ReceiverNotify = "notify"
	// ReceiverNull keeps alerts in Alertmanager only (info, the chart's Watchdog).
	ReceiverNull = "null"
)

// SecretName is the Kubernetes Secret holding the receiver's secret in the monitoring namespace;
// Alertmanager mounts it under /etc/alertmanager/secrets/<name>/ (alertmanagerSpec.secrets).
const (
	SecretName = "alertmanager-receiver"
	SecretKey  = "secret"
	SecretFile = "/etc/alertmanager/secrets/" + SecretName + "/" + SecretKey
)

// ConfigSecretName is the Secret holding alertmanager.yaml, which the chart's Alertmanager uses
// instead of a configuration of its own (alertmanagerSpec.useExistingSecret, configSecret).
const ConfigSecretName = "alertmanager-platform"

// RouteCase is a label set and the receiver it must reach, for `amtool config routes test`.
type RouteCase struct {
	Labels   []string
	Receiver string
}

// RouteCases are the routing expectations of a stack: each severity reaches its receiver.
func RouteCases(production bool) []RouteCase {
	critical := ReceiverNotify
	if production {
		critical = ReceiverPage
	}
	return []RouteCase{
		{Labels: []string{"severity=" + SeverityCritical, "alertname=PostgreSQLDown"}, Receiver: critical},
		{Labels: []string{"severity=" + SeverityWarning, "alertname=WorkQueueGrowing"}, Receiver: ReceiverNotify},
		{Labels: []string{"severity=info", "alertname=KubeQuotaAlmostFull"}, Receiver: ReceiverNull},
		{Labels: []string{"severity=none", "alertname=Watchdog"}, Receiver: ReceiverNull},
	}
}

// AlertmanagerConfig renders alertmanager.yaml for a stack. Production's critical alerts page
// (their own receiver, repeated hourly); every other stack only notifies. With no receiver
// configured, "page" and "notify" deliver nowhere and alerts stay visible in Alertmanager.
func AlertmanagerConfig(stack string, production bool, r *Receiver) (string, error) {
	type obj = map[string]any
	receiver := func(name string, repeatNote string) obj {
		out := obj{"name": name}
		if r == nil {
			return out
		}
		title := fmt.Sprintf(`[%s%s] {{ .Status | toUpper }} {{ .CommonLabels.alertname }}`, repeatNote, stack)
		switch r.Kind {
		case ReceiverSlack:
			out["slack_configs"] = []obj{{
				"api_url_file":  SecretFile,
				"channel":       r.Channel,
				"send_resolved": true,
				"title":         title,
				"text":          `{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }} ({{ .Annotations.runbook_url }}){{ "\n" }}{{ end }}`,
			}}
		case ReceiverEmail:
			out["email_configs"] = []obj{{
				"to": r.To, "from": r.From, "smarthost": r.Smarthost,
				"auth_username":      r.Username,
				"auth_password_file": SecretFile,
				"send_resolved":      true,
				"headers":            obj{"Subject": title},
			}}
		}
		return out
	}
	routes := []obj{
		{"receiver": ReceiverNull, "matchers": []string{`alertname =~ "Watchdog|InfoInhibitor"`}},
	}
	if production {
		routes = append(routes, obj{"receiver": ReceiverPage, "matchers": []string{`severity = "critical"`}, "repeat_interval": "1h"})
	}
	routes = append(routes, obj{"receiver": ReceiverNotify, "matchers": []string{`severity =~ "critical|warning"`}})
	cfg := obj{
		"global": obj{"resolve_timeout": "5m"},
		"route": obj{
			"receiver":        ReceiverNull,
			"group_by":        []string{"alertname", "namespace", "workload"},
			"group_wait":      "30s",
			"group_interval":  "5m",
			"repeat_interval": "12h",
			"routes":          routes,
		},
		"inhibit_rules": []obj{
			// A node down explains every platform alert about its role's services and queues.
			{"source_matchers": []string{`alertname = "NodeNotReady"`, `workload =~ ".+"`},
				"target_matchers": []string{`alertname != "NodeNotReady"`, `workload =~ ".+"`},
				"equal":           []string{"workload"}},
			// Every pod of the data namespace runs on the storage node: its pod alerts too.
			{"source_matchers": []string{`alertname = "NodeNotReady"`, `workload = "storage"`},
				"target_matchers": []string{`namespace = "data"`}},
			// A lost quorum says more than one node down.
			{"source_matchers": []string{`alertname = "RabbitMQQuorumLost"`},
				"target_matchers": []string{`alertname = "RabbitMQNodeDown"`}},
			// The chart's own rule: a critical alert silences its warnings.
			{"source_matchers": []string{`severity = "critical"`},
				"target_matchers": []string{`severity =~ "warning|info"`},
				"equal":           []string{"namespace", "alertname"}},
			{"source_matchers": []string{`alertname = "InfoInhibitor"`},
				"target_matchers": []string{`severity = "info"`},
				"equal":           []string{"namespace"}},
		},
		"receivers": []obj{
			{"name": ReceiverNull},
			receiver(ReceiverPage, "PAGE "),
			receiver(ReceiverNotify, ""),
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("render alertmanager config: %w", err)
	}
	return string(b), nil
}
