package infra

// Pod identities (IAM roles for service accounts) on this self-managed cluster. The API server
// signs service-account tokens for the stack's public issuer (cluster.ServiceAccountIssuerArgs);
// a public bucket serves the issuer's discovery document and key set, and nothing else; an IAM
// OIDC provider trusts the issuer for the audience sts.amazonaws.com; and every component that
// calls AWS has a role of its own, which only its ServiceAccount's tokens can assume. The pods
// get those tokens as projected volumes (workloads/identity.go). No pod in a network namespace of
// its own reaches the instance metadata service (hop limit 1, nodes.go); the pods on the host's
// network (kube-system only: Pod Security forbids it elsewhere) are the node, and node roles hold
// only what the node's own boot needs.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// DiscoveryPath and JWKSPath are where the issuer's two documents are, under its URL, as the
// API server serves its own (k8s.io/kubernetes pkg/serviceaccount/openidmetadata.go).
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/openid/v1/jwks"
)

// DiscoveryDocument is the issuer's OpenID provider metadata: what the API server serves at the
// same path with --service-account-jwks-uri set to <issuer>/openid/v1/jwks.
func DiscoveryDocument(issuer string) string {
	b, err := json.Marshal(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return string(b)
}

// A pod's web identity, as the EKS pod identity webhook would inject it: the token, projected
// for STSAudience, at WebIdentityTokenFile, and the environment of WebIdentityEnv.
const (
	// WebIdentityTokenDir is where the token is mounted, the webhook's path (what tools expect).
	WebIdentityTokenDir = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	// WebIdentityTokenFile is the token's file.
	WebIdentityTokenFile = WebIdentityTokenDir + "/token"
	// WebIdentityTokenSeconds is the token's lifetime: the kubelet renews it at 80%, and the SDKs
	// read the file again for each new session. An hour bounds what a leaked token is worth.
	WebIdentityTokenSeconds = 3600
)

// WebIdentityEnv is the environment, besides AWS_ROLE_ARN, that makes the AWS SDKs (and Fluent
// Bit, and the backup scripts' s3.sh) exchange the token for the role's credentials, before
// any other source but static keys, at STS's regional endpoint.
func WebIdentityEnv(region string) [][2]string {
	return [][2]string{
		{"AWS_WEB_IDENTITY_TOKEN_FILE", WebIdentityTokenFile},
		{"AWS_REGION", region},
		{"AWS_DEFAULT_REGION", region},
		{"AWS_STS_REGIONAL_ENDPOINTS", "regional"},
	}
}

// STSAudience is the audience of the tokens pods present to STS, and the OIDC provider's only
// client id.
const STSAudience = "sts.amazonaws.com"

// PodRole is a component that calls AWS with a role of its own.
type PodRole struct {
	// Key names the role: the AWS name prefix is "<cluster id>-<Key>-", which IAM limits to
	// 38 characters (config.MaxClusterIDLength leaves 8 for the key).
	Key string
	// Namespace and ServiceAccount are the only subject the role trusts.
	Namespace, ServiceAccount string
	// Description says who runs with it.
	Description string
}

// Subject is the token subject the API server gives the role's ServiceAccount.
func (r PodRole) Subject() string {
	return "system:serviceaccount:" + r.Namespace + ":" + r.ServiceAccount
}

// The components that call AWS, by the key of their role.
const (
	PodRoleEBSCSI         = "ebs-csi"
	PodRoleLoadBalancer   = "alb-ctl"
	PodRoleCCM            = "ccm"
	PodRoleEtcdBackup     = "etcd-bak"
	PodRolePostgresWAL    = "pg-wal"
	PodRolePostgresBackup = "pg-bak"
	PodRoleLogs           = "logs"
	PodRoleUploads        = "uploads"
)

// PodRoles are the components that call AWS and the ServiceAccount each runs as. The workloads
// tier names its ServiceAccounts from this table (and the charts' from their values), so trust
// and subject cannot drift apart.
var PodRoles = []PodRole{
	{PodRoleEBSCSI, "kube-system", "ebs-csi-controller-sa", "the EBS CSI controller"},
	{PodRoleLoadBalancer, "kube-system", "aws-load-balancer-controller", "the AWS Load Balancer Controller"},
	{PodRoleCCM, "kube-system", "cloud-controller-manager", "the AWS cloud-controller-manager"},
	{PodRoleEtcdBackup, "kube-system", "etcd-snapshot", "the etcd snapshot CronJob"},
	{PodRolePostgresWAL, "data", "postgres", "PostgreSQL's WAL shipper"},
	{PodRolePostgresBackup, "data", "postgres-backup", "the PostgreSQL base backup, dump and restore Jobs"},
	{PodRoleLogs, "logging", "fluent-bit", "Fluent Bit"},
	{PodRoleUploads, "app", "uploads", "the API services and Celery workers (pre-signed uploads)"},
}

// PodRoleByKey returns the role of a key; it panics on a key not in PodRoles (a programming error).
func PodRoleByKey(key string) PodRole {
	for _, r := range PodRoles {
		if r.Key == key {
			return r
		}
	}
	panic("no pod role " + key)
}

// PodRoleResources are the ARNs the pod roles' policies name.
type PodRoleResources struct {
	UploadsBucket, BackupsBucket, LogGroup string
}

// PodRolePolicy is the one inline policy of a pod role: what that component calls, on this
// stack's resources only.
func PodRolePolicy(cfg *config.Config, key string, arns PodRoleResources) PolicyDocument {
	etcd, postgres := config.BackupPrefix(config.RoleMaster), config.BackupPrefix(config.RoleStorage)
	switch key {
	case PodRoleEBSCSI:
		return EBSCSIPolicy(cfg.Region, ClusterTag(cfg))
	case PodRoleLoadBalancer:
		return LoadBalancerControllerPolicy(cfg.Region, ClusterTag(cfg))
	case PodRoleCCM:
		return CCMControlPlanePolicy()
	case PodRoleEtcdBackup:
		return BackupPolicy(arns.BackupsBucket, []string{etcd}, etcd)
	case PodRolePostgresWAL:
		return BackupPolicy(arns.BackupsBucket, []string{postgres + "/wal"}, postgres+"/wal")
	case PodRolePostgresBackup:
		// The restore reads base backups and the archived WAL.
		return BackupPolicy(arns.BackupsBucket, []string{postgres + "/base", postgres + "/dump"}, postgres)
	case PodRoleLogs:
		return LogWriterPolicy(arns.LogGroup)
	case PodRoleUploads:
		return UploadsPolicy(arns.UploadsBucket)
	}
	panic("no pod role " + key)
}

// PodTrustPolicy lets the tokens of one ServiceAccount, issued for STS, assume a role through
// the stack's OIDC provider, and no other token: IAM checks the provider's signature and the
// issuer, these conditions the subject and the audience.
func PodTrustPolicy(providerARN, issuer string, r PodRole) PolicyDocument {
	host := strings.TrimPrefix(issuer, "https://")
	return policy(Statement{
		Sid:       "ServiceAccount",
		Effect:    "Allow",
		Principal: map[string]any{"Federated": providerARN},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]any{"StringEquals": map[string]any{host + ":sub": r.Subject(), host + ":aud": STSAudience}},
	})
}

