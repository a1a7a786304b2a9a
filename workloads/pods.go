package workloads

import (
	"fmt"
	"maps"
	"slices"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// Resources are a container's requests and limits. CPU in millicores, memory in MiB; the same
// figures feed the fit check, so what is scheduled is what is counted.
type Resources struct {
	CPU, MemoryMiB           int
	CPULimit, MemoryLimitMiB int
}

func (r Resources) args() *corev1.ResourceRequirementsArgs {
	return &corev1.ResourceRequirementsArgs{
		Requests: pulumi.StringMap{"cpu": pulumi.Sprintf("%dm", r.CPU), "memory": pulumi.Sprintf("%dMi", r.MemoryMiB)},
		Limits:   pulumi.StringMap{"cpu": pulumi.Sprintf("%dm", r.CPULimit), "memory": pulumi.Sprintf("%dMi", r.MemoryLimitMiB)},
	}
}

// values renders the resources in the shape Helm charts take.
func (r Resources) values() pulumi.Map {
	return pulumi.Map{
		"requests": pulumi.Map{"cpu": pulumi.Sprintf("%dm", r.CPU), "memory": pulumi.Sprintf("%dMi", r.MemoryMiB)},
		"limits":   pulumi.Map{"cpu": pulumi.Sprintf("%dm", r.CPULimit), "memory": pulumi.Sprintf("%dMi", r.MemoryLimitMiB)},
	}
}

// labels returns the recommended labels of a component of the platform.
func labels(name, component string) pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":       pulumi.String(name),
		"app.kubernetes.io/component":  pulumi.String(component),
		"app.kubernetes.io/part-of":    pulumi.String("waste-coach"),
		"app.kubernetes.io/managed-by": pulumi.String("pulumi"),
	}
}

// selector is the subset of labels that selects a component's pods; it never changes.
func selector(name string) pulumi.StringMap {
	return pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name)}
}

func meta(name, namespace string, l pulumi.StringMap) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: pulumi.String(namespace), Labels: l}
}

// Container describes one container; container() turns it into the Kubernetes shape with the
// platform's one way of setting resources, probes and a locked-down security context.
type Container struct {
	Name    string
	Image   pulumi.StringInput
	Command []string
	Args    []string
	Ports   map[string]int
	Env     corev1.EnvVarArray
	EnvFrom corev1.EnvFromSourceArray
	// Resources are required: every container has requests and limits.
	Resources Resources
	// Readiness and Liveness are required: every long-running container has both.
	Readiness, Liveness *corev1.ProbeArgs
	Startup             *corev1.ProbeArgs
	Mounts              corev1.VolumeMountArray
	// WritableRoot is set only for images that write outside their mounted volumes.
	WritableRoot bool
}

func (c Container) args() corev1.ContainerArgs {
	ports := corev1.ContainerPortArray{}
	for _, name := range slices.Sorted(maps.Keys(c.Ports)) {
		ports = append(ports, corev1.ContainerPortArgs{Name: pulumi.String(name), ContainerPort: pulumi.Int(c.Ports[name])})
	}
	return corev1.ContainerArgs{
		Name:           pulumi.String(c.Name),
		Image:          c.Image,
		Command:        pulumi.ToStringArray(c.Command),
		Args:           pulumi.ToStringArray(c.Args),
		Ports:          ports,
		Env:            c.Env,
		EnvFrom:        c.EnvFrom,
		Resources:      c.Resources.args(),
		ReadinessProbe: c.Readiness,
		LivenessProbe:  c.Liveness,
		StartupProbe:   c.Startup,
		VolumeMounts:   c.Mounts,
		SecurityContext: &corev1.SecurityContextArgs{
			AllowPrivilegeEscalation: pulumi.Bool(false),
			ReadOnlyRootFilesystem:   pulumi.Bool(!c.WritableRoot),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
		},
	}
}

// Pod describes a pod template: where it runs, as whom, and its containers.
type Pod struct {
	Labels pulumi.StringMap
	// Role is the node role the pod is pinned to.
	Role       config.Role
	UID        int
	Containers []Container
	Init       []Container
	Volumes    corev1.VolumeArray
	// ServiceAccount is the pod's identity; pods without one get no API token.
	ServiceAccount string
	// GracePeriod overrides the default 30 s for pods that drain work on shutdown.
	GracePeriod int
	// PullSecrets name the registry logins the kubelet pulls the images with.
	PullSecrets []string
	// HostNetwork and RunAsRoot are for the etcd snapshot only: it reaches the member on the
	// master's loopback and reads kubeadm's root-only etcd client key.
	HostNetwork, RunAsRoot bool
}

// withRegistryLogin gives a pod of the app namespace the private registry's login, when one is
// configured (pullSecret, nil otherwise), and returns the dependencies with that Secret added:
// the application's pods must not be created before the kubelet can pull their images. Pods
// elsewhere run public images.
func withRegistryLogin(pullSecret *corev1.Secret, namespace string, pod Pod, deps []pulumi.Resource) (Pod, []pulumi.Resource) {
	if namespace != NamespaceApp || pullSecret == nil {
		return pod, deps
	}
	pod.PullSecrets = append(slices.Clone(pod.PullSecrets), RegistryPullSecret)
	return pod, append(slices.Clone(deps), pullSecret)
}

