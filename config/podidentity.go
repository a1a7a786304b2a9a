// Pod identities: the bucket that publishes the cluster's service-account issuer (key
// podIdentityBucket), and the issuer URL derived from it.

package config

import (
	"regexp"
	"strconv"
	"strings"
)

// PodIdentity configures how pods get AWS roles of their own: the API server signs their
// service-account tokens for an issuer whose discovery documents a public bucket of the stack
// serves, and an IAM OIDC provider trusts that issuer (infra/podidentity.go).
type PodIdentity struct {
	// BucketName is the bucket that serves the issuer's discovery document and JWKS.
	BucketName string
}

// ServiceAccountIssuer is the issuer the API server names in every service-account token it
// signs, and the URL of the IAM OIDC provider: the bucket's virtual-hosted address in the
// stack's region, where STS fetches <issuer>/.well-known/openid-configuration.
func (c *Config) ServiceAccountIssuer() string {
	return "https://" + c.PodIdentity.BucketName + ".s3." + c.Region + ".amazonaws.com"
}

// podIdentity reads the issuer bucket's name, by default derived from the cluster id. The name
// becomes a host name under S3's wildcard certificate, which covers one label only: a dot in it
// would make every fetch of the documents fail TLS verification.
func (p *parser) podIdentity(c *Config) {
	name, ok := p.bucket("podIdentityBucket", c.ClusterID()+"-oidc")
	c.PodIdentity.BucketName = name
	if !ok {
		return
	}
	switch {
	case strings.Contains(name, "."):
		p.fail(qualify("podIdentityBucket"), strconv.Quote(name), "a bucket name without dots: it is the issuer's host name under *.s3.<region>.amazonaws.com, whose certificate covers one label")
	case name == c.Uploads.BucketName || name == c.Backups.BucketName:
		p.fail(qualify("podIdentityBucket"), strconv.Quote(name), "a bucket of its own, other than uploadsBucket and backupsBucket: it is public")
	}
}

// boundaryARN is an IAM managed policy's ARN.
var boundaryARN = regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]{1,128}$`)

// permissionsBoundary reads the managed policy every IAM role and user of the stack is created
// under (bootstrap/ makes one per stack: the deploy role may create roles and users only with
// it, so nothing the deploy makes can hold more, IAM included).
func (p *parser) permissionsBoundary(c *Config) {
	c.PermissionsBoundary = p.str("permissionsBoundary", "", false)
	if c.PermissionsBoundary != "" && !boundaryARN.MatchString(c.PermissionsBoundary) {
		p.fail(qualify("permissionsBoundary"), strconv.Quote(c.PermissionsBoundary), "the ARN of an IAM managed policy (arn:aws:iam::<account>:policy/<name>), the bootstrap's <stack>PermissionsBoundary output, or nothing")
	}
}
