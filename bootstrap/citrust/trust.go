package citrust

import (
	"fmt"

	"github.com/waste-coach/infra/infra"
)

// GitHub's OIDC issuer, as IAM names the provider (host, no scheme) and the audience
// aws-actions/configure-aws-credentials asks for.
const (
	GitHubIssuerHost = "token.actions.githubusercontent.com"
	GitHubAudience   = "sts.amazonaws.com"
)

// SubjectClaimKeys are the claims the repository's customised subject is made of, in order:
// GitHub then writes sub as repo:<owner>/<name>:environment:<env>:job_workflow_ref:<ref>, so a
// role can trust one workflow file at one branch, not merely anything that names an environment.
var SubjectClaimKeys = []string{"repo", "context", "job_workflow_ref"}

// The workflows that get AWS credentials (.github/workflows): up.yml runs `pulumi up` (called by
// deploy.yml on pushes to main), pull-request.yml runs the previews.
const (
	DeployWorkflow  = "up.yml"
	PreviewWorkflow = "pull-request.yml"
)

// Subject is the sub claim of a job in the named environment, run by workflow at ref (for a
// reusable workflow called from the repository itself, the caller's ref).
func (c *Config) Subject(environment, workflow, ref string) string {
	return fmt.Sprintf("repo:%s:environment:%s:job_workflow_ref:%s/.github/workflows/%s@%s",
		c.subjectRepository(), environment, c.Repository(), workflow, ref)
}

// subjectRepository is the repo claim: owner/name, or owner@<id>/name@<id> for a repository
// with immutable subject claims (GitHub's default for repositories created or renamed since
// 2026-07-15).
func (c *Config) subjectRepository() string {
	if c.OwnerID == "" {
		return c.Repository()
	}
	return c.Owner + "@" + c.OwnerID + "/" + c.Name + "@" + c.RepositoryID
}

// DeploySubject is the only subject a stack's deploy role trusts: up.yml in the stack's
// environment at main. A pull request's jobs run at refs/pull/<n>/merge, a dispatch of another
// branch at that branch: neither matches, whatever the workflow files say in that ref.
func (c *Config) DeploySubject(s Stack) string {
	return c.Subject(s.Name, DeployWorkflow, "refs/heads/"+DeployBranch)
}

// PreviewSubject is what a stack's preview role trusts: pull-request.yml of any pull request, in
// the stack's environment (prod's holds the job until a reviewer approves it).
func (c *Config) PreviewSubject(s Stack) string {
	return c.Subject(s.Name, PreviewWorkflow, "refs/pull/*/merge")
}

func (c *Config) trust(providerARN, operator, subject string) infra.PolicyDocument {
	return document(infra.Statement{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": providerARN},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: conditions(operator, subject),
	})
}

// conditions: the audience always, the subject with operator (the two share a map when both
// are StringEquals).
func conditions(operator, subject string) map[string]any {
	c := map[string]map[string]any{"StringEquals": {GitHubIssuerHost + ":aud": GitHubAudience}}
	if c[operator] == nil {
		c[operator] = map[string]any{}
	}
	c[operator][GitHubIssuerHost+":sub"] = subject
	out := map[string]any{}
	for op, keys := range c {
		out[op] = keys
	}
	return out
}

// DeployTrust is the deploy role's trust policy: exactly DeploySubject.
func (c *Config) DeployTrust(providerARN string, s Stack) infra.PolicyDocument {
	return c.trust(providerARN, "StringEquals", c.DeploySubject(s))
}

// PreviewTrust is the preview role's trust policy: PreviewSubject, any pull request number.
func (c *Config) PreviewTrust(providerARN string, s Stack) infra.PolicyDocument {
	return c.trust(providerARN, "StringLike", c.PreviewSubject(s))
}

// Account is where the roles act: the account id and the region of the infra stacks.
type Account struct {
	ID, Region string
}

func (a Account) arn(service, resource string) string {
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, a.Region, a.ID, resource)
}

func (a Account) iam(resource string) string {
	return fmt.Sprintf("arn:aws:iam::%s:%s", a.ID, resource)
}

// State objects of a self-managed backend (pulumi/pkg backend/diy, project-scoped stacks): the
// checkpoint (<stack>.json, its .bak, the .pulumi-tags beside it), history, backups, and the lock
// an update takes (locks/organization/<project>/<stack>/<id>.json). A preview only reads.
func (c *Config) stateObjects(s Stack) []string {
	root := "arn:aws:s3:::" + c.StateBucket + "/.pulumi/"
	return []string{
		root + "stacks/" + InfraProject + "/" + s.Name + ".*",
		root + "history/" + InfraProject + "/" + s.Name + "/*",
		root + "backups/" + InfraProject + "/" + s.Name + "/*",
		root + "locks/organization/" + InfraProject + "/" + s.Name + "/*",
	}
}

