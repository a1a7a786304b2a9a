// Package config owns the stack configuration of waste-coach-infra: one typed struct, loaded and
// validated in one place, so that bad input is refused with a message naming the key, the bad
// value and what is allowed before any resource is declared.
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/versions"
)

// Project is the Pulumi project name, the namespace of every key this package reads.
const Project = "waste-coach-infra"

// Config is the validated configuration of one stack.
type Config struct {
	// Stack is the Pulumi stack name (prod, dev, ...).
	Stack string
	// Production marks a stack whose admin access must be narrow and whose data is protected.
	Production bool
	// ClusterName names the Kubernetes cluster and prefixes AWS resource names and tags.
	ClusterName string
	// Region is the AWS region, read from the AWS provider's own key aws:region.
	Region string
	// VPCCIDR is the VPC's address range.
	VPCCIDR netip.Prefix
	// SubnetCIDRs are the three public subnets, one per availability zone, in order.
	SubnetCIDRs []netip.Prefix
	// AvailabilityZones pins the zone of each subnet, in the order of SubnetCIDRs. Empty means
	// the first three available zones of the region, looked up on every run (dev only: a zone
	// that becomes impaired would then move subnets and the nodes in them).
	AvailabilityZones []string
	// DataZone is the zone of the storage node and of its EBS volumes, which cannot leave it.
	// Required on production; empty on a stack that does not pin it.
	DataZone string
	// AdminCIDRs may reach SSH and the Kubernetes API.
	AdminCIDRs []netip.Prefix
	// Kubernetes is the Kubernetes version installed on every node.
	Kubernetes KubeVersion
	// Nodes holds one node per role, in the order of Roles.
	Nodes []Node
	// Domain is the apex of the existing Route53 public hosted zone.
	Domain string
	// SSHPublicKey is an operator-supplied public key; empty means the program generates a key.
	SSHPublicKey string
	// NodeImage is the image every node boots from: an AMI id (ami-...) or the exact name of a
	// Canonical image. Empty (dev stacks only) means the newest Ubuntu 24.04 image of the day.
	NodeImage string
	// SSHPrivateKey is the operator's private key matching SSHPublicKey (a secret), nil otherwise.
	SSHPrivateKey pulumi.StringOutput
	// AppOrigins are the browser origins allowed to PUT to pre-signed upload URLs (S3 CORS).
	AppOrigins []string
	// Uploads configures the uploads bucket.
	Uploads Uploads
	// Images are the application container images.
	Images Images
	// APIReplicas is the replica count of each FastAPI service: its autoscaler's minimum.
	APIReplicas APIReplicas
	// CeleryReplicas is the replica count of each Celery worker pool (beat is always one): its
	// autoscaler's minimum.
	CeleryReplicas CeleryReplicas
	// ImagePullSecret is the login to a private registry of the application images; nil when
	// imagePullSecret is not set (public images).
	ImagePullSecret *PullSecret
	// ArgoCDSSO is the identity provider operators sign in to Argo CD with; nil keeps Argo CD's
	// built-in admin account.
	ArgoCDSSO *ArgoCDSSO
	// ChartSource is where the Helm charts come from (chartSource): empty means each chart's
	// public repository; an http(s) URL is a Helm repository that mirrors every pinned chart;
	// anything else is a folder holding each pinned chart's archive (versions.Chart.Archive),
	// for accounts that cannot reach the public repositories and for the offline engine run.
	ChartSource ChartSource

	// Capacity is the purchase option of every node that does not set its own (capacity,
	// default on-demand). Spot nodes are requested persistently and stop when interrupted.
	Capacity Capacity
	// OfficeHours stops the stack's instances outside a weekly window (officeHours); nil runs
	// them around the clock.
	OfficeHours *OfficeHours
	// Backups configures the backups bucket and how long every backup is kept.
	Backups Backups
	// Alerting is where alerts go and the stack's alert thresholds (alerting.go).
	Alerting Alerting

	// Autoscaling bounds the API's and the Celery pools' replicas (autoscaling.go).
	Autoscaling Autoscaling
	// Logs is the stack's CloudWatch Logs group and its retention (logs.go).
	Logs Logs
}

// ChartSource says where Helm charts are fetched from; the zero value is the public repositories.
type ChartSource struct {
	// Mirror is a Helm repository URL serving every pinned chart, or "".
	Mirror string
	// Folder is a local folder of chart archives, or "".
	Folder string
}

// Backups configures where the scheduled backups go (etcd snapshots, PostgreSQL base backups,
// write-ahead log and dumps) and how long they, and the EBS snapshots, are kept.
type Backups struct {
	// BucketName is the backups bucket's globally unique name.
	BucketName string
	// RetentionDays is how many days a backup is kept: S3 lifecycle expires older objects and
	// the Data Lifecycle Manager policy keeps this many daily EBS snapshots.
	RetentionDays int
}

