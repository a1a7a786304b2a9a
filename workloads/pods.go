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

// Resources are a container's requests and limits. CPU in millicores, memory and disk in MiB;
// the same figures feed the fit check, so what is scheduled is what is counted.
type Resources struct {
	CPU, MemoryMiB           int
	CPULimit, MemoryLimitMiB int
	// DiskMiB and DiskLimitMiB are the container's ephemeral storage: its log files (the
	// kubelet keeps up to LogsMiB of them), its writable layer, and the emptyDirs of its pod it
	// fills. The scheduler counts the request against the node's allocatable disk; under disk
	// pressure the kubelet evicts the pods furthest past their requests first, and it evicts a
	// pod outright once it writes more than its containers' limits add up to.
	DiskMiB, DiskLimitMiB int
}

// LogsMiB is the most a container's log files take on its node: the kubelet rotates them at
// 10 MiB and keeps 3 (cluster.ContainerLogMaxSize, cluster.ContainerLogMaxFiles). They count
// against the container's ephemeral storage, so every DiskLimitMiB leaves room for them.
const LogsMiB = 30

// LogsHeadroomMiB is what a container's logs may take before its ephemeral-storage limit evicts
// the pod (with a one-second grace: for an exporter or the WAL shipper, that stops PostgreSQL).
// The kubelet counts the container's whole log folder, which keeps the previous instance's
// files after a restart; a kubelet configured before issue 31 keeps 5 files of 10 MiB (its
// default) until the new settings reach it (docs/operations.md); and rotation runs every 10 s.
// Two instances of 50 MiB, the lag and the writable layer: 256 MiB. A limit does not count in
// scheduling, so the margin costs nothing.
const LogsHeadroomMiB = 256

// diskLimit is the ephemeral storage limit of a container that fills scratchMiB of its pod's
// emptyDirs: the scratch and LogsHeadroomMiB.
func diskLimit(scratchMiB int) int {
	return scratchMiB + LogsHeadroomMiB
}

func (r Resources) quantities() (requests, limits map[string]string) {
	requests = map[string]string{"cpu": fmt.Sprintf("%dm", r.CPU), "memory": fmt.Sprintf("%dMi", r.MemoryMiB)}
	limits = map[string]string{"cpu": fmt.Sprintf("%dm", r.CPULimit), "memory": fmt.Sprintf("%dMi", r.MemoryLimitMiB)}
	if r.DiskMiB > 0 {
		requests["ephemeral-storage"] = fmt.Sprintf("%dMi", r.DiskMiB)
	}
	if r.DiskLimitMiB > 0 {
		limits["ephemeral-storage"] = fmt.Sprintf("%dMi", r.DiskLimitMiB)
	}
	return requests, limits
}

func (r Resources) args() *corev1.ResourceRequirementsArgs {
	requests, limits := r.quantities()
	return &corev1.ResourceRequirementsArgs{Requests: pulumi.ToStringMap(requests), Limits: pulumi.ToStringMap(limits)}
}

// values renders the resources in the shape Helm charts take.
func (r Resources) values() pulumi.Map {
	requests, limits := r.quantities()
	return pulumi.Map{"requests": valuesMap(requests), "limits": valuesMap(limits)}
}

