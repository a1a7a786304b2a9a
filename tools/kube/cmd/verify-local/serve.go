package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// provisionedBy marks the volumes the stand-in provisioner made, as the CSI external provisioner
// marks its own.
const provisionedBy = "pv.kubernetes.io/provisioned-by"

// serve runs the local cluster of the offline engine run (tools/engine) until it is told to stop:
// the control plane; kwok, which plays every node's kubelet (pods become Running and Ready, Job
// pods complete, nodes keep their heartbeat); the Nodes that the stand-in AWS provider's
// instances register through the nodes folder; and a stand-in for the EBS CSI driver's
// provisioner. It writes <state>/kubeconfig and then <state>/ready.
//
// The API server runs without the admission webhook plugins: the charts register webhooks whose
// pods run no containers under kwok, so no call could be answered, and a call to their Service
// address must never leave the machine. The metrics API (an APIService) stays unavailable for the
// same reason. Both are said in the output.
func serve(state, bin string, kwokStages []string) error {
	work := filepath.Join(state, "cluster")
	nodes := filepath.Join(state, "nodes")
	for _, d := range []string{work, nodes} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	pki, err := newPKI(work, "") // the engine runs: the cluster is local, not the program's
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cp := &controlPlane{work: work, bin: bin, pki: pki, apiServerArgs: []string{
		"--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
	}}
	defer cp.stop()
	fmt.Println("local cluster: control plane (admission webhooks off: kwok pods run no webhook server)")
	if err := cp.start(ctx); err != nil {
		return err
	}
	if err := calicoCRDs(ctx, cp); err != nil {
		return err
	}
	kubeconfig := filepath.Join(work, "admin.kubeconfig")
	kwokArgs := []string{"--kubeconfig=" + kubeconfig, "--manage-all-nodes=true", "--server-address=127.0.0.1:0"}
	for _, s := range kwokStages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	if err := cp.run("kwok", filepath.Join(bin, "kwok"), kwokArgs...); err != nil {
		return err
	}
	// The engine reads a self-contained kubeconfig: certificates inline, as a kubeadm one is.
	embedded, err := embedKubeconfig(kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, "kubeconfig"), embedded, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, "ready"), nil, 0o600); err != nil {
		return err
	}
	fmt.Println("local cluster: ready; nodes come from", nodes, "and claims of the EBS CSI classes get stand-in volumes")

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	registered := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := syncNodes(ctx, cp.client, nodes, registered); err != nil {
			fmt.Println("local cluster: nodes:", err)
		}
		if err := provision(ctx, cp.client); err != nil {
			fmt.Println("local cluster: volumes:", err)
		}
	}
}

// syncNodes creates a Node for each file the stand-in left and deletes the Node of each file it
// removed (its instance was deleted, and the CCM would delete the Node).
func syncNodes(ctx context.Context, client kubernetes.Interface, dir string, registered map[string]bool) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		present[name] = true
		if registered[name] {
			continue
		}
		var n corev1.Node
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &n)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := registerNode(ctx, client, n); err != nil {
			return err
		}
		registered[name] = true
		fmt.Printf("local cluster: node %s registered\n", name)
	}
	for name := range registered {
		if present[name] {
			continue
		}
		if err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		delete(registered, name)
		fmt.Printf("local cluster: node %s deleted with its instance\n", name)
	}
	return nil
}

// provision does what the EBS CSI driver's provisioner does for claims of its classes: a volume
// for each claim the scheduler picked a node for (WaitForFirstConsumer) or that binds at once,
// with the class's reclaim policy; and the deletion of a released volume whose policy is Delete.
func provision(ctx context.Context, client kubernetes.Interface) error {
	classes, err := client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ours := map[string]storagev1.StorageClass{}
	for _, sc := range classes.Items {
		if sc.Provisioner == "ebs.csi.aws.com" {
			ours[sc.Name] = sc
		}
	}
	claims, err := client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, c := range claims.Items {
		sc, ok := ours[ptrValue(c.Spec.StorageClassName)]
		if !ok || c.Spec.VolumeName != "" || c.DeletionTimestamp != nil {
			continue
		}
		waits := sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
		if waits && c.Annotations["volume.kubernetes.io/selected-node"] == "" {
			continue
		}
		policy := corev1.PersistentVolumeReclaimDelete
		if sc.ReclaimPolicy != nil {
			policy = *sc.ReclaimPolicy
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + string(c.UID), Annotations: map[string]string{provisionedBy: sc.Provisioner}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
				AccessModes:                   c.Spec.AccessModes,
				StorageClassName:              sc.Name,
				PersistentVolumeReclaimPolicy: policy,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/engine/" + string(c.UID)}},
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			},
		}
		if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("volume for %s/%s: %w", c.Namespace, c.Name, err)
		}
		fmt.Printf("local cluster: volume %s for %s/%s (%s, %s)\n", pv.Name, c.Namespace, c.Name, sc.Name, policy)
	}
	volumes, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, v := range volumes.Items {
		if _, ok := ours[v.Spec.StorageClassName]; !ok && v.Annotations[provisionedBy] == "" {
			continue
		}
		if v.Status.Phase == corev1.VolumeReleased && v.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete && v.DeletionTimestamp == nil {
			if err := client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			fmt.Printf("local cluster: volume %s deleted (released, policy Delete)\n", v.Name)
		}
	}
	return nil
}

// embedKubeconfig returns the kubeconfig with its certificate files read into it.
func embedKubeconfig(path string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, err
	}
	return clientcmd.Write(*cfg)
}

// calicoCRDs registers the two Calico kinds the program declares (crd.projectcalico.org/v1 Tier
// and GlobalNetworkPolicy). On a node, the Calico remote command installs them from Calico's
// release manifests, which cannot be downloaded here and which the stand-in does not run; these
// definitions accept any spec, so they prove the objects' names, kinds and ordering, not their
// fields.
func calicoCRDs(ctx context.Context, cp *controlPlane) error {
	dyn, err := dynamic.NewForConfig(cp.config)
	if err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, kind := range []struct{ kind, plural string }{{"Tier", "tiers"}, {"GlobalNetworkPolicy", "globalnetworkpolicies"}} {
		name := kind.plural + ".crd.projectcalico.org"
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{
				"group": "crd.projectcalico.org",
				"scope": "Cluster",
				"names": map[string]any{"kind": kind.kind, "plural": kind.plural, "singular": strings.ToLower(kind.kind), "listKind": kind.kind + "List"},
				"versions": []any{map[string]any{
					"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				}},
			},
		}}
		if _, err := dyn.Resource(gvr).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("calico CRD %s: %w", name, err)
		}
		if err := waitEstablished(ctx, dyn, &meta.RESTMapping{Resource: gvr}, name); err != nil {
			return err
		}
	}
	fmt.Println("local cluster: Calico's Tier and GlobalNetworkPolicy kinds registered with an open schema (Calico's own manifests cannot be fetched here)")
	return nil
}
