package workloads

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// Argo CD's chart gives its controller every verb on every kind of the cluster and its server
// get, patch and delete on every kind: whoever takes either (the server faces the internet
// through the ALB) owns the cluster. Argo CD here syncs only GitOpsKinds into the gitops
// namespaces, so:
//   - its cache (resource.inclusions) holds only those kinds and the ones their health and
//     resource tree are made of (ReplicaSets, Pods); the controller may read those cluster-wide
//     and nothing else: no Secret, no RBAC, no CRD;
//   - it writes only in the gitops namespaces, through a Role there (argoCDNamespaceAccess);
//   - its server may list and create Events (the UI) and read and update Applications; what it
//     shows or deletes of the application's objects is again only in the gitops namespaces;
//   - the `default` AppProject, which Argo CD creates allowing every repository, cluster,
//     namespace and kind, is locked (lockDefaultProject): only the program's project syncs.
//
// Argo CD's own namespace keeps the chart's Roles (its Secrets, ConfigMaps, Applications).

// ArgoCDCacheKinds are the kinds Argo CD watches: what it syncs and what their health needs.
var ArgoCDCacheKinds = append(slices.Clone(GitOpsKinds), GroupKind{"apps", "ReplicaSet"}, GroupKind{"", "Pod"})

// Argo CD's ServiceAccounts (the chart's names under fullnameOverride argocd).
const (
	ArgoCDControllerAccount = "argocd-application-controller"
	ArgoCDServerAccount     = "argocd-server"
)

// resourceOf is a kind's resource name, as the API serves it; a kind missing here is a
// programming error caught by the tests (a wrong plural would make Argo CD's cache fail).
func resourceOf(kind string) string {
	plural, ok := map[string]string{
		"ConfigMap": "configmaps", "Service": "services", "ServiceAccount": "serviceaccounts", "Pod": "pods",
		"Deployment": "deployments", "ReplicaSet": "replicasets", "Job": "jobs", "CronJob": "cronjobs",
		"HorizontalPodAutoscaler": "horizontalpodautoscalers", "PodDisruptionBudget": "poddisruptionbudgets",
	}[kind]
	if !ok {
		panic("argocd_rbac.go: no resource name for kind " + kind)
	}
	return plural
}

// byGroup lists kinds' resources per API group, groups in order of first appearance.
func byGroup(kinds []GroupKind) (groups []string, resources map[string][]string) {
	resources = map[string][]string{}
	for _, k := range kinds {
		if _, ok := resources[k.Group]; !ok {
			groups = append(groups, k.Group)
		}
		resources[k.Group] = append(resources[k.Group], resourceOf(k.Kind))
	}
	return groups, resources
}

// argoCDResourceInclusions is argocd-cm's resource.inclusions: only ArgoCDCacheKinds.
func argoCDResourceInclusions() string {
	groups, _ := byGroup(ArgoCDCacheKinds)
	var out []map[string]any
	for _, g := range groups {
		var kinds []string
		for _, k := range ArgoCDCacheKinds {
			if k.Group == g {
				kinds = append(kinds, k.Kind)
			}
		}
		out = append(out, map[string]any{"apiGroups": []string{g}, "kinds": kinds, "clusters": []string{"*"}})
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		panic(err) // strings only
	}
	return string(b)
}

// rules are RBAC rules giving verbs on kinds' resources, one rule per API group.
func rules(kinds []GroupKind, verbs ...string) pulumi.Array {
	groups, resources := byGroup(kinds)
	out := pulumi.Array{}
	for _, g := range groups {
		out = append(out, pulumi.Map{
			"apiGroups": pulumi.ToStringArray([]string{g}),
			"resources": pulumi.ToStringArray(resources[g]),
			"verbs":     pulumi.ToStringArray(verbs),
		})
	}
	return out
}

// argoCDControllerClusterRules: read the cached kinds, cluster-wide (the cache watches them in
// every namespace; the project keeps syncs to the gitops namespaces).
func argoCDControllerClusterRules() pulumi.Array {
	return rules(ArgoCDCacheKinds, "get", "list", "watch")
}

// argoCDServerClusterRules: the UI's Events, and the Applications it shows and refreshes.
func argoCDServerClusterRules() pulumi.Array {
	return pulumi.Array{
		pulumi.Map{"apiGroups": pulumi.ToStringArray([]string{""}), "resources": pulumi.ToStringArray([]string{"events"}), "verbs": pulumi.ToStringArray([]string{"list", "create"})},
		pulumi.Map{"apiGroups": pulumi.ToStringArray([]string{"argoproj.io"}), "resources": pulumi.ToStringArray([]string{"applications", "applicationsets"}),
			"verbs": pulumi.ToStringArray([]string{"get", "list", "update", "watch"})},
	}
}

