package workloads

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Argo CD's objects for the application team's manifests (the gitops key).
const (
	// GitOpsProject is the AppProject that bounds what the Application may sync.
	GitOpsProject = "app-team"
	// GitOpsApplication is the Application that syncs the application team's manifests.
	GitOpsApplication = "app-team"
	// InClusterServer is how Argo CD names the cluster it runs in.
	InClusterServer = "https://kubernetes.default.svc"
	// ArgoCDPollInterval is Argo CD's timeout.reconciliation: it looks for a new revision in Git
	// this often plus up to timeout.reconciliation.jitter (60 s by default), so 120 s gives the
	// design record's three minutes at most (180 s would be three to four).
	ArgoCDPollInterval = "120s"
)

// GroupKind is a Kubernetes kind with its API group ("" for the core group).
type GroupKind struct {
	Group, Kind string
}

// GitOpsKinds are the only kinds the application team's manifests may hold: workloads, their
// configuration and their Services. All are namespaced; no cluster-scoped kind is allowed at all.
// Left out on purpose: Secrets (no credential belongs in Git), NetworkPolicies (the program
// declares each gitops namespace's, and Argo CD would prune or overwrite them), RBAC (a
// RoleBinding could hand a pod the rights of Argo CD's controller), PersistentVolumeClaims and
// StatefulSets (storage is sized and backed up by the program), Ingresses (the program declares
// the ALB and its routes).
var GitOpsKinds = []GroupKind{
	{"", "ConfigMap"},
	{"", "Service"},
	{"", "ServiceAccount"},
	{"apps", "Deployment"},
	{"batch", "Job"},
	{"batch", "CronJob"},
	{"autoscaling", "HorizontalPodAutoscaler"},
	{"policy", "PodDisruptionBudget"},
}

// GitOps is what Argo CD syncs from Git: the namespaces the application team's manifests go to,
// each with the program's default-deny policies, the AppProject that confines the sync to them
// and to GitOpsKinds, and the Application itself.
type GitOps struct {
	pulumi.ResourceState

	// Namespaces are the gitops namespaces by name.
	Namespaces map[string]*corev1.Namespace
	// Project is the AppProject; Application the Application.
	Project, Application *apiextensions.CustomResource
}

// gitOpsArgs are the inputs of the gitops component.
type gitOpsArgs struct {
	// tierArgs name the resources and carry the stack's gitops key.
	tierArgs
	// ArgoCD is Argo CD's release, which installs the AppProject and Application CRDs and the
	// controller that reads them.
	ArgoCD pulumi.Resource
}

// newGitOps declares the gitops namespaces, their network policies, the AppProject and the
// Application. Only a stack with the gitops key declares it: its resources are new ones, and a
// stack without the key keeps exactly what it had.
func newGitOps(ctx *pulumi.Context, name string, args *gitOpsArgs, opts ...pulumi.ResourceOption) (*GitOps, error) {
	g := args.Config.GitOps
	if g == nil {
		return nil, fmt.Errorf("newGitOps needs the gitops key")
	}
	c := &GitOps{Namespaces: map[string]*corev1.Namespace{}}
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:GitOps", name, c, opts...); err != nil {
		return nil, err
	}
	s := args.keptScope(ctx, c) // a new component: no former parent to alias
	var waitFor []pulumi.Resource
	for _, ns := range g.Namespaces {
		r, err := s.gitOpsNamespace(ns)
		if err != nil {
			return nil, err
		}
		c.Namespaces[ns] = r
		waitFor = append(waitFor, r)
		access, err := s.argoCDNamespaceAccess(ns, r)
		if err != nil {
			return nil, err
		}
		// The first sync waits for Argo CD's rights in the namespace.
		waitFor = append(waitFor, access...)
	}
	var err error
	if c.Project, err = s.argoObject("AppProject", GitOpsProject, appProjectSpec(g.RepoURL, g.Namespaces), args.ArgoCD); err != nil {
		return nil, err
	}
	app := map[string]any{
		"project":     GitOpsProject,
		"source":      map[string]any{"repoURL": g.RepoURL, "path": g.Path, "targetRevision": g.TargetRevision},
		"destination": map[string]any{"server": InClusterServer, "namespace": g.Namespaces[0]},
		"syncPolicy": map[string]any{
			// Git is the truth: what leaves Git is deleted, what is changed by hand is put back.
			"automated": map[string]any{"prune": true, "selfHeal": true},
			"retry": map[string]any{"limit": 5, "backoff": map[string]any{
				"duration": "10s", "factor": 2, "maxDuration": "3m",
			}},
		},
	}
	if c.Application, err = s.argoObject("Application", GitOpsApplication, app, append(waitFor, args.ArgoCD, c.Project)...); err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{})
}

