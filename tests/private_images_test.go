package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

const (
	pullSecretKey = "waste-coach-infra:imagePullSecret"
	// prodLogin is a login to ghcr.io, where prod's example images are.
	prodLogin = `{"registry":"ghcr.io","username":"deploy-bot","password":"ghp_exampleToken"}`
)

// podTemplates returns the manifest of every Deployment and StatefulSet, by logical name.
func workloadObjects(r *offline.Result) map[*mocks.Resource]map[string]any {
	out := map[*mocks.Resource]map[string]any{}
	for _, typ := range []string{"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"} {
		for _, w := range r.OfType(typ) {
			obj, _ := manifest.KubernetesObject(w)
			out[w] = obj
		}
	}
	return out
}

// TestPrivateRegistryLogin: with imagePullSecret set (as a secret), the program declares one
// kubernetes.io/dockerconfigjson Secret in the app namespace, its data a Pulumi secret, and every
// application and Celery pod pulls with it and waits for it; without it a private image could
// not be pulled (ErrImagePull), and a pod created before the Secret would fail the same way.
func TestPrivateRegistryLogin(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{pullSecretKey: prodLogin}, pullSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	var login *mocks.Resource
	for _, s := range r.OfType("kubernetes:core/v1:Secret") {
		if str(s, "type") == "kubernetes.io/dockerconfigjson" {
			if login != nil {
				t.Fatalf("two registry logins declared: %s and %s", login.Name, s.Name)
			}
			login = s
		}
	}
	if login == nil {
		t.Fatal("no kubernetes.io/dockerconfigjson Secret declared although imagePullSecret is set")
	}
	if ns, name := str(login, "metadata", "namespace"), str(login, "metadata", "name"); ns != workloads.NamespaceApp || name != workloads.RegistryPullSecret {
		t.Errorf("the registry login is %s/%s, want %s/%s (pull secrets only work in their pods' namespace)", ns, name, workloads.NamespaceApp, workloads.RegistryPullSecret)
	}
	data := resource.NewObjectProperty(login.Inputs).ObjectValue()["stringData"]
	if !data.IsSecret() {
		t.Error("the registry login's stringData is not a Pulumi secret: the password would be stored in plain text in the state")
	}
	var doc struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal([]byte(str(login, "stringData", ".dockerconfigjson")), &doc); err != nil {
		t.Fatalf("the .dockerconfigjson key is not a JSON document: %v", err)
	}
	if got, want := doc.Auths["ghcr.io"].Auth, base64.StdEncoding.EncodeToString([]byte("deploy-bot:ghp_exampleToken")); got != want {
		t.Errorf("auths[ghcr.io].auth = %q, want base64(user:password) %q", got, want)
	}

	var withLogin []string
	for w, obj := range workloadObjects(r) {
		refs := at(obj, "spec", "template", "spec", "imagePullSecrets")
		ns := fmt.Sprint(at(obj, "metadata", "namespace"))
		if ns != workloads.NamespaceApp {
			if refs != nil {
				t.Errorf("%s (namespace %s) names imagePullSecrets %v; only the application's pods pull private images", w.Name, ns, refs)
			}
			continue
		}
		if got := fmt.Sprint(refs); got != fmt.Sprintf("[map[name:%s]]", workloads.RegistryPullSecret) {
			t.Errorf("%s pulls with imagePullSecrets %s, want [%s]", w.Name, got, workloads.RegistryPullSecret)
			continue
		}
		if !r.DependsOn(w, login) {
			t.Errorf("%s does not wait for the registry login: its first pods would fail with ErrImagePull", w.Name)
		}
		withLogin = append(withLogin, fmt.Sprint(at(obj, "metadata", "name")))
	}
	slices.Sort(withLogin)
	for _, want := range []string{"auth", "users", "waste", "celery-ai", "celery-batch", "celery-api", "celery-beat"} {
		if !slices.Contains(withLogin, want) {
			t.Errorf("the %s Deployment does not pull with the registry login (pods with it: %v)", want, withLogin)
		}
	}
	// The general rule holds with the login too: every Secret a pod names is declared and awaited.
	checkSecretsAwaited(t, r)
}

// TestNoRegistryLoginWithoutConfig: a stack without imagePullSecret (public images, or ECR
// through the nodes) declares no login and names none in its pods.
func TestNoRegistryLoginWithoutConfig(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, s := range r.OfType("kubernetes:core/v1:Secret") {
			if str(s, "type") == "kubernetes.io/dockerconfigjson" || str(s, "metadata", "name") == workloads.RegistryPullSecret {
				t.Errorf("%s declares registry login %s without imagePullSecret", r.Stack, s.Name)
			}
		}
		for w, obj := range workloadObjects(r) {
			if refs := at(obj, "spec", "template", "spec", "imagePullSecrets"); refs != nil {
				t.Errorf("%s names imagePullSecrets %v without imagePullSecret configured", w.Name, refs)
			}
		}
	})
}

// TestPlainTextRegistryLoginIsRefused: a password in plain text in the stack file would be
// committed to the repository; it is refused, by key, before any resource is declared, and the
// refusal does not repeat it.
func TestPlainTextRegistryLoginIsRefused(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{pullSecretKey: prodLogin}))
	if err == nil || !strings.Contains(err.Error(), pullSecretKey) || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a registry login in plain text must be refused by name, got %v", err)
	}
	if strings.Contains(err.Error(), "ghp_exampleToken") {
		t.Errorf("the refusal repeats the password: %v", err)
	}
	if len(r.Resources) != 0 {
		t.Errorf("%d resources were declared before the plain-text login was refused", len(r.Resources))
	}
}
