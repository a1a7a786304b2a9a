// Package standin is a Pulumi resource provider that stands in, for the offline engine run
// (tools/engine), for the providers that cannot run here: aws, command, tls and random. It
// answers the real engine over the real provider protocol, fabricates outputs with the same
// rules as the unit-test mocks (internal/mocks), and records every call. Two answers connect it
// to the local cluster: the command that reads the admin kubeconfig returns the local control
// plane's kubeconfig, and every EC2 instance it "launches" registers as a Node there, as the
// kubelet would (and is removed when the instance is deleted, as the cloud-controller-manager
// would).
//
// It is never part of the program: only tools/engine/cmd/pulumi-resource-standin imports it, and
// a test checks that the program's own packages do not.
package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/mocks"
)

// Versions are the plugin versions the program's SDKs ask the engine for (go.mod).
var Versions = map[string]string{
	"aws":     "6.83.4",
	"command": "1.1.3",
	"tls":     "5.2.0",
	"random":  "4.18.4",
}

// Environment variables that connect the stand-in to the harness.
const (
	// EnvKubeconfig is the local control plane's admin kubeconfig: the stdout of the command
	// that reads the cluster's kubeconfig.
	EnvKubeconfig = "STANDIN_KUBECONFIG"
	// EnvNodes is the folder where each launched instance leaves the Node it registers.
	EnvNodes = "STANDIN_NODES"
	// EnvLog is the file every call is appended to, one JSON object per line.
	EnvLog = "STANDIN_LOG"
)

// Provider answers for one package.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	pkg, version string
	region       string

	mu    sync.Mutex
	mocks *mocks.Mocks
	log   *os.File
}

// New returns the stand-in for a package (aws, command, tls or random).
func New(pkg string) (*Provider, error) {
	version, ok := Versions[pkg]
	if !ok {
		return nil, fmt.Errorf("stand-in: no stand-in for package %q", pkg)
	}
	p := &Provider{pkg: pkg, version: version, region: "ap-northeast-2"}
	if path := os.Getenv(EnvLog); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		p.log = f
	}
	return p, nil
}

// record appends one call to the log in a single write, so that the four stand-in processes
// can share the file.
func (p *Provider) record(call, urn string, detail map[string]any) {
	if p.log == nil {
		return
	}
	entry := map[string]any{"package": p.pkg, "call": call}
	if urn != "" {
		entry["urn"] = urn
	}
	for k, v := range detail {
		entry[k] = v
	}
	b, _ := json.Marshal(entry)
	_, _ = p.log.Write(append(b, '\n'))
}

var opts = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, opts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, opts)
}

// GetPluginInfo reports the version the SDK asked for.
func (p *Provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

// CheckConfig accepts the provider configuration as given.
func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// DiffConfig reports the provider configuration keys that changed, each an update.
func (p *Provider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return p.diff(req.GetUrn(), rules{}, req.GetOldInputs(), req.GetNews())
}

// Configure takes the region and asks the engine for plain values: it puts secrecy back on
// every output whose input was secret, and the program's additionalSecretOutputs do the rest.
func (p *Provider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	if args, err := unmarshal(req.GetArgs()); err == nil {
		if r, ok := args["region"]; ok && r.IsString() {
			p.region = r.StringValue()
		}
	}
	p.record("Configure", "", map[string]any{"region": p.region})
	return &pulumirpc.ConfigureResponse{SupportsPreview: true}, nil
}

// Invoke answers the lookups the program makes, exactly as the mocks do.
func (p *Provider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	p.record("Invoke", "", map[string]any{"token": req.GetTok()})
	out, err := p.fabricator().Call(pulumi.MockCallArgs{Token: req.GetTok(), Args: args})
	if err != nil {
		return &pulumirpc.InvokeResponse{Failures: []*pulumirpc.CheckFailure{{Reason: err.Error()}}}, nil
	}
	ret, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}

// Check accepts the inputs as given.
func (p *Provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Diff reports the top-level inputs that changed and those of them that replace the resource,
// as the real provider would plan it: a command is replaced when its triggers change, a TLS key
// or a random value on any change, an AWS resource by its type's rules (aws_schema.go).
func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, err := p.rules(resource.URN(req.GetUrn()).Type())
	if err != nil {
		return nil, err
	}
	return p.diff(req.GetUrn(), r, req.GetOldInputs(), req.GetNews())
}

// rules are the diff rules of a resource type. An AWS type without rules is an error, so that a
// newly declared type cannot silently diff as an update.
func (p *Provider) rules(typ tokens.Type) (rules, error) {
	switch p.pkg {
	case "command":
		return commandRules, nil
	case "tls", "random":
		return generatedRules, nil
	case "aws":
		r, ok := awsRules[string(typ)]
		if !ok {
			return rules{}, fmt.Errorf("stand-in: no diff rules for %s: add its ForceNew and Optional+Computed inputs to awsRules in internal/standin/aws_schema.go", typ)
		}
		return r, nil
	}
	return rules{}, nil
}

func (p *Provider) diff(urn string, r rules, oldS, newS *structpb.Struct) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(oldS)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(newS)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, k := range unionKeys(olds, news) {
		o, n := olds[k], news[k]
		if o.DeepEquals(n) || (!n.HasValue() && slices.Contains(r.keep, string(k))) {
			continue
		}
		changed = append(changed, string(k))
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	replaces := r.replaces(olds, news, changed)
	p.record("Diff", urn, map[string]any{"changed": changed, "replaces": replaces})
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed, Replaces: replaces}, nil
}

