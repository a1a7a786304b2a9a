package infra

// The ALB's access logs (config key albAccessLogs, on for production): one line per request,
// delivered by Elastic Load Balancing every five minutes to a bucket of the stack's own, kept as
// long as the stack's logs.

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// elbLogAccounts are the accounts Elastic Load Balancing writes access logs from, in the regions
// opened before August 2022 (ALB guide, "Enable access logs", step 2; the same table as the
// Terraform provider's aws_elb_service_account). A newer region's bucket trusts the service
// principal ELBLogDeliveryService instead.
var elbLogAccounts = map[string]string{
	"af-south-1": "098369216593", "ap-east-1": "754344448648", "ap-northeast-1": "582318560864",
	"ap-northeast-2": "600734575887", "ap-northeast-3": "383597477331", "ap-south-1": "718504428378",
	"ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266", "ap-southeast-3": "589379963580",
	"ca-central-1": "985666609251", "eu-central-1": "054676820928", "eu-north-1": "897822967062",
	"eu-south-1": "635631232127", "eu-west-1": "156460612806", "eu-west-2": "652711504416",
	"eu-west-3": "009996457667", "me-south-1": "076674570225", "sa-east-1": "507241528517",
	"us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
	"us-west-2": "797873946194",
}

// ELBLogDeliveryService is the principal that writes access logs in regions opened since
// August 2022.
const ELBLogDeliveryService = "logdelivery.elasticloadbalancing.amazonaws.com"

// ALBLogsBucketPolicy lets Elastic Load Balancing put this account's access logs in the bucket,
// under AWSLogs/<account>/ only (another account's load balancer naming this bucket is refused),
// over TLS, and nothing else.
func ALBLogsBucketPolicy(region, bucketARN, accountID string) PolicyDocument {
	principal := map[string]any{"Service": ELBLogDeliveryService}
	if id, ok := elbLogAccounts[region]; ok {
		principal = map[string]any{"AWS": "arn:aws:iam::" + id + ":root"}
	}
	d := TLSOnlyPolicy(bucketARN)
	d.Statement = append(d.Statement, Statement{
		Sid: "ELBAccessLogs", Effect: "Allow", Principal: principal, Action: []string{"s3:PutObject"},
		Resource: bucketARN + "/AWSLogs/" + accountID + "/*",
	})
	return d
}

// accountOf is the account of an ARN (arn:partition:service:region:account:resource).
func accountOf(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[4] == "" {
		return "", fmt.Errorf("no account in ARN %q", arn)
	}
	return parts[4], nil
}

// newALBLogs declares the access-log bucket: private, encrypted with S3's keys (the only
// encryption access logs take), its objects expired after the stack's log retention. accountARN
// is any ARN of the stack's account. It returns the bucket's policy, which the load balancer must
// wait for: Elastic Load Balancing checks that it may write before it takes the setting.
func newALBLogs(ctx *pulumi.Context, name string, cfg *config.Config, accountARN pulumi.StringOutput, parent pulumi.ResourceOption) (*s3.BucketV2, *s3.BucketPolicy, error) {
	// Production keeps the bucket when the logs are turned off (or the stack destroyed): its name
	// freed, anyone could create it and receive logs of an ALB still pointed at it.
	bucket, err := s3.NewBucketV2(ctx, name, &s3.BucketV2Args{
		Bucket:       pulumi.String(cfg.Logs.ALBLogsBucket),
		ForceDestroy: pulumi.Bool(!cfg.Production),
		Tags:         tags(cfg, cfg.Logs.ALBLogsBucket, nil),
	}, parent, pulumi.RetainOnDelete(cfg.Production))
	if err != nil {
		return nil, nil, fmt.Errorf("create bucket %s: %w", cfg.Logs.ALBLogsBucket, err)
	}
	pab, err := s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{
		Bucket: bucket.ID(), BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true),
		IgnorePublicAcls: pulumi.Bool(true), RestrictPublicBuckets: pulumi.Bool(true),
	}, parent)
	if err != nil {
		return nil, nil, fmt.Errorf("block public access: %w", err)
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}, parent); err != nil {
		return nil, nil, fmt.Errorf("encryption: %w", err)
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name, &s3.BucketLifecycleConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String("expire-access-logs"), Status: pulumi.String("Enabled"),
			Filter:     &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
			Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(cfg.Logs.RetentionDays)},
		}},
	}, parent); err != nil {
		return nil, nil, fmt.Errorf("lifecycle: %w", err)
	}
	policy, err := s3.NewBucketPolicy(ctx, name, &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: pulumi.All(bucket.Arn, accountARN).ApplyT(func(v []any) (string, error) {
			account, err := accountOf(v[1].(string))
			if err != nil {
				return "", err
			}
			return ALBLogsBucketPolicy(cfg.Region, v[0].(string), account).JSON(), nil
		}).(pulumi.StringOutput),
	}, parent, pulumi.DependsOn([]pulumi.Resource{pab}))
	if err != nil {
		return nil, nil, fmt.Errorf("bucket policy: %w", err)
	}
	return bucket, policy, nil
}
