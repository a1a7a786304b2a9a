package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

// verifier applies one render's objects and records what failed and what it could not check.
type verifier struct {
	cp  *controlPlane
	dir string
	// chartCRDs come from pinned charts and are applied before the rendered objects, so that
	// custom resources of those charts (TargetGroupBinding) are checked against the real schema.
	chartCRDs   []*unstructured.Unstructured
	failures    []string
	notVerified []string
	nodes       []string
	// applied are the objects the API server accepted, for the etcd restore drill.
	applied []appliedObject
	// restored are the render's restored volumes (restore/), checked for binding.
	restored []restoredVolume
	// chartRBAC are the charts' ServiceAccounts and RBAC objects (chartfit's chart-rbac.yaml),
	// applied with the manifests so that the SubjectAccessReviews see the charts' identities.
	chartRBAC []sourced
	// rbacSkipped says why no RBAC question is asked ("" when they are).
	rbacSkipped string
	// objects are the manifests' and the charts' objects that apply read, with their source.
	objects []sourced
}

// appliedObject is one object the API server accepted: where to read it back.
type appliedObject struct {
	resource        schema.GroupVersionResource
	namespace, name string
	file            string
}

func (v *verifier) fail(format string, args ...any) {
	v.failures = append(v.failures, fmt.Sprintf(format, args...))
}

func readYAML(path string, out any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, out)
}

// createNodes registers the stack's nodes and reports them Ready with their allocatable.
func (v *verifier) createNodes(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(v.dir, "nodes", "*.yaml"))
	if len(files) == 0 {
		return fmt.Errorf("no node objects in %s/nodes: render the stack first", v.dir)
	}
	for _, f := range files {
		var n corev1.Node
		if err := readYAML(f, &n); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := registerNode(ctx, v.cp.client, n); err != nil {
			return err
		}
		v.nodes = append(v.nodes, n.Name)
	}
	fmt.Printf("nodes: %s\n", strings.Join(v.nodes, ", "))
	return nil
}

// registerNode creates a Node and reports it Ready with its allocatable, as its kubelet would.
// Each step retries on a conflict: in the engine run kwok updates the same Node at once.
func registerNode(ctx context.Context, client kubernetes.Interface, n corev1.Node) error {
	status := n.Status
	nodes := client.CoreV1().Nodes()
	if _, err := nodes.Create(ctx, &n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		current.Status.Capacity, current.Status.Allocatable = status.Capacity, status.Allocatable
		if !slices.ContainsFunc(current.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}) {
			current.Status.Conditions = []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "VerifyLocal",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}}
		}
		_, err = nodes.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s status: %w", n.Name, err)
	}
	// The TaintNodesByCondition admission plugin marks a new node not-ready; the node
	// lifecycle controller, which would lift it, is off (it would evict pods of nodes without a
	// real kubelet).
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		current.Spec.Taints = slices.DeleteFunc(current.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
		_, err = nodes.Update(ctx, current, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s taints: %w", n.Name, err)
	}
	return nil
}

