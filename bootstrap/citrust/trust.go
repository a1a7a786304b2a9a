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
// GitHub then writes sub as
// repo:<owner>/<name>:environment:<env>:ref:<run's ref>:job_workflow_ref:<file>@<its ref>, so a
// role can trust one workflow file, at one branch, run for that branch. Both refs matter:
// job_workflow_ref names the called workflow at the ref it was called at, which any branch's
// workflow may set to main (uses: <owner>/<name>/.github/workflows/up.yml@main); ref is the
// ref the run itself was started for, whose code the job checks out.
var SubjectClaimKeys = []string{"repo", "context", "ref", "job_workflow_ref"}

// The workflows that get AWS credentials (.github/workflows): up.yml runs `pulumi up` (called by
// deploy.yml on pushes to main), pull-request.yml runs the previews.
const (
	DeployWorkflow  = "up.yml"
	PreviewWorkflow = "pull-request.yml"
)

// Subject is the sub claim of a job in the named environment, in a run started for ref, whose
// job runs workflow as it is at workflowRef.
func (c *Config) Subject(environment, ref, workflow, workflowRef string) string {
	return fmt.Sprintf("repo:%s:environment:%s:ref:%s:job_workflow_ref:%s/.github/workflows/%s@%s",
		c.subjectRepository(), environment, ref, c.Repository(), workflow, workflowRef)
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

// DeploySubject is the only subject a stack's deploy role trusts: up.yml as it is on main, in
// the stack's environment, in a run started for main. A pull request's run is for
// refs/pull/<n>/merge and a dispatch or push of another branch for that branch, whatever
// workflow file they call and at whatever ref: neither matches.
func (c *Config) DeploySubject(s Stack) string {
	main := "refs/heads/" + DeployBranch
	return c.Subject(s.Name, main, DeployWorkflow, main)
}

// PreviewSubject is what a stack's preview role trusts: pull-request.yml of a pull request's
// run, in the stack's environment (prod's holds the job until a reviewer approves it).
func (c *Config) PreviewSubject(s Stack) string {
	return c.Subject(s.Name, "refs/pull/*/merge", PreviewWorkflow, "refs/pull/*/merge")
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
		"arn:aws:s3:::" + IssuerBucket(s) + infra.DiscoveryPath,
		"arn:aws:s3:::" + IssuerBucket(s) + infra.JWKSPath,
	}
}

// IssuerBucket is the stack's service-account issuer bucket as the infra program names it by
// default (podIdentityBucket).
func IssuerBucket(s Stack) string { return s.ClusterID + "-oidc" }

