package mocks

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// upgradeTargetRE finds the release an upgrade step's script targets.
var upgradeTargetRE = regexp.MustCompile(`(?m)^target="([0-9.]+)"$`)

// fabricate returns an id and outputs for a new resource: its inputs, plus what the cloud would
// compute, marked as a placeholder. Called with m.mu held.
func (m *Mocks) fabricate(args pulumi.MockResourceArgs) (string, resource.PropertyMap) {
	in := args.Inputs
	out := in.Copy()
	set := func(k string, v any) { out[resource.PropertyKey(k)] = resource.NewPropertyValue(v) }
	str := func(k string) string {
		if v, ok := in[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	short := args.TypeToken[strings.LastIndex(args.TypeToken, ":")+1:]
	id := fmt.Sprintf("%s-%s%04d", strings.ToLower(short), Placeholder, m.counter)
	arn := fmt.Sprintf("arn:aws:%s:%s:123456789012:%s/%s", strings.Split(strings.Split(args.TypeToken, ":")[1], "/")[0], m.region, strings.ToLower(short), args.Name)

	switch args.TypeToken {
	case "pulumi:pulumi:StackReference":
		// The engine answers with the referenced stack's outputs (an empty object when it has
		// none); the only stack the program reads is its own.
		set("outputs", resource.NewPropertyMapFromMap(m.PreviousOutputs))
	case "aws:ec2/vpc:Vpc":
		id = "vpc-" + Placeholder
	case "aws:ec2/subnet:Subnet":
		cidr, _ := netip.ParsePrefix(str("cidrBlock"))
		m.fabricatedSubnets[id] = subnetInfo{cidr: cidr, az: str("availabilityZone")}
	case "aws:ec2/instance:Instance":
		id = fmt.Sprintf("i-%s%04d", Placeholder, m.counter)
		sn := m.fabricatedSubnets[str("subnetId")]
		ip := str("privateIp")
		if ip == "" {
			m.hosts[sn.cidr]++
			a := sn.cidr.Addr()
			for range 20 + m.hosts[sn.cidr] {
				a = a.Next()
			}
			ip = a.String()
		}
		set("privateIp", ip)
		set("privateDns", fmt.Sprintf("ip-%s.%s.compute.internal", strings.ReplaceAll(ip, ".", "-"), m.region))
		set("publicIp", fmt.Sprintf("203.0.113.%d", 10+m.counter%200))
		set("availabilityZone", sn.az)
		set("arn", arn)
		// As the AWS provider reports them: a spot instance's request id and lifecycle, and
		// empty strings (not absent: a missing output is unknown in every preview) otherwise.
		request, lifecycle := "", ""
		if mo, ok := in["instanceMarketOptions"]; ok && mo.IsObject() {
			if mt, ok := mo.ObjectValue()["marketType"]; ok && mt.IsString() && mt.StringValue() == "spot" {
				request, lifecycle = fmt.Sprintf("sir-%s%04d", Placeholder, m.counter), "spot"
			}
		}
		set("spotInstanceRequestId", request)
		set("instanceLifecycle", lifecycle)
	case "aws:ec2/eip:Eip":
		set("publicIp", "198.51.100.10")
		set("allocationId", "eipalloc-"+Placeholder)
	case "aws:ec2/eipAssociation:EipAssociation":
		set("publicIp", "198.51.100.10")
	case "aws:ec2/keyPair:KeyPair":
		set("keyName", str("keyNamePrefix")+Placeholder)
	case "aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:ec2/securityGroup:SecurityGroup":
		// AWS's name: the given one, else the prefix with a unique suffix, else Pulumi's
		// auto-name, which starts with the logical name.
		name := str("name")
		if name == "" {
			name = str("namePrefix") + Placeholder
		}
		if name == Placeholder {
			name = args.Name + "-" + Placeholder
		}
		set("name", name)
		set("arn", arn)
	case "aws:scheduler/scheduleGroup:ScheduleGroup":
		id = str("name")
		set("arn", fmt.Sprintf("arn:aws:scheduler:%s:123456789012:schedule-group/%s", m.region, id))
	case "aws:scheduler/schedule:Schedule":
		set("arn", fmt.Sprintf("arn:aws:scheduler:%s:123456789012:schedule/%s/%s", m.region, str("groupName"), str("name")))
	case "aws:s3/bucketV2:BucketV2":
		id = str("bucket")
		set("arn", "arn:aws:s3:::"+id)
	case "aws:acm/certificate:Certificate":
		set("arn", arn)
		domain := str("domainName")
		record := map[string]any{
			"resourceRecordName":  "_" + Placeholder + "." + domain + ".",
			"resourceRecordType":  "CNAME",
			"resourceRecordValue": "_" + Placeholder + ".acm-validations.aws.",
		}
		// ACM lists the apex and the wildcard separately, with the same record.
		opts := []any{}
		for _, d := range []string{domain, "*." + domain} {
			o := map[string]any{"domainName": d}
			for k, v := range record {
				o[k] = v
			}
			opts = append(opts, o)
		}
		set("domainValidationOptions", opts)
	case "aws:acm/certificateValidation:CertificateValidation":
		out["certificateArn"] = in["certificateArn"]
	case "aws:route53/record:Record":
		set("fqdn", strings.TrimSuffix(str("name"), "."))
	case "tls:index/privateKey:PrivateKey":
		set("publicKeyOpenssh", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"+Placeholder+" generated")
		set("privateKeyOpenssh", "-----BEGIN OPENSSH PRIVATE KEY-----\n"+Placeholder+"\n-----END OPENSSH PRIVATE KEY-----\n")
		set("privateKeyPem", Placeholder)
		if str("algorithm") == "RSA" {
			if private, public, err := rsaKeyPEM(); err == nil {
				set("privateKeyPem", private)
				set("publicKeyPem", public)
			}
		}
	case "tls:index/selfSignedCert:SelfSignedCert":
		commonName, hours := "", 24
		if subject, ok := in["subject"]; ok && subject.IsObject() {
			if cn, ok := subject.ObjectValue()["commonName"]; ok && cn.IsString() {
				commonName = cn.StringValue()
			}
		}
		if v, ok := in["validityPeriodHours"]; ok && v.IsNumber() {
			hours = int(v.NumberValue())
		}
		isCA := false
		if v, ok := in["isCaCertificate"]; ok && v.IsBool() {
			isCA = v.BoolValue()
		}
		if cert, err := selfSignedPEM(commonName, isCA, hours); err == nil {
			set("certPem", cert)
		}
	case "random:index/randomBytes:RandomBytes":
		// 32 zero bytes: the right length for a secretbox key, and plainly not a real one.
		set("base64", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		set("hex", strings.Repeat("00", 32))
	case "random:index/randomPassword:RandomPassword":
		set("result", Placeholder+"-password-"+args.Name)
	case "command:remote:Command":
		set("stdout", Placeholder+"-stdout-of-"+args.Name)
		switch {
		case strings.HasSuffix(args.Name, "-pki-read"):
			// A new stack's master, not initialised yet, has no identity to adopt.
			set("stdout", "")
		case strings.Contains(args.Name, "-join-token-"):
			// kubeadm token create prints one bootstrap token.
			set("stdout", "abcdef.0123456789abcdef\n")
		case strings.Contains(args.Name, "-upgrade-") && upgradeTargetRE.MatchString(str("create")):
			// An upgrade step ends by saying what its node runs (cluster/scripts/upgrade.sh.tmpl):
			// here, the release its script targets.
			set("stdout", fmt.Sprintf("node %s runs Kubernetes %s\n", args.Name, upgradeTargetRE.FindStringSubmatch(str("create"))[1]))
		}
		set("stderr", "")
	case "aws:lb/loadBalancer:LoadBalancer":
		set("dnsName", fmt.Sprintf("%s-%s.%s.elb.amazonaws.com", str("name"), Placeholder, m.region))
		set("zoneId", "Z"+strings.ToUpper(Placeholder)+"ALBZONE")
		// ELBv2's ARNs: the service is elasticloadbalancing, the AWS name (not Pulumi's), then
		// an id AWS appends (16 hex digits), so that policies scoped by ARN pattern are tested
		// against what AWS returns.
		set("arn", fmt.Sprintf("arn:aws:elasticloadbalancing:%s:123456789012:loadbalancer/app/%s/%016x", m.region, str("name"), m.counter))
	case "aws:lb/targetGroup:TargetGroup":
		set("arn", fmt.Sprintf("arn:aws:elasticloadbalancing:%s:123456789012:targetgroup/%s/%016x", m.region, str("name"), m.counter))
	case "kubernetes:networking.k8s.io/v1:Ingress":
		set("status", map[string]any{"loadBalancer": map[string]any{"ingress": []any{
			map[string]any{"hostname": fmt.Sprintf("k8s-%s-alb.%s.elb.amazonaws.com", Placeholder, m.region)},
		}}})
	case "aws:cloudwatch/logGroup:LogGroup":
		// CloudWatch Logs' ARN: service logs, the group after "log-group:", no ":*" suffix.
		id = str("name")
		set("arn", fmt.Sprintf("arn:aws:logs:%s:123456789012:log-group:%s", m.region, id))
	case "aws:iam/accessKey:AccessKey":
		id = "AKIA" + strings.ToUpper(Placeholder)
		set("secret", Placeholder+"-secret-access-key")
	case "kubernetes:helm.sh/v3:Release":
		set("status", map[string]any{"status": "deployed", "name": str("name"), "namespace": str("namespace")})
	}
	if strings.HasPrefix(args.TypeToken, "kubernetes:") && args.TypeToken != "kubernetes:helm.sh/v3:Release" {
		if md, ok := in["metadata"]; ok && md.IsObject() {
			if n, ok := md.ObjectValue()["name"]; ok && n.IsString() {
				id = n.StringValue()
			}
		}
	}
	if _, ok := out["arn"]; !ok && strings.HasPrefix(args.TypeToken, "aws:") {
		set("arn", arn)
	}
	return id, out
}
