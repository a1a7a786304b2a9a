package workloads

import (
	"fmt"
	"maps"
	"slices"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/routing"
)

// Stateful describes a StatefulSet with one gp3 volume per replica and its Services.
type Stateful struct {
	Name, Namespace string
	Replicas        int
	Pod             Pod
	// Ports are the client Service's ports; Headless, if set, the headless Service's (a
	// cluster's peer ports), which otherwise has the client ports.
	Ports    map[string]int
	Headless map[string]int
	// StorageGiB is each replica's volume size, mounted at MountPath.
	StorageGiB int
	MountPath  string
	// Parallel starts all replicas at once (RabbitMQ's peer discovery expects it).
	Parallel bool
}

// VolumeName is the claim template's name: replica i's claim is data-<name>-<i>.
const VolumeName = "data"

// statefulSet declares the claims, the Services and the StatefulSet. The claims are declared
// as resources of their own, which the StatefulSet adopts by name, so that `pulumi destroy`
// deletes them before the volume guard waits for their EBS volumes and the CSI driver goes. On a
// production stack the claims are protected and their class retains the volumes: the data
// survives a destroy, a `--exclude-protected` destroy and a replaced claim.
// storageDeps (Storage.ClaimDependencies) are what the claims and the StatefulSet wait for.
func (s *scope) statefulSet(st Stateful, storageDeps []pulumi.Resource, deps ...pulumi.Resource) (*appsv1.StatefulSet, error) {
	l := st.Pod.Labels
	class := dataStorageClass(s.cfg)
	for i := range st.Replicas {
		claim := fmt.Sprintf("%s-%s-%d", VolumeName, st.Name, i)
		pvc, err := corev1.NewPersistentVolumeClaim(s.ctx, s.resourceName(st.Namespace, claim), &corev1.PersistentVolumeClaimArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name: pulumi.String(claim), Namespace: pulumi.String(st.Namespace), Labels: l,
				// WaitForFirstConsumer binds the claim only once its pod is scheduled, after
				// this resource: waiting for Bound here would deadlock.
				Annotations: pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")},
			},
			Spec: claimSpec(st.StorageGiB, class),
		}, append(s.opts(st.Namespace, storageDeps...), pulumi.Protect(s.cfg.Production))...)
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", claim, err)
		}
		deps = append(deps, pvc)
	}

	if err := s.clusterService(st.Namespace, st.Name, l, st.Ports); err != nil {
		return nil, err
	}
	headless := st.Name + "-headless"
	peerPorts := st.Headless
	if len(peerPorts) == 0 {
		peerPorts = st.Ports
	}
	if _, err := corev1.NewService(s.ctx, s.resourceName(st.Namespace, headless), &corev1.ServiceArgs{
		Metadata: meta(headless, st.Namespace, l),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"),
			Selector:  selector(st.Name),
			Ports:     servicePorts(peerPorts),
			// Peers must resolve each other before they are ready, or a cluster never forms.
			PublishNotReadyAddresses: pulumi.Bool(true),
		},
	}, s.opts(st.Namespace)...); err != nil {
		return nil, fmt.Errorf("headless service %s: %w", headless, err)
	}

	policy := "OrderedReady"
	if st.Parallel {
		policy = "Parallel"
	}
	st.Pod.Containers[0].Mounts = append(st.Pod.Containers[0].Mounts, mount(VolumeName, st.MountPath))
	sts, err := appsv1.NewStatefulSet(s.ctx, s.resourceName(st.Namespace, st.Name), &appsv1.StatefulSetArgs{
		Metadata: meta(st.Name, st.Namespace, l),
		Spec: appsv1.StatefulSetSpecArgs{
			Replicas:            pulumi.Int(st.Replicas),
			ServiceName:         pulumi.String(headless),
			PodManagementPolicy: pulumi.String(policy),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: selector(st.Name)},
			Template:            st.Pod.template(),
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(VolumeName), Labels: l},
				Spec:     claimSpec(st.StorageGiB, class),
			}},
			// The claims are Pulumi's: the StatefulSet must not delete them behind its back.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs{
				WhenDeleted: pulumi.String("Retain"), WhenScaled: pulumi.String("Retain"),
			},
		},
	}, append(s.opts(st.Namespace, append(deps, storageDeps...)...),
		// A StatefulSet's claim templates are immutable: the Kubernetes provider replaces the
		// StatefulSet when they change (every replica down at once, three brokers included). The
		// template only names the claims, which are the resources above: a bigger StorageGiB grows
		// them in place (the class allows expansion, the EBS driver resizes online), and the
		// StatefulSet keeps the template it was created with.
		pulumi.IgnoreChanges([]string{"spec.volumeClaimTemplates"}))...)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s: %w", st.Name, err)
	}
	return sts, nil
}

func claimSpec(gib int, class string) *corev1.PersistentVolumeClaimSpecArgs {
	return &corev1.PersistentVolumeClaimSpecArgs{
		AccessModes:      pulumi.ToStringArray([]string{"ReadWriteOnce"}),
		StorageClassName: pulumi.String(class),
		Resources:        &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.Sprintf("%dGi", gib)}},
	}
}

func servicePorts(ports map[string]int) corev1.ServicePortArray {
	out := corev1.ServicePortArray{}
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		out = append(out, corev1.ServicePortArgs{Name: pulumi.String(name), Port: pulumi.Int(ports[name]), TargetPort: pulumi.String(name)})
	}
	return out
}

// publicService declares the NodePort Service the ALB sends a route's traffic to, from pods on
// one node. Local traffic policy keeps the client's (the ALB's) address and skips a second
// hop, so only that node answers on the port: it is the only one registered in the route's
// target group (the caller reports the node's role as the route's Served). The NodePort is the
// route's fixed one, the port its target group was created with.
func (s *scope) publicService(namespace, name string, l pulumi.StringMap, route routing.Route) error {
	_, err := corev1.NewService(s.ctx, s.resourceName(namespace, name+"-svc"), &corev1.ServiceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(name), Namespace: pulumi.String(namespace), Labels: l,
		},
		Spec: &corev1.ServiceSpecArgs{
			Type:                  pulumi.String("NodePort"),
			ExternalTrafficPolicy: pulumi.String("Local"),
			Selector:              selector(name),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(route.ServicePort), TargetPort: pulumi.String("http"), NodePort: pulumi.Int(route.NodePort),
			}},
		},
	}, s.opts(namespace)...)
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// clusterService declares the in-cluster Service of a component's pods.
func (s *scope) clusterService(namespace, name string, l pulumi.StringMap, ports map[string]int) error {
	_, err := corev1.NewService(s.ctx, s.resourceName(namespace, name+"-svc"), &corev1.ServiceArgs{
		Metadata: meta(name, namespace, l),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: selector(name),
			Ports:    servicePorts(ports),
		},
	}, s.opts(namespace)...)
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}
