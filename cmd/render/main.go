// Command render runs the program for a stack offline, under the shared mocks and with the
// stack's real configuration files, and writes what the stack declares: an inventory of every
// resource, every node script and kubeadm configuration, and every Kubernetes object as YAML.
//
//	go run ./cmd/render -stack prod -out out/prod
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/cost"
	"github.com/waste-coach/infra/internal/critpath"
	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/render"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/workloads"
)

func main() {
	stack := flag.String("stack", "prod", "stack whose Pulumi.<stack>.yaml to render")
	out := flag.String("out", "", "output folder (default out/<stack>)")
	dir := flag.String("dir", ".", "folder holding Pulumi.yaml")
	overrides := map[string]string{}
	flag.Func("set", "override a config value of the stack: key=value (key without the project prefix, e.g. kubernetesVersion=1.28.15); repeatable", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", kv)
		}
		if !strings.Contains(k, ":") {
			k = config.Project + ":" + k
		}
		overrides[k] = v
		return nil
	})
	flag.Parse()
	if *out == "" {
		*out = "out/" + *stack
	}
	if err := run(*dir, *stack, *out, overrides); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(dir, stack, out string, overrides map[string]string) error {
	start := time.Now()
	sc, err := stackfile.Read(dir, stack)
	if err != nil {
		return err
	}
	for k, v := range overrides {
		sc.Values[k] = v
	}
	res, err := offline.RunConfig(stack, sc)
	if err != nil {
		return err
	}
	evaluated := time.Since(start)
	if err := render.Write(res, out, os.Stdout); err != nil {
		return err
	}
	fmt.Printf("\nper-node fit (requests of pinned pods + system pods vs allocatable):\n%s", fit.Table(fit.Check(res.Config, res.Resources)))
	if prices, ok := cost.Prices[res.Config.Region]; ok {
		estimate, err := cost.Compute(cost.FootprintOf(res.Config, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, prices)
		if err != nil {
			return err
		}
		fmt.Printf("\nmonthly cost estimate, %s (assumptions in cost/cost.go):\n%s", res.Config.Region, estimate.Table())
	}
	steps, total := critpath.Path(res.Resources)
	fmt.Printf("\ndeploy critical path of a fresh pulumi up: %s (durations are typical figures, internal/critpath)\n", time.Duration(total)*time.Second)
	for _, s := range steps {
		fmt.Printf("  %5ds %5ds  %-48s %s\n", s.Start, s.End, s.Resource.Name, s.Resource.Type)
	}
	fmt.Printf("program evaluated in %s, files written in %s\n", evaluated.Round(time.Millisecond), (time.Since(start) - evaluated).Round(time.Millisecond))
	return nil
}