// ArgoCDSSO is an OpenID Connect provider for Argo CD (argocdSso, argocdSsoClientSecret). With
// it the built-in admin account is disabled: the members of AdminGroup administer Argo CD.
type ArgoCDSSO struct {
	// Issuer is the provider's https issuer URL.
	Issuer string `json:"issuer"`
	// ClientID is Argo CD's client at the provider.
	ClientID string `json:"clientId"`
	// AdminGroup is the provider's group (from the groups claim) whose members get role:admin.
	AdminGroup string `json:"adminGroup"`
	// ClientSecret is the client's secret (a Pulumi secret), set by Load.
	ClientSecret pulumi.StringOutput `json:"-"`
}

// PullSecret is the login the kubelet uses to pull the application images from a private
// registry, from the stack's imagePullSecret key.
type PullSecret struct {
	// Registry is the registry's host[:port], as it appears in the image references.
	Registry string
	// DockerConfigJSON is the .dockerconfigjson document holding the login, a Pulumi secret.
	DockerConfigJSON pulumi.StringOutput
}

// Node is one EC2 instance of the cluster.
type Node struct {
	// Role is what the node is for.
	Role Role `json:"role"`
	// InstanceType is the EC2 instance type, one of InstanceTypes.
	InstanceType string `json:"instanceType"`
	// Subnet is the index (0-2) of the subnet in SubnetCIDRs the node is launched in.
	Subnet int `json:"subnet"`
	// RootVolumeGiB is the size of the encrypted gp3 root volume.
	RootVolumeGiB int `json:"rootVolumeGiB"`
	// Capacity is how the node's capacity is bought; Parse fills it from the stack's capacity
	// when the node does not set it.
	Capacity Capacity `json:"capacity,omitempty"`
}

// Name returns the node's name as used in resource names and Kubernetes labels.
func (n Node) Name() string { return string(n.Role) }

// Uploads configures the S3 bucket that receives uploads through pre-signed URLs.
type Uploads struct {
	// BucketName is the bucket's globally unique name.
	BucketName string
	// TransitionDays is how old an object is before it moves to TransitionStorageClass.
	TransitionDays int `json:"transitionDays"`
	// TransitionStorageClass is the storage class objects move to (GLACIER in the design record).
	TransitionStorageClass string `json:"transitionStorageClass"`
	// ExpirationDays deletes objects this old; 0 keeps them for ever.
	ExpirationDays int `json:"expirationDays"`
}

// Images are the application's container images (repository:tag or repository@digest).
type Images struct {
	// Auth is the auth FastAPI service.
	Auth string `json:"auth"`
	// Users is the users FastAPI service.
	Users string `json:"users"`
	// Waste is the waste FastAPI service.
	Waste string `json:"waste"`
	// Celery runs every Celery worker pool and beat.
	Celery string `json:"celery"`
}

// APIReplicas is the replica count of each FastAPI service.
type APIReplicas struct {
	Auth  int `json:"auth"`
	Users int `json:"users"`
	Waste int `json:"waste"`
}

// CeleryReplicas is the replica count of each Celery worker pool.
type CeleryReplicas struct {
	AI    int `json:"ai"`
	Batch int `json:"batch"`
	API   int `json:"api"`
}

// Node returns the node of the given role; Parse guarantees there is exactly one.
func (c *Config) Node(role Role) Node {
	for _, n := range c.Nodes {
		if n.Role == role {
			return n
		}
	}
	panic(fmt.Sprintf("config: no node with role %q (Parse guarantees one)", role))
}

// Environment is the short environment name used in resource names: the stack name.
func (c *Config) Environment() string { return c.Stack }

// ClusterID identifies this stack's cluster inside the AWS account: "<stack>-<clusterName>",
// for example prod-sesacthon. Two stacks of one account may share a clusterName; they never share
// a ClusterID. Every AWS name that is unique per account or region (IAM roles and instance
// profiles, the key pair, security groups, the default uploads bucket) is derived from it, and so
// are the kubernetes.io/cluster tag, the cloud-controller-manager's --cluster-name and the load
// balancer controller's clusterName. The ALB and its target groups are named by the program
// (infra.ELBName), from the clusterName and the stack.
func (c *Config) ClusterID() string { return c.Stack + "-" + c.ClusterName }

// MaxClusterIDLength keeps the longest name prefix derived from ClusterID,
// "<cluster id>-worker-1-", within IAM's 38-character limit on role and instance-profile name
// prefixes.
const MaxClusterIDLength = 28

// Source returns the raw value of a fully qualified config key ("project:key"), as the Pulumi
// CLI passes it to the program: plain text for strings, JSON for numbers, booleans and objects.
type Source func(key string) (string, bool)