// IssuerObjectKey is the bucket key of a document served at path under the issuer.
func IssuerObjectKey(path string) string { return strings.TrimPrefix(path, "/") }

// IssuerBucketPolicy lets anyone read the issuer's two documents over TLS, and nothing else of
// the bucket.
func IssuerBucketPolicy(bucketARN string, keys []string) PolicyDocument {
	d := TLSOnlyPolicy(bucketARN)
	objects := make([]string, 0, len(keys))
	for _, k := range keys {
		objects = append(objects, bucketARN+"/"+k)
	}
	d.Statement = append(d.Statement, Statement{
		Sid: "PublicIssuerDocuments", Effect: "Allow", Principal: map[string]any{"AWS": "*"},
		Action: []string{"s3:GetObject"}, Resource: objects,
	})
	return d
}

// PodIdentityArgs are the inputs of the pod identities.
type PodIdentityArgs struct {
	Config *config.Config
	// The resources the roles' policies name.
	UploadsBucketARN, BackupsBucketARN, LogGroupARN pulumi.StringOutput
}

// PodIdentity is the issuer's bucket, the OIDC provider and the pod roles.
type PodIdentity struct {
	pulumi.ResourceState

	Bucket   *s3.BucketV2
	Provider *iam.OpenIdConnectProvider
	// Roles are keyed by PodRole.Key.
	Roles map[string]*iam.Role
	// Policies are the roles' inline policies, the bucket's policy and the discovery document:
	// the nodes depend on them, so that on destroy the controllers keep their access until the
	// cluster is gone.
	Policies []pulumi.Resource

	name string
}

