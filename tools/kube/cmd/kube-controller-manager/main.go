// Command kube-controller-manager is the upstream kube-controller-manager of the pinned Kubernetes release, built from the Go
// module proxy for the offline verification (tools/kube/README.md).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