// Load reads and validates the stack's configuration from the Pulumi context.
func Load(ctx *pulumi.Context) (*Config, error) {
	cfg, err := Parse(ctx.Stack(), ctx.GetConfig)
	if err != nil {
		return nil, err
	}
	if cfg.SSHPublicKey != "" {
		key := Project + ":sshPrivateKey"
		if !ctx.IsConfigSecret(key) {
			return nil, &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret sshPrivateKey`"}
		}
		raw, _ := ctx.GetConfig(key)
		cfg.SSHPrivateKey = pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
	}
	if cfg.ArgoCDSSO != nil {
		key := Project + ":argocdSsoClientSecret"
		raw, ok := ctx.GetConfig(key)
		switch {
		case !ok || raw == "":
			return nil, &Error{Key: key, Allowed: "required with argocdSso: set it with `pulumi config set --secret argocdSsoClientSecret`"}
		case !ctx.IsConfigSecret(key):
			return nil, &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret argocdSsoClientSecret`"}
		}
		cfg.ArgoCDSSO.ClientSecret = pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
	}
	if err := loadAlertReceiverSecret(ctx, cfg); err != nil {
		return nil, err
	}
	if key := Project + ":imagePullSecret"; cfg.ImagePullSecret != nil && !ctx.IsConfigSecret(key) {
		return nil, &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret imagePullSecret '{\"registry\":...,\"username\":...,\"password\":...}'`"}
	}
	return cfg, nil
}

// Error is a refused config value: the key, the value given and what would have been accepted.
type Error struct {
	Key     string
	Value   string
	Allowed string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config %s: missing; %s", e.Key, e.Allowed)
	}
	return fmt.Sprintf("config %s: %s is not allowed; %s", e.Key, e.Value, e.Allowed)
}

// parser accumulates every problem so that an operator sees them all in one run.
type parser struct {
	get  Source
	errs []error
}

func (p *parser) fail(key, value, allowed string) {
	p.errs = append(p.errs, &Error{Key: key, Value: value, Allowed: allowed})
}

func qualify(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return Project + ":" + key
}

// raw returns a key's value, recording a missing required key.
func (p *parser) raw(key string, required bool) (string, bool) {
	v, ok := p.get(qualify(key))
	if (!ok || strings.TrimSpace(v) == "") && required {
		p.fail(qualify(key), "", "it is required (see Pulumi.yaml for its meaning)")
		return "", false
	}
	return v, ok && strings.TrimSpace(v) != ""
}

func (p *parser) str(key, def string, required bool) string {
	if v, ok := p.raw(key, required); ok {
		return v
	}
	return def
}

func (p *parser) boolean(key string, def bool) bool {
	v, ok := p.raw(key, false)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(qualify(key), strconv.Quote(v), "true or false")
		return def
	}
	return b
}

// object decodes a JSON value (arrays and objects), refusing unknown fields so that a typo in a
// stack file is an error rather than a silently ignored setting.
func (p *parser) object(key string, out any, required bool) bool {
	v, ok := p.raw(key, required)
	if !ok {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		p.fail(qualify(key), v, fmt.Sprintf("a value of the shape documented in Pulumi.yaml (%v)", err))
		return false
	}
	return true
}

func (p *parser) prefix(key, value string) (netip.Prefix, bool) {
	pfx, err := netip.ParsePrefix(value)
	if err != nil || !pfx.Addr().Is4() {
		p.fail(key, strconv.Quote(value), "an IPv4 CIDR such as 10.0.0.0/16")
		return netip.Prefix{}, false
	}
	if pfx.Masked() != pfx {
		p.fail(key, strconv.Quote(value), fmt.Sprintf("a network address without host bits (did you mean %s?)", pfx.Masked()))
		return netip.Prefix{}, false
	}
	return pfx, true
}

var (
	kubeVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	clusterNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}[a-z0-9]$`)
	clusterIDRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	localhostPort = regexp.MustCompile(`^:\d+$`)
	sshPublicKey  = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$`)
	imageRE       = regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$`)
)

