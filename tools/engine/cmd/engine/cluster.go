package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/versions"
)

// client is a plain REST client for the local cluster: the checks need lists of names, nothing more.
type client struct {
	server string
	http   *http.Client
}

func newClient(kubeconfig string) (*client, error) {
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, err
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `yaml:"server"`
				CA     string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User struct {
				Cert string `yaml:"client-certificate-data"`
				Key  string `yaml:"client-key-data"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, err
	}
	if len(kc.Clusters) != 1 || len(kc.Users) != 1 {
		return nil, fmt.Errorf("%s: want one cluster and one user", kubeconfig)
	}
	decode := func(s string) []byte { d, _ := base64.StdEncoding.DecodeString(s); return d }
	pair, err := tls.X509KeyPair(decode(kc.Users[0].User.Cert), decode(kc.Users[0].User.Key))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(decode(kc.Clusters[0].Cluster.CA)) {
		return nil, errors.New("kubeconfig: no CA certificate")
	}
	return &client{server: kc.Clusters[0].Cluster.Server, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}},
	}}, nil
}

func (c *client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	if resp.StatusCode == http.StatusNotFound {
		return errNotServed
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

var errNotServed = errors.New("not served")

type object struct {
	Metadata struct {
		Name, Namespace   string
		UID               string
		Labels            map[string]string
		DeletionTimestamp *string
		OwnerReferences   []struct{ Kind string }
	}
	Spec struct {
		PersistentVolumeReclaimPolicy string `json:"persistentVolumeReclaimPolicy"`
		StorageClassName              string `json:"storageClassName"`
	}
}

// kinds are what the program or its charts create, by API path: everything cluster-scoped that
// outlives a namespace, and the namespaced kinds it puts into namespaces it does not own
// (kube-system, default).
var kinds = []string{
	"/api/v1/namespaces",
	"/api/v1/persistentvolumes",
	"/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
	"/apis/rbac.authorization.k8s.io/v1/clusterroles",
	"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
	"/apis/storage.k8s.io/v1/storageclasses",
	"/apis/storage.k8s.io/v1/csidrivers",
	"/apis/scheduling.k8s.io/v1/priorityclasses",
	"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
	"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
	"/apis/apiregistration.k8s.io/v1/apiservices",
	"/apis/networking.k8s.io/v1/ingressclasses",
	"/api/v1/services",
	"/api/v1/serviceaccounts",
	"/api/v1/configmaps",
	"/api/v1/secrets",
	"/api/v1/persistentvolumeclaims",
	"/apis/apps/v1/deployments",
	"/apis/apps/v1/daemonsets",
	"/apis/apps/v1/statefulsets",
	"/apis/batch/v1/jobs",
	"/apis/rbac.authorization.k8s.io/v1/roles",
	"/apis/rbac.authorization.k8s.io/v1/rolebindings",
	"/apis/policy/v1/poddisruptionbudgets",
	"/apis/networking.k8s.io/v1/networkpolicies",
}

// snapshot lists the names of every object of kinds.
func snapshot(ctx context.Context, kubeconfig string) (map[string][]string, error) {
	c, err := newClient(kubeconfig)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, k := range kinds {
		var list struct{ Items []object }
		if err := c.get(ctx, k, &list); err != nil {
			return nil, fmt.Errorf("list %s: %w", k, err)
		}
		for _, o := range list.Items {
			name := o.Metadata.Name
			if o.Metadata.Namespace != "" {
				name = o.Metadata.Namespace + "/" + name
			}
			out[k] = append(out[k], name)
		}
	}
	return out, nil
}

// objectUIDs maps every object of kinds ("<api path> <namespace>/<name>") to its UID, which a
// recreated object does not keep. Objects being deleted, and the Jobs of CronJobs (made and
// pruned on the CronJobs' schedules), are left out.
func objectUIDs(ctx context.Context, kubeconfig string) (map[string]string, error) {
	c, err := newClient(kubeconfig)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range kinds {
		var list struct{ Items []object }
		if err := c.get(ctx, k, &list); err != nil {
			return nil, fmt.Errorf("list %s: %w", k, err)
		}
		for _, o := range list.Items {
			if o.Metadata.DeletionTimestamp != nil || slices.ContainsFunc(o.Metadata.OwnerReferences, func(r struct{ Kind string }) bool { return r.Kind == "CronJob" }) {
				continue
			}
			out[k+" "+o.Metadata.Namespace+"/"+o.Metadata.Name] = o.Metadata.UID
		}
	}
	return out, nil
}

// nothingLeft compares the cluster after destroy with the one before up. Volumes whose reclaim
// policy is Retain are kept on purpose (production data) and listed as such; anything else new
// is left behind and fails the run. Deletion is asynchronous for some kinds (namespaces, volumes),
// so it looks again for up to two minutes.
func nothingLeft(ctx context.Context, kubeconfig string, before map[string][]string) error {
	c, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left, retained []string
		for _, k := range kinds {
			var list struct{ Items []object }
			if err := c.get(ctx, k, &list); err != nil {
				return fmt.Errorf("list %s: %w", k, err)
			}
			for _, o := range list.Items {
				name := o.Metadata.Name
				if o.Metadata.Namespace != "" {
					name = o.Metadata.Namespace + "/" + name
				}
				if slices.Contains(before[k], name) {
					continue
				}
				kind := k[strings.LastIndex(k, "/")+1:]
				switch {
				case systemObject(kind, o):
					continue
				case kind == "persistentvolumes" && o.Spec.PersistentVolumeReclaimPolicy == "Retain":
					retained = append(retained, fmt.Sprintf("%s (class %s)", name, o.Spec.StorageClassName))
					continue
				}
				left = append(left, kind+" "+name)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			sort.Strings(retained)
			for _, r := range retained {
				fmt.Printf("engine: kept on purpose, reclaim policy Retain: volume %s\n", r)
			}
			if len(left) > 0 {
				sort.Strings(left)
				return fmt.Errorf("pulumi destroy left %d objects in the cluster:\n  %s", len(left), strings.Join(left, "\n  "))
			}
			fmt.Println("engine: apart from the above, nothing of ours is left in the cluster (chart CRDs and their APIServices included)")
			return nil
		}
		time.Sleep(3 * time.Second)
	}
}

// systemObject is what the control plane makes by itself, whenever it gets to it: each
// namespace's root CA ConfigMap and default ServiceAccount, and the controllers' own accounts in
// kube-system, which carry no labels (everything the program or a chart makes carries some).
func systemObject(kind string, o object) bool {
	switch kind {
	case "configmaps":
		return o.Metadata.Name == "kube-root-ca.crt"
	case "serviceaccounts":
		return o.Metadata.Name == "default" || (o.Metadata.Namespace == "kube-system" && len(o.Metadata.Labels) == 0)
	}
	return false
}

// podsRequestResources fails on any container, of the program's pods or the charts', that
// requests no CPU or no memory: the scheduler would place it without counting it, and the
// per-node fit could not either.
func podsRequestResources(ctx context.Context, kubeconfig string) error {
	c, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	var pods struct {
		Items []struct {
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				NodeName       string `json:"nodeName"`
				Containers     []container
				InitContainers []container `json:"initContainers"`
			}
		}
	}
	if err := c.get(ctx, "/api/v1/pods", &pods); err != nil {
		return err
	}
	var missing []string
	perNode := map[string]int{}
	for _, p := range pods.Items {
		perNode[p.Spec.NodeName]++
		for _, ct := range append(p.Spec.Containers, p.Spec.InitContainers...) {
			if ct.Resources.Requests["cpu"] == "" || ct.Resources.Requests["memory"] == "" {
				missing = append(missing, fmt.Sprintf("%s/%s container %s", p.Metadata.Namespace, p.Metadata.Name, ct.Name))
			}
		}
	}
	var placed []string
	for n, count := range perNode {
		if n == "" {
			n = "(not scheduled)"
		}
		placed = append(placed, fmt.Sprintf("%s: %d", n, count))
	}
	sort.Strings(placed)
	fmt.Printf("engine: %d pods after up; per node: %s\n", len(pods.Items), strings.Join(placed, ", "))
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%d containers request no CPU or memory (set them in the chart values):\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	return nil
}

type container struct {
	Name      string
	Resources struct {
		Requests map[string]string
	}
}

// create POSTs an object, as a client-side create (Helm's way) by the field manager given.
func (c *client) create(ctx context.Context, path, manager string, obj any) error {
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+path+"?fieldManager="+manager, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// adoptedCRD is the chart CRD the run installs the way Helm did before the program owned it,
// so that `pulumi up` must take over an existing object (a stack deployed before that change).
const adoptedCRD = "targetgroupbindings.elbv2.k8s.aws"

// installAsHelmDid creates adoptedCRD from the pinned chart, whole (descriptions included) and
// with Helm as its field manager.
func installAsHelmDid(ctx context.Context, kubeconfig, chartsDir string) error {
	c, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	archive, err := charts.Folder(chartsDir).Archive(versions.LoadBalancerController)
	if err != nil {
		return err
	}
	crds, err := charts.CRDs(archive)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if md, _ := crd["metadata"].(map[string]any); md["name"] == adoptedCRD {
			return c.create(ctx, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "helm", crd)
		}
	}
	return fmt.Errorf("%s is not in %s", adoptedCRD, versions.LoadBalancerController.Archive())
}
