// Command officehours says whether a stack's office hours let a deploy start now, for
// deploy.yml: it prints "open=true" or "open=false" (the GitHub step output's format) and, when
// closed, a GitHub notice that says why and when the next deploy will go out. A stack without
// officeHours is always open.
//
//	go run ./cmd/officehours -stack dev >> "$GITHUB_OUTPUT"
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/stackfile"
)

func main() {
	dir := flag.String("dir", ".", "the project folder (Pulumi.yaml and the stack files)")
	stack := flag.String("stack", "dev", "the stack whose officeHours to read")
	flag.Parse()
	open, why, err := check(*dir, *stack, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "officehours:", err)
		os.Exit(1)
	}
	if !open {
		// A workflow command on stderr: GitHub shows it on the run's summary.
		fmt.Fprintf(os.Stderr, "::notice title=%s not deployed::%s\n", *stack, why)
	}
	fmt.Printf("open=%t\n", open)
}

// check reads the stack's officeHours and says whether a deploy may start at now, and why not.
func check(dir, stack string, now time.Time) (bool, string, error) {
	sc, err := stackfile.Read(dir, stack)
	if err != nil {
		return false, "", err
	}
	cfg, err := config.Parse(stack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	if err != nil {
		return false, "", err
	}
	hours := cfg.OfficeHours
	if hours == nil || hours.DeployOpen(now) {
		return true, "", nil
	}
	return false, fmt.Sprintf("%s is outside the deploy window of its office hours (%s; deploys start from %s after the start until %s before the stop): its nodes are stopped or about to be. This merge deploys the other stacks; %s gets it with the next merge, or a manual run of deploy.yml, in office hours.",
		stack, hours, config.DeployAfterStart, config.DeployBeforeStop, stack), nil
}
