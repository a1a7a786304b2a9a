package tests

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

// accountName is a name AWS keeps unique per account or region, or a value the cluster's
// controllers find their own resources by, as one stack declares it.
type accountName struct {
	// kind is the namespace the name must be unique in.
	kind string
	// value is the name; with prefix, AWS appends a unique suffix to it.
	value  string
	prefix bool
	// from says which resource declared it.
	from string
}

// collides reports whether two stacks could end up with the same name: the same value, or one
// prefix that the other name (or prefix) starts with.
func (a accountName) collides(b accountName) bool {
	return a.kind == b.kind && (a.value == b.value ||
		(a.prefix && strings.HasPrefix(b.value, a.value)) ||
		(b.prefix && strings.HasPrefix(a.value, b.value)))
}

// awsNamed lists the resource types whose AWS name is unique per account or region, with the
// inputs that set the name and the name prefix.
var awsNamed = map[string]struct{ kind, name, prefix string }{
	"aws:iam/role:Role":                       {"IAM role", "name", "namePrefix"},
	"aws:iam/instanceProfile:InstanceProfile": {"IAM instance profile", "name", "namePrefix"},
	"aws:iam/policy:Policy":                   {"IAM policy", "name", "namePrefix"},
	"aws:ec2/keyPair:KeyPair":                 {"key pair", "keyName", "keyNamePrefix"},
	"aws:ec2/securityGroup:SecurityGroup":     {"security group", "name", "namePrefix"},
	"aws:s3/bucketV2:BucketV2":                {"S3 bucket", "bucket", "bucketPrefix"},
	"aws:lb/loadBalancer:LoadBalancer":        {"load balancer", "name", "namePrefix"},
	"aws:lb/targetGroup:TargetGroup":          {"target group", "name", "namePrefix"},
	"aws:ssm/parameter:Parameter":             {"SSM parameter", "name", ""},
	// IAM keeps one OIDC provider per issuer URL in an account: each stack's pods need their own.
	"aws:iam/openIdConnectProvider:OpenIdConnectProvider": {"IAM OIDC provider", "url", ""},
}

const clusterTagPrefix = "kubernetes.io/cluster/"

// accountNames collects every per-account name a stack declares.
func accountNames(r *offline.Result) []accountName {
	var out []accountName
	add := func(kind, value string, prefix bool, res *mocks.Resource) {
		out = append(out, accountName{kind: kind, value: value, prefix: prefix, from: res.Type + " " + res.Name})
	}
	for _, res := range r.Resources {
		if n, ok := awsNamed[res.Type]; ok {
			switch {
			case str(res, n.name) != "":
				add(n.kind, str(res, n.name), false, res)
			case str(res, n.prefix) != "":
				add(n.kind, str(res, n.prefix), true, res)
			default: // Pulumi's auto-name: the logical name, a dash and a random suffix.
				add(n.kind, res.Name+"-", true, res)
			}
		}
		if tags := prop(res, "tags"); strings.HasPrefix(res.Type, "aws:") && tags.IsObject() {
			for k := range tags.ObjectValue() {
				if strings.HasPrefix(string(k), clusterTagPrefix) {
					add("cluster tag", string(k), false, res)
				}
			}
		}
		switch {
		case res.Type == "kubernetes:helm.sh/v3:Release" && str(res, "name") == "aws-load-balancer-controller":
			// The controller names its ALBs and tags everything it creates from this value.
			add("load balancer controller cluster name", str(res, "values", "clusterName"), false, res)
		case res.Type == "kubernetes:helm.sh/v3:Release" && str(res, "name") == "aws-ebs-csi-driver":
			add("cluster tag", clusterTagPrefix+str(res, "values", "controller", "k8sTagClusterId"), false, res)
		case res.Type == "kubernetes:apps/v1:DaemonSet" && strings.HasSuffix(res.Name, "-ccm"):
			for _, a := range prop(res, "spec", "template", "spec", "containers", 0, "args").ArrayValue() {
				if name, ok := strings.CutPrefix(a.StringValue(), "--cluster-name="); ok {
					// The CCM finds the cluster's resources by the tag of this name.
					add("cluster tag", clusterTagPrefix+name, false, res)
				}
			}
		case res.Type == "kubernetes:networking.k8s.io/v1:Ingress":
			if name := str(res, "metadata", "annotations", "alb.ingress.kubernetes.io/load-balancer-name"); name != "" {
				add("load balancer", name, false, res)
			}
		}
	}
	return out
}

