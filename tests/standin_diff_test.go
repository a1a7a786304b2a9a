package tests

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/standin"
)

// TestStandInHasDiffRulesForEveryDeclaredAWSType: the engine run's stand-in plans a change of an
// AWS resource by its type's rules (internal/standin/aws_schema.go) and refuses a type it has
// none for. Every AWS type either stack declares must have them, or the engine run's previews
// would fail on the first change to it; unchanged inputs must plan no change.
func TestStandInHasDiffRulesForEveryDeclaredAWSType(t *testing.T) {
	p, err := standin.New("aws")
	if err != nil {
		t.Fatal(err)
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		seen := map[string]bool{}
		for _, res := range r.Resources {
			if !res.Custom || !strings.HasPrefix(res.Type, "aws:") || seen[res.Type] {
				continue
			}
			seen[res.Type] = true
			in, err := plugin.MarshalProperties(res.Inputs, plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true})
			if err != nil {
				t.Fatalf("%s %s: %v", res.Type, res.Name, err)
			}
			diff, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: res.URN, OldInputs: in, News: in})
			if err != nil {
				t.Errorf("%s %s: %v", res.Type, res.Name, err)
				continue
			}
			if diff.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
				t.Errorf("%s %s: unchanged inputs diff as %v %v", res.Type, res.Name, diff.GetChanges(), diff.GetDiffs())
			}
		}
		if len(seen) == 0 {
			t.Fatalf("stack %s declares no AWS resource", r.Stack)
		}
		t.Logf("stack %s: %d AWS types checked", r.Stack, len(seen))
	})
}
