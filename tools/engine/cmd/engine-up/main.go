// Command engine-up deploys this commit's program with `pulumi up` into a workspace folder and
// stops there: the first half of the release-compatibility check (tools/engine/run.sh STACK
// compat). run.sh builds it from the released commit's tree, with this file and the workspace
// package copied in, so that the state it leaves is the state a deployed stack has; cmd/engine
// then previews the program under review on that state. It builds in this tree too, so vet and
// lint read it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/waste-coach/infra/platform"
	"github.com/waste-coach/infra/tools/engine/workspace"
)

func main() {
	stack := flag.String("stack", "prod", "the stack whose Pulumi.<stack>.yaml is deployed")
	repo := flag.String("repo", ".", "the folder with this commit's Pulumi.yaml and stack files")
	work := flag.String("work", "", "the workspace folder, shared with cmd/engine -mode compat")
	state := flag.String("state", "", "the local cluster's state folder (verify-local -serve)")
	charts := flag.String("charts", "", "the folder of pinned chart archives (chartSource)")
	out := flag.String("out", "", "where the up's log is written")
	flag.Parse()
	if err := up(context.Background(), *stack, *repo, *work, *state, *charts, *out); err != nil {
		fmt.Fprintln(os.Stderr, "engine-up:", err)
		os.Exit(1)
	}
}

func up(ctx context.Context, stack, repo, work, state, charts, out string) error {
	if work == "" || state == "" || charts == "" || out == "" {
		return fmt.Errorf("-work, -state, -charts and -out are required")
	}
	w, err := workspace.Open(work, repo, stack, state, out)
	if err != nil {
		return err
	}
	s, err := w.Stack(ctx, stack, platform.Program, charts)
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(out, "released-up.txt"))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	start := time.Now()
	res, err := s.Up(ctx, optup.ProgressStreams(log), optup.SuppressProgress())
	if err != nil {
		return fmt.Errorf("pulumi up of the released program (log %s): %w", log.Name(), err)
	}
	created := 0
	if res.Summary.ResourceChanges != nil {
		created = (*res.Summary.ResourceChanges)["create"]
	}
	fmt.Printf("engine-up: the released program's pulumi up: %d resources created in %s\n", created, time.Since(start).Round(time.Second))
	return nil
}
