//go:build tools

// Package tools pins kubeadm and kube-apiserver v1.36.3 as dependencies of this module, so that
// build.sh and build-apiserver.sh can build k8s.io/kubernetes/cmd/kubeadm and
// k8s.io/kubernetes/cmd/kube-apiserver from the Go module proxy without copying their source.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubeadm"
)
