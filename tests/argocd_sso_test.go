package tests

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

const (
	ssoKey       = "waste-coach-infra:argocdSso"
	ssoSecretKey = "waste-coach-infra:argocdSsoClientSecret"
	ssoValue     = `{"issuer":"https://login.example.com","clientId":"argocd","adminGroup":"platform-team"}`
)

func argoRelease(t *testing.T, r *offline.Result) *mocks.Resource {
	t.Helper()
	for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
		if str(rel, "name") == "argo-cd" {
			return rel
		}
	}
	t.Fatal("no argo-cd release")
	return nil
}

// TestArgoCDAdminIsDisabledOnceSSOIsConfigured: Argo CD's built-in admin can do anything its
// controller can in the cluster; once operators sign in through the identity provider, the admin
// account is disabled and the provider's admin group gets role:admin.
func TestArgoCDAdminIsDisabledOnceSSOIsConfigured(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{ssoKey: ssoValue, ssoSecretKey: "client-secret-value"}, ssoSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	rel := argoRelease(t, r)
	if got := str(rel, "values", "configs", "cm", "admin.enabled"); got != "false" {
		t.Errorf("argo-cd configs.cm admin.enabled = %q, want \"false\" once SSO is configured", got)
	}
	oidc := str(rel, "values", "configs", "cm", "oidc.config")
	for _, want := range []string{`issuer: "https://login.example.com"`, `clientID: "argocd"`, "clientSecret: $" + workloads.ArgoCDClientSecretKey, "groups"} {
		if !strings.Contains(oidc, want) {
			t.Errorf("oidc.config lacks %q:\n%s", want, oidc)
		}
	}
	if strings.Contains(oidc, "client-secret-value") {
		t.Error("the client secret is inlined in argocd-cm (a ConfigMap anyone with read access sees)")
	}
	secret := prop(rel, "values", "configs", "secret", "extra", workloads.ArgoCDClientSecretKey)
	if !secret.ContainsSecrets() {
		t.Errorf("configs.secret.extra.%s is not a Pulumi secret: %v", workloads.ArgoCDClientSecretKey, secret)
	}
	if got := str(rel, "values", "configs", "rbac", "policy.csv"); !strings.Contains(got, "g, platform-team, role:admin") {
		t.Errorf("rbac policy.csv %q does not make the admin group role:admin: nobody could administer Argo CD", got)
	}
	if got := str(rel, "values", "configs", "rbac", "policy.default"); got != "" {
		t.Errorf("rbac policy.default %q: other signed-in users must get no role", got)
	}
}

// TestArgoCDKeepsItsAdminWithoutSSO: without an identity provider the admin account is the only
// way in (the README says how to read its password), so nothing disables it.
func TestArgoCDKeepsItsAdminWithoutSSO(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		rel := argoRelease(t, r)
		for k := range prop(rel, "values", "configs", "cm").ObjectValue() {
			if k != "resource.inclusions" && k != "resource.respectRBAC" {
				t.Errorf("argo-cd configs.cm sets %s without SSO (only the cache's kinds and respectRBAC are set)", k)
			}
		}
	})
}

// TestArgoCDSSOClientSecretMustBeASecret refuses a missing or plain-text client secret before any
// resource is declared, naming the key.
func TestArgoCDSSOClientSecretMustBeASecret(t *testing.T) {
	for name, tc := range map[string]struct {
		change  map[string]string
		secrets []string
		want    string
	}{
		"missing":    {map[string]string{ssoKey: ssoValue}, nil, "argocdSsoClientSecret: missing"},
		"plain text": {map[string]string{ssoKey: ssoValue, ssoSecretKey: "client-secret-value"}, nil, "(plain text) is not allowed"},
		"bad issuer": {map[string]string{ssoKey: `{"issuer":"http://login.example.com","clientId":"argocd","adminGroup":"ops"}`, ssoSecretKey: "x"}, []string{ssoSecretKey}, "argocdSso.issuer"},
		"no group":   {map[string]string{ssoKey: `{"issuer":"https://login.example.com","clientId":"argocd"}`, ssoSecretKey: "x"}, []string{ssoSecretKey}, "argocdSso.adminGroup"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := offline.RunConfig("prod", prodWith(t, tc.change, tc.secrets...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "client-secret-value") {
				t.Errorf("the error repeats the secret: %v", err)
			}
			if r != nil && len(r.Resources) != 0 {
				t.Errorf("%d resources declared before the refusal", len(r.Resources))
			}
		})
	}
}
