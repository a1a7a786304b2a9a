package mocks

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func TestUnknownInvokeFailsLoudly(t *testing.T) {
	_, err := New("p", "s", "ap-northeast-2").Call(pulumi.MockCallArgs{Token: "aws:ec2/getNatGateway:getNatGateway"})
	if err == nil || !strings.Contains(err.Error(), "aws:ec2/getNatGateway:getNatGateway") {
		t.Fatalf("an invoke the mocks do not know must fail and name itself, got %v", err)
	}
}

func TestZonesAreTheRegionsOwn(t *testing.T) {
	out, err := New("p", "s", "ap-northeast-2").Call(pulumi.MockCallArgs{Token: "aws:index/getAvailabilityZones:getAvailabilityZones"})
	if err != nil {
		t.Fatal(err)
	}
	if names := out["names"].ArrayValue(); len(names) < 3 || names[0].StringValue() != "ap-northeast-2a" {
		t.Errorf("zones %v, want at least three zones of ap-northeast-2", names)
	}
}

func TestInstancesGetAddressesInsideTheirSubnet(t *testing.T) {
	m := New("p", "s", "ap-northeast-2")
	subnetID, _, _ := m.NewResource(pulumi.MockResourceArgs{TypeToken: "aws:ec2/subnet:Subnet", Name: "a", Custom: true,
		Inputs: resource.NewPropertyMapFromMap(map[string]any{"cidrBlock": "10.0.2.0/24", "availabilityZone": "ap-northeast-2b"})})
	_, out, _ := m.NewResource(pulumi.MockResourceArgs{TypeToken: "aws:ec2/instance:Instance", Name: "i", Custom: true,
		Inputs: resource.NewPropertyMapFromMap(map[string]any{"subnetId": subnetID})})
	if ip := out["privateIp"].StringValue(); !strings.HasPrefix(ip, "10.0.2.") {
		t.Errorf("private IP %s is outside the instance's subnet 10.0.2.0/24", ip)
	}
	if az := out["availabilityZone"].StringValue(); az != "ap-northeast-2b" {
		t.Errorf("instance zone %s, want its subnet's ap-northeast-2b", az)
	}
	if dns := out["privateDns"].StringValue(); !strings.HasSuffix(dns, ".ap-northeast-2.compute.internal") {
		t.Errorf("private DNS %s is not shaped like EC2's (the node name the CCM expects)", dns)
	}
}

// TestGetInstancesFiltersByStateReason: the state-reason-code filter picks the instances with
// that reason (a spot node EC2 interrupted from one stopped through the API); a filter the
// mocks do not model is refused instead of matching everything.
func TestGetInstancesFiltersByStateReason(t *testing.T) {
	m := New("p", "s", "ap-northeast-2")
	m.Instances = []Instance{
		{ID: "i-interrupted", Role: "storage", Cluster: "c", State: "stopped", StateReason: "Server.SpotInstanceShutdown"},
		{ID: "i-office", Role: "master", Cluster: "c", State: "stopped", StateReason: "Client.UserInitiatedShutdown"},
	}
	call := func(filter string, values ...any) (resource.PropertyMap, error) {
		return m.Call(pulumi.MockCallArgs{Token: "aws:ec2/getInstances:getInstances", Args: resource.NewPropertyMapFromMap(map[string]any{
			"instanceStateNames": []any{"stopped"},
			"filters":            []any{map[string]any{"name": filter, "values": values}},
		})})
	}
	out, err := call("state-reason-code", "Server.SpotInstanceShutdown")
	if err != nil {
		t.Fatal(err)
	}
	if ids := out["ids"].ArrayValue(); len(ids) != 1 || ids[0].StringValue() != "i-interrupted" {
		t.Errorf("state-reason-code Server.SpotInstanceShutdown matched %v, want i-interrupted alone", ids)
	}
	if _, err := call("instance-type", "t3.large"); err == nil || !strings.Contains(err.Error(), "instance-type") {
		t.Errorf("a filter the mocks do not model must be refused by name, got %v", err)
	}
}
