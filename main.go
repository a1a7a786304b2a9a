// Command waste-coach-infra is the Pulumi program of the AI Waste Coach platform: the AWS
// network and nodes, a kubeadm cluster bootstrapped over SSH, and every workload on it.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/platform"
)

func main() {
	pulumi.Run(platform.Program)
}