// stateList lets a role list the state bucket: the CLI lists a stack's folder to find its
// checkpoint, locks and history, and S3 answers a missing object (a stack without tags) with 403
// rather than 404 to a role that may not list. Listing shows keys, not state.
func (c *Config) stateList() infra.Statement {
	return infra.Statement{Sid: "ListState", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: "arn:aws:s3:::" + c.StateBucket}
}

// issuerDocuments are the two objects of the stack's service-account issuer bucket
// (infra/podidentity.go), the only objects the deploy role writes.
func issuerDocuments(s Stack) []string {
	return []string{
		"arn:aws:s3:::" + s.ClusterID + "-*" + infra.DiscoveryPath,
		"arn:aws:s3:::" + s.ClusterID + "-*" + infra.JWKSPath,
	}
}

// PreviewPolicy is what a preview of the stack reads: its own state and secrets key (Decrypt
// only: a preview encrypts nothing), and the descriptions of what the program manages or looks
// up. Nothing that holds data: no object of the program's buckets, no log event, no parameter
// value, no other stack's state or key. Every action is a Describe, Get or List but kms:Decrypt.
func (c *Config) PreviewPolicy(a Account, s Stack, keyARN string) infra.PolicyDocument {
	prefix := s.ClusterID + "-"
	return document(
		c.stateList(),
		infra.Statement{Sid: "ReadOwnState", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: append([]string{
			"arn:aws:s3:::" + c.StateBucket + "/.pulumi/meta.yaml",
		}, c.stateObjects(s)...)},
		infra.Statement{Sid: "DecryptOwnSecrets", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:DescribeKey"}, Resource: keyARN},
		infra.Statement{Sid: "DescribeInfrastructure", Effect: "Allow", Resource: "*", Action: []string{
			"ec2:Describe*", "elasticloadbalancing:Describe*", "route53:Get*", "route53:List*",
			"acm:DescribeCertificate", "acm:ListCertificates", "acm:ListTagsForCertificate",
			"dlm:Get*", "ssm:DescribeParameters", "logs:DescribeLogGroups", "sts:GetCallerIdentity",
		}},
		infra.Statement{Sid: "DescribeOwnIdentities", Effect: "Allow", Action: []string{"iam:Get*", "iam:List*"}, Resource: []string{
			a.iam("role/" + prefix + "*"), a.iam("instance-profile/" + prefix + "*"),
			a.iam("user/" + prefix + "*"), a.iam("oidc-provider/" + prefix + "*"),
		}},
		infra.Statement{Sid: "DescribeOwnBuckets", Effect: "Allow", Action: []string{"s3:GetBucket*", "s3:Get*Configuration"}, Resource: "arn:aws:s3:::" + prefix + "*"},
		infra.Statement{Sid: "ReadOwnIssuerDocuments", Effect: "Allow", Action: []string{"s3:GetObject", "s3:GetObjectTagging"}, Resource: issuerDocuments(s)},
		infra.Statement{Sid: "DescribeOwnParametersLogsSchedules", Effect: "Allow", Action: []string{"ssm:ListTagsForResource", "logs:ListTagsForResource", "logs:ListTagsLogGroup", "scheduler:Get*", "scheduler:List*"}, Resource: []string{
			a.arn("ssm", "parameter/"+s.ClusterID+"/*"),
			a.arn("logs", "log-group:/waste-coach/"+s.ClusterID), a.arn("logs", "log-group:/waste-coach/"+s.ClusterID+":*"),
			a.arn("scheduler", "schedule-group/"+prefix+"*"), a.arn("scheduler", "schedule/"+prefix+"*"),
		}},
	)
}

// DeployPolicy is what `pulumi up` of the stack needs: its state, its secrets key, and the
// services the program declares. IAM, S3, SSM parameters, the log group and schedules are
// limited to the names the infra program gives this stack (<cluster id>-..., /<cluster id>/...,
// /waste-coach/<cluster id>); EC2, load balancing, Route53, ACM and DLM are not scoped by name or
// tag (their create calls take no name a condition could pin): separate accounts per stack are
// the boundary for those. Object data: the role writes only the issuer's two documents and
// deletes objects only to empty a dev bucket being destroyed; it reads no backup or upload.
func (c *Config) DeployPolicy(a Account, s Stack, keyARN string) infra.PolicyDocument {
	prefix := s.ClusterID + "-"
	return document(
		c.stateList(),
		infra.Statement{Sid: "ReadMeta", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: "arn:aws:s3:::" + c.StateBucket + "/.pulumi/meta.yaml"},
		infra.Statement{Sid: "WriteOwnState", Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, Resource: c.stateObjects(s)},
		// Decrypt only: the CLI decrypts the stack's data key and encrypts new secrets locally
		// with it; only the administrator who sets the secrets provider encrypts with the key.
		infra.Statement{Sid: "DecryptOwnSecrets", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:DescribeKey"}, Resource: keyARN},
		infra.Statement{Sid: "ManageInfrastructure", Effect: "Allow", Resource: "*", Action: []string{
			"ec2:*", "elasticloadbalancing:*", "route53:*", "acm:*", "dlm:*",
			"ssm:DescribeParameters", "logs:DescribeLogGroups", "sts:GetCallerIdentity",
		}},
		infra.Statement{Sid: "ManageOwnIdentities", Effect: "Allow", Action: []string{"iam:*"}, Resource: []string{
			a.iam("role/" + prefix + "*"), a.iam("instance-profile/" + prefix + "*"),
			a.iam("user/" + prefix + "*"), a.iam("oidc-provider/" + prefix + "*"),
		}},
		infra.Statement{Sid: "CreateServiceLinkedRoles", Effect: "Allow", Action: []string{"iam:CreateServiceLinkedRole"}, Resource: "*",
			Condition: map[string]any{"StringEquals": map[string]any{"iam:AWSServiceName": []string{
				"elasticloadbalancing.amazonaws.com", "spot.amazonaws.com",
			}}}},
		infra.Statement{Sid: "ManageOwnBuckets", Effect: "Allow", Action: []string{"s3:*Bucket*", "s3:*Configuration"}, Resource: "arn:aws:s3:::" + prefix + "*"},
		infra.Statement{Sid: "WriteOwnIssuerDocuments", Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"}, Resource: issuerDocuments(s)},
		infra.Statement{Sid: "EmptyOwnBucketsOnDestroy", Effect: "Allow", Action: []string{"s3:DeleteObject", "s3:DeleteObjectVersion"}, Resource: "arn:aws:s3:::" + prefix + "*/*"},
		// The parameters hold the nodes' preparation scripts, which the program writes and reads
		// back; the log group is managed, its events are not read.
		infra.Statement{Sid: "ManageOwnParametersAndSchedules", Effect: "Allow", Action: []string{"ssm:*", "scheduler:*"}, Resource: []string{
			a.arn("ssm", "parameter/"+s.ClusterID+"/*"),
			a.arn("scheduler", "schedule-group/"+prefix+"*"), a.arn("scheduler", "schedule/"+prefix+"*"),
		}},
		infra.Statement{Sid: "ManageOwnLogGroup", Effect: "Allow", Action: []string{
			"logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
			"logs:TagResource", "logs:UntagResource", "logs:TagLogGroup", "logs:UntagLogGroup",
			"logs:ListTagsForResource", "logs:ListTagsLogGroup",
		}, Resource: []string{
			a.arn("logs", "log-group:/waste-coach/"+s.ClusterID), a.arn("logs", "log-group:/waste-coach/"+s.ClusterID+":*"),
		}},
		infra.Statement{Sid: "PassOwnRoles", Effect: "Allow", Action: []string{"iam:PassRole"}, Resource: a.iam("role/" + prefix + "*"),
			Condition: map[string]any{"StringEquals": map[string]any{"iam:PassedToService": []string{
				"ec2.amazonaws.com", "scheduler.amazonaws.com", "dlm.amazonaws.com",
			}}}},
	)
}

func document(statements ...infra.Statement) infra.PolicyDocument {
	return infra.PolicyDocument{Version: "2012-10-17", Statement: statements}
}

// StateTLSOnly is the state bucket's policy: no request without TLS.
func StateTLSOnly(bucket string) infra.Statement {
	return infra.Statement{
		Sid: "TLSOnly", Effect: "Deny", Principal: map[string]any{"AWS": "*"}, Action: []string{"s3:*"},
		Resource:  []string{"arn:aws:s3:::" + bucket, "arn:aws:s3:::" + bucket + "/*"},
		Condition: map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
}
