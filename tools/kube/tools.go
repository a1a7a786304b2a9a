//go:build tools

// Package tools pins, beside the Kubernetes release of this module, the other upstream tools the
// checks run, so that one module graph holds them all and a cold machine compiles the libraries
// they share (client-go, gRPC, Prometheus' client, etcd's client) once, not once per module
// (issue 30):
//   - promtool and amtool of the Prometheus and Alertmanager releases the monitoring chart runs
//     (kube-prometheus-stack 79.7.1: Prometheus v3.7.3, published as module v0.307.3; Alertmanager
//     v0.29.0), for tools/prom;
//   - etcd, etcdctl and etcdutl of the release kubeadm runs for the pinned Kubernetes minor
//     (3.6.6 for 1.35), for the etcd restore drill (tools/etcd).
//
// Their requirements raise a few shared libraries above what Kubernetes v1.35.4 pins (gRPC,
// Prometheus' common, etcd's client to 3.6.6): the local control plane runs with those.
package tools

import (
	_ "github.com/prometheus/alertmanager/cmd/amtool"
	_ "github.com/prometheus/prometheus/cmd/promtool"
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
