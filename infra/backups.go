package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// BackupsArgs are the inputs of the backups bucket.
type BackupsArgs struct {
	// Config is the validated stack configuration (bucket name, retention, production).
	Config *config.Config
}

// Backups is the bucket every scheduled backup goes to: etcd snapshots from the master,
// PostgreSQL base backups, write-ahead log and dumps from the storage node.
type Backups struct {
	pulumi.ResourceState

	Bucket *s3.BucketV2

	name         string
	keep         pulumi.ResourceOption
	publicAccess pulumi.Resource
}

// NewBackups declares the backups bucket and its settings: encrypted, versioned, never public,
// and expired by lifecycle after the configured retention. Its policy, which names the roles
// that may write, is declared by RestrictWriters once those roles exist. On a production stack
// every resource of the bucket is protected and retained, like the uploads bucket; elsewhere
// destroy empties and deletes it (its policy, which forbids deleting versions, goes first).
func NewBackups(ctx *pulumi.Context, name string, args *BackupsArgs, opts ...pulumi.ResourceOption) (*Backups, error) {
	b := &Backups{name: name}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Backups", name, b, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(b)
	b.keep = pulumi.Composite(pulumi.Protect(cfg.Production), pulumi.RetainOnDelete(cfg.Production))

	var err error
	b.Bucket, err = s3.NewBucketV2(ctx, name, &s3.BucketV2Args{
		Bucket: pulumi.String(cfg.Backups.BucketName),
		// Only a stack whose data is not protected may be emptied by destroy.
		ForceDestroy: pulumi.Bool(!cfg.Production),
		Tags:         tags(cfg, cfg.Backups.BucketName, map[string]string{"RetentionDays": fmt.Sprint(cfg.Backups.RetentionDays)}),
	}, parent, b.keep)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", cfg.Backups.BucketName, err)
	}
	if b.publicAccess, err = s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{
		Bucket:                b.Bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, parent, b.keep); err != nil {
		return nil, fmt.Errorf("block public access: %w", err)
	}
	if _, err := s3.NewBucketVersioningV2(ctx, name, &s3.BucketVersioningV2Args{
		Bucket:                  b.Bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, parent, b.keep); err != nil {
		return nil, fmt.Errorf("enable versioning: %w", err)
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: b.Bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
			BucketKeyEnabled: pulumi.Bool(true),
		}},
	}, parent, b.keep); err != nil {
		return nil, fmt.Errorf("enable encryption: %w", err)
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name, &s3.BucketLifecycleConfigurationV2Args{
		Bucket: b.Bucket.ID(),
		Rules:  backupLifecycleRules(cfg.Backups.RetentionDays),
	}, parent, b.keep); err != nil {
		return nil, fmt.Errorf("configure lifecycle: %w", err)
	}
	if err := ctx.RegisterResourceOutputs(b, pulumi.Map{"bucket": b.Bucket.Bucket}); err != nil {
		return nil, err
	}
	return b, nil
}

// RestrictWriters declares the bucket's policy: TLS only, no object version deleted by anyone
// (lifecycle expiry is not subject to bucket policies, so it is the one thing that removes
// backups), and no object written by any principal but the given roles.
func (b *Backups) RestrictWriters(ctx *pulumi.Context, writerRoleARNs ...pulumi.StringOutput) error {
	args := []any{b.Bucket.Arn}
	for _, w := range writerRoleARNs {
		args = append(args, w)
	}
	doc := pulumi.All(args...).ApplyT(func(v []any) string {
		writers := make([]string, 0, len(v)-1)
		for _, w := range v[1:] {
			writers = append(writers, w.(string))
		}
		return BackupsBucketPolicy(v[0].(string), writers).JSON()
	}).(pulumi.StringOutput)
	if _, err := s3.NewBucketPolicy(ctx, b.name, &s3.BucketPolicyArgs{
		Bucket: b.Bucket.ID(),
		Policy: doc,
	}, pulumi.Parent(b), b.keep, pulumi.DependsOn([]pulumi.Resource{b.publicAccess})); err != nil {
		return fmt.Errorf("attach backups bucket policy: %w", err)
	}
	return nil
}

// BackupsBucketPolicy is the backups bucket's policy: the TLS-only rule of every bucket here, a
// deny on deleting any object version, a deny on writes by anyone but the writer roles, and a
// deny on any upload of a backup that could replace one: S3 takes a PutObject with
// If-None-Match only for a key that does not exist (412 otherwise), and the policy refuses a
// backup's PutObject without it. A backup is then written once, by anyone, and never changed:
// with no delete allowed either, a stolen writer can add backups but not spoil the ones there.
// The clusters' marks (config.MarkPrefix) are no backups and stay replaceable. Multipart uploads would need CreateMultipartUpload and
// UploadPart exempted (they take no conditional header); no writer here uses them.
func BackupsBucketPolicy(bucketARN string, writerRoleARNs []string) PolicyDocument {
	d := TLSOnlyPolicy(bucketARN)
	d.Statement = append(d.Statement,
		Statement{
			Sid:       "NoVersionDeletes",
			Effect:    "Deny",
			Principal: map[string]any{"AWS": "*"},
			Action:    []string{"s3:DeleteObjectVersion", "s3:PutObjectVersionAcl"},
			Resource:  []string{bucketARN + "/*"},
		},
		Statement{
			Sid:       "OnlyBackupWritersWrite",
			Effect:    "Deny",
			Principal: map[string]any{"AWS": "*"},
			Action:    []string{"s3:PutObject"},
			Resource:  []string{bucketARN + "/*"},
			Condition: map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": writerRoleARNs}},
		},
		Statement{
			Sid:       "BackupsAreWrittenOnce",
			Effect:    "Deny",
			Principal: map[string]any{"AWS": "*"},
			Action:    []string{"s3:PutObject"},
			Resource:  BackupKeys(bucketARN),
			Condition: map[string]any{"Null": map[string]any{"s3:if-none-match": "true"}},
		},
	)
	return d
}

