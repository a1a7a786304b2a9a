// Package render turns one offline run of the program into files a person or a tool can read:
// an inventory of every resource, every node script and kubeadm configuration, and every
// Kubernetes object as an applyable manifest.
package render

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// Tier names the top-level component a resource belongs to: infra, cluster or workloads.
func Tier(byURN map[string]*mocks.Resource, r *mocks.Resource) string {
	for cur := r; cur != nil; cur = byURN[cur.Parent] {
		if parts := strings.Split(cur.Type, ":"); len(parts) == 3 && parts[0] == "waste-coach-infra" {
			if byURN[cur.Parent] == nil {
				return parts[1]
			}
		}
	}
	return "stack"
}

// Index maps URNs to resources.
func Index(rs []*mocks.Resource) map[string]*mocks.Resource {
	m := map[string]*mocks.Resource{}
	for _, r := range rs {
		m[r.URN] = r
	}
	return m
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// Write writes the run's files under dir and prints a summary to w.
func Write(res *offline.Result, dir string, w io.Writer) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	byURN := Index(res.Resources)
	var inventory strings.Builder
	fmt.Fprintf(&inventory, "# Resources of stack %s (offline render: values marked %q or %q exist only in a real deployment)\n", res.Stack, "offline", manifest.ComputedMarker)
	fmt.Fprintf(&inventory, "%-10s %-55s %-48s %s\n", "TIER", "TYPE", "NAME", "KEY PROPERTIES")
	counts := map[string]map[string]int{}
	var manifests, releases []string
	sorted := slices.Clone(res.Resources)
	slices.SortFunc(sorted, func(a, b *mocks.Resource) int {
		return cmp.Or(cmp.Compare(Tier(byURN, a), Tier(byURN, b)), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range sorted {
		tier := Tier(byURN, r)
		if counts[tier] == nil {
			counts[tier] = map[string]int{}
		}
		counts[tier][r.Type]++
		fmt.Fprintf(&inventory, "%-10s %-55s %-48s %s\n", tier, r.Type, r.Name, keyProperties(r))

		switch r.Type {
		case "aws:ec2/instance:Instance":
			if err := writeFile(dir, "scripts/user-data-"+fileName(r.Name)+".sh", str(r.Inputs, "userData")); err != nil {
				return err
			}
		case "aws:ssm/parameter:Parameter":
			// A node's preparation script, which its bootstrap user data fetches at first boot.
			if strings.HasSuffix(r.Name, "-prepare") {
				script, err := infra.DecodePreparationParameter(str(r.Inputs, "insecureValue"))
				if err != nil {
					return fmt.Errorf("%s: %w", r.Name, err)
				}
				if err := writeFile(dir, "scripts/"+fileName(r.Name)+".sh", script); err != nil {
					return err
				}
			}
		case "command:remote:Command", "command:local:Command":
			for _, step := range []string{"create", "delete"} {
				if s := str(r.Inputs, step); s != "" {
					if err := writeFile(dir, "scripts/"+fileName(r.Name)+"."+step+".sh", s); err != nil {
						return err
					}
				}
			}
			if strings.Contains(r.Name, "kubeadm-init") {
				if err := writeFile(dir, "kubeadm/"+fileName(r.Name)+".yaml", heredoc(str(r.Inputs, "create"), "KUBEADM")); err != nil {
					return err
				}
				// The command receives the EncryptionConfiguration on its secret stdin; the render
				// writes the same text with an offline key, for verify-local's API server.
				if err := writeFile(dir, "kubeadm/encryption-config.yaml", cluster.EncryptionConfig(OfflineEncryptionKey)); err != nil {
					return err
				}
				// The AdmissionConfiguration the script installs before init, for verify-local's too.
				if err := writeFile(dir, "kubeadm/admission-config.yaml", heredoc(str(r.Inputs, "create"), "ADMISSION")); err != nil {
					return err
				}
				// The audit policy, which verify-local's API server runs with too.
				if err := writeFile(dir, "kubeadm/audit-policy.yaml", heredoc(str(r.Inputs, "create"), "AUDIT")); err != nil {
					return err
				}
				if err := writeIdentity(dir, r.Inputs["stdin"]); err != nil {
					return fmt.Errorf("%s: %w", r.Name, err)
				}
			}
		case "aws:s3/bucketObjectv2:BucketObjectv2":
			// The pods' issuer documents, as the stack publishes them (infra/podidentity.go):
			// verify-local checks real service-account tokens against them.
			if str(r.Inputs, "bucket") != "" && strings.Contains(r.Name, "-pod-identity-") {
				if err := writeFile(dir, IssuerDir+"/"+str(r.Inputs, "key"), str(r.Inputs, "content")); err != nil {
					return err
				}
			}
		case "aws:iam/role:Role":
			// Each pod role's trust: the subject and audience a token must carry.
			if strings.Contains(r.Name, "-pod-identity-") {
				if err := writeFile(dir, IssuerDir+"/trust/"+fileName(r.Name)+".json", str(r.Inputs, "assumeRolePolicy")); err != nil {
					return err
				}
			}
		case "kubernetes:helm.sh/v3:Release":
			b, err := toYAML(manifest.PlainMap(r.Inputs))
			if err != nil {
				return err
			}
			releases = append(releases, fmt.Sprintf("# %s\n%s", r.Name, b))
		}
		if obj, ok := manifest.KubernetesObject(r); ok {
			if err := writeMonitoring(dir, obj, r.Inputs); err != nil {
				return fmt.Errorf("monitoring files of %s: %w", r.Name, err)
			}
			b, err := toYAML(obj)
			if err != nil {
				return fmt.Errorf("manifest of %s: %w", r.Name, err)
			}
			name := fmt.Sprintf("manifests/%s-%s.yaml", strings.ToLower(obj["kind"].(string)), fileName(r.Name))
			if err := writeFile(dir, name, string(b)); err != nil {
				return err
			}
			manifests = append(manifests, name)
		}
	}
	if err := writeFile(dir, "inventory.txt", inventory.String()); err != nil {
		return err
	}
	if res.Config != nil {
		for _, node := range fit.NodeObjects(res.Config, res.Resources) {
			b, err := toYAML(node)
			if err != nil {
				return err
			}
			if err := writeFile(dir, "nodes/"+fileName(node["metadata"].(map[string]any)["name"].(string))+".yaml", string(b)); err != nil {
				return err
			}
		}
	}
	if res.Config != nil {
		if err := writeRestoredVolume(dir, res); err != nil {
			return err
		}
	}
	if len(releases) > 0 {
		header := "# Helm releases: as the program declares them; tools/charts (chartfit) renders each from its\n# pinned archive: the engine run installs them for real.\n"
		if err := writeFile(dir, "helm-releases.yaml", header+strings.Join(releases, "---\n")); err != nil {
			return err
		}
	}

	var summary strings.Builder
	fmt.Fprintf(&summary, "stack %s: %d resources, %d Kubernetes manifests, %d Helm releases -> %s\n", res.Stack, len(res.Resources), len(manifests), len(releases), dir)
	tiers := slices.Sorted(maps.Keys(counts))
	for _, tier := range tiers {
		total := 0
		for _, n := range counts[tier] {
			total += n
		}
		fmt.Fprintf(&summary, "  %-10s %4d\n", tier, total)
		types := slices.Sorted(maps.Keys(counts[tier]))
		slices.SortStableFunc(types, func(a, b string) int { return cmp.Compare(counts[tier][b], counts[tier][a]) })
		for _, t := range types {
			fmt.Fprintf(&summary, "      %4d  %s\n", counts[tier][t], t)
		}
	}
	_, err := io.WriteString(w, summary.String())
	return err
}

func keyProperties(r *mocks.Resource) string {
	var parts []string
	for _, k := range []string{"cidrBlock", "instanceType", "availabilityZone", "privateIp", "bucket", "domainName", "name", "type", "chart", "version", "fromPort", "toPort", "cidrIpv4"} {
		if v, ok := r.Inputs[resource.PropertyKey(k)]; ok && (v.IsString() || v.IsNumber()) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v.V))
		}
	}
	if md, ok := r.Inputs["metadata"]; ok && md.IsObject() {
		m := md.ObjectValue()
		if ns, ok := m["namespace"]; ok && ns.IsString() {
			parts = append(parts, "namespace="+ns.StringValue())
		}
		if n, ok := m["name"]; ok && n.IsString() {
			parts = append(parts, "name="+n.StringValue())
		}
	}
	if r.Protect {
		parts = append(parts, "protect")
	}
	return strings.Join(parts, " ")
}

