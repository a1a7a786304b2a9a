package workloads

// AWS identities of pods. A pod that calls AWS runs as the ServiceAccount its role trusts
// (infra.PodRoles) and is given, explicitly, what the EKS pod identity webhook would inject: a
// projected token for the audience STS accepts, and the environment every AWS SDK (and Fluent
// Bit, and the backup scripts' s3.sh) reads to exchange it for the role's credentials. Explicit
// rather than the webhook: the webhook is one more deployment, image and mutating admission
// path that every pod creation depends on (a webhook down blocks the pods it matches), and here
// the program declares every pod that needs a role; the test of each pod's environment is then a
// test of what the program declares, not of a mutation at admission.

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/infra"
)

// awsTokenVolume is the projected token's volume.
const awsTokenVolume = "aws-identity"

// awsIdentity is a pod role's ServiceAccount and ARN, and the stack's region.
type awsIdentity struct {
	Role   infra.PodRole
	ARN    pulumi.StringOutput
	Region string
}

// awsIdentity returns the identity of a pod role. The ARN is the one PublishKeys returned: an
// object that carries it waits for the issuer's key set.
func (s *scope) awsIdentity(key string) *awsIdentity {
	arn, ok := s.roleARNs[key]
	if !ok {
		panic("workloads: no ARN for pod role " + key) // the AWS tier declares every PodRole
	}
	return &awsIdentity{Role: infra.PodRoleByKey(key), ARN: arn, Region: s.cfg.Region}
}

// env is the environment that selects web identity credentials for the role: the SDKs use it
// before any other source but static keys, and call STS's regional endpoint.
func (a *awsIdentity) env() corev1.EnvVarArray {
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("AWS_ROLE_ARN"), Value: a.ARN}}
	for _, e := range infra.WebIdentityEnv(a.Region) {
		env = append(env, plainEnv(e[0], e[1]))
	}
	return env
}

// volume is the projected token for STS, readable by the pod's user (the kubelet gives the
// projected files the pod's fsGroup).
func (a *awsIdentity) volume() corev1.VolumeArgs {
	return corev1.VolumeArgs{Name: pulumi.String(awsTokenVolume), Projected: &corev1.ProjectedVolumeSourceArgs{
		Sources: corev1.VolumeProjectionArray{corev1.VolumeProjectionArgs{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjectionArgs{
				Audience:          pulumi.String(infra.STSAudience),
				ExpirationSeconds: pulumi.Int(infra.WebIdentityTokenSeconds),
				Path:              pulumi.String("token"),
			},
		}},
	}}
}

func (a *awsIdentity) mount() corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(awsTokenVolume), MountPath: pulumi.String(infra.WebIdentityTokenDir), ReadOnly: pulumi.Bool(true)}
}

// Chart values of the same: a list of name/value pairs, a volume and a mount.
func (a *awsIdentity) chartEnv() pulumi.Array {
	out := pulumi.Array{}
	for _, e := range a.env() {
		args := e.(corev1.EnvVarArgs)
		out = append(out, pulumi.Map{"name": args.Name, "value": args.Value})
	}
	return out
}

// chartEnvMap is the environment as a map of names to values, for charts that take it so.
func (a *awsIdentity) chartEnvMap() pulumi.Map {
	out := pulumi.Map{}
	for _, e := range a.env() {
		args := e.(corev1.EnvVarArgs)
		out[string(args.Name.(pulumi.String))] = args.Value
	}
	return out
}

func (a *awsIdentity) chartVolume() pulumi.Map {
	return pulumi.Map{"name": pulumi.String(awsTokenVolume), "projected": pulumi.Map{"sources": pulumi.Array{pulumi.Map{
		"serviceAccountToken": pulumi.Map{"audience": pulumi.String(infra.STSAudience), "expirationSeconds": pulumi.Int(infra.WebIdentityTokenSeconds), "path": pulumi.String("token")},
	}}}}
}

func (a *awsIdentity) chartMount() pulumi.Map {
	return pulumi.Map{"name": pulumi.String(awsTokenVolume), "mountPath": pulumi.String(infra.WebIdentityTokenDir), "readOnly": pulumi.Bool(true)}
}

// serviceAccount declares the role's ServiceAccount, for the program's own pods. It mounts no
// API token: these pods do not talk to the API server, and the projected STS token is not one
// the API server accepts (its audience is STS).
func (s *scope) serviceAccount(a *awsIdentity, labels pulumi.StringMap) (*corev1.ServiceAccount, error) {
	return corev1.NewServiceAccount(s.ctx, s.resourceName(a.Role.Namespace, a.Role.ServiceAccount), &corev1.ServiceAccountArgs{
		Metadata:                     meta(a.Role.ServiceAccount, a.Role.Namespace, labels),
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, s.opts(a.Role.Namespace)...)
}
