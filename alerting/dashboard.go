package alerting

import (
	"encoding/json"
	"fmt"
)

// DashboardUID is the platform dashboard's stable identifier in Grafana.
const DashboardUID = "waste-coach-platform"

// panel is one time-series panel of the dashboard: a title and its queries, each with a legend.
type panel struct {
	title   string
	unit    string
	queries [][2]string // expression, legend
}

// dashboardPanels are the platform at a glance: queues, workers, database, nodes.
var dashboardPanels = []panel{
	{"Ready messages per queue", "short", [][2]string{{`max by (queue) (rabbitmq_queue_messages_ready{job="rabbitmq"})`, "{{queue}}"}}},
	{"Consumers per queue", "short", [][2]string{{`max by (queue) (rabbitmq_queue_consumers{job="rabbitmq"})`, "{{queue}}"}}},
	{"Dead letters (q.dlq)", "short", [][2]string{{`max(rabbitmq_queue_messages{job="rabbitmq", queue="q.dlq"})`, "q.dlq"}}},
	{"RabbitMQ nodes up", "short", [][2]string{{`count(up{job="rabbitmq"} == 1)`, "up"}}},
	{"Celery and API pods available", "short", [][2]string{{`sum by (deployment) (kube_deployment_status_replicas_available{namespace="app"})`, "{{deployment}}"}}},
	{"PostgreSQL connections / max", "percentunit", [][2]string{{`sum(pg_stat_activity_count{job="postgres"}) / max(pg_settings_max_connections{job="postgres"})`, "in use"}}},
	{"PostgreSQL and Redis up", "short", [][2]string{{`max(pg_up{job="postgres"})`, "postgres"}, {`max(redis_up{job="redis"})`, "redis"}}},
	{"Redis memory / maxmemory, evictions", "short", [][2]string{
		{`max(redis_memory_used_bytes{job="redis"}) / max(redis_memory_max_bytes{job="redis"})`, "memory used"},
		{`sum(rate(redis_evicted_keys_total{job="redis"}[5m]))`, "evictions/s"}}},
	{"Platform volumes used", "percentunit", [][2]string{{`max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes{namespace=~"data|monitoring"} / kubelet_volume_stats_capacity_bytes{namespace=~"data|monitoring"})`, "{{namespace}}/{{persistentvolumeclaim}}"}}},
	{"Nodes Ready", "short", [][2]string{{`max by (node) (kube_node_status_condition{condition="Ready", status="true"})`, "{{node}}"}}},
	{"Node CPU used", "percentunit", [][2]string{{`1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))`, "{{instance}}"}}},
	{"Node memory used", "percentunit", [][2]string{{`1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes`, "{{instance}}"}}},
}

// Dashboard renders the platform dashboard as Grafana's JSON model, for the ConfigMap the
// Grafana sidecar loads.
func Dashboard() string {
	type obj = map[string]any
	var panels []obj
	for i, p := range dashboardPanels {
		var targets []obj
		for j, q := range p.queries {
			targets = append(targets, obj{"refId": string(rune('A' + j)), "expr": q[0], "legendFormat": q[1],
				"datasource": obj{"type": "prometheus", "uid": "${datasource}"}})
		}
		panels = append(panels, obj{
			"id": i + 1, "type": "timeseries", "title": p.title,
			"gridPos":     obj{"x": (i % 2) * 12, "y": (i / 2) * 8, "w": 12, "h": 8},
			"datasource":  obj{"type": "prometheus", "uid": "${datasource}"},
			"fieldConfig": obj{"defaults": obj{"unit": p.unit}, "overrides": []any{}},
			"targets":     targets,
		})
	}
	d := obj{
		"uid": DashboardUID, "title": "Waste Coach platform", "tags": []string{"waste-coach"},
		"schemaVersion": 39, "editable": false, "refresh": "1m",
		"time": obj{"from": "now-6h", "to": "now"},
		"templating": obj{"list": []obj{{
			"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
		}}},
		"panels": panels,
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("marshal dashboard: %v", err)) // plain maps: cannot fail
	}
	return string(b)
}
