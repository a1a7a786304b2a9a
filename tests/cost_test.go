package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/cost"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// billable maps each resource type AWS bills for to the estimate line that prices it; free lists
// every type that costs nothing by itself. A type in neither fails the test: a new billable
// resource cannot slip into the program without a price.
var billable = map[string]string{
	"aws:ec2/instance:Instance":                "EC2",
	"aws:ec2/eip:Eip":                          "Public IPv4, Elastic IP",
	"aws:s3/bucketV2:BucketV2":                 "S3 uploads",
	"aws:acm/certificate:Certificate":          "ACM certificate",
	"aws:route53/record:Record":                "Route53",
	"aws:lb/loadBalancer:LoadBalancer":         "ALB",
	"kubernetes:core/v1:PersistentVolumeClaim": "EBS gp3, persistent volumes",
	"kubernetes:helm.sh/v3:Release":            "EBS gp3, persistent volumes", // Prometheus's volume
	"aws:dlm/lifecyclePolicy:LifecyclePolicy":  "EBS snapshots",
	"aws:cloudwatch/logGroup:LogGroup":         "CloudWatch Logs ingestion",
}

var free = []string{
	"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable",
	"aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/keyPair:KeyPair",
	"aws:ec2/eipAssociation:EipAssociation", "aws:ec2/subnetCidrReservation:SubnetCidrReservation", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/instanceProfile:InstanceProfile",
	"aws:acm/certificateValidation:CertificateValidation", "aws:s3/bucketPolicy:BucketPolicy",
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketVersioningV2:BucketVersioningV2",
	"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
	"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2",
	"tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert", "random:index/randomPassword:RandomPassword", "random:index/randomBytes:RandomBytes",
	"command:remote:Command", "command:local:Command", "pulumi:providers:kubernetes",
	"aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule",
	"aws:ssm/parameter:Parameter", // standard tier: no charge
	// EventBridge Scheduler: the first 14 million invocations a month are free; office hours
	// make about 45.
	"aws:scheduler/schedule:Schedule", "aws:scheduler/scheduleGroup:ScheduleGroup",
	// Grafana's log reader: IAM users, their policies and keys cost nothing (its queries are
	// Logs Insights scans, priced per GB scanned and not estimated: an operator's occasional
	// look at a day of logs scans well under a GB).
	"aws:iam/user:User", "aws:iam/userPolicy:UserPolicy", "aws:iam/accessKey:AccessKey",
	// Pod identities: the OIDC provider costs nothing; the issuer's two documents are under 2 KB
	// and fetched by STS when it verifies a token (a few GETs an hour), well under a cent.
	"aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:s3/bucketObjectv2:BucketObjectv2",
	"aws:s3/bucketOwnershipControls:BucketOwnershipControls",
}

func TestEveryBillableResourceHasAPrice(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		e, err := cost.Compute(cost.FootprintOf(r.Config, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, cost.Prices[r.Config.Region])
		if err != nil {
			t.Fatal(err)
		}
		lines := e.Table()
		for _, res := range r.Resources {
			if !res.Custom || (strings.HasPrefix(res.Type, "kubernetes:") && billable[res.Type] == "") {
				continue // components, and Kubernetes objects that AWS does not bill
			}
			line, ok := billable[res.Type]
			if !ok {
				if !contains(free, res.Type) {
					t.Errorf("%s (%s) is neither priced nor listed as free: add it to the estimate or to the free list", res.Type, res.Name)
				}
				continue
			}
			if !strings.Contains(lines, line) {
				t.Errorf("%s is billable but the estimate has no %q line", res.Type, line)
			}
		}
	})
}

// TestEstimateMatchesTheDeclaredResources checks the footprint the estimate prices against the
// registrations themselves: the instances, their root volumes and the claimed volumes.
func TestEstimateMatchesTheDeclaredResources(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		f := cost.FootprintOf(r.Config, workloads.PersistentVolumeGiB())
		onDemand, spot := map[string]int{}, map[string]int{}
		roots := 0
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			if str(inst, "instanceMarketOptions", "marketType") == "spot" {
				spot[str(inst, "instanceType")]++
			} else {
				onDemand[str(inst, "instanceType")]++
			}
			roots += int(prop(inst, "rootBlockDevice", "volumeSize").NumberValue())
		}
		for _, c := range []struct {
			what             string
			priced, declared map[string]int
		}{{"on-demand", f.Instances, onDemand}, {"spot", f.SpotInstances, spot}} {
			for typ := range config.InstanceTypes {
				if c.priced[typ] != c.declared[typ] {
					t.Errorf("estimate prices %d %s %s, the program declares %d", c.priced[typ], c.what, typ, c.declared[typ])
				}
			}
		}
		if roots != f.RootGB {
			t.Errorf("estimate prices %d GB of root volumes, the program declares %d", f.RootGB, roots)
		}
		claimed := 10 // Prometheus's volume, claimed by its chart
		for _, pvc := range r.OfType("kubernetes:core/v1:PersistentVolumeClaim") {
			var gi int
			if _, err := fmt.Sscanf(str(pvc, "spec", "resources", "requests", "storage"), "%dGi", &gi); err != nil {
				t.Fatal(err)
			}
			claimed += gi
		}
		if claimed != f.VolumeGB {
			t.Errorf("estimate prices %d GB of volumes, the program claims %d", f.VolumeGB, claimed)
		}
		eips := len(r.OfType("aws:ec2/eip:Eip"))
		if f.ElasticIPs != eips {
			t.Errorf("estimate prices %d Elastic IPs, the program declares %d", f.ElasticIPs, eips)
		}
		// Every instance has a public address: the Elastic IP's, or its own from launch.
		if n := len(r.OfType("aws:ec2/instance:Instance")); f.NodePublicIPs+f.ElasticIPs != n {
			t.Errorf("estimate prices %d launch addresses and %d Elastic IPs for %d instances with public IPs", f.NodePublicIPs, f.ElasticIPs, n)
		}
		// The hours the instances are priced for are the hours the schedule lets them run.
		wantHours := float64(cost.HoursPerMonth)
		if starts := r.OfType("aws:scheduler/schedule:Schedule"); len(starts) > 0 {
			wantHours = cost.RunningHoursPerMonth(r.Config.OfficeHours.HoursPerWeek())
		}
		if f.RunningHours != wantHours {
			t.Errorf("estimate prices %g running hours, the program's schedule runs the instances %g", f.RunningHours, wantHours)
		}
	})
}