func (p Pod) template() corev1.PodTemplateSpecArgs {
	containers, inits := corev1.ContainerArray{}, corev1.ContainerArray{}
	for _, c := range p.Containers {
		containers = append(containers, c.args())
	}
	for _, c := range p.Init {
		inits = append(inits, c.args())
	}
	spec := &corev1.PodSpecArgs{
		NodeSelector:   nodeSelector(p.Role),
		Tolerations:    tolerations(p.Role),
		Containers:     containers,
		InitContainers: inits,
		Volumes:        p.Volumes,
		SecurityContext: &corev1.PodSecurityContextArgs{
			RunAsNonRoot:   pulumi.Bool(true),
			RunAsUser:      pulumi.Int(p.UID),
			RunAsGroup:     pulumi.Int(p.UID),
			FsGroup:        pulumi.Int(p.UID),
			SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
		},
		AutomountServiceAccountToken: pulumi.Bool(p.ServiceAccount != ""),
	}
	if p.RunAsRoot {
		spec.SecurityContext = &corev1.PodSecurityContextArgs{
			RunAsUser:      pulumi.Int(0),
			SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
		}
	}
	if p.HostNetwork {
		spec.HostNetwork = pulumi.Bool(true)
		spec.DnsPolicy = pulumi.String("ClusterFirstWithHostNet")
	}
	if p.ServiceAccount != "" {
		spec.ServiceAccountName = pulumi.String(p.ServiceAccount)
	}
	if p.GracePeriod > 0 {
		spec.TerminationGracePeriodSeconds = pulumi.Int(p.GracePeriod)
	}
	if len(p.PullSecrets) > 0 {
		refs := corev1.LocalObjectReferenceArray{}
		for _, name := range p.PullSecrets {
			refs = append(refs, corev1.LocalObjectReferenceArgs{Name: pulumi.String(name)})
		}
		spec.ImagePullSecrets = refs
	}
	return corev1.PodTemplateSpecArgs{Metadata: &metav1.ObjectMetaArgs{Labels: p.Labels}, Spec: spec}
}

// nodeSelector pins pods to a role: the workload label for workers, the control-plane label
// for the master.
func nodeSelector(role config.Role) pulumi.StringMap {
	return pulumi.ToStringMap(NodeSelector(role))
}

// NodeSelector is the node selector that pins a pod to a role's node: the control plane's role
// label for the master, the workload label for the others.
func NodeSelector(role config.Role) map[string]string {
	if role.ControlPlane() {
		return map[string]string{"node-role.kubernetes.io/control-plane": ""}
	}
	return map[string]string{config.WorkloadLabel: role.Workload()}
}

// tolerations lets pods pinned to the master past its NoSchedule taint; nothing else tolerates it.
func tolerations(role config.Role) corev1.TolerationArray {
	if !role.ControlPlane() {
		return nil
	}
	return corev1.TolerationArray{corev1.TolerationArgs{
		Key: pulumi.String("node-role.kubernetes.io/control-plane"), Operator: pulumi.String("Exists"), Effect: pulumi.String("NoSchedule"),
	}}
}

// Chart values that place a chart's pods on a role.
func placement(role config.Role) pulumi.Map {
	m := pulumi.Map{"nodeSelector": nodeSelector(role)}
	if t := tolerations(role); t != nil {
		m["tolerations"] = pulumi.Array{pulumi.Map{"key": pulumi.String("node-role.kubernetes.io/control-plane"), "operator": pulumi.String("Exists"), "effect": pulumi.String("NoSchedule")}}
	}
	return m
}

func httpProbe(path string, port, period int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.Int(port)},
		PeriodSeconds:    pulumi.Int(period),
		TimeoutSeconds:   pulumi.Int(3),
		FailureThreshold: pulumi.Int(3),
	}
}

func tcpProbe(port, period int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		TcpSocket:        &corev1.TCPSocketActionArgs{Port: pulumi.Int(port)},
		PeriodSeconds:    pulumi.Int(period),
		TimeoutSeconds:   pulumi.Int(3),
		FailureThreshold: pulumi.Int(3),
	}
}

func execProbe(period, timeout int, command ...string) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		Exec:             &corev1.ExecActionArgs{Command: pulumi.ToStringArray(command)},
		PeriodSeconds:    pulumi.Int(period),
		TimeoutSeconds:   pulumi.Int(timeout),
		FailureThreshold: pulumi.Int(3),
	}
}

// withStartup gives a slow starter time before liveness counts: up to budget seconds.
func withStartup(p *corev1.ProbeArgs, budget int) *corev1.ProbeArgs {
	s := *p
	s.PeriodSeconds = pulumi.Int(10)
	s.FailureThreshold = pulumi.Int(budget / 10)
	return &s
}

func emptyDir(name string, sizeMiB int) corev1.VolumeArgs {
	return corev1.VolumeArgs{Name: pulumi.String(name), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.Sprintf("%dMi", sizeMiB)}}
}

func mount(name, path string) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path)}
}

func secretEnv(name, secret, key string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(name), ValueFrom: &corev1.EnvVarSourceArgs{
		SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: pulumi.String(secret), Key: pulumi.String(key)},
	}}
}

func plainEnv(name, value string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(name), Value: pulumi.String(value)}
}

func fieldEnv(name, path string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(name), ValueFrom: &corev1.EnvVarSourceArgs{
		FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String(path)},
	}}
}

// serviceDNS is a Service's in-cluster name.
func serviceDNS(name, namespace string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", name, namespace)
}
