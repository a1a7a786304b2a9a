package mocks

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// aliasURNs resolves the aliases of a registration to the URNs they name, as the engine does: a
// full URN as given; a specification with the registration's own name, type, stack, project and
// parent (parentURN) standing in for what it leaves out. The SDK sends specifications to a
// monitor that supports them (the mock monitor does) and plain URNs to one that does not.
func (m *Mocks) aliasURNs(rpc *pulumirpc.RegisterResourceRequest, typ, name, parentURN string) []string {
	out := append([]string(nil), rpc.GetAliasURNs()...)
	for _, a := range rpc.GetAliases() {
		if urn := a.GetUrn(); urn != "" {
			out = append(out, urn)
			continue
		}
		spec := a.GetSpec()
		if spec == nil {
			continue
		}
		n, t, stack, project, parent := name, typ, m.stack, m.project, parentURN
		if spec.GetName() != "" {
			n = spec.GetName()
		}
		if spec.GetType() != "" {
			t = spec.GetType()
		}
		if spec.GetStack() != "" {
			stack = spec.GetStack()
		}
		if spec.GetProject() != "" {
			project = spec.GetProject()
		}
		switch p := spec.GetParent().(type) {
		case *pulumirpc.Alias_Spec_ParentUrn:
			parent = p.ParentUrn
		case *pulumirpc.Alias_Spec_NoParent:
			if p.NoParent {
				parent = ""
			}
		}
		parentType := tokens.Type("")
		if pu := resource.URN(parent); pu != "" && pu.QualifiedType() != resource.RootStackType {
			parentType = pu.QualifiedType()
		}
		out = append(out, string(resource.NewURN(tokens.QName(stack), tokens.PackageName(project), parentType, tokens.Type(t), n)))
	}
	return out
}