// TestProdAndDevShareNoAccountWideName declares prod and dev side by side, as one AWS account
// holds them, and checks that no name AWS keeps unique per account or region, and no tag or
// cluster name a controller filters on, is the same in both: otherwise the second stack's
// `pulumi up` fails on a taken name, or its controllers act on the other stack's resources (the
// load balancer controller of prod looking for dev's ALB).
func TestProdAndDevShareNoAccountWideName(t *testing.T) {
	prod, dev := run(t, "prod"), run(t, "dev")
	prodNames, devNames := accountNames(prod), accountNames(dev)
	for _, kind := range []string{"IAM role", "IAM instance profile", "IAM OIDC provider", "key pair", "security group", "S3 bucket", "cluster tag", "load balancer controller cluster name"} {
		if !slices.ContainsFunc(prodNames, func(n accountName) bool { return n.kind == kind }) {
			t.Errorf("prod declares no %s: the collision check would not see it", kind)
		}
	}
	for _, p := range prodNames {
		for _, d := range devNames {
			if p.collides(d) {
				t.Errorf("%s %q (prod, %s) collides with %q (dev, %s)", p.kind, p.value, p.from, d.value, d.from)
			}
		}
	}
	// Within a stack, every controller must use the one cluster id: the CCM and the EBS CSI
	// driver find resources by the tag the AWS tier sets.
	for _, r := range []*offline.Result{prod, dev} {
		want := clusterTagPrefix + r.Config.ClusterID()
		for _, n := range accountNames(r) {
			if n.kind == "cluster tag" && n.value != want {
				t.Errorf("stack %s: %s uses cluster tag %q, want %q (the stack's cluster id)", r.Stack, n.from, n.value, want)
			}
			if n.kind == "load balancer controller cluster name" && n.value != r.Config.ClusterID() {
				t.Errorf("stack %s: the load balancer controller's clusterName is %q, want the cluster id %q", r.Stack, n.value, r.Config.ClusterID())
			}
		}
	}
}

// deleteLast are the resource types whose deletion cuts what a destroy still needs: a subnet's
// internet route, a security-group rule (SSH and 6443 from the deploying machine, egress), a
// role's permissions (the load balancer controller deleting its ALB).
var deleteLast = []string{
	"aws:ec2/routeTableAssociation:RouteTableAssociation",
	"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
	"aws:ec2/securityGroupRule:SecurityGroupRule",
	"aws:iam/rolePolicy:RolePolicy",
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment",
}

// upstream returns the URNs a resource waits for, directly or transitively, as the engine orders
// deletes: explicit and input-derived dependencies as the mocks record them, a dependency on a
// component standing for every resource under it.
func upstream(r *offline.Result, from *mocks.Resource) map[string]bool {
	byURN, children := map[string]*mocks.Resource{}, map[string][]string{}
	for _, res := range r.Resources {
		byURN[res.URN] = res
		children[res.Parent] = append(children[res.Parent], res.URN)
	}
	seen := map[string]bool{}
	var visit func(urn string)
	visit = func(urn string) {
		if seen[urn] {
			return
		}
		seen[urn] = true
		res := byURN[urn]
		if res == nil {
			return
		}
		if !res.Custom {
			for _, c := range children[urn] {
				visit(c)
			}
		}
		for _, d := range res.Dependencies {
			visit(d)
		}
	}
	for _, d := range from.Dependencies {
		visit(d)
	}
	return seen
}