func str(m resource.PropertyMap, key string) string {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return ""
	}
	if p, ok := manifest.Plain(v).(string); ok {
		return p
	}
	return ""
}

// heredoc returns the body of the first here-document delimited by marker in a script.
func heredoc(script, marker string) string {
	_, after, ok := strings.Cut(script, "<<'"+marker+"'\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(after, "\n"+marker+"\n")
	return body + "\n"
}

// writeMonitoring writes what promtool and amtool check, exactly as declared: each
// PrometheusRule's spec as a rule file under monitoring/rules/, and the Alertmanager
// configuration Secret's alertmanager.yaml as monitoring/alertmanager.yaml.
func writeMonitoring(dir string, obj map[string]any, inputs resource.PropertyMap) error {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	switch {
	case obj["kind"] == "PrometheusRule":
		b, err := toYAML(obj["spec"])
		if err != nil {
			return err
		}
		return writeFile(dir, "monitoring/rules/"+fileName(name)+".yaml", string(b))
	case obj["kind"] == "Secret" && name == alerting.ConfigSecretName:
		// The provider marks every Secret's data secret; this one holds no secret (the
		// receiver's is a mounted file), so its text is taken from the declared input.
		conf, ok := unwrapSecret(inputs["stringData"]).(map[string]any)["alertmanager.yaml"].(string)
		if !ok {
			return fmt.Errorf("secret %s has no alertmanager.yaml", name)
		}
		return writeFile(dir, "monitoring/alertmanager.yaml", conf)
	}
	return nil
}

// unwrapSecret converts a property value to plain values without redacting its secrets.
func unwrapSecret(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return unwrapSecret(v.SecretValue().Element)
	case v.IsOutput():
		return unwrapSecret(v.OutputValue().Element)
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = unwrapSecret(e)
		}
		return out
	}
	return manifest.Plain(v)
}