func unionKeys(a, b resource.PropertyMap) []resource.PropertyKey {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Create fabricates the resource. A preview learns nothing it did not give: the outputs only the
// cloud computes stay unknown, as with the real providers.
func (p *Provider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	urn := resource.URN(req.GetUrn())
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
	}
	id, out, err := p.fabricate(urn, news)
	if err != nil {
		return nil, err
	}
	p.record("Create", string(urn), map[string]any{"id": id})
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Read returns the state it is given: nothing drifts outside the engine here.
func (p *Provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Update keeps what the cloud computed and takes the new inputs (an Optional+Computed input the
// program dropped keeps its value, as the provider keeps it); a command runs again.
func (p *Provider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	oldInputs, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	// A command runs again: its outputs are unknown until it has. An AWS resource keeps what the
	// cloud computed (its ARN, its id) in the plan too, as the bridged provider's planned state
	// does: a listener of an updated load balancer sees the same ARN, not an unknown one that its
	// ForceNew loadBalancerArn would take for a replacement.
	if req.GetPreview() && p.pkg == "command" {
		return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
	}
	urn := resource.URN(req.GetUrn())
	r, err := p.rules(urn.Type())
	if err != nil {
		return nil, err
	}
	out := olds.Copy()
	for k := range oldInputs {
		if _, ok := news[k]; !ok && !slices.Contains(r.keep, string(k)) {
			delete(out, k)
		}
	}
	for k, v := range news {
		out[k] = v
	}
	if req.GetPreview() {
		props, err := marshal(out)
		if err != nil {
			return nil, err
		}
		return &pulumirpc.UpdateResponse{Properties: props}, nil
	}
	if p.pkg == "command" {
		_, fresh, err := p.fabricate(urn, news)
		if err != nil {
			return nil, err
		}
		out["stdout"], out["stderr"] = fresh["stdout"], fresh["stderr"]
	}
	if urn.Type() == "aws:ec2/instance:Instance" {
		if err := p.registerNode(out); err != nil {
			return nil, err
		}
	}
	p.record("Update", string(urn), nil)
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete forgets the resource; a deleted instance's Node goes, as the CCM would remove it.
func (p *Provider) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn := resource.URN(req.GetUrn())
	if urn.Type() == "aws:ec2/instance:Instance" {
		olds, err := unmarshal(req.GetProperties())
		if err != nil {
			return nil, err
		}
		if dir, name := os.Getenv(EnvNodes), olds["privateDns"]; dir != "" && name.IsString() {
			if err := os.Remove(filepath.Join(dir, name.StringValue()+".json")); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
		}
	}
	p.record("Delete", string(urn), map[string]any{"id": req.GetId()})
	return &emptypb.Empty{}, nil
}

func (p *Provider) fabricator() *mocks.Mocks {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mocks == nil {
		p.mocks = mocks.New("", "", p.region)
	}
	return p.mocks
}

// fabricate makes the outputs of a new resource with the mocks' rules, plus the two answers that
// tie the run to the local cluster.
func (p *Provider) fabricate(urn resource.URN, news resource.PropertyMap) (string, resource.PropertyMap, error) {
	id, out, err := p.fabricator().NewResource(pulumi.MockResourceArgs{
		TypeToken: string(urn.Type()), Name: urn.Name(), Inputs: news, Custom: true,
	})
	if err != nil {
		return "", nil, err
	}
	switch urn.Type() {
	case "command:remote:Command":
		if strings.HasSuffix(urn.Name(), "-kubeconfig") {
			path := os.Getenv(EnvKubeconfig)
			b, err := os.ReadFile(path)
			if err != nil {
				return "", nil, fmt.Errorf("stand-in: the kubeconfig command answers with %s=%q: %w", EnvKubeconfig, path, err)
			}
			out["stdout"] = resource.NewStringProperty(string(b))
		}
	case "aws:ec2/instance:Instance":
		if err := p.registerNode(out); err != nil {
			return "", nil, err
		}
	}
	return id, out, nil
}

// registerNode leaves the Node an instance's kubelet would register in the nodes folder; the
// local cluster creates it. Its allocatable keeps out what the cluster's own pods take (the
// control plane's static pods, Calico, CoreDNS), which nothing runs here; every pod the program
// deploys, charts included, is scheduled for real.
func (p *Provider) registerNode(out resource.PropertyMap) error {
	dir := os.Getenv(EnvNodes)
	if dir == "" {
		return nil
	}
	str := func(m resource.PropertyMap, k string) string {
		if v, ok := m[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	role := ""
	if tags, ok := out["tags"]; ok && tags.IsObject() {
		role = str(tags.ObjectValue(), "Role")
	}
	spec := fit.NodeSpec{Role: config.Role(role), InstanceType: str(out, "instanceType"), Name: str(out, "privateDns"), Zone: str(out, "availabilityZone"), Region: p.region}
	// The root volume's size gives the Node its ephemeral storage, which every pod requests.
	if rb, ok := out["rootBlockDevice"]; ok && rb.IsObject() {
		if size, ok := rb.ObjectValue()["volumeSize"]; ok && size.IsNumber() {
			spec.RootVolumeGiB = int(size.NumberValue())
		}
	}
	if _, ok := config.InstanceTypes[spec.InstanceType]; !ok || spec.Name == "" || role == "" || spec.RootVolumeGiB == 0 {
		return fmt.Errorf("stand-in: instance without a known type, private DNS name, Role tag or root volume size: %+v", spec)
	}
	b, err := json.Marshal(fit.NodeObject(spec, fit.SystemPods(spec.Role)))
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+spec.Name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, spec.Name+".json"))
}