// builtinNamespaces are the namespaces the API server makes itself.
var builtinNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// applyOrder puts what others need first: CRDs, namespaces, then identities, configuration and
// storage, then the workloads.
var applyOrder = []string{"CustomResourceDefinition", "Namespace", "StorageClass", "ServiceAccount", "ClusterRole", "Role",
	"ClusterRoleBinding", "RoleBinding", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service"}

func rank(kind string) int {
	if i := slices.Index(applyOrder, kind); i >= 0 {
		return i
	}
	return len(applyOrder)
}

// apply applies every rendered manifest with server-side apply, as the Pulumi provider does.
func (v *verifier) apply(ctx context.Context) {
	files, _ := filepath.Glob(filepath.Join(v.dir, "manifests", "*.yaml"))
	type item struct {
		file string
		obj  *unstructured.Unstructured
	}
	var items []item
	for _, f := range files {
		var m map[string]any
		if err := readYAML(f, &m); err != nil {
			v.fail("%s: not YAML: %v", filepath.Base(f), err)
			continue
		}
		items = append(items, item{filepath.Base(f), &unstructured.Unstructured{Object: m}})
	}
	for _, crd := range v.chartCRDs {
		items = append(items, item{"chart CRD " + crd.GetName(), crd})
	}
	declared := map[string]bool{}
	for _, it := range items {
		if it.obj.GetKind() == "Namespace" {
			declared[it.obj.GetName()] = true
		}
	}
	for _, c := range v.chartRBAC {
		items = append(items, item{fmt.Sprintf("%s (%s): %s %s", chartRBACFile, c.from, c.obj.GetKind(), objectName(c.obj)), c.obj})
		// A release's namespace the program does not declare is created, as Helm's
		// --create-namespace would.
		if ns := c.obj.GetNamespace(); ns != "" && !declared[ns] && !slices.Contains(builtinNamespaces, ns) {
			declared[ns] = true
			obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
			items = append(items, item{fmt.Sprintf("%s: Namespace %s (of %s: not the program's)", chartRBACFile, ns, c.from), obj})
		}
	}
	for _, it := range items {
		v.objects = append(v.objects, sourced{it.file, it.obj})
	}
	sort.SliceStable(items, func(i, j int) bool { return rank(items[i].obj.GetKind()) < rank(items[j].obj.GetKind()) })

	dc, err := discovery.NewDiscoveryClientForConfig(v.cp.config)
	if err != nil {
		v.fail("discovery: %v", err)
		return
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(v.cp.config)
	if err != nil {
		v.fail("dynamic client: %v", err)
		return
	}
	applied := 0
	for _, it := range items {
		gvk := it.obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			v.notVerified = append(v.notVerified, fmt.Sprintf("%s: %s is a custom resource whose CRD a chart or Calico's operator installs on the cluster, not here", it.file, gvk.Kind))
			continue
		}
		if err != nil {
			v.fail("%s: %v", it.file, err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(mapping.Resource).Namespace(it.obj.GetNamespace())
		}
		if _, err := ri.Apply(ctx, it.obj.GetName(), it.obj, metav1.ApplyOptions{FieldManager: "verify-local", Force: true}); err != nil {
			v.fail("%s: refused by the API server: %v", it.file, err)
			continue
		}
		applied++
		ns := ""
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns = it.obj.GetNamespace()
		}
		v.applied = append(v.applied, appliedObject{mapping.Resource, ns, it.obj.GetName(), it.file})
		if gvk.Kind == "CustomResourceDefinition" {
			if err := waitEstablished(ctx, dyn, mapping, it.obj.GetName()); err != nil {
				v.fail("%s: %v", it.file, err)
			}
			mapper.Reset()
		}
	}
	fmt.Printf("applied %d of %d objects\n", applied, len(items))

	if b, err := os.ReadFile(filepath.Join(v.dir, "helm-releases.yaml")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "# "); ok && !strings.Contains(name, ":") {
				v.notVerified = append(v.notVerified, fmt.Sprintf("Helm release %s: not installed here (its pods, proved against the rendered chart by tools/charts, are reserved on the nodes instead)", name))
			}
		}
	}
}

