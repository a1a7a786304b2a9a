// Package citrust declares what GitHub Actions may do in the AWS account of the infra stacks:
// GitHub's OIDC provider, and per stack a deploy role that only up.yml on main can assume, a
// read-only preview role for pull requests, the KMS key that encrypts the stack's secrets, and
// the bucket that holds the stacks' state; on GitHub, the repository's customised OIDC subject
// that those trusts rely on and the variables the workflows read. An administrator runs it
// once per account, from a workstation (docs/delivery.md, "CI's trust in AWS").
package citrust

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-github/sdk/v6/go/github"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Roles are what one stack's jobs assume.
type Roles struct {
	Deploy, Preview *iam.Role
	SecretsKey      *kms.Key
	// Boundary is the stack's permissions boundary (the infra key permissionsBoundary).
	Boundary *iam.Policy
}

// Program is the bootstrap program.
func Program(ctx *pulumi.Context) error {
	cfg, err := Load(ctx)
	if err != nil {
		return err
	}
	caller, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return fmt.Errorf("look up the account: %w", err)
	}
	account := Account{ID: caller.AccountId, Region: cfg.Region}

	gh, err := github.NewProvider(ctx, "github", &github.ProviderArgs{Owner: pulumi.String(cfg.Owner)})
	if err != nil {
		return err
	}
	// Every role below trusts a subject of this shape; until it is applied GitHub sends
	// repo:<owner>/<name>:environment:<env>, which none of them accepts (they fail closed).
	subject, err := github.NewActionsRepositoryOidcSubjectClaimCustomizationTemplate(ctx, "subject", &github.ActionsRepositoryOidcSubjectClaimCustomizationTemplateArgs{
		Repository:       pulumi.String(cfg.Name),
		UseDefault:       pulumi.Bool(false),
		IncludeClaimKeys: pulumi.ToStringArray(SubjectClaimKeys),
	}, pulumi.Provider(gh))
	if err != nil {
		return err
	}

	providerARN := pulumi.String(cfg.GitHubProviderARN).ToStringOutput()
	if cfg.GitHubProviderARN == "" {
		p, err := iam.NewOpenIdConnectProvider(ctx, "github", &iam.OpenIdConnectProviderArgs{
			Url:           pulumi.String("https://" + GitHubIssuerHost),
			ClientIdLists: pulumi.ToStringArray([]string{GitHubAudience}),
			// No thumbprint: IAM verifies GitHub's certificate against its trusted CAs.
			Tags: pulumi.ToStringMap(map[string]string{"Name": "github-actions", "ManagedBy": Project}),
		})
		if err != nil {
			return err
		}
		providerARN = p.Arn
	}

	state, err := stateBucket(ctx, cfg)
	if err != nil {
		return err
	}
	backendURL := fmt.Sprintf("s3://%s?region=%s&awssdk=v2", cfg.StateBucket, cfg.Region)
	if _, err := github.NewActionsVariable(ctx, "backend-url", &github.ActionsVariableArgs{
		Repository: pulumi.String(cfg.Name), VariableName: pulumi.String("PULUMI_BACKEND_URL"), Value: pulumi.String(backendURL),
	}, pulumi.Provider(gh)); err != nil {
		return err
	}
	ctx.Export("backendUrl", pulumi.String(backendURL))
	ctx.Export("stateBucket", state.Bucket)

	for _, s := range cfg.Stacks {
		roles, err := stackRoles(ctx, cfg, account, s, providerARN, subject)
		if err != nil {
			return fmt.Errorf("stack %s: %w", s.Name, err)
		}
		for name, role := range map[string]*iam.Role{"AWS_DEPLOY_ROLE_ARN": roles.Deploy, "AWS_PREVIEW_ROLE_ARN": roles.Preview} {
			if _, err := github.NewActionsEnvironmentVariable(ctx, s.Name+"-"+strings.ToLower(strings.ReplaceAll(name, "_", "-")), &github.ActionsEnvironmentVariableArgs{
				Repository: pulumi.String(cfg.Name), Environment: pulumi.String(s.Name),
				VariableName: pulumi.String(name), Value: role.Arn,
			}, pulumi.Provider(gh)); err != nil {
				return err
			}
		}
		ctx.Export(s.Name+"DeployRoleArn", roles.Deploy.Arn)
		ctx.Export(s.Name+"PreviewRoleArn", roles.Preview.Arn)
		ctx.Export(s.Name+"SecretsProvider", pulumi.String(SecretsProvider(cfg, s)))
		ctx.Export(s.Name+"PermissionsBoundary", roles.Boundary.Arn)
	}
	return nil
}

// SecretsKeyAlias names a stack's secrets key; SecretsProvider is what `pulumi stack
// change-secrets-provider` takes for it.
func SecretsKeyAlias(s Stack) string { return "alias/" + s.ClusterID + "-pulumi-secrets" }

// SecretsProvider is the stack's awskms secrets provider URL.
func SecretsProvider(cfg *Config, s Stack) string {
	return fmt.Sprintf("awskms://%s?region=%s", SecretsKeyAlias(s), cfg.Region)
}

