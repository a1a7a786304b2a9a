// Command kubeadm is the upstream kubeadm of the pinned Kubernetes release, for the offline check
// of the program's kubeadm configuration (tools/kubeadm/build.sh builds it). It lives in this
// module so that a cold build compiles the Kubernetes libraries it shares with the API server
// once.
package main

import (
	"k8s.io/kubernetes/cmd/kubeadm/app"
	utilerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
)

func main() {
	utilerrors.HandleError(app.Run())
}
