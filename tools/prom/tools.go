//go:build tools

// Package tools pins the Prometheus and Alertmanager releases whose promtool and amtool check
// the rule files and Alertmanager configuration the program renders; build.sh builds them from
// the Go module proxy without copying their source.
package tools

import (
	_ "github.com/prometheus/alertmanager/cmd/amtool"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
