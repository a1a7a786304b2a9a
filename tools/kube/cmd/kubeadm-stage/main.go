// Command kubeadm-stage plays, for tools/kubeadm/upgrade-check.sh, what a running kubeadm
// control plane has that a local API server lacks: kubeadm's kubeconfig files pointed at the
// local API server (they name the master's address), the binding `kubeadm init` makes with
// super-admin.conf, the master's Node as its kubelet registers it (Ready, at its kubelet
// version) and the mirror pods the kubelet posts for the static pod manifests, whose images
// `kubeadm upgrade plan` reads the cluster's versions from.
//
//	kubeadm-stage -dir /etc/kubernetes -server https://127.0.0.1:6443 -node master -kubelet-version v1.35.4
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// staticPods are the manifests kubeadm writes for a stacked control plane.
var staticPods = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

func main() {
	dir := flag.String("dir", "/etc/kubernetes", "kubeadm's folder: its kubeconfig files and manifests/")
	server := flag.String("server", "", "the local API server's URL, which kubeadm's kubeconfig files are pointed at")
	node := flag.String("node", "", "the master's node name (the hostname kubeadm registered it under)")
	kubeletVersion := flag.String("kubelet-version", "", "the version the master's kubelet reports")
	printConfig := flag.Bool("print-cluster-configuration", false, "instead: print the ClusterConfiguration kept in kube-system/kubeadm-config (read with admin.conf), as a reconfiguration reads it")
	flag.Parse()
	if *printConfig {
		if err := printClusterConfiguration(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "kubeadm-stage:", err)
			os.Exit(1)
		}
		return
	}
	if *server == "" || *node == "" || *kubeletVersion == "" {
		fmt.Fprintln(os.Stderr, "kubeadm-stage: -server, -node and -kubelet-version are required")
		os.Exit(2)
	}
	if err := stage(*dir, *server, *node, *kubeletVersion); err != nil {
		fmt.Fprintln(os.Stderr, "kubeadm-stage:", err)
		os.Exit(1)
	}
}

func stage(dir, server, node, kubeletVersion string) error {
	// The serving certificate kubeadm made has "kubernetes" among its names, not 127.0.0.1.
	for _, f := range []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"} {
		path := filepath.Join(dir, f)
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			return err
		}
		for _, c := range cfg.Clusters {
			c.Server, c.TLSServerName = server, "kubernetes"
		}
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			return err
		}
	}
	client, err := clientFor(filepath.Join(dir, "super-admin.conf"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := waitReady(ctx, client); err != nil {
		return err
	}

	// kubeadm init binds its admin group to cluster-admin (admin.conf has no rights without it).
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:cluster-admins"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "kubeadm:cluster-admins"}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("the kubeadm:cluster-admins binding: %w", err)
	}

	// The master's Node, Ready. The TaintNodesByCondition admission plugin taints a new Node
	// not-ready, which only the node lifecycle controller (not run here) lifts: lifted by hand,
	// so that kubeadm's health-check Job can be placed.
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{
		"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
	}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{}
	for k, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: "2", corev1.ResourceMemory: "8Gi", corev1.ResourcePods: "110"} {
		capacity[k] = resource.MustParse(v)
	}
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: kubeletVersion, OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "containerd://2.1.4"},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	if n, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", node, err)
	}
	n.Spec.Taints = nil
	if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s taints: %w", node, err)
	}

	// The mirror pods, as the kubelet posts them from the manifests kubeadm wrote.
	for _, name := range staticPods {
		b, err := os.ReadFile(filepath.Join(dir, "manifests", name+".yaml"))
		if err != nil {
			return err
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(b, &pod); err != nil {
			return fmt.Errorf("manifest %s: %w", name, err)
		}
		pod.Name, pod.Namespace, pod.Spec.NodeName = name+"-"+node, metav1.NamespaceSystem, node
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[corev1.MirrorPodAnnotationKey] = "staged"
		if _, err := client.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, &pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("mirror pod %s: %w", pod.Name, err)
		}
		images := []string{}
		for _, c := range pod.Spec.Containers {
			images = append(images, c.Image)
		}
		fmt.Printf("kubeadm-stage: mirror pod kube-system/%s (%s)\n", pod.Name, strings.Join(images, ", "))
	}
	fmt.Printf("kubeadm-stage: node %s Ready at kubelet %s; kubeadm's kubeconfig files point at %s\n", node, kubeletVersion, server)
	return nil
}

// clientFor is a client with a kubeconfig file's credentials.
func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rest)
}

func printClusterConfiguration(dir string) error {
	client, err := clientFor(filepath.Join(dir, "admin.conf"))
	if err != nil {
		return err
	}
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return err
	}
	fmt.Print(cm.Data["ClusterConfiguration"])
	return nil
}

func waitReady(ctx context.Context, client kubernetes.Interface) error {
	for {
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("the API server is not ready: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
