// Command restore-volume prints the PersistentVolume that puts an EBS volume created from a
// snapshot back under a data service's claim (workloads.RestoredVolume), for kubectl apply; the
// restore procedure is in docs/operations.md ("Restore a volume from a snapshot").
//
//	go run ./cmd/restore-volume -stack prod -claim data/data-postgres-0 -volume vol-0abc... -zone ap-northeast-2a
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/workloads"
)

func main() {
	stack := flag.String("stack", "prod", "stack whose Pulumi.<stack>.yaml declares the claim")
	dir := flag.String("dir", ".", "folder holding Pulumi.yaml")
	claim := flag.String("claim", "", "the claim to restore, namespace/name (data/data-postgres-0)")
	volume := flag.String("volume", "", "the EBS volume created from the snapshot (vol-...)")
	zone := flag.String("zone", "", "the volume's availability zone: the node the claim's pod runs on must be there")
	flag.Parse()
	if err := run(*dir, *stack, *claim, *volume, *zone); err != nil {
		fmt.Fprintln(os.Stderr, "restore-volume:", err)
		os.Exit(1)
	}
}

func run(dir, stack, claim, volume, zone string) error {
	ns, name, ok := strings.Cut(claim, "/")
	if !ok {
		return fmt.Errorf("-claim %q: want namespace/name", claim)
	}
	sc, err := stackfile.Read(dir, stack)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(stack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		return err
	}
	pv, err := workloads.RestoredVolume(cfg, ns, name, volume, zone)
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(os.Stdout)
	enc.SetIndent(2)
	if err := enc.Encode(pv); err != nil {
		return err
	}
	return enc.Close()
}
