package standin

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// master is the master instance's inputs as infra/nodes.go declares them (values shortened).
func master() map[string]any {
	return map[string]any{
		"ami":                 "ami-0123",
		"instanceType":        "t3.large",
		"subnetId":            "subnet-a",
		"privateIp":           "10.0.1.10",
		"vpcSecurityGroupIds": []any{"sg-nodes", "sg-control-plane"},
		"iamInstanceProfile":  "sesacthon-prod-master",
		"keyName":             "sesacthon-prod",
		"instanceMarketOptions": map[string]any{"marketType": "spot", "spotOptions": map[string]any{
			"instanceInterruptionBehavior": "stop", "spotInstanceType": "persistent",
		}},
		"userData":        "#!/bin/sh\nexec bootstrap",
		"metadataOptions": map[string]any{"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2},
		"rootBlockDevice": map[string]any{"volumeType": "gp3", "volumeSize": 60, "encrypted": true, "deleteOnTermination": true},
		"tags":            map[string]any{"Name": "sesacthon-prod-master", "Role": "master"},
	}
}

// TestDiffPlansTheMasterInstanceAsTheAWSProviderDoes: the engine run's previews are only as
// exact as these answers. A new image or subnet replaces the master (ForceNew upstream), a new
// instance type or root volume size is an update in place (EC2 stops and modifies it), and a
// dropped Optional+Computed input is no change at all (the provider keeps its value).
func TestDiffPlansTheMasterInstanceAsTheAWSProviderDoes(t *testing.T) {
	p, err := New("aws")
	if err != nil {
		t.Fatal(err)
	}
	urn := "urn:pulumi:prod::waste-coach-infra::aws:ec2/instance:Instance::sesacthon-nodes-master"
	with := func(change func(m map[string]any)) map[string]any {
		m := master()
		change(m)
		return m
	}
	cases := []struct {
		name          string
		news          map[string]any
		want          pulumirpc.DiffResponse_DiffChanges
		diffs, replac []string
	}{
		{"same", master(), pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"new image", with(func(m map[string]any) { m["ami"] = "ami-0456" }), pulumirpc.DiffResponse_DIFF_SOME, []string{"ami"}, []string{"ami"}},
		{"new subnet", with(func(m map[string]any) { m["subnetId"] = "subnet-b" }), pulumirpc.DiffResponse_DIFF_SOME, []string{"subnetId"}, []string{"subnetId"}},
		{"subnet not yet known", with(func(m map[string]any) { m["subnetId"] = resource.Computed{Element: resource.NewStringProperty("")} }), pulumirpc.DiffResponse_DIFF_SOME, []string{"subnetId"}, []string{"subnetId"}},
		{"new instance type", with(func(m map[string]any) { m["instanceType"] = "t3.xlarge" }), pulumirpc.DiffResponse_DIFF_SOME, []string{"instanceType"}, nil},
		{"market options dropped", with(func(m map[string]any) { delete(m, "instanceMarketOptions") }), pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"spot to on-demand", with(func(m map[string]any) { m["instanceMarketOptions"] = map[string]any{"marketType": "capacity-block"} }), pulumirpc.DiffResponse_DIFF_SOME, []string{"instanceMarketOptions"}, []string{"instanceMarketOptions"}},
		{"bigger root volume", with(func(m map[string]any) { m["rootBlockDevice"].(map[string]any)["volumeSize"] = 80 }), pulumirpc.DiffResponse_DIFF_SOME, []string{"rootBlockDevice"}, nil},
		{"unencrypted root volume", with(func(m map[string]any) { m["rootBlockDevice"].(map[string]any)["encrypted"] = false }), pulumirpc.DiffResponse_DIFF_SOME, []string{"rootBlockDevice"}, []string{"rootBlockDevice"}},
		{"new user data", with(func(m map[string]any) { m["userData"] = "#!/bin/sh\nexec bootstrap --v2" }), pulumirpc.DiffResponse_DIFF_SOME, []string{"userData"}, nil},
		{"new user data that replaces", with(func(m map[string]any) {
			m["userData"] = "#!/bin/sh\nexec bootstrap --v2"
			m["userDataReplaceOnChange"] = true
		}), pulumirpc.DiffResponse_DIFF_SOME, []string{"userData", "userDataReplaceOnChange"}, []string{"userData"}},
		{"tag and key", with(func(m map[string]any) { m["tags"].(map[string]any)["Team"] = "infra"; m["keyName"] = "other" }), pulumirpc.DiffResponse_DIFF_SOME, []string{"keyName", "tags"}, []string{"keyName"}},
	}
	for _, c := range cases {
		res, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: urn, OldInputs: props(t, master()), News: props(t, c.news)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.GetChanges() != c.want || !slices.Equal(res.GetDiffs(), c.diffs) || !slices.Equal(res.GetReplaces(), c.replac) {
			t.Errorf("%s: changes %v diffs %v replaces %v, want %v %v %v", c.name, res.GetChanges(), res.GetDiffs(), res.GetReplaces(), c.want, c.diffs, c.replac)
		}
	}
}

// TestDiffOfAnUnknownAWSTypeFails: a type the program starts to declare must get its row in
// awsRules before the engine run can plan it, rather than diff as an update.
func TestDiffOfAnUnknownAWSTypeFails(t *testing.T) {
	p, err := New("aws")
	if err != nil {
		t.Fatal(err)
	}
	in := props(t, map[string]any{"subnetId": "subnet-a"})
	_, err = p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: "urn:pulumi:prod::waste-coach-infra::aws:ec2/natGateway:NatGateway::nat", OldInputs: in, News: in,
	})
	if err == nil || !strings.Contains(err.Error(), "aws:ec2/natGateway:NatGateway") || !strings.Contains(err.Error(), "aws_schema.go") {
		t.Errorf("diff of a type without rules: error %v, want one naming the type and aws_schema.go", err)
	}
}

// TestAWSRulesAreWellFormed: every rule names a real-looking input once, and a nested path's
// block is not itself listed whole.
func TestAWSRulesAreWellFormed(t *testing.T) {
	for _, typ := range slices.Sorted(maps.Keys(awsRules)) {
		r := awsRules[typ]
		for _, list := range [][]string{r.forceNew, r.keep} {
			if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
				t.Errorf("%s: %v is not sorted and unique", typ, list)
			}
		}
		for _, f := range r.forceNew {
			if top, _, nested := strings.Cut(f, "."); nested && slices.Contains(r.forceNew, top) {
				t.Errorf("%s: %s is listed whole and by its field %s", typ, top, f)
			}
		}
		for _, k := range r.keep {
			if k == "name" || k == "bucket" {
				t.Errorf("%s: %s is auto-named by pulumi-aws: dropped, it gets a new name, so it cannot be kept", typ, k)
			}
		}
	}
}
