package infra

import (
	"net/netip"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// boundary is the permissions boundary every IAM role and user of the stack is created under
// (config key permissionsBoundary), or none.
func boundary(cfg *config.Config) pulumi.StringPtrInput {
	if cfg.PermissionsBoundary == "" {
		return nil
	}
	return pulumi.String(cfg.PermissionsBoundary)
}