// TransitionClasses are the S3 storage classes a lifecycle transition may target.
var TransitionClasses = []string{"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}

// Parse validates raw configuration for a stack. It returns every problem found, joined.
func Parse(stack string, get Source) (*Config, error) {
	p := &parser{get: get}
	c := &Config{Stack: stack}

	c.Production = p.boolean("production", false)
	c.ClusterName = p.str("clusterName", "sesacthon", false)
	if !clusterNameRE.MatchString(c.ClusterName) {
		p.fail(qualify("clusterName"), strconv.Quote(c.ClusterName), "3-32 lower-case letters, digits and dashes, starting with a letter")
	} else if id := c.ClusterID(); !clusterIDRE.MatchString(id) || len(id) > MaxClusterIDLength {
		p.fail(qualify("clusterName"), strconv.Quote(c.ClusterName), fmt.Sprintf(
			"a name that, after the stack name, makes a cluster id (%q here) of at most %d lower-case letters, digits and dashes: AWS names and tags are derived from it",
			id, MaxClusterIDLength))
	}
	c.Region = p.str("aws:region", "", true)

	p.network(c)
	p.kubernetes(c)
	p.nodes(c)
	p.storageZone(c)
	p.dns(c)
	p.ssh(c)
	p.nodeImage(c)
	p.uploads(c)
	p.application(c)
	p.pullSecret(c)
	p.argoCDSSO(c)
	p.chartSource(c)
	p.capacity(c)
	p.officeHours(c)
	p.backups(c)
	p.alerting(c)
	p.autoscaling(c)
	p.logs(c)

	if len(p.errs) > 0 {
		return nil, fmt.Errorf("invalid configuration for stack %q:\n%w", stack, errors.Join(p.errs...))
	}
	return c, nil
}

func (p *parser) network(c *Config) {
	vpcKey := qualify("vpcCidr")
	vpc, vpcOK := p.prefix(vpcKey, p.str("vpcCidr", "10.0.0.0/16", false))
	if vpcOK && (vpc.Bits() < 16 || vpc.Bits() > 24) {
		p.fail(vpcKey, vpc.String(), "a prefix length from /16 to /24 (AWS VPC limits, with room for three subnets)")
		vpcOK = false
	}
	c.VPCCIDR = vpc

	subnetsKey := qualify("subnetCidrs")
	raw := []string{"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"}
	p.object("subnetCidrs", &raw, false)
	if len(raw) != 3 {
		p.fail(subnetsKey, fmt.Sprintf("%d subnets %v", len(raw), raw), "exactly 3 subnets, one per availability zone")
	}
	for i, s := range raw {
		key := fmt.Sprintf("%s[%d]", subnetsKey, i)
		sn, ok := p.prefix(key, s)
		if !ok {
			continue
		}
		if vpcOK && (!vpc.Contains(sn.Addr()) || sn.Bits() < vpc.Bits()) {
			p.fail(key, sn.String(), fmt.Sprintf("a subnet inside the VPC %s", vpc))
		}
		if sn.Bits() > 28 {
			p.fail(key, sn.String(), "a prefix length of /28 or shorter (AWS subnet limit)")
		}
		for j, other := range c.SubnetCIDRs {
			if other.Overlaps(sn) {
				p.fail(key, sn.String(), fmt.Sprintf("a range that does not overlap %s[%d] %s", subnetsKey, j, other))
			}
		}
		c.SubnetCIDRs = append(c.SubnetCIDRs, sn)
	}

	p.zones(c)

	adminKey := qualify("adminCidrs")
	var admin []string
	if p.object("adminCidrs", &admin, true) && len(admin) == 0 {
		p.fail(adminKey, "[]", "at least one CIDR that may reach SSH and the Kubernetes API")
	}
	for i, s := range admin {
		key := fmt.Sprintf("%s[%d]", adminKey, i)
		pfx, ok := p.prefix(key, s)
		if !ok {
			continue
		}
		if c.Production && pfx.Bits() < MinProductionAdminPrefix {
			p.fail(key, pfx.String(), fmt.Sprintf("on a production stack, the operators' own address ranges only, each /%d or narrower (SSH and 6443 must not be open to large parts of the internet)", MinProductionAdminPrefix))
		}
		c.AdminCIDRs = append(c.AdminCIDRs, pfx)
	}
}

// MinProductionAdminPrefix is the shortest prefix an admin range may have on a production stack:
// two /1 ranges are the whole internet as surely as one /0.
const MinProductionAdminPrefix = 16

var zoneRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$`)

// zones reads the pinned availability zones and the storage node's data zone. Whether the pinned
// zones exist in the region is checked against the AWS lookup by the infra tier.
func (p *parser) zones(c *Config) {
	key := qualify("availabilityZones")
	p.object("availabilityZones", &c.AvailabilityZones, false)
	switch n := len(c.AvailabilityZones); {
	case n == 0 && c.Production:
		p.fail(key, "", "required on a production stack: the zone of each subnet, pinned so that an impaired zone never moves subnets and nodes")
	case n != 0 && n != len(c.SubnetCIDRs):
		p.fail(key, fmt.Sprint(c.AvailabilityZones), fmt.Sprintf("exactly %d zone names, one per subnet in the order of subnetCidrs", len(c.SubnetCIDRs)))
	}
	for i, z := range c.AvailabilityZones {
		if !zoneRE.MatchString(z) || (c.Region != "" && !strings.HasPrefix(z, c.Region)) {
			p.fail(fmt.Sprintf("%s[%d]", key, i), strconv.Quote(z), fmt.Sprintf("an availability zone name of region %s, such as %sa", c.Region, c.Region))
		}
		if slices.Index(c.AvailabilityZones, z) != i {
			p.fail(fmt.Sprintf("%s[%d]", key, i), strconv.Quote(z), "a zone not already used by another subnet (the subnets spread over three zones)")
		}
	}
	c.DataZone = p.str("dataZone", "", false)
	switch {
	case c.DataZone == "" && c.Production:
		p.fail(qualify("dataZone"), "", "required on a production stack: the zone of the storage node's EBS volumes, one of availabilityZones")
	case c.DataZone != "" && !slices.Contains(c.AvailabilityZones, c.DataZone):
		p.fail(qualify("dataZone"), strconv.Quote(c.DataZone), fmt.Sprintf("one of availabilityZones %v", c.AvailabilityZones))
	}
}

// storageZone refuses, where the data zone is pinned, a storage node placed in a subnet of
// another zone: its EBS volumes (PostgreSQL, RabbitMQ, Redis) are zonal and could not follow it.
func (p *parser) storageZone(c *Config) {
	if c.DataZone == "" || len(c.AvailabilityZones) != len(c.SubnetCIDRs) {
		return
	}
	i := slices.IndexFunc(c.Nodes, func(n Node) bool { return n.Role == RoleStorage })
	if i < 0 || c.Nodes[i].Subnet < 0 || c.Nodes[i].Subnet >= len(c.AvailabilityZones) {
		return
	}
	if zone := c.AvailabilityZones[c.Nodes[i].Subnet]; zone != c.DataZone {
		p.fail(qualify("nodes")+"[storage].subnet", fmt.Sprintf("%d (zone %s)", c.Nodes[i].Subnet, zone), fmt.Sprintf(
			"a subnet in the data zone %s ("+qualify("dataZone")+"): the storage node's EBS volumes cannot leave their zone, so moving it would strand the data; "+
				"move the data first (docs/operations.md), then change dataZone", c.DataZone))
	}
}

// KubeVersion is a Kubernetes release, MAJOR.MINOR with an optional PATCH.
type KubeVersion struct {
	Major, Minor, Patch int
	// HasPatch is false when only MAJOR.MINOR was given: nodes then take the newest patch.
	HasPatch bool
}

// MinorString returns "1.35", the form of the pkgs.k8s.io repository path.
func (v KubeVersion) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// String returns the version as configured: "1.35" or "1.35.4".
func (v KubeVersion) String() string {
	if v.HasPatch {
		return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	}
	return v.MinorString()
}

// oldestKubeMinor is the oldest minor pkgs.k8s.io serves; the legacy apt repository is gone.
const oldestKubeMinor = 24

func (p *parser) kubernetes(c *Config) {
	key := qualify("kubernetesVersion")
	v := strings.TrimPrefix(p.str("kubernetesVersion", "", true), "v")
	if v == "" {
		return
	}
	m := kubeVersionRE.FindStringSubmatch(v)
	if m == nil {
		p.fail(key, strconv.Quote(v), "MAJOR.MINOR[.PATCH], for example 1.35 or 1.35.4")
		return
	}
	c.Kubernetes.Major, _ = strconv.Atoi(m[1])
	c.Kubernetes.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		c.Kubernetes.Patch, _ = strconv.Atoi(m[3])
		c.Kubernetes.HasPatch = true
	}
	if c.Kubernetes.Major != 1 || c.Kubernetes.Minor < oldestKubeMinor {
		p.fail(key, strconv.Quote(v), fmt.Sprintf("1.%d or newer (older minors are not served by pkgs.k8s.io)", oldestKubeMinor))
		return
	}
	if _, ok := versions.CCMImage(c.Kubernetes.MinorString()); !ok {
		p.fail(key, strconv.Quote(v), fmt.Sprintf("a minor with a pinned AWS cloud-controller-manager release: %s (see versions/versions.go)", strings.Join(versions.CCMMinors(), ", ")))
	}
}

func (p *parser) nodes(c *Config) {
	key := qualify("nodes")
	var nodes []Node
	if !p.object("nodes", &nodes, true) {
		return
	}
	seen := map[Role]int{}
	for i, n := range nodes {
		at := fmt.Sprintf("%s[%d]", key, i)
		if !slices.Contains(Roles, n.Role) {
			p.fail(at+".role", strconv.Quote(string(n.Role)), fmt.Sprintf("one of %v", Roles))
			continue
		}
		if j, dup := seen[n.Role]; dup {
			p.fail(at+".role", strconv.Quote(string(n.Role)), fmt.Sprintf("each role once (also at %s[%d])", key, j))
			continue
		}
		seen[n.Role] = i
		if _, ok := InstanceTypes[n.InstanceType]; !ok {
			p.fail(at+".instanceType", strconv.Quote(n.InstanceType), "one of "+instanceTypeNames())
		}
		if n.Subnet < 0 || n.Subnet > 2 {
			p.fail(at+".subnet", strconv.Itoa(n.Subnet), "0, 1 or 2 (an index into subnetCidrs)")
		}
		if n.RootVolumeGiB < n.Role.MinRootGiB() || n.RootVolumeGiB > 1024 {
			p.fail(at+".rootVolumeGiB", strconv.Itoa(n.RootVolumeGiB), fmt.Sprintf("%d to 1024 GiB for a %s node", n.Role.MinRootGiB(), n.Role))
		}
	}
	for _, r := range Roles {
		if _, ok := seen[r]; !ok {
			p.fail(key, fmt.Sprintf("%d nodes without role %q", len(nodes), r), fmt.Sprintf("exactly one node of each role %v", Roles))
		}
	}
	// Keep the declared order stable whatever order the stack file lists them in.
	for _, r := range Roles {
		if i, ok := seen[r]; ok {
			c.Nodes = append(c.Nodes, nodes[i])
		}
	}
}

// validDomain reports whether d is a DNS name with at least two labels.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

func (p *parser) dns(c *Config) {
	c.Domain = strings.TrimSuffix(p.str("domain", "", true), ".")
	if c.Domain != "" && !validDomain(c.Domain) {
		p.fail(qualify("domain"), strconv.Quote(c.Domain), "a lower-case DNS name such as example.com (the apex of an existing Route53 hosted zone)")
	}
	p.object("appOrigins", &c.AppOrigins, false)
	if len(c.AppOrigins) == 0 {
		c.AppOrigins = []string{"https://" + c.Domain, "https://www." + c.Domain}
	}
	for i, o := range c.AppOrigins {
		host, ok := strings.CutPrefix(o, "https://")
		if !ok {
			host, ok = strings.CutPrefix(o, "http://localhost")
			if ok && (host == "" || localhostPort.MatchString(host)) {
				continue
			}
		}
		if !ok || !validDomain(host) {
			p.fail(fmt.Sprintf("%s[%d]", qualify("appOrigins"), i), strconv.Quote(o), "https://<dns name> (or http://localhost[:port] for local development)")
		}
	}
}

func (p *parser) ssh(c *Config) {
	c.SSHPublicKey = strings.TrimSpace(p.str("sshPublicKey", "", false))
	if c.SSHPublicKey == "" {
		return
	}
	if !sshPublicKey.MatchString(c.SSHPublicKey) {
		p.fail(qualify("sshPublicKey"), strconv.Quote(c.SSHPublicKey), "an OpenSSH public key line (ssh-ed25519 AAAA...), or unset to let the program generate a key")
	}
	if _, ok := p.raw("sshPrivateKey", false); !ok {
		p.fail(qualify("sshPrivateKey"), "", "it is required when sshPublicKey is set: the remote commands log in with it (set it with --secret)")
	}
}

var (
	amiID       = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	ubuntuImage = regexp.MustCompile(`^ubuntu/images/[a-z0-9-]+/ubuntu-[a-z]+-[0-9.]+-(amd64|arm64)-server-[0-9.]+$`)
)

// nodeImage reads the image new nodes boot from. Production must name one exact image: a lookup
// of "the newest" would change its answer when Canonical publishes, and the nodes would follow.
func (p *parser) nodeImage(c *Config) {
	c.NodeImage = strings.TrimSpace(p.str("nodeImage", "", false))
	switch {
	case c.NodeImage == "" && c.Production:
		p.fail(qualify("nodeImage"), "", "required on a production stack: an AMI id (ami-...) or an exact Canonical image name (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-YYYYMMDD), so that nodes move to a new image only when an operator changes it")
	case c.NodeImage != "" && !amiID.MatchString(c.NodeImage) && !ubuntuImage.MatchString(c.NodeImage):
		p.fail(qualify("nodeImage"), strconv.Quote(c.NodeImage), "an AMI id (ami-0123456789abcdef0) or an exact Canonical image name (ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-YYYYMMDD), no wildcards")
	}
}

func (p *parser) uploads(c *Config) {
	c.Uploads = Uploads{TransitionDays: 30, TransitionStorageClass: "GLACIER"}
	c.Uploads.BucketName = p.str("uploadsBucket", c.ClusterID()+"-images", false)
	if !bucketRE.MatchString(c.Uploads.BucketName) || strings.Contains(c.Uploads.BucketName, "..") {
		p.fail(qualify("uploadsBucket"), strconv.Quote(c.Uploads.BucketName), "an S3 bucket name: 3-63 lower-case letters, digits, dots and dashes")
	}
	key := qualify("uploadsLifecycle")
	p.object("uploadsLifecycle", &c.Uploads, false)
	if c.Uploads.TransitionDays < 1 {
		p.fail(key+".transitionDays", strconv.Itoa(c.Uploads.TransitionDays), "1 or more days")
	}
	if !slices.Contains(TransitionClasses, c.Uploads.TransitionStorageClass) {
		p.fail(key+".transitionStorageClass", strconv.Quote(c.Uploads.TransitionStorageClass), "one of "+strings.Join(TransitionClasses, ", "))
	}
	if e := c.Uploads.ExpirationDays; e != 0 && e <= c.Uploads.TransitionDays {
		p.fail(key+".expirationDays", strconv.Itoa(e), fmt.Sprintf("0 (keep for ever) or more than transitionDays (%d)", c.Uploads.TransitionDays))
	}
}

// BackupPrefix is where a node role's backups go in the backups bucket: the master snapshots
// etcd, the storage node backs up PostgreSQL. Other roles write no backups ("").
func BackupPrefix(r Role) string {
	switch r {
	case RoleMaster:
		return "etcd"
	case RoleStorage:
		return "postgres"
	}
	return ""
}

// SnapshotTagKey is the tag the storage classes put on every EBS volume they create, valued
// with the stack's cluster id; the stack's Data Lifecycle Manager policy snapshots the volumes
// that carry it with its value, and no other stack's.
const SnapshotTagKey = "waste-coach/snapshot"

// Backup retention bounds: a day at least (the schedules are daily); at most a year, beyond
// which a backup is an archive and belongs elsewhere.
const (
	minBackupRetentionDays = 1
	maxBackupRetentionDays = 365
)

// DefaultBackupRetentionDays is how long backups are kept when backupRetentionDays is not set:
// two weeks on a production stack, three days elsewhere.
func DefaultBackupRetentionDays(production bool) int {
	if production {
		return 14
	}
	return 3
}

func (p *parser) backups(c *Config) {
	c.Backups.BucketName = p.str("backupsBucket", c.ClusterID()+"-backups", false)
	if !bucketRE.MatchString(c.Backups.BucketName) || strings.Contains(c.Backups.BucketName, "..") {
		p.fail(qualify("backupsBucket"), strconv.Quote(c.Backups.BucketName), "an S3 bucket name: 3-63 lower-case letters, digits, dots and dashes")
	} else if c.Backups.BucketName == c.Uploads.BucketName {
		p.fail(qualify("backupsBucket"), strconv.Quote(c.Backups.BucketName), "a bucket other than uploadsBucket: backups are kept apart from what they back up")
	}
	c.Backups.RetentionDays = DefaultBackupRetentionDays(c.Production)
	if v, ok := p.raw("backupRetentionDays", false); ok {
		// 0 is Pulumi.yaml's default: the project file cannot say "14 on production, 3
		// elsewhere", and a key it declares without a default is required in every stack.
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || (n != 0 && (n < minBackupRetentionDays || n > maxBackupRetentionDays)) {
			p.fail(qualify("backupRetentionDays"), strconv.Quote(v), fmt.Sprintf("a whole number of days from %d to %d, or 0 for the default (%d on a production stack, %d elsewhere)",
				minBackupRetentionDays, maxBackupRetentionDays, DefaultBackupRetentionDays(true), DefaultBackupRetentionDays(false)))
		} else if n != 0 {
			c.Backups.RetentionDays = n
		}
	}
}

func (p *parser) application(c *Config) {
	key := qualify("images")
	if p.object("images", &c.Images, true) {
		for _, img := range []struct{ name, ref string }{
			{"auth", c.Images.Auth}, {"users", c.Images.Users}, {"waste", c.Images.Waste}, {"celery", c.Images.Celery},
		} {
			if !imageRE.MatchString(img.ref) {
				p.fail(key+"."+img.name, strconv.Quote(img.ref), "an image reference with an explicit tag or digest, such as ghcr.io/org/app:1.2.3 (never a floating default)")
			} else if c.Production && !strings.Contains(img.ref, "@sha256:") {
				// A tag can be moved to other content; a digest cannot.
				p.fail(key+"."+img.name, strconv.Quote(img.ref), "on a production stack, an image pinned by digest, such as ghcr.io/org/app@sha256:<64 hex> (dev stacks may use tags)")
			}
		}
	}
	c.APIReplicas = APIReplicas{Auth: 2, Users: 2, Waste: 2}
	p.object("apiReplicas", &c.APIReplicas, false)
	c.CeleryReplicas = CeleryReplicas{AI: 3, Batch: 2, API: 2}
	p.object("celeryReplicas", &c.CeleryReplicas, false)
	for _, r := range []struct {
		key string
		n   int
	}{
		// celeryReplicas is checked by autoscaling(): a pool may be at zero where config says so.
		{"apiReplicas.auth", c.APIReplicas.Auth}, {"apiReplicas.users", c.APIReplicas.Users}, {"apiReplicas.waste", c.APIReplicas.Waste},
	} {
		if r.n < 1 || r.n > 20 {
			p.fail(qualify(r.key), strconv.Itoa(r.n), "1 to 20 replicas")
		}
	}
}

// registryRE is a registry host with an optional port: no scheme, no path, no image name.
var registryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

// argoCDSSO reads argocdSso, {issuer, clientId, adminGroup}; its client secret is a key of its
// own so that only the secret part is encrypted in the stack file.
func (p *parser) argoCDSSO(c *Config) {
	var sso ArgoCDSSO
	if !p.object("argocdSso", &sso, false) {
		return
	}
	key := qualify("argocdSso")
	if u, err := url.Parse(sso.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		p.fail(key+".issuer", strconv.Quote(sso.Issuer), "the identity provider's https issuer URL, such as https://accounts.google.com")
	}
	if strings.TrimSpace(sso.ClientID) == "" {
		p.fail(key+".clientId", strconv.Quote(sso.ClientID), "Argo CD's client id at the provider")
	}
	if strings.TrimSpace(sso.AdminGroup) == "" || strings.ContainsAny(sso.AdminGroup, ",\n") {
		p.fail(key+".adminGroup", strconv.Quote(sso.AdminGroup), "the provider group whose members administer Argo CD (no commas or newlines): the built-in admin is disabled")
	}
	c.ArgoCDSSO = &sso
}

// chartSource reads chartSource: a Helm repository mirror URL, or a folder of chart archives
// that must hold every pinned chart, checked here so that a missing one is named before any
// resource is declared instead of failing a release half way through a deploy.
func (p *parser) chartSource(c *Config) {
	v := p.str("chartSource", "", false)
	if v == "" {
		return
	}
	key := qualify("chartSource")
	if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			p.fail(key, strconv.Quote(v), "a Helm repository URL with a host, or a folder of chart archives")
			return
		}
		c.ChartSource.Mirror = strings.TrimSuffix(v, "/")
		return
	}
	info, err := os.Stat(v)
	if err != nil || !info.IsDir() {
		p.fail(key, strconv.Quote(v), "an existing folder of chart archives, or a Helm repository URL (http or https)")
		return
	}
	for _, chart := range versions.Charts() {
		if _, err := os.Stat(filepath.Join(v, chart.Archive())); err != nil {
			p.fail(key, strconv.Quote(v), fmt.Sprintf("a folder holding every pinned chart; %s is missing", chart.Archive()))
		}
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		p.fail(key, strconv.Quote(v), err.Error())
		return
	}
	c.ChartSource.Folder = abs
}

// pullSecret reads imagePullSecret, {registry, username, password}. The value is a secret: no
// message ever repeats it, only the registry host and the names of the fields at fault.
func (p *parser) pullSecret(c *Config) {
	key := qualify("imagePullSecret")
	v, ok := p.raw("imagePullSecret", false)
	if !ok {
		return
	}
	const shape = `an object {"registry": "<host[:port]>", "username": "...", "password": "..."}`
	var login struct {
		Registry string `json:"registry"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&login); err != nil {
		// The decoder's message may quote the value; say only where it failed.
		why := "not a JSON object"
		if f, found := strings.CutPrefix(err.Error(), "json: unknown field "); found {
			why = "unknown field " + f
		}
		p.fail(key, "(secret value, "+why+")", shape)
		return
	}
	bad := len(p.errs)
	if !registryRE.MatchString(login.Registry) {
		p.fail(key+".registry", strconv.Quote(login.Registry), "the registry host of the application images, with an optional port and no scheme or path, such as ghcr.io or registry.example.com:5000")
	}
	if login.Username == "" || strings.Contains(login.Username, ":") {
		p.fail(key+".username", "(secret value)", "a non-empty user name without a colon (the registry login is user:password)")
	}
	if login.Password == "" {
		p.fail(key+".password", "(secret value)", "a non-empty password or access token")
	}
	if len(p.errs) > bad {
		return
	}
	// The kubelet offers a login only to images whose reference starts with its registry host.
	images := []string{c.Images.Auth, c.Images.Users, c.Images.Waste, c.Images.Celery}
	if !slices.ContainsFunc(images, func(img string) bool { return strings.HasPrefix(img, login.Registry+"/") }) {
		p.fail(key+".registry", strconv.Quote(login.Registry), fmt.Sprintf(
			"the registry host that starts at least one of the images %v (the kubelet uses a login only for images of its registry)", images))
		return
	}
	c.ImagePullSecret = &PullSecret{
		Registry:         login.Registry,
		DockerConfigJSON: pulumi.ToSecret(pulumi.String(DockerConfigJSON(login.Registry, login.Username, login.Password))).(pulumi.StringOutput),
	}
}

// DockerConfigJSON returns the .dockerconfigjson document of a registry login, the shape the
// kubelet reads from a kubernetes.io/dockerconfigjson Secret.
func DockerConfigJSON(registry, username, password string) string {
	type auth struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	doc, err := json.Marshal(map[string]map[string]auth{"auths": {registry: {
		Username: username, Password: password,
		Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password)),
	}}})
	if err != nil {
		panic(fmt.Sprintf("config: encode a registry login: %v", err)) // strings always encode
	}
	return string(doc)
}

// MasterPrivateIP is the master's fixed private address: the tenth host of its subnet. Fixing it
// keeps the in-VPC control-plane endpoint stable when the instance is replaced, and known at
// preview time so the kubeadm configuration can be rendered before anything exists.
func (c *Config) MasterPrivateIP() netip.Addr {
	a := c.SubnetCIDRs[c.Node(RoleMaster).Subnet].Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}
