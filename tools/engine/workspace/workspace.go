// Package workspace sets up the Pulumi workspace that the engine commands share: a folder with
// the project and stack files, a file backend and a Pulumi home inside it, the passphrase, and
// the stand-in providers' settings. The release-compatibility check runs two programs, the
// released commit's (cmd/engine-up, built from that commit) and this commit's (cmd/engine), on
// one such folder, so both must agree on every path and variable: they are written once, here.
//
// This package and cmd/engine-up are copied into the released commit's tree to build its
// engine-up, so they use only what every release has: platform.Program, config.Project and the
// stand-in's variable names.
package workspace

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/standin"
)

// Passphrase encrypts the secrets of every engine run's stack; the state never leaves the run.
const Passphrase = "engine-run-only"

// Workspace is a prepared folder: Dir holds the project files, Env the variables the CLI and the
// stand-ins read (also set in this process, as the inline program's providers inherit them).
type Workspace struct {
	Dir string
	Env map[string]string
}

// Open prepares dir for stack: it copies Pulumi.yaml and Pulumi.<stack>.yaml from repo (keeping
// the encryption salt of a stack already initialised there, so a later program can read the
// secrets an earlier one wrote), and points the CLI and the stand-ins at the local cluster whose
// state folder is clusterState. Stand-in calls are logged to out.
func Open(dir, repo, stack, clusterState, out string) (*Workspace, error) {
	for _, f := range []string{"Pulumi.yaml", "Pulumi." + stack + ".yaml"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, f)
		if salt := saltLine(dst); salt != "" {
			b = append(append(b, '\n'), salt+"\n"...)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return nil, err
		}
	}
	w := &Workspace{Dir: dir, Env: map[string]string{
		"PULUMI_BACKEND_URL":                          "file://" + filepath.Join(dir, "backend"),
		"PULUMI_CONFIG_PASSPHRASE":                    Passphrase,
		"PULUMI_HOME":                                 filepath.Join(dir, "home"),
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
		standin.EnvKubeconfig:                         filepath.Join(clusterState, "kubeconfig"),
		standin.EnvNodes:                              filepath.Join(clusterState, "nodes"),
		standin.EnvLog:                                filepath.Join(out, "standin-calls.jsonl"),
	}}
	for _, d := range []string{w.Env["PULUMI_HOME"], filepath.Join(dir, "backend")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for k, v := range w.Env {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// saltLine is the stack file's encryptionsalt line, which Pulumi writes there when it
// initialises a stack with a passphrase; empty when the file or the line does not exist.
func saltLine(stackFile string) string {
	b, err := os.ReadFile(stackFile)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "encryptionsalt:") {
			return line
		}
	}
	return ""
}

// Stack selects (or creates) stack with program inline, its charts read from the folder charts.
func (w *Workspace) Stack(ctx context.Context, stack string, program pulumi.RunFunc, charts string) (auto.Stack, error) {
	s, err := auto.UpsertStackInlineSource(ctx, stack, config.Project, program, auto.WorkDir(w.Dir), auto.EnvVars(w.Env))
	if err != nil {
		return auto.Stack{}, fmt.Errorf("stack %s: %w", stack, err)
	}
	if err := s.SetConfig(ctx, config.Project+":chartSource", auto.ConfigValue{Value: charts}); err != nil {
		return auto.Stack{}, fmt.Errorf("stack %s: chartSource: %w", stack, err)
	}
	// The gitops key, so that the run declares Argo CD's AppProject and Application against the
	// chart's real CRDs. Nothing fetches the repository (no network, and kwok runs no Argo CD).
	// Set field by field (--path): Pulumi.yaml declares the key an object, and the CLI refuses a
	// JSON string for it. A released program that predates the key ignores it.
	for _, field := range slices.Sorted(maps.Keys(GitOps)) {
		key := config.Project + ":gitops." + field
		if err := s.SetConfigWithOptions(ctx, key, auto.ConfigValue{Value: GitOps[field]}, &auto.ConfigOptions{Path: true}); err != nil {
			return auto.Stack{}, fmt.Errorf("stack %s: %s: %w", stack, key, err)
		}
	}
	return s, nil
}

// GitOps are the fields of every engine run's gitops key (.ci/run renders dev with the same
// value, as JSON, for verify-local).
var GitOps = map[string]string{
	"repoURL":        "https://github.com/example/waste-coach-deploy.git",
	"path":           "envs/engine",
	"targetRevision": "main",
	"namespaces[0]":  "app-jobs",
}