// NewPodIdentity declares the issuer's bucket with its discovery document, the OIDC provider and
// the pod roles. The key set comes from the cluster tier, which owns the service-account key:
// PublishKeys declares it.
func NewPodIdentity(ctx *pulumi.Context, name string, args *PodIdentityArgs, opts ...pulumi.ResourceOption) (*PodIdentity, error) {
	p := &PodIdentity{Roles: map[string]*iam.Role{}, name: name}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:PodIdentity", name, p, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(p)
	issuer := cfg.ServiceAccountIssuer()

	var err error
	// The documents are derived from the program's key and configuration, and declared as
	// objects: a destroy deletes them before the bucket. As every bucket of a stack whose data is
	// not protected, destroy also empties it of anything put there by hand.
	p.Bucket, err = s3.NewBucketV2(ctx, name, &s3.BucketV2Args{
		Bucket:       pulumi.String(cfg.PodIdentity.BucketName),
		ForceDestroy: pulumi.Bool(!cfg.Production),
		Tags:         tags(cfg, cfg.PodIdentity.BucketName, nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", cfg.PodIdentity.BucketName, err)
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, name, &s3.BucketOwnershipControlsArgs{
		Bucket: p.Bucket.ID(),
		Rule:   &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, parent); err != nil {
		return nil, fmt.Errorf("disable ACLs: %w", err)
	}
	// ACLs stay blocked; the policy below is public, so the bucket's own block must allow a
	// public policy. (An account-wide block of public policies would refuse it: README.)
	pab, err := s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{
		Bucket:                p.Bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(false),
		RestrictPublicBuckets: pulumi.Bool(false),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("public access: %w", err)
	}
	bucketPolicy, err := s3.NewBucketPolicy(ctx, name, &s3.BucketPolicyArgs{
		Bucket: p.Bucket.ID(),
		Policy: p.Bucket.Arn.ApplyT(func(arn string) string {
			return IssuerBucketPolicy(arn, []string{IssuerObjectKey(DiscoveryPath), IssuerObjectKey(JWKSPath)}).JSON()
		}).(pulumi.StringOutput),
	}, parent, pulumi.DependsOn([]pulumi.Resource{pab}))
	if err != nil {
		return nil, fmt.Errorf("bucket policy: %w", err)
	}
	discovery, err := s3.NewBucketObjectv2(ctx, name+"-discovery", &s3.BucketObjectv2Args{
		Bucket:      p.Bucket.ID(),
		Key:         pulumi.String(IssuerObjectKey(DiscoveryPath)),
		Content:     pulumi.String(DiscoveryDocument(issuer)),
		ContentType: pulumi.String("application/json"),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	p.Policies = append(p.Policies, bucketPolicy, discovery)

	// IAM trusts an issuer whose certificate chains to a well-known CA (S3's) without a
	// thumbprint; the provider still records one.
	p.Provider, err = iam.NewOpenIdConnectProvider(ctx, name, &iam.OpenIdConnectProviderArgs{
		Url:           pulumi.String(issuer),
		ClientIdLists: pulumi.ToStringArray([]string{STSAudience}),
		Tags:          tags(cfg, name, nil),
	}, parent, pulumi.DependsOn([]pulumi.Resource{bucketPolicy, discovery}))
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	p.Policies = append(p.Policies, p.Provider)

	arns := pulumi.All(args.UploadsBucketARN, args.BackupsBucketARN, args.LogGroupARN)
	for _, r := range PodRoles {
		resName := name + "-" + r.Key
		role, err := iam.NewRole(ctx, resName, &iam.RoleArgs{
			PermissionsBoundary: boundary(cfg),
			NamePrefix:          pulumi.String(cfg.ClusterID() + "-" + r.Key + "-"),
			Description:         pulumi.Sprintf("waste-coach %s, ServiceAccount %s/%s (%s)", r.Description, r.Namespace, r.ServiceAccount, cfg.Stack),
			AssumeRolePolicy: p.Provider.Arn.ApplyT(func(arn string) string {
				return PodTrustPolicy(arn, issuer, r).JSON()
			}).(pulumi.StringOutput),
			Tags: tags(cfg, resName, nil),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create role %s: %w", resName, err)
		}
		rp, err := iam.NewRolePolicy(ctx, resName, &iam.RolePolicyArgs{
			Role: role.Name,
			Policy: arns.ApplyT(func(v []any) string {
				return PodRolePolicy(cfg, r.Key, PodRoleResources{UploadsBucket: v[0].(string), BackupsBucket: v[1].(string), LogGroup: v[2].(string)}).JSON()
			}).(pulumi.StringOutput),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create policy of %s: %w", resName, err)
		}
		p.Roles[r.Key] = role
		p.Policies = append(p.Policies, rp)
	}
	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{"issuer": pulumi.String(issuer)}); err != nil {
		return nil, err
	}
	return p, nil
}

// PublishKeys declares the issuer's key set, and returns each pod role's ARN as an output that
// is known only once the key set is published: a pod given its role cannot start before STS
// can verify its token, and on destroy the key set goes only after every pod that used it.
func (p *PodIdentity) PublishKeys(ctx *pulumi.Context, jwks pulumi.StringOutput) (map[string]pulumi.StringOutput, error) {
	obj, err := s3.NewBucketObjectv2(ctx, p.name+"-jwks", &s3.BucketObjectv2Args{
		Bucket:      p.Bucket.ID(),
		Key:         pulumi.String(IssuerObjectKey(JWKSPath)),
		Content:     jwks,
		ContentType: pulumi.String("application/json"),
	}, pulumi.Parent(p))
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	out := map[string]pulumi.StringOutput{}
	for _, key := range slices.Sorted(maps.Keys(p.Roles)) {
		out[key] = pulumi.All(p.Roles[key].Arn, obj.ID()).ApplyT(func(v []any) string { return v[0].(string) }).(pulumi.StringOutput)
	}
	return out, nil
}