// argoCDNamespaceAccess lets Argo CD act in one gitops namespace: its controller applies and
// prunes GitOpsKinds; its server shows the application's objects and pods' logs, and patches or
// deletes them from the UI.
func (s *scope) argoCDNamespaceAccess(ns string, deps ...pulumi.Resource) ([]pulumi.Resource, error) {
	var made []pulumi.Resource
	podLogs := rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"pods/log"}), Verbs: pulumi.ToStringArray([]string{"get"})}
	for _, a := range []struct {
		account string
		rules   rbacv1.PolicyRuleArray
	}{
		{ArgoCDControllerAccount, policyRules(GitOpsKinds, "get", "list", "watch", "create", "update", "patch", "delete")},
		// (and the UI's "create a Job from this CronJob")
		{ArgoCDServerAccount, append(policyRules(ArgoCDCacheKinds, "get", "patch", "delete"), podLogs,
			rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{"batch"}), Resources: pulumi.ToStringArray([]string{"jobs"}), Verbs: pulumi.ToStringArray([]string{"create"})})},
	} {
		l := labels(a.account, "gitops")
		role, err := rbacv1.NewRole(s.ctx, s.resourceName(ns, a.account), &rbacv1.RoleArgs{
			Metadata: meta(a.account, ns, l),
			Rules:    a.rules,
		}, append(s.parented(), pulumi.DependsOn(deps))...)
		if err != nil {
			return nil, fmt.Errorf("role %s/%s: %w", ns, a.account, err)
		}
		binding, err := rbacv1.NewRoleBinding(s.ctx, s.resourceName(ns, a.account), &rbacv1.RoleBindingArgs{
			Metadata: meta(a.account, ns, l),
			RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: pulumi.String(a.account)},
			Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(a.account), Namespace: pulumi.String(NamespaceArgoCD)}},
		}, append(s.parented(), pulumi.DependsOn(append(deps, role)))...)
		if err != nil {
			return nil, fmt.Errorf("role binding %s/%s: %w", ns, a.account, err)
		}
		made = append(made, role, binding)
	}
	return made, nil
}

func policyRules(kinds []GroupKind, verbs ...string) rbacv1.PolicyRuleArray {
	groups, resources := byGroup(kinds)
	out := rbacv1.PolicyRuleArray{}
	for _, g := range groups {
		out = append(out, rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{g}), Resources: pulumi.ToStringArray(resources[g]), Verbs: pulumi.ToStringArray(verbs)})
	}
	return out
}

// LockedDefaultProject is the `default` AppProject's spec: no repository, no destination, no
// kind. An Application that names no project (or `default`) syncs nothing.
func LockedDefaultProject() map[string]any {
	return map[string]any{
		"description":                "Locked by the platform program: use the program's project.",
		"sourceRepos":                []any{},
		"sourceNamespaces":           []any{},
		"destinations":               []any{},
		"clusterResourceWhitelist":   []any{},
		"namespaceResourceBlacklist": []any{map[string]any{"group": "*", "kind": "*"}},
	}
}

// lockDefaultProject declares the `default` AppProject, locked. Argo CD's server creates it when
// it starts, before the release is ready, so it always exists by then: the provider that upserts
// existing objects takes it over (patchForce wins the fields the server wrote); the tier's own
// provider would stop at "already exists".
func (s *scope) lockDefaultProject(upsert *kubernetes.Provider, argoCD pulumi.Resource) error {
	_, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(NamespaceArgoCD, "default-project"), &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("argoproj.io/v1alpha1"),
		Kind:       pulumi.String("AppProject"),
		Metadata: &metav1.ObjectMetaArgs{
			Name:        pulumi.String("default"),
			Namespace:   pulumi.String(NamespaceArgoCD),
			Labels:      labels("default", "gitops"),
			Annotations: pulumi.StringMap{"pulumi.com/patchForce": pulumi.String("true")},
		},
		OtherFields: map[string]any{"spec": LockedDefaultProject()},
	}, append(s.opts(NamespaceArgoCD, argoCD), upsertWith(upsert)...)...)
	if err != nil {
		return fmt.Errorf("argo cd's default project: %w", err)
	}
	return nil
}