func stackRoles(ctx *pulumi.Context, cfg *Config, account Account, s Stack, providerARN pulumi.StringOutput, subject pulumi.Resource) (*Roles, error) {
	r := &Roles{}
	var err error
	tags := pulumi.ToStringMap(map[string]string{"Stack": s.Name, "ManagedBy": Project})
	// Losing the key loses every secret of the stack's state: protected, retained, 30 days'
	// deletion window.
	if r.SecretsKey, err = kms.NewKey(ctx, s.Name+"-secrets", &kms.KeyArgs{
		Description:          pulumi.String("Pulumi secrets of the " + s.Name + " stack of " + InfraProject),
		EnableKeyRotation:    pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(30),
		Tags:                 tags,
	}, pulumi.Protect(true), pulumi.RetainOnDelete(true)); err != nil {
		return nil, err
	}
	if _, err = kms.NewAlias(ctx, s.Name+"-secrets", &kms.AliasArgs{
		Name: pulumi.String(SecretsKeyAlias(s)), TargetKeyId: r.SecretsKey.KeyId,
	}); err != nil {
		return nil, err
	}
	boundary, err := iam.NewPolicy(ctx, s.Name+"-boundary", &iam.PolicyArgs{
		Name:        pulumi.String(BoundaryName(s)),
		Description: pulumi.String("The most any IAM role or user of the " + s.Name + " stack may do (its permissionsBoundary)"),
		Policy:      pulumi.String(Boundary(account, s).JSON()),
		Tags:        tags,
	})
	if err != nil {
		return nil, err
	}
	r.Boundary = boundary
	role := func(kind string, duration int, trust func(string, Stack) string, policy func(Account, Stack, string) string) (*iam.Role, error) {
		name := fmt.Sprintf("%s-%s-%s", Project, s.Name, kind)
		role, err := iam.NewRole(ctx, s.Name+"-"+kind, &iam.RoleArgs{
			Name:               pulumi.String(name),
			Description:        pulumi.String(fmt.Sprintf("GitHub Actions: %s of the %s stack (%s)", kind, s.Name, cfg.Repository())),
			AssumeRolePolicy:   providerARN.ApplyT(func(arn string) string { return trust(arn, s) }).(pulumi.StringOutput),
			MaxSessionDuration: pulumi.Int(duration),
			Tags:               tags,
		}, pulumi.DependsOn([]pulumi.Resource{subject}))
		if err != nil {
			return nil, err
		}
		_, err = iam.NewRolePolicy(ctx, s.Name+"-"+kind, &iam.RolePolicyArgs{
			Role:   role.Name,
			Policy: r.SecretsKey.Arn.ApplyT(func(key string) string { return policy(account, s, key) }).(pulumi.StringOutput),
		})
		return role, err
	}
	// up.yml asks for two hours (role-duration-seconds); a preview finishes within one.
	if r.Deploy, err = role("deploy", 7200,
		func(arn string, s Stack) string { return cfg.DeployTrust(arn, s).JSON() },
		func(a Account, s Stack, key string) string { return cfg.DeployPolicy(a, s, key).JSON() }); err != nil {
		return nil, err
	}
	if r.Preview, err = role("preview", 3600,
		func(arn string, s Stack) string { return cfg.PreviewTrust(arn, s).JSON() },
		func(a Account, s Stack, key string) string { return cfg.PreviewPolicy(a, s, key).JSON() }); err != nil {
		return nil, err
	}
	return r, nil
}

// StateVersionDays is how long the state bucket keeps a replaced version of a state object.
const StateVersionDays = 90

// stateBucket is the self-managed backend of the infra stacks: versioned (a bad write is undone
// from the previous version), private, TLS only, kept if this program is destroyed.
func stateBucket(ctx *pulumi.Context, cfg *Config) (*s3.BucketV2, error) {
	keep := []pulumi.ResourceOption{pulumi.Protect(true), pulumi.RetainOnDelete(true)}
	b, err := s3.NewBucketV2(ctx, "state", &s3.BucketV2Args{
		Bucket: pulumi.String(cfg.StateBucket),
		Tags:   pulumi.ToStringMap(map[string]string{"ManagedBy": Project}),
	}, keep...)
	if err != nil {
		return nil, err
	}
	child := pulumi.Parent(b)
	if _, err := s3.NewBucketOwnershipControls(ctx, "state", &s3.BucketOwnershipControlsArgs{
		Bucket: b.ID(),
		Rule:   &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, child); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketPublicAccessBlock(ctx, "state", &s3.BucketPublicAccessBlockArgs{
		Bucket: b.ID(), BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true),
		IgnorePublicAcls: pulumi.Bool(true), RestrictPublicBuckets: pulumi.Bool(true),
	}, child); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketVersioningV2(ctx, "state", &s3.BucketVersioningV2Args{
		Bucket:                  b.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, child); err != nil {
		return nil, err
	}
	// The backend rewrites a stack's checkpoint at every step of an update: old versions are
	// kept 90 days (long enough to undo a bad write), not forever.
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, "state", &s3.BucketLifecycleConfigurationV2Args{
		Bucket: b.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{&s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:                          pulumi.String("expire-old-versions"),
			Status:                      pulumi.String("Enabled"),
			Filter:                      &s3.BucketLifecycleConfigurationV2RuleFilterArgs{},
			NoncurrentVersionExpiration: &s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{NoncurrentDays: pulumi.Int(StateVersionDays)},
		}},
	}, child); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, "state", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: b.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}, child); err != nil {
		return nil, err
	}
	_, err = s3.NewBucketPolicy(ctx, "state", &s3.BucketPolicyArgs{
		Bucket: b.ID(),
		Policy: pulumi.String(document(StateTLSOnly(cfg.StateBucket)).JSON()),
	}, child)
	return b, err
}