// TestDestroyDeletesRoutesRulesAndPoliciesLast walks the dependency graph backwards from every
// instance, the Elastic IP, every remote command and every Kubernetes provider, and requires it
// to reach every route-table association, security-group rule and role policy. The engine
// deletes a resource only after everything that depends on it, so these then go last: during
// `pulumi destroy` the nodes keep their internet route, the deploying machine keeps SSH and the
// API, and the load balancer controller keeps the permissions to deregister the nodes from the
// bindings' target groups before it goes.
func TestDestroyDeletesRoutesRulesAndPoliciesLast(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		var needed []*mocks.Resource
		for _, typ := range deleteLast {
			for _, res := range r.OfType(typ) {
				// The office-hours role's policy names the instances, so it is deleted before
				// them; nothing on the nodes uses it.
				if strings.Contains(res.Parent, "waste-coach-infra:infra:OfficeHours") {
					continue
				}
				needed = append(needed, res)
			}
		}
		if len(r.OfType(deleteLast[0])) != 3 || len(r.OfType("aws:iam/rolePolicy:RolePolicy")) == 0 || len(r.OfType(deleteLast[1])) == 0 {
			t.Fatalf("the stack declares %d resources of %v: expected route-table associations, rules and policies", len(needed), deleteLast)
		}
		var users []*mocks.Resource
		for _, typ := range []string{"aws:ec2/instance:Instance", "aws:ec2/eip:Eip", remoteCommand, "pulumi:providers:kubernetes"} {
			if len(r.OfType(typ)) == 0 {
				t.Fatalf("the stack declares no %s", typ)
			}
			users = append(users, r.OfType(typ)...)
		}
		for _, u := range users {
			up := upstream(r, u)
			var missing []string
			for _, n := range needed {
				if !up[n.URN] {
					missing = append(missing, n.Name)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%s %s does not depend on %d of %d route associations, rules and policies (destroy would delete them first): %v",
					u.Type, u.Name, len(missing), len(needed), missing)
			}
		}
	})
}

// TestMastersAddressIsReservedBeforeOtherLaunches checks that the master's fixed private address
// is held by an explicit subnet CIDR reservation and that every other instance of that subnet
// (the storage node, in both stacks) launches only once the reservation exists: EC2 never assigns
// an address of an explicit reservation automatically, so a node launched while the master is
// being replaced cannot take the control plane's endpoint.
func TestMastersAddressIsReservedBeforeOtherLaunches(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		master := must(t, r, "aws:ec2/instance:Instance", "sesacthon-nodes-master")
		var reservation *mocks.Resource
		for _, res := range r.OfType("aws:ec2/subnetCidrReservation:SubnetCidrReservation") {
			if str(res, "cidrBlock") == str(master, "privateIp")+"/32" {
				reservation = res
			}
		}
		if reservation == nil {
			t.Fatalf("no subnet CIDR reservation holds the master's address %s/32", str(master, "privateIp"))
		}
		if str(reservation, "reservationType") != "explicit" {
			t.Errorf("reservation %s is of type %q, want explicit (a prefix reservation is handed out automatically)", reservation.Name, str(reservation, "reservationType"))
		}
		if str(reservation, "subnetId") != str(master, "subnetId") {
			t.Errorf("reservation %s is in subnet %s, the master in %s", reservation.Name, str(reservation, "subnetId"), str(master, "subnetId"))
		}
		sharing := 0
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			if inst == master || str(inst, "subnetId") != str(master, "subnetId") {
				continue
			}
			sharing++
			if !r.DependsOn(inst, reservation) {
				t.Errorf("%s shares the master's subnet but may launch before the master's address is reserved", inst.Name)
			}
		}
		if sharing == 0 {
			t.Errorf("no instance shares the master's subnet in stack %s: the storage node is expected there", r.Stack)
		}
	})
}

