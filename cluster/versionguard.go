package cluster

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// VersionOutput is the stack output that records the Kubernetes release the control plane runs,
// as the control plane's upgrade step last reported it (RunningVersion): a `pulumi up` whose
// upgrade step failed, or that did not run it (--target), leaves the release recorded before.
// The next run's guard reads it.
const VersionOutput = "kubernetesVersion"

// runsRE is the line an upgrade step ends with (scripts/upgrade.sh.tmpl).
var runsRE = regexp.MustCompile(`(?m)^node \S+ runs Kubernetes ([0-9]+\.[0-9]+(?:\.[0-9]+)?)$`)

// RunningVersion is the release an upgrade step's output says its node runs ("1.35.4"), or ""
// when it says none.
func RunningVersion(stdout string) string {
	m := runsRE.FindAllStringSubmatch(stdout, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// CheckVersionStep refuses, before anything is declared, a kubernetesVersion that the running
// cluster cannot be taken to in one `pulumi up`: a downgrade or a skipped minor, measured from the
// release the stack recorded at its last `pulumi up` (VersionOutput, read through a reference to
// the stack itself, which `pulumi preview` reads too: a pull request shows the refusal). A stack
// that recorded none (new, or deployed by a release before the output) is left to the control
// plane's own guard, which the upgrade step runs on the master (scripts/upgrade.sh.tmpl) and
// which also sees what the record cannot: a control plane changed by hand.
func CheckVersionStep(ctx *pulumi.Context, cfg *config.Config) error {
	self := selfReference(ctx)
	ref, err := pulumi.NewStackReference(ctx, cfg.ClusterName+"-recorded-outputs", &pulumi.StackReferenceArgs{Name: pulumi.String(self)})
	if err != nil {
		return fmt.Errorf("reading the stack's own outputs (%s): %w", self, err)
	}
	got, err := ref.GetOutputDetails(VersionOutput)
	if err != nil {
		return fmt.Errorf("reading the stack's output %s: %w", VersionOutput, err)
	}
	recorded, _ := got.Value.(string)
	if recorded == "" {
		return nil
	}
	return VersionStep(recorded, cfg.Kubernetes)
}

// diyOrganization is the organization a self-managed (DIY) backend reports to the program.
const diyOrganization = "organization"

// selfReference names the running stack for a StackReference. Pulumi Cloud wants
// <organization>/<project>/<stack>; a self-managed backend reads a bare stack name as one of the
// current project in either of its layouts, where the legacy layout refuses any name with a slash.
func selfReference(ctx *pulumi.Context) string {
	if ctx.Organization() == diyOrganization {
		return ctx.Stack()
	}
	return fmt.Sprintf("%s/%s/%s", ctx.Organization(), ctx.Project(), ctx.Stack())
}

// VersionStep says whether a cluster recorded at version recorded can be taken to want in one
// `pulumi up`: the same minor (a patch never back), or the next minor. The error is the config
// refusal, naming kubernetesVersion, both versions and what is allowed.
func VersionStep(recorded string, want config.KubeVersion) error {
	have, ok := config.ParseKubeVersion(recorded)
	if !ok {
		return fmt.Errorf("the stack's output %s is %q, not a Kubernetes version: the stack state was edited; set it right with `pulumi stack export`/`import`", VersionOutput, recorded)
	}
	next := config.KubeVersion{Major: have.Major, Minor: have.Minor + 1}
	refuse := func(why string) error {
		return &config.Error{Key: config.Project + ":kubernetesVersion", Value: strconv.Quote(want.String()),
			Allowed: fmt.Sprintf("%s: the cluster runs %s (the stack's %s output, recorded by its last `pulumi up`); allowed are %s (a patch of it, never lower) or %s (the next minor): Kubernetes is upgraded one minor at a time, and never downgraded",
				why, have, VersionOutput, have.MinorString(), next.MinorString())}
	}
	switch {
	case want.Major != have.Major || want.Minor < have.Minor:
		return refuse("a downgrade")
	case want.Minor > have.Minor+1:
		return refuse(fmt.Sprintf("it skips %d minor(s)", want.Minor-have.Minor-1))
	case want.Minor == have.Minor && want.HasPatch && have.HasPatch && want.Patch < have.Patch:
		return refuse("a patch downgrade")
	}
	return nil
}
