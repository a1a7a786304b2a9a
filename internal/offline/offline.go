// Package offline runs the real program for a stack under the shared mocks, with the stack's
// real configuration files, and returns every registration. Tests, the render command and the
// benchmarks all go through it.
package offline

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/platform"
)

// Result is what one offline run of a stack declared.
type Result struct {
	// Stack is the stack name.
	Stack string
	// Stackfile is the configuration the run used, as the CLI would pass it.
	Stackfile *stackfile.Config
	// Config is that configuration, parsed and validated as the program did.
	Config *config.Config
	// Resources are the registrations, in order.
	Resources []*mocks.Resource
	// Reads are the resources the program read rather than declared (its own stack's outputs).
	Reads []*mocks.Resource
}

// Run evaluates the program for stack with the configuration files found in dir.
func Run(dir, stack string) (*Result, error) {
	sc, err := stackfile.Read(dir, stack)
	if err != nil {
		return nil, err
	}
	return RunConfig(stack, sc)
}

// RunConfig evaluates the program for stack with the given configuration.
func RunConfig(stack string, sc *stackfile.Config) (*Result, error) {
	return RunMocks(stack, sc, mocks.New(config.Project, stack, sc.Values["aws:region"]))
}

// RunMocks evaluates the program for stack with the given configuration and mocks (made with
// mocks.New for that stack and region): a test sets what AWS already holds, such as the stack's
// running instances.
func RunMocks(stack string, sc *stackfile.Config, m *mocks.Mocks) (*Result, error) {
	res := &Result{Stack: stack, Stackfile: sc}
	archives, err := ChartsDir()
	if err != nil {
		return res, err
	}
	err = pulumi.RunErr(platform.ProgramWith(platform.Options{Charts: charts.Folder(archives)}), pulumi.WithMocks(config.Project, stack, m), func(info *pulumi.RunInfo) {
		info.Config = sc.Values
		info.ConfigSecretKeys = sc.Secrets
	})
	res.Resources, res.Reads = m.Resources(), m.Reads()
	if err != nil {
		return res, fmt.Errorf("stack %s: %w", stack, err)
	}
	// The program succeeded, so the configuration parses.
	res.Config, err = config.Parse(stack, func(k string) (string, bool) { v, ok := sc.Values[k]; return v, ok })
	return res, err
}

// ChartsDir is the folder of the pinned chart archives that offline runs read the charts' CRDs
// from instead of their repositories: $CHARTS, or ../shared/charts beside the repository.
func ChartsDir() (string, error) {
	if dir := os.Getenv("CHARTS"); dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			charts := filepath.Join(filepath.Dir(dir), "shared", "charts")
			if _, err := os.Stat(charts); err != nil {
				return "", fmt.Errorf("offline runs read the charts' CRDs from the pinned archives in %s (or $CHARTS): %w", charts, err)
			}
			return charts, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("offline runs start inside the repository (no Pulumi.yaml above %s), or set $CHARTS to the pinned chart archives", wd)
		}
	}
}

// OfType returns the resources of a type token, in registration order.
func (r *Result) OfType(typ string) []*mocks.Resource {
	var out []*mocks.Resource
	for _, res := range r.Resources {
		if res.Type == typ {
			out = append(out, res)
		}
	}
	return out
}

// Named returns the resource of a type with a logical name, or nil.
func (r *Result) Named(typ, name string) *mocks.Resource {
	for _, res := range r.Resources {
		if res.Type == typ && res.Name == name {
			return res
		}
	}
	return nil
}

// DependsOn reports whether a waits for b, directly or through other resources.
func (r *Result) DependsOn(a, b *mocks.Resource) bool {
	byURN := map[string]*mocks.Resource{}
	for _, res := range r.Resources {
		byURN[res.URN] = res
	}
	seen := map[string]bool{}
	var walk func(*mocks.Resource) bool
	walk = func(cur *mocks.Resource) bool {
		for _, dep := range cur.Dependencies {
			if dep == b.URN {
				return true
			}
			if !seen[dep] && byURN[dep] != nil {
				seen[dep] = true
				if walk(byURN[dep]) {
					return true
				}
			}
		}
		return false
	}
	return walk(a)
}