// provideVolumes creates, before anything is applied, a PersistentVolume of the claimed class and
// size for every claim the render declares, so that the scheduler's volume binding finds it on
// its first attempt, as the EBS CSI driver would provision one.
func (v *verifier) provideVolumes(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(v.dir, "manifests", "persistentvolumeclaim-*.yaml"))
	for _, f := range files {
		var c corev1.PersistentVolumeClaim
		if err := readYAML(f, &c); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if pv, err := v.restoredVolumeFor(c); err != nil {
			return err
		} else if pv != nil {
			if _, err := v.cp.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
				v.fail("restored volume %s for claim %s/%s refused: %v", pv.Name, c.Namespace, c.Name, err)
				continue
			}
			v.restored = append(v.restored, restoredVolume{namespace: c.Namespace, claim: c.Name, volume: pv.Name})
			continue
		}
		name := fmt.Sprintf("pv-%s-%s", c.Namespace, c.Name)
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
				AccessModes:                   c.Spec.AccessModes,
				StorageClassName:              ptrValue(c.Spec.StorageClassName),
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/verify-local/" + name}},
				// Bound to its claim in advance, as a provisioned volume ends up: with several
				// identical claims scheduled at once, the binder otherwise waits on itself.
				ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name},
			},
		}
		if _, err := v.cp.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("volume for %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	fmt.Printf("volumes: %d created, each for its declared claim (%d of them the render's restored volume)\n", len(files), len(v.restored))
	return nil
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// waitScheduled waits until every workload has created all its pods and every pod is bound to a
// node, or the timeout passes.
func (v *verifier) waitScheduled(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		missing, unscheduled := v.progress(ctx)
		if len(missing) == 0 && len(unscheduled) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, m := range missing {
				v.fail("%s", m)
			}
			for _, u := range unscheduled {
				v.fail("%s", u)
			}
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// progress lists the workloads short of pods (with the reason the controller gives) and the pods
// the scheduler has not placed (with the scheduler's reason).
func (v *verifier) progress(ctx context.Context) (missing, unscheduled []string) {
	c := v.cp.client
	events := func(ns, name string) string {
		ev, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return ""
		}
		// The first warning about the object or its ReplicaSets says why pods are missing.
		for _, e := range ev.Items {
			if e.Type == corev1.EventTypeWarning && strings.HasPrefix(e.InvolvedObject.Name, name) {
				msg := strings.TrimPrefix(e.Message, "(combined from similar events): ")
				if len(msg) > 600 {
					msg = msg[:600] + "..."
				}
				return msg
			}
		}
		return "no warning event yet"
	}
	if deps, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range deps.Items {
			if want := ptrInt(d.Spec.Replicas); d.Status.Replicas < want {
				missing = append(missing, fmt.Sprintf("Deployment %s/%s has %d of %d pods: %s", d.Namespace, d.Name, d.Status.Replicas, want, events(d.Namespace, d.Name)))
			}
		}
	}
	if sts, err := c.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range sts.Items {
			if want := ptrInt(s.Spec.Replicas); s.Status.Replicas < want {
				missing = append(missing, fmt.Sprintf("StatefulSet %s/%s has %d of %d pods: %s", s.Namespace, s.Name, s.Status.Replicas, want, events(s.Namespace, s.Name)))
			}
		}
	}
	if dss, err := c.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range dss.Items {
			if d.Status.DesiredNumberScheduled == 0 || d.Status.CurrentNumberScheduled < d.Status.DesiredNumberScheduled {
				missing = append(missing, fmt.Sprintf("DaemonSet %s/%s has %d of %d pods: %s", d.Namespace, d.Name, d.Status.CurrentNumberScheduled, d.Status.DesiredNumberScheduled, events(d.Namespace, d.Name)))
			}
		}
	}
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return append(missing, "list pods: "+err.Error()), nil
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			continue
		}
		reason := "no scheduling decision yet (a volume it waits for?)"
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
				reason = cond.Message
			}
		}
		unscheduled = append(unscheduled, fmt.Sprintf("pod %s/%s is not scheduled: %s", p.Namespace, p.Name, reason))
	}
	return missing, unscheduled
}

func ptrInt(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// report prints the per-node table, what could not be verified, and every failure.
func (v *verifier) report(ctx context.Context) {
	nodes, err := v.cp.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		v.fail("list nodes: %v", err)
		return
	}
	pods, err := v.cp.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		v.fail("list pods: %v", err)
		return
	}
	fmt.Println("\nper-node placement (requests of the pods placed here / allocatable left for them):")
	fmt.Printf("  %-46s %-14s %-10s %5s %16s %20s %20s\n", "NODE", "ROLE", "TYPE", "PODS", "CPU", "MEMORY", "DISK")
	for _, n := range nodes.Items {
		cpu, mem, disk := resource.Quantity{}, resource.Quantity{}, resource.Quantity{}
		count := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != n.Name {
				continue
			}
			count++
			for _, c := range p.Spec.Containers {
				cpu.Add(c.Resources.Requests[corev1.ResourceCPU])
				mem.Add(c.Resources.Requests[corev1.ResourceMemory])
				disk.Add(c.Resources.Requests[corev1.ResourceEphemeralStorage])
			}
		}
		alloc := n.Status.Allocatable
		role := n.Labels["workload"]
		if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
			role = "control-plane"
		}
		fmt.Printf("  %-46s %-14s %-10s %5d %7dm/%6dm %9dMi/%7dMi %9dMi/%7dMi\n", n.Name, role, n.Labels["node.kubernetes.io/instance-type"], count,
			cpu.MilliValue(), alloc.Cpu().MilliValue(), mem.Value()>>20, alloc.Memory().Value()>>20, disk.Value()>>20, alloc.StorageEphemeral().Value()>>20)
	}
	if len(v.notVerified) > 0 {
		fmt.Println("\nnot verified here:")
		for _, n := range v.notVerified {
			fmt.Println("  -", n)
		}
	}
	if len(v.failures) > 0 {
		fmt.Println("\nFAILED:")
		for _, f := range v.failures {
			fmt.Println("  -", f)
		}
		return
	}
	fmt.Printf("\nOK: every object accepted, every pod scheduled (%d pods on %d nodes)\n", len(pods.Items), len(nodes.Items))
}

