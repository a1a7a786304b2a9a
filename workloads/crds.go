package workloads

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/versions"
)

// chartArgs are what the components that install charts need for it.
type chartArgs struct {
	// Archives opens the pinned chart archives, whose crds/ folders the program declares.
	Archives charts.Archives
	// CRDProvider declares those CRDs, adopting any a chart installed before; nil declares them
	// with the tier's provider.
	CRDProvider *kubernetes.Provider
	// CopyDir is the folder, relative to the program's directory (where the Kubernetes provider
	// runs too), that keeps the checked archives fetched from a repository for Helm to install;
	// "" is .charts.
	CopyDir string
}

// copyDir is where the checked archives are kept for Helm (chartArgs.CopyDir).
func (c chartArgs) copyDir() string {
	if c.CopyDir == "" {
		return ".charts"
	}
	return c.CopyDir
}

// chartCRDs declares, as resources of the program, the CustomResourceDefinitions a chart ships
// in its crds/ folders; the chart's release then installs with skipCrds and waits for them.
// Helm would install them once and leave them: a chart bump would not upgrade them, and
// `pulumi destroy` would leave them and every object of theirs in the cluster. Owned here, a
// bump shows their change in the preview and a destroy deletes them after the release.
func (s *scope) chartCRDs(src chartArgs, chart versions.Chart, archive []byte) ([]pulumi.Resource, error) {
	if !chart.CRDFolders {
		return nil, nil
	}
	crds, err := charts.CRDs(archive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chart.Archive(), err)
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("%s has no CRDs in a crds/ folder, yet versions marks it CRDFolders", chart.Archive())
	}
	var out []pulumi.Resource
	for _, crd := range crds {
		md, _ := crd["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		spec, _ := crd["spec"].(map[string]any)
		if name == "" || spec == nil {
			return nil, fmt.Errorf("%s: a CRD without metadata.name or spec", chart.Archive())
		}
		annotations := pulumi.StringMap{
			// With the CRD provider's upsert, take over the fields of a CRD Helm installed
			// before the program owned it (an existing stack's first update after this change)
			// instead of failing on a field-manager conflict: the program is the only writer.
			"pulumi.com/patchForce": pulumi.String("true"),
		}
		for k, v := range stringMap(md["annotations"]) {
			annotations[k] = pulumi.String(v)
		}
		labels := pulumi.StringMap{"app.kubernetes.io/managed-by": pulumi.String("pulumi"), "waste-coach.io/chart": pulumi.String(chart.Name)}
		for k, v := range stringMap(md["labels"]) {
			labels[k] = pulumi.String(v)
		}
		r, err := apiextensions.NewCustomResource(s.ctx, s.resourceName("crd", name), &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String("apiextensions.k8s.io/v1"),
			Kind:       pulumi.String("CustomResourceDefinition"),
			Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: labels, Annotations: annotations},
			// The spec only (a status in the file is the API server's to write), without the
			// schemas' field documentation, which would dominate the stack's state.
			OtherFields: kubernetes.UntypedArgs{"spec": charts.WithoutDescriptions(spec)},
		}, s.crdOptions(src.CRDProvider)...)
		if err != nil {
			return nil, fmt.Errorf("crd %s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// crdOptions: the CRDs adopt existing objects through their own provider, and are protected
// on a production stack. Deleting a CRD deletes every object of its kind (the Prometheus object
// with its StatefulSet and metrics volume, the TargetGroupBindings that keep the ALB's targets),
// so neither a destroy nor a replacement may take one without the operator's say-so
// (`pulumi state unprotect`), like the data namespace.
func (s *scope) crdOptions(provider *kubernetes.Provider) []pulumi.ResourceOption {
	return append(append(s.parented(), pulumi.Protect(s.cfg.Production)), upsertWith(provider)...)
}

// upsertWith is the option that declares a resource with the upserting provider, when there is
// one (offline runs have none).
func upsertWith(p *kubernetes.Provider) []pulumi.ResourceOption {
	if p == nil {
		return nil
	}
	return []pulumi.ResourceOption{pulumi.Provider(p)}
}

// stringMap keeps the string values of a decoded YAML mapping.
func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, val := range m {
		if s, ok := val.(string); ok {
			out[k] = s
		}
	}
	return out
}
