// Command waste-coach-ci declares what GitHub Actions may do in the infra stacks' AWS account
// (package citrust). An administrator runs it once per account: docs/delivery.md.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/bootstrap/citrust"
)

func main() {
	pulumi.Run(citrust.Program)
}