// waitEstablished waits until a CustomResourceDefinition reports Established, so the custom
// resources applied after it are checked against it rather than refused as unknown.
func waitEstablished(ctx context.Context, dyn dynamic.Interface, mapping *meta.RESTMapping, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		crd, err := dyn.Resource(mapping.Resource).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conditions {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("CustomResourceDefinition %s not Established after 30s", name)
}

// scaleToMaximums sets every autoscaled Deployment to its autoscaler's maximum through the scale
// subresource, as the HorizontalPodAutoscaler (or KEDA's) would at the peak of a burst, so that
// the scheduler proves the nodes hold every pod at the maximums, not only at the minimums. Only
// autoscalers the API server accepted count. The controller-manager's HPA controller, without
// metrics here, leaves a count at the maximum alone.
func (v *verifier) scaleToMaximums(ctx context.Context) {
	files, _ := filepath.Glob(filepath.Join(v.dir, "manifests", "*.yaml"))
	accepted := map[string]bool{}
	for _, a := range v.applied {
		accepted[a.file] = true
	}
	var scaled []string
	for _, f := range files {
		if !accepted[filepath.Base(f)] {
			continue
		}
		var m map[string]any
		if err := readYAML(f, &m); err != nil {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		key := ""
		switch obj.GroupVersionKind() {
		case schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}:
			key = "maxReplicas"
		case schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}:
			key = "maxReplicaCount"
		default:
			continue
		}
		// Numbers read from YAML into a map are float64 (JSON's one number type).
		raw, _, _ := unstructured.NestedFieldNoCopy(m, "spec", key)
		n, isNumber := raw.(float64)
		maxReplicas := int64(n)
		kind, _, _ := unstructured.NestedString(m, "spec", "scaleTargetRef", "kind")
		target, _, _ := unstructured.NestedString(m, "spec", "scaleTargetRef", "name")
		if !isNumber || n != float64(maxReplicas) || kind != "Deployment" || target == "" {
			v.fail("%s: no Deployment target and %s to scale to", filepath.Base(f), key)
			continue
		}
		ns := obj.GetNamespace()
		deployments := v.cp.client.AppsV1().Deployments(ns)
		// The Deployment controller writes the status of a Deployment just applied: a scale read
		// before that write conflicts with it, and is read again.
		var from int32
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			scale, err := deployments.GetScale(ctx, target, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("scale of Deployment %s/%s: %w", ns, target, err)
			}
			from = scale.Spec.Replicas
			scale.Spec.Replicas = int32(maxReplicas)
			_, err = deployments.UpdateScale(ctx, target, scale, metav1.UpdateOptions{FieldManager: "verify-local-autoscaler"})
			return err
		})
		if err != nil {
			v.fail("%s: scale Deployment %s/%s to %d: %v", filepath.Base(f), ns, target, maxReplicas, err)
			continue
		}
		scaled = append(scaled, fmt.Sprintf("%s/%s %d->%d", ns, target, from, maxReplicas))
	}
	sort.Strings(scaled)
	fmt.Printf("scaled to their autoscalers' maximums: %s\n", strings.Join(scaled, ", "))
}
