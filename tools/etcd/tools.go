//go:build tools

// Package tools pins etcd, etcdctl and etcdutl at the etcd release kubeadm runs (DefaultEtcdVersion of
// the pinned Kubernetes minor), so that the restore drill uses the same client and the same
// restore code as the cluster's etcd image.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
