// Pod identities: the bucket that publishes the cluster's service-account issuer (key
// podIdentityBucket), and the issuer URL derived from it.

package config

import (
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