func valuesMap(m map[string]string) pulumi.Map {
	out := pulumi.Map{}
	for k, v := range m {
		out[k] = pulumi.String(v)
	}
	return out
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
	// Resources are required: every container has requests and limits, disk included.
	Resources Resources
	// Liveness is required of every long-running container, and Readiness of every one but a
	// sidecar (an exporter, the WAL shipper): any container's failed readiness takes the whole
	// pod out of its Services, and a metrics exporter must not take PostgreSQL out of its own.
	// (PostgreSQL's db-roles has one on purpose: until it has applied the roles no client can
	// log in.) Startup is set where the start is slow. Init containers have none.
	Readiness, Liveness, Startup Probe
	Mounts                       corev1.VolumeMountArray
	// WritableRoot is set only for images that write outside their mounted volumes.
	WritableRoot bool
	// AWS gives the container the pod's AWS identity (Pod.AWS): its token and environment.
	AWS bool
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
		ReadinessProbe: c.Readiness.args(),
		LivenessProbe:  c.Liveness.args(),
		StartupProbe:   c.Startup.args(),
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
	// Annotations go on the pod template; a change of one restarts the pods.
	Annotations pulumi.StringMap
	// AWS is the role the pod's containers marked AWS call AWS with (identity.go); the pod runs
	// as its ServiceAccount.
	AWS *awsIdentity
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
	withAWS := func(c Container) corev1.ContainerArgs {
		if c.AWS {
			if p.AWS == nil {
				panic("workloads: container " + c.Name + " uses the pod's AWS identity, which has none")
			}
			c.Env = append(slices.Clone(c.Env), p.AWS.env()...)
			c.Mounts = append(slices.Clone(c.Mounts), p.AWS.mount())
		}
		return c.args()
	}
	containers, inits := corev1.ContainerArray{}, corev1.ContainerArray{}
	for _, c := range p.Containers {
		containers = append(containers, withAWS(c))
	}
	for _, c := range p.Init {
		inits = append(inits, withAWS(c))
	}
	volumes := p.Volumes
	if p.AWS != nil {
		volumes = append(slices.Clone(volumes), p.AWS.volume())
	}
	spec := &corev1.PodSpecArgs{
		NodeSelector:   nodeSelector(p.Role),
		Tolerations:    tolerations(p.Role),
		Containers:     containers,
		InitContainers: inits,
		Volumes:        volumes,
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
	} else if p.AWS != nil {
		spec.ServiceAccountName = pulumi.String(p.AWS.Role.ServiceAccount)
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
	meta := &metav1.ObjectMetaArgs{Labels: p.Labels}
	if len(p.Annotations) > 0 {
		meta.Annotations = p.Annotations
	}
	return corev1.PodTemplateSpecArgs{Metadata: meta, Spec: spec}
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

// Probe is a check and how often and how patiently it runs. What a probe asks differs by kind:
// readiness is "can it take traffic or work now" and answers within half a minute, so a busy or
// starting pod leaves its Service quickly and returns as quickly; liveness is "is it stuck for
// good", and restarting a pod that is only slow turns a slow moment into a crash loop (and kills
// the Celery tasks in flight), so it is either a cheaper check that only a dead process fails,
// or the same check given minutes; a startup probe holds liveness off while a slow start runs.
type Probe struct {
	// Exactly one check: an HTTP GET of HTTPPath on Port, a TCP connection to Port, or Exec.
	HTTPPath string
	Port     int
	Exec     []string
	// Period, Timeout and Failures are the probe's timing: it fails after Failures consecutive
	// failed checks, each given Timeout seconds, run every Period seconds.
	Period, Timeout, Failures int
}

// The timings of the platform's probes.
const (
	// readyPeriod and readyFailures take a pod out of its Service after 30 s of failed checks.
	readyPeriod, readyFailures = 10, 3
	// alivePeriod and aliveFailures restart a container after two and a half minutes of
	// failed checks: five times the readiness window.
	alivePeriod, aliveFailures = 30, 5
	// startupPeriod is how often a startup probe checks; its budget sets how many failures it allows.
	startupPeriod = 10
)

// readiness runs a check as a readiness probe, timeout seconds each.
func readiness(check Probe, timeout int) Probe {
	check.Period, check.Timeout, check.Failures = readyPeriod, timeout, readyFailures
	return check
}

// liveness runs a check as a liveness probe: every 30 s, timeout seconds each, a restart after
// five failures in a row.
func liveness(check Probe, timeout int) Probe {
	check.Period, check.Timeout, check.Failures = alivePeriod, timeout, aliveFailures
	return check
}

// startup runs a check as a startup probe that allows budgetSeconds for the start before
// liveness counts.
func startup(check Probe, timeout, budgetSeconds int) Probe {
	check.Period, check.Timeout, check.Failures = startupPeriod, timeout, budgetSeconds/startupPeriod
	return check
}

// every runs a probe every period seconds instead, for a check too costly to run as often
// (Celery's ping starts a Python interpreter); its failure window grows with it.
func (p Probe) every(period int) Probe {
	p.Period = period
	return p
}

func httpCheck(path string, port int) Probe { return Probe{HTTPPath: path, Port: port} }
func tcpCheck(port int) Probe               { return Probe{Port: port} }
func execCheck(command ...string) Probe     { return Probe{Exec: command} }

// args renders the probe; nil for the zero Probe (none).
func (p Probe) args() *corev1.ProbeArgs {
	if p.Period == 0 {
		return nil
	}
	out := &corev1.ProbeArgs{
		PeriodSeconds:    pulumi.Int(p.Period),
		TimeoutSeconds:   pulumi.Int(p.Timeout),
		FailureThreshold: pulumi.Int(p.Failures),
	}
	switch {
	case len(p.Exec) > 0:
		out.Exec = &corev1.ExecActionArgs{Command: pulumi.ToStringArray(p.Exec)}
	case p.HTTPPath != "":
		out.HttpGet = &corev1.HTTPGetActionArgs{Path: pulumi.String(p.HTTPPath), Port: pulumi.Int(p.Port)}
	default:
		out.TcpSocket = &corev1.TCPSocketActionArgs{Port: pulumi.Int(p.Port)}
	}
	return out
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
