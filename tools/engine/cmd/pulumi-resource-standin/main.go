// Command pulumi-resource-standin is the offline engine run's provider plugin for the packages
// that have no plugin here (aws, command, tls, random): linked as pulumi-resource-<package>, it
// serves that package (internal/standin). tools/engine/run.sh puts the links on the PATH of that
// run only; it is never installed as a plugin and never used to deploy.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/waste-coach/infra/internal/standin"
)

func main() {
	pkg := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-resource-")
	if err := provider.Main(pkg, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return standin.New(pkg)
	}); err != nil {
		fmt.Fprintf(os.Stderr, "stand-in for %s: %v\n", pkg, err)
		os.Exit(1)
	}
}