// PreviewPolicy is what a preview of the stack reads: its own state and secrets key (Decrypt
// only: a preview encrypts nothing), and the descriptions of what the program manages or looks
// up. Nothing that holds data: no object of the program's buckets, no log event, no parameter
// value, no other stack's state or key. Every action is a Describe, Get or List but kms:Decrypt.
func (c *Config) PreviewPolicy(a Account, s Stack, keyARN string) infra.PolicyDocument {
	prefix := s.ClusterID + "-"
	return document(
		c.stateList(),
		// The checkpoint only: a preview reads no history or backup (older checkpoints, older
		// secrets), takes no lock and writes nothing (backend/diy).
		infra.Statement{Sid: "ReadOwnState", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{
			"arn:aws:s3:::" + c.StateBucket + "/.pulumi/meta.yaml",
			c.stateObjects(s)[0],
		}},
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
	d := c.deployPolicy(a, s, keyARN)
	if !s.Production {
		// A non-production stack's buckets are emptied by its destroy (force destroy); a
		// production stack's are kept, and its deploy role deletes no object version.
		d.Statement = append(d.Statement, infra.Statement{Sid: "EmptyOwnBucketsOnDestroy", Effect: "Allow",
			Action: []string{"s3:DeleteObject", "s3:DeleteObjectVersion"}, Resource: "arn:aws:s3:::" + s.ClusterID + "-*/*"})
	}
	return d
}

func (c *Config) deployPolicy(a Account, s Stack, keyARN string) infra.PolicyDocument {
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
		// Roles and users only under the stack's permissions boundary: whatever policy the deploy
		// writes into them, they can never do more than the boundary (no IAM at all), so the
		// deploy role cannot make itself or anything else an administrator. No managed policy is
		// attached (the program writes inline policies only), and no boundary removed.
		infra.Statement{Sid: "WriteRolesUnderTheBoundary", Effect: "Allow", Action: []string{
			"iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary",
		}, Resource: a.iam("role/" + prefix + "*"),
			Condition: map[string]any{"StringEquals": map[string]any{"iam:PermissionsBoundary": a.iam("policy/" + BoundaryName(s))}}},
		// The one user of the stack (Grafana's log reader, infra/logs.go), also under it.
		infra.Statement{Sid: "WriteTheUserUnderTheBoundary", Effect: "Allow", Action: []string{
			"iam:CreateUser", "iam:PutUserPolicy", "iam:PutUserPermissionsBoundary",
		}, Resource: a.iam("user/" + LogReaderUser(s)),
			Condition: map[string]any{"StringEquals": map[string]any{"iam:PermissionsBoundary": a.iam("policy/" + BoundaryName(s))}}},
		infra.Statement{Sid: "KeysOfTheUser", Effect: "Allow", Action: []string{"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:UpdateAccessKey"},
			Resource: a.iam("user/" + LogReaderUser(s))},
		infra.Statement{Sid: "ManageOwnIdentities", Effect: "Allow", Action: []string{
			"iam:Get*", "iam:List*", "iam:Tag*", "iam:Untag*",
			"iam:DeleteRole", "iam:DeleteRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
			"iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
			"iam:DeleteUser", "iam:DeleteUserPolicy",
			"iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
			"iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider",
		}, Resource: []string{
			a.iam("role/" + prefix + "*"), a.iam("instance-profile/" + prefix + "*"),
			a.iam("user/" + prefix + "*"), a.iam("oidc-provider/" + IssuerBucket(s) + ".s3." + a.Region + ".amazonaws.com"),
		}},
		// It never needs to be another role: not even one it made, which could trust it.
		infra.Statement{Sid: "NoRoleChaining", Effect: "Deny", Resource: "*", Action: []string{"sts:AssumeRole"}},
		infra.Statement{Sid: "KeepTheBoundary", Effect: "Deny", Resource: "*", Action: []string{
			"iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary",
			"iam:AttachRolePolicy", "iam:AttachUserPolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
		}},
		infra.Statement{Sid: "CreateServiceLinkedRoles", Effect: "Allow", Action: []string{"iam:CreateServiceLinkedRole"}, Resource: "*",
			Condition: map[string]any{"StringEquals": map[string]any{"iam:AWSServiceName": []string{
				"elasticloadbalancing.amazonaws.com", "spot.amazonaws.com",
			}}}},
		infra.Statement{Sid: "ManageOwnBuckets", Effect: "Allow", Action: []string{"s3:*Bucket*", "s3:*Configuration"}, Resource: "arn:aws:s3:::" + prefix + "*"},
		infra.Statement{Sid: "WriteOwnIssuerDocuments", Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"}, Resource: issuerDocuments(s)},
		// Replication would copy every object elsewhere: the program configures none.
		infra.Statement{Sid: "NoReplication", Effect: "Deny", Action: []string{"s3:PutReplicationConfiguration"}, Resource: "*"},
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

// BoundaryName is the stack's permissions boundary: the most any IAM role or user of the stack
// may do (the infra program's key permissionsBoundary names it; the deploy role creates roles
// and users only under it).
func BoundaryName(s Stack) string { return Project + "-" + s.Name + "-boundary" }

// Boundary is that policy: exactly the actions the infra program's node and pod roles, its
// schedule and snapshot roles and Grafana's log reader use, objects, logs and parameters only
// under the stack's names; no IAM, STS, bucket policy or configuration. A role's effective
// rights are its own policies and this, so nothing the deploy role writes into a role or user
// of the stack can reach further. tests/ci_trust_test.go checks both ways: every statement of
// every role the infra program declares fits inside it, and it grants nothing beyond its table.
// EC2 and load balancing take no names at creation: those actions are account-wide.
func Boundary(a Account, s Stack) infra.PolicyDocument {
	prefix := s.ClusterID + "-"
	group := a.arn("logs", "log-group:/waste-coach/"+s.ClusterID)
	return document(
		infra.Statement{Sid: "Compute", Effect: "Allow", Resource: "*", Action: BoundaryComputeActions},
		infra.Statement{Sid: "OwnBuckets", Effect: "Allow", Action: []string{"s3:ListBucket", "s3:GetBucketLocation"},
			Resource: "arn:aws:s3:::" + prefix + "*"},
		infra.Statement{Sid: "OwnObjects", Effect: "Allow", Action: []string{
			"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
		}, Resource: "arn:aws:s3:::" + prefix + "*/*"},
		infra.Statement{Sid: "OwnLogs", Effect: "Allow", Resource: []string{group, group + ":*"}, Action: []string{
			"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents",
			"logs:GetLogGroupFields", "logs:StartQuery",
		}},
		infra.Statement{Sid: "LogQueries", Effect: "Allow", Resource: "*", Action: []string{
			"logs:DescribeLogGroups", "logs:GetQueryResults", "logs:StopQuery",
		}},
		infra.Statement{Sid: "OwnParameters", Effect: "Allow", Action: []string{"ssm:GetParameter"},
			Resource: a.arn("ssm", "parameter/"+s.ClusterID+"/*")},
		infra.Statement{Sid: "SessionManager", Effect: "Allow", Resource: "*", Action: []string{
			"ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
			"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
		}},
		// Encrypted volumes with the account's EBS key: what EC2 does with it on the caller's
		// behalf (the key policy grants it to the account's principals through EC2 only).
		infra.Statement{Sid: "EBSEncryption", Effect: "Allow", Resource: "*", Action: []string{
			"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
		}, Condition: map[string]any{"StringEquals": map[string]any{"kms:ViaService": "ec2." + a.Region + ".amazonaws.com"}}},
	)
}

// BoundaryComputeActions are the EC2 and load-balancing calls of the infra program's roles (the
// CCM, the EBS CSI driver, the load balancer controller, DLM, the office-hours schedules).
var BoundaryComputeActions = []string{
	"ec2:Describe*", "ec2:CreateTags",
	"ec2:CreateVolume", "ec2:AttachVolume", "ec2:DetachVolume", "ec2:ModifyVolume", "ec2:DeleteVolume",
	"ec2:CreateSnapshot", "ec2:DeleteSnapshot",
	"ec2:StartInstances", "ec2:StopInstances",
	"elasticloadbalancing:Describe*", "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
}

// LogReaderUser is the stack's one IAM user, Grafana's CloudWatch Logs reader (infra/logs.go).
func LogReaderUser(s Stack) string { return s.ClusterID + "-grafana-logs" }