// BackupKeys are the ARNs of every backup in the bucket: the etcd snapshots (<prefix>/<cluster>/
// YYYY/MM/DD/etcd-<time>.db) and everything under PostgreSQL's prefix (WAL, base backups, dumps).
func BackupKeys(bucketARN string) []string {
	return []string{
		bucketARN + "/" + config.BackupPrefix(config.RoleMaster) + "/*.db",
		bucketARN + "/" + config.BackupPrefix(config.RoleStorage) + "/*",
	}
}

// BackupPolicy lets a pod role add backups under each of its write prefixes of the backups
// bucket and read back what is under its read prefix (a restore, and the archiver's check that
// a segment is not already there). It grants no delete of any kind: an overwritten or deleted
// key leaves its old version, and only lifecycle expiry removes versions.
func BackupPolicy(bucketARN string, writePrefixes []string, readPrefix string) PolicyDocument {
	writes := make([]string, 0, len(writePrefixes))
	for _, p := range writePrefixes {
		writes = append(writes, bucketARN+"/"+p+"/*")
	}
	return policy(
		allow("AddBackups", writes, "s3:PutObject", "s3:AbortMultipartUpload"),
		allow("ReadBackups", bucketARN+"/"+readPrefix+"/*", "s3:GetObject"),
		Statement{Sid: "ListOwnPrefix", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: bucketARN,
			Condition: map[string]any{"StringLike": map[string]any{"s3:prefix": []string{readPrefix + "/*", readPrefix + "/"}}}},
		allow("Locate", bucketARN, "s3:GetBucketLocation"),
	)
}

// EtcdRestorePolicy is what a new master needs of the backups bucket at its first boot
// (kubeadm-init): list and read the etcd snapshots under prefix, and look for and put its
// cluster's mark under markPrefix (config.ClusterMark), which says the cluster has run; never a
// snapshot.
func EtcdRestorePolicy(bucketARN, prefix, markPrefix string) PolicyDocument {
	return policy(
		allow("ReadSnapshots", bucketARN+"/"+prefix+"/*", "s3:GetObject"),
		allow("MarkCluster", bucketARN+"/"+markPrefix+"/*", "s3:PutObject"),
		Statement{Sid: "ListSnapshotsAndMarks", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: bucketARN,
			Condition: map[string]any{"StringLike": map[string]any{"s3:prefix": []string{prefix + "/*", prefix + "/", markPrefix + "/*"}}}},
		allow("Locate", bucketARN, "s3:GetBucketLocation"),
	)
}

// backupLifecycleRules keep each backup RetentionDays days: everything under each backup prefix
// (config.BackupPrefix) expires then. The clusters' marks (config.MarkPrefix) are no backups and
// never expire: a mark says its cluster has run even once the cluster's snapshots have expired (a
// retention of a day or two, dev's nodes stopped longer than it), so that a new master refuses
// to start that cluster empty under the workers that stay (cluster/kubeadm-init). An expired
// backup's version becomes noncurrent; noncurrent versions are kept RetentionDays more, so that
// a writer that overwrites or deletes a key (a bad script, stolen node credentials) cannot make
// a backup disappear before an operator has had the whole retention window to notice (and a
// replaced mark's old versions go too). Delete markers left behind and unfinished uploads are
// cleaned up.
func backupLifecycleRules(retentionDays int) s3.BucketLifecycleConfigurationV2RuleArray {
	all := &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")}
	var rules s3.BucketLifecycleConfigurationV2RuleArray
	for _, role := range []config.Role{config.RoleMaster, config.RoleStorage} {
		prefix := config.BackupPrefix(role)
		rules = append(rules, &s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String("expire-" + prefix + "-backups"), Status: pulumi.String("Enabled"),
			Filter:     &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String(prefix + "/")},
			Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(retentionDays)},
		})
	}
	return append(rules,
		&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String("remove-expired-versions"), Status: pulumi.String("Enabled"), Filter: all,
			NoncurrentVersionExpiration: &s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{NoncurrentDays: pulumi.Int(retentionDays)},
		},
		&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String("remove-delete-markers"), Status: pulumi.String("Enabled"), Filter: all,
			Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{ExpiredObjectDeleteMarker: pulumi.Bool(true)},
		},
		&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String("abort-incomplete-uploads"), Status: pulumi.String("Enabled"), Filter: all,
			AbortIncompleteMultipartUpload: &s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{DaysAfterInitiation: pulumi.Int(1)},
		},
	)
}
