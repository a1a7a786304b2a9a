package tests

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

func TestEveryResourceHasAUniqueURNAndAParent(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		seen := map[string]bool{}
		for _, res := range r.Resources {
			if seen[res.URN] {
				t.Errorf("two resources share URN %s: pulumi up would refuse the program", res.URN)
			}
			seen[res.URN] = true
			top := strings.HasPrefix(res.Type, "waste-coach-infra:") && (strings.HasSuffix(res.Type, ":Infra") || strings.HasSuffix(res.Type, ":Cluster") || strings.HasSuffix(res.Type, ":Workloads"))
			// The parent's type, not its URN: every URN contains the project name.
			if parentType := string(resource.URN(res.Parent).Type()); !top && !strings.HasPrefix(parentType, "waste-coach-infra:") {
				t.Errorf("%s %s is not parented to a component (parent %q)", res.Type, res.Name, res.Parent)
			}
		}
	})
}

func TestSubnetsAreTheSeedsInThreeZones(t *testing.T) {
	want := map[string][]string{
		"prod": {"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"},
		"dev":  {"10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24"},
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		subnets := r.OfType("aws:ec2/subnet:Subnet")
		var cidrs, zones []string
		for _, s := range subnets {
			cidrs = append(cidrs, str(s, "cidrBlock"))
			zones = append(zones, str(s, "availabilityZone"))
			if str(s, "mapPublicIpOnLaunch") != "true" {
				t.Errorf("subnet %s does not give instances a public IP (there is no NAT gateway)", s.Name)
			}
			if str(s, "tags", "kubernetes.io/role/elb") != "1" || str(s, "tags", "kubernetes.io/cluster/"+r.Config.ClusterID()) == "" {
				t.Errorf("subnet %s lacks the tags the load balancer controller discovers subnets by", s.Name)
			}
		}
		slices.Sort(cidrs)
		if !slices.Equal(cidrs, want[r.Stack]) {
			t.Errorf("subnet CIDRs = %v, want %v", cidrs, want[r.Stack])
		}
		slices.Sort(zones)
		if len(slices.Compact(slices.Clone(zones))) != 3 {
			t.Errorf("subnets are in zones %v, want 3 distinct zones", zones)
		}
		if n := len(r.OfType("aws:ec2/natGateway:NatGateway")); n != 0 {
			t.Errorf("%d NAT gateways declared; the design has none (cost)", n)
		}
		if rt := r.OfType("aws:ec2/routeTable:RouteTable"); len(rt) != 1 || str(rt[0], "routes", 0, "cidrBlock") != "0.0.0.0/0" {
			t.Errorf("want one route table with a default route to the internet gateway")
		}
	})
}

func TestNodesMatchTheDesignTable(t *testing.T) {
	want := map[string]map[string][2]string{ // role -> {instance type, root GiB}
		"prod": {"master": {"t3.large", "80"}, "worker-1": {"t3.medium", "40"}, "worker-2": {"t3.medium", "40"}, "storage": {"t3.large", "100"}},
		"dev":  {"master": {"t3.large", "50"}, "worker-1": {"t3.medium", "30"}, "worker-2": {"t3.medium", "30"}, "storage": {"t3.medium", "30"}},
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		instances := r.OfType("aws:ec2/instance:Instance")
		if len(instances) != 4 {
			t.Fatalf("%d instances, want 4", len(instances))
		}
		for _, inst := range instances {
			role := str(inst, "tags", "Role")
			w, ok := want[r.Stack][role]
			if !ok {
				t.Errorf("instance %s has unexpected role tag %q", inst.Name, role)
				continue
			}
			if got := str(inst, "instanceType"); got != w[0] {
				t.Errorf("%s instance type = %s, want %s", role, got, w[0])
			}
			if str(inst, "metadataOptions", "httpTokens") != "required" || str(inst, "metadataOptions", "httpPutResponseHopLimit") != "2" {
				t.Errorf("%s: IMDSv2 must be required with hop limit 2 (pods reach it one hop further), got tokens=%q hops=%q",
					role, str(inst, "metadataOptions", "httpTokens"), str(inst, "metadataOptions", "httpPutResponseHopLimit"))
			}
			if str(inst, "rootBlockDevice", "encrypted") != "true" || str(inst, "rootBlockDevice", "volumeType") != "gp3" {
				t.Errorf("%s root volume must be encrypted gp3", role)
			}
			if got := str(inst, "rootBlockDevice", "volumeSize"); got != w[1] {
				t.Errorf("%s root volume = %s GiB, want %s", role, got, w[1])
			}
			if !strings.Contains(preparation(t, r, role), "kubeadm") {
				t.Errorf("%s: the preparation its bootstrap runs does not prepare the node for kubeadm", role)
			}
		}
		if master := must(t, r, "aws:ec2/instance:Instance", "sesacthon-nodes-master"); str(master, "privateIp") == "" || !master.DeleteBeforeReplace {
			t.Errorf("the master needs a fixed private IP (the in-VPC endpoint) and delete-before-replace (two instances cannot hold it)")
		}
		if len(r.OfType("aws:ec2/eipAssociation:EipAssociation")) != 1 {
			t.Errorf("the control plane has no Elastic IP: its public endpoint would change on stop/start")
		}
	})
}

