//go:build tools

// Package tools pins kubeadm v1.36.3 as a dependency of this module, so that build.sh can build
// k8s.io/kubernetes/cmd/kubeadm from the Go module proxy without copying its source.
package tools

import _ "k8s.io/kubernetes/cmd/kubeadm"