// appProjectSpec confines the Application: one source repository, the gitops namespaces of this
// cluster, the namespaced GitOpsKinds, and an empty cluster-scoped allow list (Argo CD then
// refuses every cluster-scoped kind: a ClusterRoleBinding, a CRD, a namespace of the program's).
func appProjectSpec(repoURL string, namespaces []string) map[string]any {
	destinations := []any{}
	for _, ns := range namespaces {
		destinations = append(destinations, map[string]any{"server": InClusterServer, "namespace": ns})
	}
	kinds := []any{}
	for _, k := range GitOpsKinds {
		kinds = append(kinds, map[string]any{"group": k.Group, "kind": k.Kind})
	}
	return map[string]any{
		"description":                "The application team's manifests (the gitops key): only their namespaces and kinds.",
		"sourceRepos":                []any{repoURL},
		"destinations":               destinations,
		"clusterResourceWhitelist":   []any{},
		"namespaceResourceWhitelist": kinds,
	}
}

// argoObject declares an Argo CD custom resource in Argo CD's namespace, after deps.
func (s *scope) argoObject(kind, name string, spec map[string]any, deps ...pulumi.Resource) (*apiextensions.CustomResource, error) {
	md := &metav1.ObjectMetaArgs{
		Name:      pulumi.String(name),
		Namespace: pulumi.String(NamespaceArgoCD),
		Labels:    labels(name, "gitops"),
	}
	if kind == "Application" {
		// Whether the application team's manifests sync is Argo CD's to report, in its UI: a
		// manifest that fails to apply must not fail or hold up `pulumi up` of the platform.
		md.Annotations = pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}
	}
	r, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(NamespaceArgoCD, "gitops-"+kindSuffix(kind)), &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String("argoproj.io/v1alpha1"),
		Kind:        pulumi.String(kind),
		Metadata:    md,
		OtherFields: map[string]any{"spec": spec},
	}, s.opts(NamespaceArgoCD, deps...)...)
	if err != nil {
		return nil, fmt.Errorf("argo cd %s %s: %w", kind, name, err)
	}
	return r, nil
}

func kindSuffix(kind string) string {
	if kind == "AppProject" {
		return "project"
	}
	return "application"
}

// gitOpsNamespace declares one gitops namespace, restricted like the application's, with the
// platform's default: nothing in or out but DNS, and the namespace's pods among themselves. The
// application team asks for any other flow here, in the program (AppProject refuses their own
// NetworkPolicies).
func (s *scope) gitOpsNamespace(ns string) (*corev1.Namespace, error) {
	r, err := corev1.NewNamespace(s.ctx, s.resourceName("gitops-ns", ns), &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(ns),
			Labels: pulumi.StringMap{
				"pod-security.kubernetes.io/enforce": pulumi.String("restricted"),
				"pod-security.kubernetes.io/warn":    pulumi.String("restricted"),
				"pod-security.kubernetes.io/audit":   pulumi.String("restricted"),
				"app.kubernetes.io/managed-by":       pulumi.String("pulumi"),
				"waste-coach.io/synced-by":           pulumi.String("argocd"),
			},
		},
	}, s.parented()...)
	if err != nil {
		return nil, fmt.Errorf("gitops namespace %s: %w", ns, err)
	}
	for _, p := range gitOpsPolicies(ns) {
		if _, err := networkingv1.NewNetworkPolicy(s.ctx, s.resourceName(ns, "netpol-"+p.Name), &networkingv1.NetworkPolicyArgs{
			Metadata: meta(p.Name, p.Namespace, labels(p.Name, "network-policy")),
			Spec:     p.spec(),
		}, append(s.parented(), pulumi.DependsOn([]pulumi.Resource{r}))...); err != nil {
			return nil, fmt.Errorf("network policy %s/%s: %w", ns, p.Name, err)
		}
	}
	return r, nil
}

// gitOpsPolicies are a gitops namespace's NetworkPolicies: deny by default, DNS, and traffic
// between the namespace's own pods.
func gitOpsPolicies(ns string) []Policy {
	dns := Flow{Peers: []Peer{{Namespace: NamespaceSystem, Pods: map[string]string{"k8s-app": "kube-dns"}}}, Ports: ports(udp(53), tcp(53))}
	same := Flow{Peers: []Peer{{Namespace: ns}}}
	return []Policy{
		{Namespace: ns, Name: "default-deny", DenyIngress: true, DenyEgress: true},
		{Namespace: ns, Name: "allow-dns", Egress: []Flow{dns}, DenyEgress: true},
		{Namespace: ns, Name: "allow-same-namespace", Ingress: []Flow{same}, Egress: []Flow{same}},
	}
}
