package tests

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
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
			if str(inst, "metadataOptions", "httpTokens") != "required" || str(inst, "metadataOptions", "httpPutResponseHopLimit") != "1" {
				t.Errorf("%s: IMDSv2 must be required with hop limit 1 (no pod, one hop further, gets the node role's credentials), got tokens=%q hops=%q",
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

// TestNodeRolesHaveLeastPrivilege: a node's role holds only what the node's own boot and the
// kubelet use (describe itself, read its preparation parameter, Session Manager; the master also
// looks for the etcd snapshot to restore and marks the cluster as having run), so whatever takes
// a node's credentials can neither touch volumes, move targets, ship logs nor write to a bucket.
// Each AWS-facing component in a pod has a role of its own (IRSA) with its one policy, on this
// stack's resources, and holds its component's sensitive actions alone.
func TestNodeRolesHaveLeastPrivilege(t *testing.T) {
	r := run(t, "prod")
	const nodePrefix, podPrefix = "sesacthon-iam-", "sesacthon-pod-identity-"
	nodes := map[string]map[string]policyDoc{} // node role -> policy name -> document
	pods := map[string]policyDoc{}             // pod role key -> its one policy
	podJSON := map[string]string{}
	for _, p := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
		// The AWS name of the role the policy is attached to: <cluster id>-<role>-<unique suffix>.
		role := strings.TrimSuffix(strings.TrimPrefix(str(p, "role"), r.Config.ClusterID()+"-"), "-"+mocks.Placeholder)
		switch {
		case strings.HasPrefix(p.Name, nodePrefix):
			name, ok := strings.CutPrefix(p.Name, nodePrefix+role+"-")
			if !ok {
				t.Errorf("node role policy %s is attached to role %s", p.Name, str(p, "role"))
				continue
			}
			if nodes[role] == nil {
				nodes[role] = map[string]policyDoc{}
			}
			nodes[role][name] = parsePolicy(t, p)
		case strings.HasPrefix(p.Name, podPrefix):
			key := strings.TrimPrefix(p.Name, podPrefix)
			if key != role {
				t.Errorf("pod role policy %s is attached to role %s, not %s's", p.Name, str(p, "role"), key)
			}
			if _, dup := pods[key]; dup {
				t.Errorf("pod role %s has two inline policies", key)
			}
			pods[key], podJSON[key] = parsePolicy(t, p), str(p, "policy")
		case p.Name == "sesacthon-snapshots" || p.Name == "sesacthon-office-hours-start-stop":
			continue // the Data Lifecycle Manager's and the scheduler's roles (their own tests)
		default:
			t.Errorf("role policy %s belongs to neither a node role (%s*) nor a pod role (%s*)", p.Name, nodePrefix, podPrefix)
		}
	}

	// The node roles and their policies.
	base := []string{"bootstrap", "node", "session-manager"}
	wantNodes := map[string][]string{
		"master":   {"bootstrap", "etcd-restore", "node", "session-manager"},
		"worker-1": base, "worker-2": base, "storage": base,
	}
	if got := slices.Sorted(maps.Keys(nodes)); !slices.Equal(got, slices.Sorted(maps.Keys(wantNodes))) {
		t.Fatalf("inline policies for node roles %v, want the four node roles %v", got, slices.Sorted(maps.Keys(wantNodes)))
	}
	for role, want := range wantNodes {
		if got := slices.Sorted(maps.Keys(nodes[role])); !slices.Equal(got, want) {
			t.Errorf("node role %s has policies %v, want exactly %v", role, got, want)
		}
	}

	// The pod roles: one per component that calls AWS, each with its own policy on this stack's
	// resources.
	var wantPods []string
	for _, pr := range infra.PodRoles {
		wantPods = append(wantPods, pr.Key)
	}
	slices.Sort(wantPods)
	if got := slices.Sorted(maps.Keys(pods)); !slices.Equal(got, wantPods) {
		t.Fatalf("inline policies for pod roles %v, want one per pod role %v", got, wantPods)
	}
	groups := r.OfType("aws:cloudwatch/logGroup:LogGroup")
	if len(groups) != 1 {
		t.Fatalf("%d log groups, want 1", len(groups))
	}
	const uploadsBucket, backupsBucket = "arn:aws:s3:::prod-sesacthon-images", "arn:aws:s3:::prod-sesacthon-backups"
	arns := infra.PodRoleResources{UploadsBucket: uploadsBucket, BackupsBucket: backupsBucket, LogGroup: groups[0].Outputs["arn"].StringValue()}
	for _, key := range wantPods {
		if want := infra.PodRolePolicy(r.Config, key, arns).JSON(); podJSON[key] != want {
			t.Errorf("pod role %s's policy is\n%s\nwant its component's, on this stack's resources:\n%s", key, podJSON[key], want)
		}
	}

	// allowed returns the resources of the Allow statements whose actions cover action.
	allowed := func(docs []policyDoc, action string) (res []string, ok bool) {
		for _, d := range docs {
			for _, s := range d.Statement {
				if s.Effect == "Allow" && slices.ContainsFunc(s.Action, func(a string) bool { return iamMatch(a, action) }) {
					res, ok = append(res, resources(s.Resource)...), true
				}
			}
		}
		return res, ok
	}
	all := map[string][]policyDoc{} // "node <role>" or "pod <key>" -> its documents
	for role, docs := range nodes {
		all["node "+role] = slices.Collect(maps.Values(docs))
	}
	for key, doc := range pods {
		all["pod "+key] = []policyDoc{doc}
	}
	for who, docs := range all {
		for _, d := range docs {
			for _, s := range d.Statement {
				for _, a := range s.Action {
					if s.Effect == "Allow" && (a == "*" || strings.HasSuffix(a, ":*")) {
						t.Errorf("%s role allows every action %s", who, a)
					}
				}
			}
		}
	}

	// The components' permissions, each on its own pod role and on no node role.
	for _, c := range []struct {
		key, action, why string
	}{
		{infra.PodRoleLoadBalancer, "elasticloadbalancing:RegisterTargets", "the load balancer controller registers the nodes"},
		{infra.PodRoleEBSCSI, "ec2:CreateVolume", "the EBS CSI controller creates the volumes"},
		{infra.PodRoleCCM, "ec2:DescribeInstances", "the cloud-controller-manager initialises the nodes"},
		{infra.PodRoleUploads, "s3:PutObject", "the API signs upload URLs with the uploads role"},
		{infra.PodRoleUploads, "s3:GetObject", "Celery workers read uploads"},
		{infra.PodRoleLogs, "logs:PutLogEvents", "Fluent Bit ships the logs"},
	} {
		if _, ok := allowed(all["pod "+c.key], c.action); !ok {
			t.Errorf("pod role %s may not %s: %s", c.key, c.action, c.why)
		}
	}
	// The sensitive actions: each held by its component's pod role alone, by no node role.
	holder := map[string]string{
		"ec2:AttachVolume":                     infra.PodRoleEBSCSI,
		"ec2:CreateVolume":                     infra.PodRoleEBSCSI,
		"ec2:DeleteVolume":                     infra.PodRoleEBSCSI,
		"elasticloadbalancing:RegisterTargets": infra.PodRoleLoadBalancer,
		"logs:PutLogEvents":                    infra.PodRoleLogs,
	}
	for action, key := range holder {
		for who, docs := range all {
			if res, ok := allowed(docs, action); ok && who != "pod "+key {
				t.Errorf("%s role may %s on %v: only the %s pod role may", who, action, res, key)
			}
		}
	}
	// A node role writes to no bucket, but for the master's mark that the cluster has run.
	for role, docs := range nodes {
		res, ok := allowed(slices.Collect(maps.Values(docs)), "s3:PutObject")
		if ok && (role != "master" || !slices.Equal(res, []string{backupsBucket + "/" + config.MarkPrefix + "/*"})) {
			t.Errorf("node role %s may s3:PutObject on %v: a node writes only the cluster's mark, the master's %s/%s/*", role, res, backupsBucket, config.MarkPrefix)
		}
	}
	// The uploads bucket: the uploads pod role's only bucket, and nobody else's.
	for who, docs := range all {
		for _, d := range docs {
			for _, s := range d.Statement {
				if s.Effect != "Allow" || !slices.ContainsFunc(s.Action, func(a string) bool { return a == "*" || strings.HasPrefix(strings.ToLower(a), "s3:") }) {
					continue
				}
				for _, res := range resources(s.Resource) {
					if who == "pod "+infra.PodRoleUploads {
						if res != uploadsBucket && res != uploadsBucket+"/*" {
							t.Errorf("the uploads role's S3 access is not limited to the uploads bucket: %s", res)
						}
					} else if arnMatch(res, uploadsBucket) || arnMatch(res, uploadsBucket+"/x") {
						t.Errorf("%s role may reach the uploads bucket (%s): only the uploads role touches uploads", who, res)
					}
				}
			}
		}
	}
	if res, _ := allowed(all["pod "+infra.PodRoleUploads], "s3:PutObject"); !slices.Contains(res, uploadsBucket+"/*") {
		t.Errorf("the uploads role may not put objects in the uploads bucket (%v)", res)
	}
}
