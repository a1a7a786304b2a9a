// Package manifest turns recorded registrations into plain values and Kubernetes manifests,
// with secrets redacted and cloud-computed values marked.
package manifest

import (
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/mocks"
)

// Markers for values that only exist in a real deployment.
const (
	SecretMarker   = "offline-placeholder-secret"
	ComputedMarker = "offline-placeholder-computed"
)

// Plain converts a property value to plain Go values, replacing secrets and unknowns by markers
// so that nothing secret is ever written and nothing computed passes for real.
func Plain(v resource.PropertyValue) any {
	switch {
	case v.IsNull():
		return nil
	case v.IsSecret():
		return redact(v.SecretValue().Element)
	case v.IsComputed(), v.IsOutput() && !v.OutputValue().Known:
		return ComputedMarker
	case v.IsOutput():
		if v.OutputValue().Secret {
			return redact(v.OutputValue().Element)
		}
		return Plain(v.OutputValue().Element)
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, Plain(e))
		}
		return out
	case v.IsObject():
		return PlainMap(v.ObjectValue())
	case v.IsResourceReference():
		return string(v.ResourceReferenceValue().URN)
	}
	return v.V
}

// redact keeps a secret's shape (the keys of a Secret's data, say) and replaces every value.
func redact(v resource.PropertyValue) any {
	switch {
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = redact(e)
		}
		return out
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, redact(e))
		}
		return out
	case v.IsOutput():
		return redact(v.OutputValue().Element)
	}
	return SecretMarker
}

// PlainMap converts a property map with Plain.
func PlainMap(m resource.PropertyMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[string(k)] = Plain(v)
	}
	return out
}

// KubernetesObject returns the manifest of a typed Kubernetes resource, or false for anything
// else (Helm releases, providers, non-Kubernetes resources).
func KubernetesObject(r *mocks.Resource) (map[string]any, bool) {
	parts := strings.Split(r.Type, ":")
	if len(parts) != 3 || parts[0] != "kubernetes" || strings.HasPrefix(parts[1], "helm.sh") || !r.Custom || r.Type == "pulumi:providers:kubernetes" {
		return nil, false
	}
	apiVersion := parts[1]
	apiVersion = strings.TrimPrefix(apiVersion, "core/") // the core group has no name
	obj := PlainMap(r.Inputs)
	obj["apiVersion"], obj["kind"] = apiVersion, parts[2]
	return obj, true
}