func TestNoAdminPortIsOpenToTheWorld(t *testing.T) {
	admin := map[string][]string{"prod": {"198.51.100.0/24", "192.0.2.10/32"}, "dev": {"198.51.100.0/24"}}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		albGroup := must(t, r, "aws:ec2/securityGroup:SecurityGroup", "sesacthon-sg-alb")
		for _, rule := range r.OfType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
			cidr, from, to := str(rule, "cidrIpv4"), str(rule, "fromPort"), str(rule, "toPort")
			albWeb := strings.HasPrefix(rule.Name, "sesacthon-sg-alb-") && (from == "80" || from == "443") && from == to
			if cidr == "0.0.0.0/0" && !albWeb {
				t.Errorf("rule %s opens ports %s-%s to the world (only the ALB's 80 and 443 may be)", rule.Name, from, to)
			}
			if (from == "22" || from == "6443") && cidr != "" && !slices.Contains(admin[r.Stack], cidr) && !strings.HasPrefix(cidr, "10.") {
				t.Errorf("rule %s opens admin port %s to %s, which is not an admin CIDR", rule.Name, from, cidr)
			}
			if from == "30000" && (cidr != "" || str(rule, "referencedSecurityGroupId") == "" || !r.DependsOn(rule, albGroup)) {
				t.Errorf("NodePorts (rule %s) are open to %q/%q; only the ALB's security group may reach them", rule.Name, cidr, str(rule, "referencedSecurityGroupId"))
			}
			if (from == "2379" || from == "10250" || from == "4789") && str(rule, "referencedSecurityGroupId") == "" {
				t.Errorf("cluster-internal port %s (rule %s) is open to a CIDR instead of the cluster's own group", from, rule.Name)
			}
		}
		for _, port := range []string{"22", "6443", "10250", "4789", "2379", "30000"} {
			found := false
			for _, rule := range r.OfType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
				found = found || str(rule, "fromPort") == port
			}
			if !found {
				t.Errorf("no ingress rule for port %s: the cluster would not work", port)
			}
		}
	})
}

func TestUploadsBucketIsVersionedPrivateAndArchived(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		// The uploads bucket's resources; the backups bucket has its own test (backups_test.go).
		uploads := func(typ string) []*mocks.Resource { return withSuffix(r.OfType(typ), "-uploads") }
		buckets := uploads("aws:s3/bucketV2:BucketV2")
		if len(buckets) != 1 {
			t.Fatalf("%d buckets, want the one uploads bucket", len(buckets))
		}
		b := buckets[0]
		wantName := map[string]string{"prod": "prod-sesacthon-images", "dev": "dev-sesacthon-images"}[r.Stack]
		if got := str(b, "bucket"); got != wantName {
			t.Errorf("bucket name = %s, want %s", got, wantName)
		}
		prod := r.Stack == "prod"
		if b.Protect != prod || b.RetainOnDelete != prod {
			t.Errorf("bucket protect=%v retainOnDelete=%v, want %v on stack %s", b.Protect, b.RetainOnDelete, prod, r.Stack)
		}
		if v := uploads("aws:s3/bucketVersioningV2:BucketVersioningV2"); len(v) != 1 || str(v[0], "versioningConfiguration", "status") != "Enabled" {
			t.Errorf("bucket versioning is not enabled")
		}
		pab := uploads("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
		for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			if len(pab) != 1 || str(pab[0], k) != "true" {
				t.Errorf("public access block %s is not on", k)
			}
		}
		lc := uploads("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
		if len(lc) != 1 {
			t.Fatalf("no lifecycle configuration")
		}
		wantClass := map[string]string{"prod": "GLACIER", "dev": "STANDARD_IA"}[r.Stack]
		if str(lc[0], "rules", 0, "transitions", 0, "storageClass") != wantClass || str(lc[0], "rules", 0, "transitions", 0, "days") != "30" {
			t.Errorf("lifecycle transition = %s after %s days, want %s after 30",
				str(lc[0], "rules", 0, "transitions", 0, "storageClass"), str(lc[0], "rules", 0, "transitions", 0, "days"), wantClass)
		}
		if str(lc[0], "rules", 1, "abortIncompleteMultipartUpload", "daysAfterInitiation") == "" {
			t.Errorf("incomplete multipart uploads are never aborted")
		}
		if sse := uploads("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"); len(sse) != 1 {
			t.Errorf("no default encryption")
		}
		if cors := uploads("aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2"); len(cors) != 1 || !strings.Contains(prop(cors[0], "corsRules", 0, "allowedMethods").String(), "PUT") {
			t.Errorf("CORS does not allow the browser's PUT to a pre-signed URL")
		}
		if pol := uploads("aws:s3/bucketPolicy:BucketPolicy"); len(pol) != 1 || !strings.Contains(str(pol[0], "policy"), `"aws:SecureTransport":"false"`) {
			t.Errorf("bucket policy does not deny non-TLS requests")
		}
	})
}

