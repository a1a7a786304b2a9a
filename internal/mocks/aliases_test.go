package mocks

import (
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// TestAliasesAreRecordedAsTheURNsTheyName: a test that checks a moved resource keeps its old
// identity reads the URN the engine would look up in the state, whether the program gave the
// alias as a full URN or as a specification (old name, old parent, or no parent).
func TestAliasesAreRecordedAsTheURNsTheyName(t *testing.T) {
	m := New("proj", "dev", "ap-northeast-2")
	parent := "urn:pulumi:dev::proj::my:index:Outer$my:index:Inner::in"
	full := "urn:pulumi:dev::proj::my:index:Old$aws:route53/record:Record::old-full"
	_, _, err := m.NewResource(pulumi.MockResourceArgs{
		TypeToken: "aws:route53/record:Record", Name: "new", Custom: true,
		RegisterRPC: &pulumirpc.RegisterResourceRequest{
			Type: "aws:route53/record:Record", Name: "new", Parent: parent,
			Aliases: []*pulumirpc.Alias{
				{Alias: &pulumirpc.Alias_Urn{Urn: full}},
				{Alias: &pulumirpc.Alias_Spec_{Spec: &pulumirpc.Alias_Spec{Name: "old-name"}}},
				{Alias: &pulumirpc.Alias_Spec_{Spec: &pulumirpc.Alias_Spec{
					Parent: &pulumirpc.Alias_Spec_ParentUrn{ParentUrn: "urn:pulumi:dev::proj::my:index:Old::o"}}}},
				{Alias: &pulumirpc.Alias_Spec_{Spec: &pulumirpc.Alias_Spec{Name: "top", Parent: &pulumirpc.Alias_Spec_NoParent{NoParent: true}}}},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Resources()[0].Aliases
	want := []string{
		full,
		"urn:pulumi:dev::proj::my:index:Outer$my:index:Inner$aws:route53/record:Record::old-name",
		"urn:pulumi:dev::proj::my:index:Old$aws:route53/record:Record::new",
		"urn:pulumi:dev::proj::aws:route53/record:Record::top",
	}
	if !slices.Equal(got, want) {
		t.Errorf("aliases recorded as\n%q\nwant\n%q", got, want)
	}
}