// TestProductionBucketCompanionsAreRetained checks each resource of the uploads bucket by name:
// on prod all are protected and retained like the bucket (deleting the versioning resource
// suspends versioning; deleting the public-access block or the TLS-only policy opens the bucket);
// on dev none is, so that destroy removes everything.
func TestProductionBucketCompanionsAreRetained(t *testing.T) {
	companions := []string{
		"aws:s3/bucketV2:BucketV2",
		"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
		"aws:s3/bucketPolicy:BucketPolicy",
		"aws:s3/bucketVersioningV2:BucketVersioningV2",
		"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
		"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
		"aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2",
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		prod := r.Config.Production
		for _, typ := range companions {
			res := must(t, r, typ, "sesacthon-uploads")
			if res.Protect != prod || res.RetainOnDelete != prod {
				t.Errorf("%s %s: protect=%v retainOnDelete=%v, want %v on stack %s (production=%v)",
					typ, res.Name, res.Protect, res.RetainOnDelete, prod, r.Stack, prod)
			}
		}
	})
}

// TestCloudControllerManagerPolicyHasNoWrites reads the cloud-controller-manager's pod role policy
// as declared and refuses any action that changes EC2 or load balancers: the CCM runs without routes
// and without LoadBalancer Services, so it only describes instances and zones.
func TestCloudControllerManagerPolicyHasNoWrites(t *testing.T) {
	r := run(t, "prod")
	doc := str(must(t, r, "aws:iam/rolePolicy:RolePolicy", "sesacthon-pod-identity-"+infra.PodRoleCCM), "policy")
	var parsed struct{ Statement []struct{ Action []string } }
	if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
		t.Fatalf("policy is not JSON: %v", err)
	}
	var actions []string
	for _, s := range parsed.Statement {
		actions = append(actions, s.Action...)
	}
	write := regexp.MustCompile(`(?i)^(ec2:(Delete|Detach|Create|Modify|Attach|Authorize|Revoke|Replace)|.*Route|.*SecurityGroup|elasticloadbalancing:|iam:|kms:)`)
	for _, a := range actions {
		if write.MatchString(a) {
			t.Errorf("the CCM policy allows %s: this CCM (no cloud routes, no LoadBalancer Services) never calls it", a)
		}
	}
	if !slices.Contains(actions, "ec2:DescribeInstances") {
		t.Errorf("the CCM policy lacks ec2:DescribeInstances: nodes would never be initialised")
	}
}

// TestPinnedZoneTheRegionDoesNotOfferIsRefused runs prod with a pinned zone the region's lookup
// does not return: the program must refuse it by key before declaring anything.
func TestPinnedZoneTheRegionDoesNotOfferIsRefused(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{
		"waste-coach-infra:availabilityZones": `["ap-northeast-2a","ap-northeast-2b","ap-northeast-2z"]`,
	}))
	if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:availabilityZones[2]") || !strings.Contains(err.Error(), "ap-northeast-2z") {
		t.Fatalf("a pinned zone the region lacks must be refused by key, got %v", err)
	}
	if len(r.Resources) != 0 {
		t.Errorf("%d resources were declared before the zone was refused", len(r.Resources))
	}
	// Subnet i (its CIDR is subnetCidrs[i]) must be in availabilityZones[i]; resources register
	// concurrently, so match by CIDR rather than by registration order.
	for _, s := range stacks {
		cfg := run(t, s).Config
		zones := map[string]string{}
		for _, sn := range run(t, s).OfType("aws:ec2/subnet:Subnet") {
			zones[str(sn, "cidrBlock")] = str(sn, "availabilityZone")
		}
		for i, cidr := range cfg.SubnetCIDRs {
			if got, want := zones[cidr.String()], cfg.AvailabilityZones[i]; got != want {
				t.Errorf("stack %s: subnet %s in zone %q, want the pinned %q", s, cidr, got, want)
			}
		}
	}
}
