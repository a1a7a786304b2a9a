package cluster

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/versions"
)

// CloudControllerManagerArgs are the inputs of the AWS cloud-controller-manager.
type CloudControllerManagerArgs struct {
	// Config is the validated stack configuration (the Kubernetes minor picks the image).
	Config *config.Config
	// RoleARN is the CCM's AWS role (infra.PodRoleCCM), assumed with its ServiceAccount's token.
	RoleARN pulumi.StringInput
}

// CloudControllerManager is the AWS cloud-controller-manager: it initialises every node
// (providerID, zone and instance-type labels) and removes the uninitialized taint.
type CloudControllerManager struct {
	pulumi.ResourceState
}

const ccmName = "cloud-controller-manager"

// NewCloudControllerManager declares the CCM's RBAC and its DaemonSet on the control plane,
// following cloud-provider-aws's example manifests.
func NewCloudControllerManager(ctx *pulumi.Context, name string, args *CloudControllerManagerArgs, opts ...pulumi.ResourceOption) (*CloudControllerManager, error) {
	m := &CloudControllerManager{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:cluster:CloudControllerManager", name, m, opts...); err != nil {
		return nil, err
	}
	image, ok := versions.CCMImage(args.Config.Kubernetes.MinorString())
	if !ok {
		return nil, fmt.Errorf("no cloud-controller-manager pinned for Kubernetes %s", args.Config.Kubernetes.MinorString())
	}
	parent := pulumi.Parent(m)
	meta := &metav1.ObjectMetaArgs{Name: pulumi.String(ccmName), Namespace: pulumi.String("kube-system"),
		Labels: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("aws-cloud-controller-manager")}}

	sa, err := corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{Metadata: meta}, parent)
	if err != nil {
		return nil, fmt.Errorf("service account: %w", err)
	}
	rule := func(groups []string, resources []string, verbs ...string) rbacv1.PolicyRuleArgs {
		return rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray(groups), Resources: pulumi.ToStringArray(resources), Verbs: pulumi.ToStringArray(verbs)}
	}
	// Upstream's example also grants creating ServiceAccounts and their tokens, which only
	// --use-service-account-credentials=true uses (a client per controller, each minting its own
	// account's tokens). This CCM runs with its own credentials; a token-minting right would let
	// it, or whoever took it over, mint an STS token for any pod role's ServiceAccount and take
	// that AWS role (infra.PodRoles).
	role, err := rbacv1.NewClusterRole(ctx, name, &rbacv1.ClusterRoleArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("system:" + ccmName)},
		Rules: rbacv1.PolicyRuleArray{
			rule([]string{""}, []string{"events"}, "create", "patch", "update"),
			rule([]string{""}, []string{"nodes"}, "*"),
			rule([]string{""}, []string{"nodes/status"}, "patch"),
			rule([]string{""}, []string{"services"}, "list", "patch", "update", "watch"),
			rule([]string{""}, []string{"services/status"}, "list", "patch", "update", "watch"),
			rule([]string{""}, []string{"persistentvolumes"}, "get", "list", "update", "watch"),
			rule([]string{""}, []string{"endpoints"}, "create", "get", "list", "watch", "update"),
			rule([]string{"coordination.k8s.io"}, []string{"leases"}, "create", "get", "list", "watch", "update"),
		},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("cluster role: %w", err)
	}
	subjects := rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(ccmName), Namespace: pulumi.String("kube-system")}}
	if _, err := rbacv1.NewClusterRoleBinding(ctx, name, &rbacv1.ClusterRoleBindingArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("system:" + ccmName)},
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: pulumi.String("system:" + ccmName)},
		Subjects: subjects,
	}, parent, pulumi.DependsOn([]pulumi.Resource{role, sa})); err != nil {
		return nil, fmt.Errorf("cluster role binding: %w", err)
	}
	authReader, err := rbacv1.NewRoleBinding(ctx, name+"-auth-reader", &rbacv1.RoleBindingArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ccmName + ":apiserver-authentication-reader"), Namespace: pulumi.String("kube-system")},
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: pulumi.String("extension-apiserver-authentication-reader")},
		Subjects: subjects,
	}, parent, pulumi.DependsOn([]pulumi.Resource{sa}))
	if err != nil {
		return nil, fmt.Errorf("auth reader binding: %w", err)
	}

	labels := pulumi.StringMap{"k8s-app": pulumi.String("aws-cloud-controller-manager")}
	if _, err := appsv1.NewDaemonSet(ctx, name, &appsv1.DaemonSetArgs{
		Metadata: meta,
		Spec: appsv1.DaemonSetSpecArgs{
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: labels},
			UpdateStrategy: &appsv1.DaemonSetUpdateStrategyArgs{Type: pulumi.String("RollingUpdate")},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{
					NodeSelector:       pulumi.StringMap{"node-role.kubernetes.io/control-plane": pulumi.String("")},
					ServiceAccountName: pulumi.String(ccmName),
					// Host network: it must run before there is a pod network, which needs
					// initialised nodes.
					HostNetwork:       pulumi.Bool(true),
					PriorityClassName: pulumi.String("system-node-critical"),
					Tolerations: corev1.TolerationArray{
						corev1.TolerationArgs{Key: pulumi.String("node.cloudprovider.kubernetes.io/uninitialized"), Value: pulumi.String("true"), Effect: pulumi.String("NoSchedule")},
						corev1.TolerationArgs{Key: pulumi.String("node-role.kubernetes.io/control-plane"), Effect: pulumi.String("NoSchedule")},
						corev1.TolerationArgs{Key: pulumi.String("node.kubernetes.io/not-ready"), Effect: pulumi.String("NoSchedule")},
					},
					Volumes: corev1.VolumeArray{corev1.VolumeArgs{Name: pulumi.String("aws-identity"), Projected: &corev1.ProjectedVolumeSourceArgs{
						Sources: corev1.VolumeProjectionArray{corev1.VolumeProjectionArgs{ServiceAccountToken: &corev1.ServiceAccountTokenProjectionArgs{
							Audience: pulumi.String(infra.STSAudience), ExpirationSeconds: pulumi.Int(infra.WebIdentityTokenSeconds), Path: pulumi.String("token"),
						}}},
					}}},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:  pulumi.String("aws-cloud-controller-manager"),
						Image: pulumi.String(image),
						Args: pulumi.ToStringArray([]string{
							"--v=2",
							"--cloud-provider=aws",
							"--cluster-name=" + args.Config.ClusterID(),
							// The controllers run as this ServiceAccount, which the ClusterRole
							// above is bound to (per-controller accounts would need their own).
							"--use-service-account-credentials=false",
							// Calico VXLAN routes pods; the VPC route table must stay untouched.
							"--configure-cloud-routes=false",
						}),
						Resources: &corev1.ResourceRequirementsArgs{
							// Disk: its logs (the kubelet keeps up to 30 MiB) on a read-only image.
							Requests: pulumi.StringMap{"cpu": pulumi.String(CCMRequestCPU), "memory": pulumi.String("128Mi"), "ephemeral-storage": pulumi.String("16Mi")},
							Limits:   pulumi.StringMap{"memory": pulumi.String("256Mi"), "ephemeral-storage": pulumi.String("256Mi")}, // logs headroom: workloads.LogsHeadroomMiB
						},
						SecurityContext: &corev1.SecurityContextArgs{AllowPrivilegeEscalation: pulumi.Bool(false)},
						// Its own role, not the master's: the host network reaches the metadata
						// service, which the CCM still reads for the instance it runs on, but its
						// SDK takes the web identity first.
						Env:          webIdentityEnv(args.RoleARN, args.Config.Region),
						VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("aws-identity"), MountPath: pulumi.String(infra.WebIdentityTokenDir), ReadOnly: pulumi.Bool(true)}},
						LivenessProbe: &corev1.ProbeArgs{
							HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String("/healthz"), Port: pulumi.Int(10258), Scheme: pulumi.String("HTTPS")},
							InitialDelaySeconds: pulumi.Int(20),
							PeriodSeconds:       pulumi.Int(20),
						},
					}},
				},
			},
		},
	}, parent, pulumi.DependsOn([]pulumi.Resource{sa, authReader})); err != nil {
		return nil, fmt.Errorf("daemonset: %w", err)
	}
	if err := ctx.RegisterResourceOutputs(m, pulumi.Map{}); err != nil {
		return nil, err
	}
	return m, nil
}

// CCMRequestCPU is the CCM's CPU request on the master, counted in the fit check.
const CCMRequestCPU = "100m"

// webIdentityEnv is the environment of a container that assumes roleARN with its projected token.
func webIdentityEnv(roleARN pulumi.StringInput, region string) corev1.EnvVarArray {
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("AWS_ROLE_ARN"), Value: roleARN}}
	for _, e := range infra.WebIdentityEnv(region) {
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(e[0]), Value: pulumi.String(e[1])})
	}
	return env
}
