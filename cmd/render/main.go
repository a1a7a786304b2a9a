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
	if err := writeChartPods(out, stack, res.Config); err != nil {
		return fmt.Errorf("chart pods: %w", err)
	}
	nodes := fit.Check(res.Config, res.Resources)
	fmt.Printf("\nper-node fit (requests of pinned pods at their autoscaling maximums + system pods + backup Jobs vs allocatable CPU, memory and root-volume disk):\n%s", fit.Table(nodes))
	if err := fit.Refuse(nodes); err != nil {
		return err
	}
	if prices, ok := cost.Prices[res.Config.Region]; ok {
		footprint := cost.FootprintOf(res.Config, workloads.PersistentVolumeGiB())
		estimate, err := cost.Compute(footprint, cost.DefaultAssumptions, prices)
		if err != nil {
			return err
		}
		fmt.Printf("\nmonthly cost estimate, %s (assumptions in cost/cost.go, prices and their sources in cost/prices.go):\n%s", res.Config.Region, estimate.Table())
		savings, err := cost.SavingsOf(footprint, cost.DefaultAssumptions, prices)
		if err != nil {
			return err
		}
		fmt.Printf("\nwith and without spot capacity and office hours:\n%s", savings.Table())
		if stack != referenceStack {
			if err := compareWithReference(dir, stack, estimate); err != nil {
				return err
			}
		}
	}
	steps, total := critpath.Path(res.Resources)
	fmt.Printf("\ndeploy critical path of a fresh pulumi up: %s (durations are typical figures, internal/critpath)\n", time.Duration(total)*time.Second)
	for _, s := range steps {
		fmt.Printf("  %5ds %5ds  %-48s %s\n", s.Start, s.End, s.Resource.Name, s.Resource.Type)
	}
	if ready, ok := critpath.Finish(res.Resources, "-nodes-ready"); ok {
		fmt.Printf("every node is Ready at %s at best: nothing that waits for the nodes can end sooner\n", time.Duration(ready)*time.Second)
	}
	if kubelets, ok := critpath.Finish(res.Resources, "-kubelet-config-storage"); ok {
		fmt.Printf("every kubelet runs the program's settings at %s at best: no workload starts sooner\n", time.Duration(kubelets)*time.Second)
	}
	// The master replaced (issue 24): it restores the cluster's state by itself (kubeadm-init).
	master := res.Config.ClusterName + "-nodes-" + string(config.RoleMaster)
	if api, ok := critpath.Replacement(res.Resources, master, "-kubeadm-init"); ok {
		fmt.Printf("pulumi up --replace of the master: the API serves the restored cluster at %s at best", time.Duration(api)*time.Second)
		if ready, ok := critpath.Replacement(res.Resources, master, "-nodes-ready"); ok {
			fmt.Printf(", every node Ready at %s", time.Duration(ready)*time.Second)
		}
		fmt.Println(" (the old instance terminated first; internal/critpath)")
	}
	fmt.Printf("program evaluated in %s, files written in %s\n", evaluated.Round(time.Millisecond), (time.Since(start) - evaluated).Round(time.Millisecond))
	return nil
}

// referenceStack is the stack other stacks' costs are compared with.
const referenceStack = "prod"

// compareWithReference prices the reference stack from its own configuration file and prints
// this stack's estimate against it, item by item.
func compareWithReference(dir, stack string, estimate *cost.Estimate) error {
	sc, err := stackfile.Read(dir, referenceStack)
	if err != nil {
		return fmt.Errorf("read the %s stack to compare with: %w", referenceStack, err)
	}
	cfg, err := config.Parse(referenceStack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		return err
	}
	prices, ok := cost.Prices[cfg.Region]
	if !ok {
		return nil
	}
	ref, err := cost.Compute(cost.FootprintOf(cfg, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, prices)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s against %s, the items that differ:\n%s", stack, referenceStack, cost.Compare(stack, estimate, referenceStack, ref))
	return nil
}
