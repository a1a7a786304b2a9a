package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waste-coach/infra/cost"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// TestProductionKeepsTheALBsAccessLogs: on production (albAccessLogs in Pulumi.prod.yaml) the ALB
// sends its access logs to the stack's own bucket, which only Elastic Load Balancing's account for
// the region may write to, under this account's prefix only, over TLS; the logs expire with the
// stack's log retention and the estimate prices them. Dev keeps none.
func TestProductionKeepsTheALBsAccessLogs(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		alb := must(t, r, "aws:lb/loadBalancer:LoadBalancer", "sesacthon-alb")
		enabled := prop(alb, "accessLogs", "enabled")
		if !r.Config.Production {
			// Declared off, not left out: the provider ignores a removed access_logs block.
			if !enabled.IsBool() || enabled.BoolValue() {
				t.Errorf("dev's ALB access logs: enabled %v, want declared false", enabled)
			}
			for _, b := range r.OfType("aws:s3/bucketV2:BucketV2") {
				if strings.Contains(b.Name, "access-logs") {
					t.Errorf("dev declares the access-log bucket %s", b.Name)
				}
			}
			return
		}
		if !enabled.IsBool() || !enabled.BoolValue() || str(alb, "accessLogs", "bucket") != r.Config.Logs.ALBLogsBucket {
			t.Fatalf("the ALB's access logs: enabled %v to %q, want on to %s", enabled, str(alb, "accessLogs", "bucket"), r.Config.Logs.ALBLogsBucket)
		}
		policy := parsePolicy(t, must(t, r, "aws:s3/bucketPolicy:BucketPolicy", "sesacthon-alb-access-logs"))
		bucket := "arn:aws:s3:::" + r.Config.Logs.ALBLogsBucket
		elb := "arn:aws:iam::600734575887:root" // Elastic Load Balancing in ap-northeast-2
		var allows []string
		for _, s := range policy.Statement {
			if s.Effect == "Allow" {
				allows = append(allows, fmt.Sprint(s.Principal, s.Action, s.Resource))
			}
		}
		want := fmt.Sprint(map[string]any{"AWS": elb}, []string{"s3:PutObject"}, bucket+"/AWSLogs/123456789012/*")
		if len(allows) != 1 || allows[0] != want {
			t.Errorf("the access-log bucket allows %v, want only %s", allows, want)
		}
		if !strings.Contains(str(must(t, r, "aws:s3/bucketPolicy:BucketPolicy", "sesacthon-alb-access-logs"), "policy"), `"aws:SecureTransport":"false"`) {
			t.Error("the access-log bucket takes requests without TLS")
		}
		lc := must(t, r, "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "sesacthon-alb-access-logs")
		if days := prop(lc, "rules").ArrayValue()[0].ObjectValue()["expiration"].ObjectValue()["days"]; !days.IsNumber() || int(days.NumberValue()) != r.Config.Logs.RetentionDays {
			t.Errorf("access logs expire after %v days, want the stack's log retention, %d", days, r.Config.Logs.RetentionDays)
		}
		estimate, err := cost.Compute(cost.FootprintOf(r.Config, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, cost.Prices[r.Config.Region])
		if err != nil {
			t.Fatal(err)
		}
		priced := false
		for _, it := range estimate.Items {
			priced = priced || strings.HasPrefix(it.Name, "S3 ALB access logs")
		}
		if !priced {
			t.Error("the estimate has no line for the ALB's access logs")
		}
	})
	if got := infra.ALBLogsBucketPolicy("ap-southeast-5", "arn:aws:s3:::b", "123456789012").Statement[1].Principal; fmt.Sprint(got) != fmt.Sprint(map[string]any{"Service": infra.ELBLogDeliveryService}) {
		t.Errorf("a region opened since August 2022 trusts %v, want the log delivery service", got)
	}
}