// OfflineRestoredVolumeID stands for an EBS volume created from a snapshot in the rendered
// example of a restore (restore/): never a real volume.
const OfflineRestoredVolumeID = "vol-0123456789abcdef0"

// writeRestoredVolume writes, under restore/, the PersistentVolume the documented volume restore
// applies for the PostgreSQL claim (workloads.RestoredVolume), in the storage node's zone, for
// verify-local to show the API server accepts it and binds it to the claim.
func writeRestoredVolume(dir string, res *offline.Result) error {
	zone := ""
	for _, r := range res.Resources {
		if r.Type == "aws:ec2/instance:Instance" && r.Inputs["tags"].ObjectValue()["Role"].StringValue() == string(config.RoleStorage) {
			zone = r.Outputs["availabilityZone"].StringValue()
		}
	}
	claim := workloads.VolumeName + "-postgres-0"
	pv, err := workloads.RestoredVolume(res.Config, workloads.NamespaceData, claim, OfflineRestoredVolumeID, zone)
	if err != nil {
		return fmt.Errorf("restored volume example: %w", err)
	}
	b, err := toYAML(pv)
	if err != nil {
		return err
	}
	return writeFile(dir, "restore/persistentvolume-"+workloads.NamespaceData+"-"+claim+".yaml", string(b))
}

// OfflineEncryptionKey is the secretbox key of the rendered EncryptionConfiguration: 32 bytes of
// "offline-placeholder-secret" padding, base64-encoded, never a deployed key.
var OfflineEncryptionKey = base64.StdEncoding.EncodeToString([]byte("offline-placeholder-secret-32byt"))

// IssuerDir is where the render writes the pods' service-account issuer: its two published
// documents under their bucket keys, and each pod role's trust policy under trust/.
const IssuerDir = "issuer"

// IdentityDir is where the render writes the cluster identity kubeadm-init installs, under the
// names kubeadm gives the files in /etc/kubernetes/pki: verify-local runs its control plane and
// etcd drill with them. Offline they are the mocks' keys, never a deployed stack's.
const IdentityDir = "kubeadm/identity"

// writeIdentity writes the identity files of kubeadm-init's standard input under IdentityDir. The
// input is a secret, which the render redacts everywhere else: here it is the mocks' keys.
func writeIdentity(dir string, stdin resource.PropertyValue) error {
	for stdin.IsSecret() {
		stdin = stdin.SecretValue().Element
	}
	if !stdin.IsString() {
		return fmt.Errorf("standard input is not a known string: %v", stdin)
	}
	identity, _, err := cluster.ParseInitBundle(stdin.StringValue())
	if err != nil {
		return err
	}
	for name, content := range identity {
		path := filepath.Join(dir, IdentityDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, name, content string) error {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

func toYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}
