package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// UploadsArgs are the inputs of the uploads bucket.
type UploadsArgs struct {
	// Config is the validated stack configuration (bucket name, lifecycle, app origins).
	Config *config.Config
}

// Uploads is the bucket that browsers PUT images to through pre-signed URLs.
type Uploads struct {
	pulumi.ResourceState

	Bucket *s3.BucketV2
}

// TLSOnlyPolicy denies every request to the bucket that does not use TLS.
func TLSOnlyPolicy(bucketARN string) PolicyDocument {
	return policy(Statement{
		Sid:       "DenyInsecureTransport",
		Effect:    "Deny",
		Principal: map[string]any{"AWS": "*"},
		Action:    []string{"s3:*"},
		Resource:  []string{bucketARN, bucketARN + "/*"},
		Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	})
}

// NewUploads declares the bucket and its settings. On a production stack the bucket and every
// companion resource (public-access block, versioning, encryption, lifecycle, CORS, TLS-only
// policy) are protected and retained: `pulumi destroy` refuses to delete them, and even after
// unprotecting, a delete leaves them in the account. Retaining the companions matters as much as
// the bucket: deleting the versioning resource suspends versioning, deleting the public-access
// block or the policy opens the bucket up. On other stacks destroy removes them all, the bucket
// with every object in it.
func NewUploads(ctx *pulumi.Context, name string, args *UploadsArgs, opts ...pulumi.ResourceOption) (*Uploads, error) {
	u := &Uploads{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Uploads", name, u, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(u)
	// Production data stays: every resource of the bucket is protected and retained alike.
	keep := pulumi.Composite(pulumi.Protect(cfg.Production), pulumi.RetainOnDelete(cfg.Production))

	var err error
	u.Bucket, err = s3.NewBucketV2(ctx, name, &s3.BucketV2Args{
		Bucket: pulumi.String(cfg.Uploads.BucketName),
		// S3 deletes only an empty bucket: outside production destroy empties it first (every
		// version and delete marker), or a dev destroy fails once anyone has uploaded a file.
		ForceDestroy: pulumi.Bool(!cfg.Production),
		Tags:         tags(cfg, cfg.Uploads.BucketName, nil),
	}, parent, keep)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", cfg.Uploads.BucketName, err)
	}

	pab, err := s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{
		Bucket:                u.Bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, parent, keep)
	if err != nil {
		return nil, fmt.Errorf("block public access: %w", err)
	}

	if _, err := s3.NewBucketVersioningV2(ctx, name, &s3.BucketVersioningV2Args{
		Bucket:                  u.Bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, parent, keep); err != nil {
		return nil, fmt.Errorf("enable versioning: %w", err)
	}

	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: u.Bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
			BucketKeyEnabled: pulumi.Bool(true),
		}},
	}, parent, keep); err != nil {
		return nil, fmt.Errorf("enable encryption: %w", err)
	}

	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name, &s3.BucketLifecycleConfigurationV2Args{
		Bucket: u.Bucket.ID(),
		Rules:  lifecycleRules(cfg.Uploads),
	}, parent, keep); err != nil {
		return nil, fmt.Errorf("configure lifecycle: %w", err)
	}

	origins := pulumi.StringArray{}
	for _, o := range cfg.AppOrigins {
		origins = append(origins, pulumi.String(o))
	}
	if _, err := s3.NewBucketCorsConfigurationV2(ctx, name, &s3.BucketCorsConfigurationV2Args{
		Bucket: u.Bucket.ID(),
		CorsRules: s3.BucketCorsConfigurationV2CorsRuleArray{&s3.BucketCorsConfigurationV2CorsRuleArgs{
			AllowedMethods: pulumi.StringArray{pulumi.String("PUT"), pulumi.String("GET"), pulumi.String("HEAD")},
			AllowedOrigins: origins,
			AllowedHeaders: pulumi.StringArray{pulumi.String("*")},
			ExposeHeaders:  pulumi.StringArray{pulumi.String("ETag")},
			MaxAgeSeconds:  pulumi.Int(3000),
		}},
	}, parent, keep); err != nil {
		return nil, fmt.Errorf("configure cors: %w", err)
	}

	if _, err := s3.NewBucketPolicy(ctx, name, &s3.BucketPolicyArgs{
		Bucket: u.Bucket.ID(),
		Policy: u.Bucket.Arn.ApplyT(func(arn string) string { return TLSOnlyPolicy(arn).JSON() }).(pulumi.StringOutput),
	}, parent, keep, pulumi.DependsOn([]pulumi.Resource{pab})); err != nil {
		return nil, fmt.Errorf("attach tls-only policy: %w", err)
	}

	if err := ctx.RegisterResourceOutputs(u, pulumi.Map{"bucket": u.Bucket.Bucket}); err != nil {
		return nil, err
	}
	return u, nil
}

// lifecycleRules moves objects to the configured storage class, optionally expires them, and
// always cleans up what uploads leave behind: incomplete multipart uploads and old versions.
func lifecycleRules(up config.Uploads) s3.BucketLifecycleConfigurationV2RuleArray {
	archive := &s3.BucketLifecycleConfigurationV2RuleArgs{
		Id:     pulumi.String("archive"),
		Status: pulumi.String("Enabled"),
		Filter: &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
		Transitions: s3.BucketLifecycleConfigurationV2RuleTransitionArray{&s3.BucketLifecycleConfigurationV2RuleTransitionArgs{
			Days:         pulumi.Int(up.TransitionDays),
			StorageClass: pulumi.String(up.TransitionStorageClass),
		}},
	}
	if up.ExpirationDays > 0 {
		archive.Expiration = &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(up.ExpirationDays)}
	}
	return s3.BucketLifecycleConfigurationV2RuleArray{
		archive,
		&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:                             pulumi.String("abort-incomplete-uploads"),
			Status:                         pulumi.String("Enabled"),
			Filter:                         &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
			AbortIncompleteMultipartUpload: &s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{DaysAfterInitiation: pulumi.Int(7)},
		},
		&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:                          pulumi.String("expire-old-versions"),
			Status:                      pulumi.String("Enabled"),
			Filter:                      &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
			NoncurrentVersionExpiration: &s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{NoncurrentDays: pulumi.Int(90)},
		},
	}
}