func TestCertificateCoversApexAndWildcardWithOneValidationRecord(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		domain := map[string]string{"prod": "wastecoach.example.com", "dev": "dev.wastecoach.example.com"}[r.Stack]
		certs := r.OfType("aws:acm/certificate:Certificate")
		if len(certs) != 1 {
			t.Fatalf("%d certificates, want 1", len(certs))
		}
		if str(certs[0], "domainName") != domain || str(certs[0], "subjectAlternativeNames", 0) != "*."+domain {
			t.Errorf("certificate covers %s + %s, want %s + *.%s", str(certs[0], "domainName"), str(certs[0], "subjectAlternativeNames", 0), domain, domain)
		}
		var validation int
		for _, rec := range r.OfType("aws:route53/record:Record") {
			if strings.HasSuffix(rec.Name, "cert-validation") {
				validation++
			}
		}
		if validation != 1 {
			t.Errorf("%d validation records; apex and wildcard share one CNAME, declare it once", validation)
		}
		if len(r.OfType("aws:acm/certificateValidation:CertificateValidation")) != 1 {
			t.Errorf("the certificate is never waited for")
		}
	})
}

func TestNodeRolesHaveLeastPrivilege(t *testing.T) {
	r := run(t, "prod")
	policies := map[string]string{} // role name -> all its inline policy documents
	for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
		if strings.HasSuffix(p.Name, "-snapshots") {
			continue // the Data Lifecycle Manager's role, not a node's (backups_test.go)
		}
		role := strings.TrimSuffix(strings.TrimPrefix(str(p, "role"), r.Config.ClusterID()+"-"), "-"+mocks.Placeholder)
		policies[role] += str(p, "policy") + "\n"
	}
	if len(policies) != 4 {
		t.Fatalf("inline policies for roles %v, want the four node roles", slices.Sorted(maps.Keys(policies)))
	}
	can := func(role, action string) bool { return strings.Contains(policies[role], `"`+action+`"`) }
	for role, docs := range policies {
		if strings.Contains(docs, `"Action":["*"]`) {
			t.Errorf("role %s allows every action", role)
		}
		if strings.Contains(docs, `"s3:*"`) {
			t.Errorf("role %s allows every S3 action", role)
		}
	}
	for _, c := range []struct {
		role, action string
		want         bool
		why          string
	}{
		{"master", "elasticloadbalancing:RegisterTargets", true, "the load balancer controller runs on the master and registers the nodes"},
		{"master", "ec2:CreateVolume", true, "the EBS CSI controller runs on the master"},
		{"master", "ec2:DescribeInstances", true, "the cloud-controller-manager runs on the master"},
		{"worker-1", "s3:PutObject", true, "the API signs upload URLs with worker-1's role"},
		{"worker-2", "s3:GetObject", true, "Celery workers read uploads"},
		{"worker-1", "ec2:CreateVolume", false, "only the master runs the EBS CSI controller"},
		{"worker-2", "elasticloadbalancing:RegisterTargets", false, "only the master runs the load balancer controller"},
	} {
		if can(c.role, c.action) != c.want {
			t.Errorf("role %s allowed %s = %v, want %v: %s", c.role, c.action, !c.want, c.want, c.why)
		}
	}
	// The storage node writes backups (backups_test.go) but never touches uploads.
	if strings.Contains(policies["storage"], "arn:aws:s3:::prod-sesacthon-images") {
		t.Errorf("the storage node may reach the uploads bucket: it never touches uploads")
	}
	if !strings.Contains(policies["worker-1"], "arn:aws:s3:::prod-sesacthon-images/*") {
		t.Errorf("worker-1's S3 access is not limited to the uploads bucket")
	}
}
