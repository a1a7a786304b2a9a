package config

import (
	"strings"
	"testing"
)

// TestPodIdentityIssuer: the pods' issuer is the bucket's virtual-hosted address in the stack's
// region (what STS fetches and what the API server writes in every token), by default a bucket
// named after the cluster id; a name S3's certificate would not cover (a dot), or a bucket the
// stack uses for data (which the issuer's public policy would expose), is refused naming the key.
func TestPodIdentityIssuer(t *testing.T) {
	c, err := parse(validRaw())
	if err != nil {
		t.Fatal(err)
	}
	if c.PodIdentity.BucketName != "prod-sesacthon-oidc" || c.ServiceAccountIssuer() != "https://prod-sesacthon-oidc.s3.ap-northeast-2.amazonaws.com" {
		t.Errorf("default issuer bucket %q, issuer %q; want prod-sesacthon-oidc at https://prod-sesacthon-oidc.s3.ap-northeast-2.amazonaws.com",
			c.PodIdentity.BucketName, c.ServiceAccountIssuer())
	}
	raw := validRaw()
	raw["waste-coach-infra:podIdentityBucket"] = "acme-prod-issuer"
	if c, err := parse(raw); err != nil || c.ServiceAccountIssuer() != "https://acme-prod-issuer.s3.ap-northeast-2.amazonaws.com" {
		t.Errorf("podIdentityBucket acme-prod-issuer: issuer %v (err %v)", c, err)
	}
	for _, bad := range []struct{ value, want string }{
		{"Issuer!", "S3 bucket name"},
		{"acme.prod.issuer", "without dots"},
		{"prod-sesacthon-images", "other than uploadsBucket and backupsBucket"},
		{"prod-sesacthon-backups", "other than uploadsBucket and backupsBucket"},
	} {
		raw := validRaw()
		raw["waste-coach-infra:podIdentityBucket"] = bad.value
		_, err := parse(raw)
		if err == nil {
			t.Errorf("podIdentityBucket=%q accepted", bad.value)
			continue
		}
		for _, want := range []string{"waste-coach-infra:podIdentityBucket", strconvQuote(bad.value), bad.want} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("podIdentityBucket=%q: error %q does not contain %q", bad.value, err, want)
			}
		}
	}
}

// TestALBAccessLogs: access logs are off unless albAccessLogs says otherwise, go to a bucket
// named after the cluster id by default, and a bucket the stack already uses, or a value that is
// no boolean, is refused naming the key.
func TestALBAccessLogs(t *testing.T) {
	c, err := parse(validRaw())
	if err != nil || c.Logs.ALBAccessLogs || c.Logs.ALBLogsBucket != "prod-sesacthon-alb-logs" {
		t.Fatalf("defaults: %v, bucket %q (err %v), want off and prod-sesacthon-alb-logs", c.Logs.ALBAccessLogs, c.Logs.ALBLogsBucket, err)
	}
	raw := validRaw()
	raw["waste-coach-infra:albAccessLogs"] = "true"
	if c, err := parse(raw); err != nil || !c.Logs.ALBAccessLogs {
		t.Errorf("albAccessLogs true not taken (err %v)", err)
	}
	for _, bad := range []struct{ key, value, want string }{
		{"albAccessLogs", "yes please", "true or false"},
		{"albLogsBucket", "prod-sesacthon-backups", "a bucket of its own"},
		{"albLogsBucket", "prod-sesacthon-oidc", "a bucket of its own"},
	} {
		raw := validRaw()
		raw["waste-coach-infra:"+bad.key] = bad.value
		_, err := parse(raw)
		if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:"+bad.key) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s=%q: %v, want a refusal naming the key and %q", bad.key, bad.value, err, bad.want)
		}
	}
}

// TestPermissionsBoundary: the boundary every IAM role and user is created under is an IAM
// managed policy's ARN or nothing; anything else is refused naming the key.
func TestPermissionsBoundary(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:permissionsBoundary"] = "arn:aws:iam::123456789012:policy/waste-coach-ci-prod-boundary"
	if c, err := parse(raw); err != nil || c.PermissionsBoundary != raw["waste-coach-infra:permissionsBoundary"] {
		t.Errorf("a policy ARN: %v (err %v)", c, err)
	}
	for _, bad := range []string{"waste-coach-ci-prod-boundary", "arn:aws:iam::123456789012:role/admin", "arn:aws:iam::aws:policy/AdministratorAccess"} {
		raw := validRaw()
		raw["waste-coach-infra:permissionsBoundary"] = bad
		_, err := parse(raw)
		if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:permissionsBoundary") || !strings.Contains(err.Error(), strconvQuote(bad)) {
			t.Errorf("permissionsBoundary=%q: %v", bad, err)
		}
	}
}
