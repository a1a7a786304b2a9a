package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// The pod identities of the charts: the program gives the chart components that call AWS a role
// of their own as the EKS pod identity webhook would (there is none): AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE in the environment, and a ServiceAccount token projected for STS
// into a volume mounted where the file is. The role trusts one ServiceAccount only
// (out/<stack>/issuer/trust/<role>.json), so a pod with the environment must run as it, and the
// chart must create it.
const (
	identityVolume = "aws-identity"
	identityDir    = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	identityAud    = "sts.amazonaws.com"
	subjectPrefix  = "system:serviceaccount:"
)

// Trust is one role's trust policy: the file (its base name is the role's) and the
// ServiceAccount, "namespace/name", its web identity condition names.
type Trust struct {
	File, Subject string
}

// readTrust reads out/<stack>/issuer/trust/*.json; found is false when the render has no such
// folder (a render from before the pod identities). A policy without a service-account subject
// is returned with an empty Subject.
func readTrust(dir string) (trust []Trust, found bool, err error) {
	folder := filepath.Join(dir, "issuer", "trust")
	if _, err := os.Stat(folder); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	files, err := filepath.Glob(filepath.Join(folder, "*.json"))
	if err != nil {
		return nil, true, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, true, err
		}
		var doc struct {
			Statement []struct {
				Condition map[string]map[string]any `json:"Condition"`
			} `json:"Statement"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, true, fmt.Errorf("%s: %w", f, err)
		}
		t := Trust{File: filepath.Base(f)}
		for _, s := range doc.Statement {
			for key, v := range s.Condition["StringEquals"] {
				if sub, ok := v.(string); ok && strings.HasSuffix(key, ":sub") && strings.HasPrefix(sub, subjectPrefix) {
					ns, sa, _ := strings.Cut(strings.TrimPrefix(sub, subjectPrefix), ":")
					t.Subject = ns + "/" + sa
				}
			}
		}
		trust = append(trust, t)
	}
	return trust, true, nil
}

// programServiceAccounts lists the ServiceAccounts, "namespace/name", the program itself
// declares (out/<stack>/manifests): the subjects of the roles no chart pod runs as.
func programServiceAccounts(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(string(b), "ServiceAccount") {
			continue
		}
		objs, err := parseManifests(string(b), nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, o := range objs {
			if o.Map["kind"] == "ServiceAccount" {
				md := dig(o.Map, "metadata")
				out[str(md, "namespace")+"/"+str(md, "name")] = true
			}
		}
	}
	return out, nil
}

// identityCheck reads a render's trust policies and program ServiceAccounts and checks the
// charts' pod identities against them; a render without trust policies is skipped, saying so.
func identityCheck(dir string, rendered []*Rendered, w *strings.Builder) ([]Finding, error) {
	trust, found, err := readTrust(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		fmt.Fprintf(w, "pod identities: %s has no issuer/trust folder (a render from before the pod identities): check skipped\n\n", dir)
		return nil, nil
	}
	program, err := programServiceAccounts(dir)
	if err != nil {
		return nil, err
	}
	return checkIdentities(rendered, trust, program, w), nil
}

// checkIdentities checks every chart pod template (Deployment, DaemonSet, StatefulSet) with a
// container given AWS_ROLE_ARN: its ServiceAccount is the subject of a trust policy (and of the
// one the ARN names, when it names one), the chart renders that ServiceAccount, the container
// mounts the aws-identity volume at the webhook's path with the token file under it, and the
// volume is a ServiceAccount token projected for STS. Then every trust policy whose subject is a
// chart's ServiceAccount must have such a pod, so values that lose the environment fail; and the
// EBS CSI node plugin must have no role and read its instance from Kubernetes.
func checkIdentities(rendered []*Rendered, trust []Trust, program map[string]bool, w *strings.Builder) []Finding {
	fmt.Fprintf(w, "pod identities (AWS_ROLE_ARN with a projected token, no webhook; %d trust policies):\n", len(trust))
	var out []Finding
	trusted := map[string][]string{} // subject -> trust files
	for _, t := range trust {
		if t.Subject != "" {
			trusted[t.Subject] = append(trusted[t.Subject], t.File)
		}
	}
	chartSAs := map[string]string{}    // subject -> a release rendering it
	releaseSAs := map[[2]string]bool{} // {release, subject} the release renders
	for _, r := range rendered {
		for _, o := range r.Objects {
			if o.Map["kind"] == "ServiceAccount" && len(o.Hook) == 0 {
				ns := str(dig(o.Map, "metadata"), "namespace")
				if ns == "" {
					ns = r.Release.Namespace
				}
				subject := ns + "/" + str(dig(o.Map, "metadata"), "name")
				chartSAs[subject] = r.Release.Name
				releaseSAs[[2]string{r.Release.Name, subject}] = true
			}
		}
	}
	withRole := map[string]int{}  // subject -> chart pods with AWS_ROLE_ARN running as it
	usedBy := map[string]string{} // subject -> a release whose pod runs as it
	for _, r := range rendered {
		ebs := strings.HasPrefix(r.Archive, "aws-ebs-csi-driver-")
		ebsNodes := 0
		for _, o := range r.Objects {
			kind := str(o.Map, "kind")
			if kind != "Deployment" && kind != "DaemonSet" && kind != "StatefulSet" {
				continue
			}
			spec := dig(o.Map, "spec", "template", "spec")
			if runsNowhere(Pod{NodeSelector: strMap(spec["nodeSelector"])}) {
				continue
			}
			pod := kind + " " + str(dig(o.Map, "metadata"), "name")
			subject := r.Release.Namespace + "/" + serviceAccountOf(spec)
			usedBy[subject] = r.Release.Name
			isEBSNode := ebs && kind == "DaemonSet"
			var withARN []map[string]any
			for _, c := range append(list(spec, "containers"), list(spec, "initContainers")...) {
				if _, ok := envValue(c, "AWS_ROLE_ARN"); ok {
					withARN = append(withARN, c)
				}
			}
			if isEBSNode {
				ebsNodes++
				out = append(out, checkEBSNode(r.Release.Name, pod, spec, withARN, w)...)
				continue
			}
			for _, c := range withARN {
				withRole[subject]++
				problems, files := podIdentityProblems(spec, c, subject, trust, trusted)
				owned := releaseSAs[[2]string{r.Release.Name, subject}]
				if !owned {
					problems = append(problems, fmt.Sprintf("the release renders no ServiceAccount %s: the pod would not start, or would run as one the chart does not own", subject))
				}
				for _, p := range problems {
					out = append(out, Finding{r.Release.Name, pod, str(c, "name"), p})
				}
				status := "ok  "
				if len(problems) > 0 {
					status = "FAIL"
				}
				fmt.Fprintf(w, "  %s %-28s %-40s %-14s runs as %s (trust %s), ServiceAccount rendered: %v; token %s at %s\n", status, r.Release.Name, pod, str(c, "name"),
					subject, orNone(files), owned, tokenSummary(spec), orNone(envList(c, "AWS_WEB_IDENTITY_TOKEN_FILE")))
			}
		}
		if ebs && ebsNodes == 0 {
			fmt.Fprintf(w, "  FAIL %-28s renders no EBS CSI node DaemonSet\n", r.Release.Name)
			out = append(out, Finding{Release: r.Release.Name, Problem: "renders no EBS CSI node DaemonSet (ebs-csi-node) to check: no node could attach a volume"})
		}
	}
	for _, t := range trust {
		switch {
		case t.Subject == "":
			fmt.Fprintf(w, "  trust %-38s names no ServiceAccount subject: not a pod role\n", t.File)
		case withRole[t.Subject] > 0:
			fmt.Fprintf(w, "  trust %-38s %-45s %d chart pod(s) with its role\n", t.File, t.Subject, withRole[t.Subject])
		case chartSAs[t.Subject] != "" || usedBy[t.Subject] != "":
			rel := chartSAs[t.Subject]
			if rel == "" {
				rel = usedBy[t.Subject]
			}
			fmt.Fprintf(w, "  FAIL trust %-33s %-45s a chart's ServiceAccount, but no chart pod has AWS_ROLE_ARN\n", t.File, t.Subject)
			out = append(out, Finding{Release: rel, Problem: fmt.Sprintf("trust policy %s trusts %s, a ServiceAccount of this chart, but no pod of the charts running as it has AWS_ROLE_ARN: the release's values lost the role's environment", t.File, t.Subject)})
		case program[t.Subject]:
			fmt.Fprintf(w, "  trust %-38s %-45s the program's own ServiceAccount (manifests), not a chart's\n", t.File, t.Subject)
		default:
			fmt.Fprintf(w, "  FAIL trust %-33s %-45s neither a chart nor the program's manifests create this ServiceAccount\n", t.File, t.Subject)
			out = append(out, Finding{Problem: fmt.Sprintf("trust policy %s trusts %s, which neither a chart nor the program's manifests create: no pod can use the role", t.File, t.Subject)})
		}
	}
	fmt.Fprintln(w)
	return out
}

// podIdentityProblems lists what is wrong with one container's web identity, and names the
// trust files of its subject.
func podIdentityProblems(spec, c map[string]any, subject string, trust []Trust, trusted map[string][]string) (problems, files []string) {
	files = trusted[subject]
	if len(files) == 0 {
		problems = append(problems, fmt.Sprintf("runs as %s, which no trust policy (issuer/trust/*.json) names: STS would refuse its token", subject))
	}
	// The ARN is a placeholder offline; when its role name is a trust file's, that file must
	// trust this pod's ServiceAccount.
	arn, _ := envValue(c, "AWS_ROLE_ARN")
	if _, name, ok := strings.Cut(arn, ":role/"); ok {
		for _, t := range trust {
			if strings.TrimSuffix(t.File, ".json") == name && t.Subject != subject {
				problems = append(problems, fmt.Sprintf("AWS_ROLE_ARN names role %s, whose trust policy %s trusts %s, not %s", name, t.File, orNone([]string{t.Subject}), subject))
			}
		}
	}
	var mount map[string]any
	for _, m := range list(c, "volumeMounts") {
		if str(m, "name") == identityVolume {
			mount = m
		}
	}
	switch {
	case mount == nil:
		problems = append(problems, fmt.Sprintf("does not mount the volume %s (at %s)", identityVolume, identityDir))
	case strings.TrimSuffix(str(mount, "mountPath"), "/") != identityDir:
		problems = append(problems, fmt.Sprintf("mounts %s at %s, not at %s", identityVolume, str(mount, "mountPath"), identityDir))
	case str(mount, "subPath") != "" || str(mount, "subPathExpr") != "":
		problems = append(problems, fmt.Sprintf("mounts a subPath of %s: the token would not be renewed", identityVolume))
	}
	file, ok := envValue(c, "AWS_WEB_IDENTITY_TOKEN_FILE")
	paths := tokenPaths(spec)
	switch {
	case !ok:
		problems = append(problems, "has AWS_ROLE_ARN but no AWS_WEB_IDENTITY_TOKEN_FILE (a literal value)")
	case !strings.HasPrefix(file, identityDir+"/"):
		problems = append(problems, fmt.Sprintf("AWS_WEB_IDENTITY_TOKEN_FILE %s is not under the %s mount %s", file, identityVolume, identityDir))
	case paths != nil && !slices.Contains(paths, strings.TrimPrefix(file, identityDir+"/")):
		problems = append(problems, fmt.Sprintf("AWS_WEB_IDENTITY_TOKEN_FILE %s is no file of the volume %s (its token paths: %s)", file, identityVolume, strings.Join(paths, ", ")))
	}
	if paths == nil {
		problems = append(problems, fmt.Sprintf("the pod has no volume %s projecting a serviceAccountToken with audience %s (it has: %s)", identityVolume, identityAud, tokenSummary(spec)))
	}
	return problems, files
}

// tokenPaths are the paths of the serviceAccountToken sources for STS of the pod's aws-identity
// volume; nil when it has none.
func tokenPaths(spec map[string]any) []string {
	var out []string
	for _, v := range list(spec, "volumes") {
		if str(v, "name") != identityVolume {
			continue
		}
		for _, s := range list(dig(v, "projected"), "sources") {
			tok := dig(s, "serviceAccountToken")
			if len(tok) > 0 && str(tok, "audience") == identityAud {
				out = append(out, strings.TrimPrefix(str(tok, "path"), "./"))
			}
		}
	}
	return out
}

// tokenSummary describes the pod's aws-identity volume for the report.
func tokenSummary(spec map[string]any) string {
	for _, v := range list(spec, "volumes") {
		if str(v, "name") != identityVolume {
			continue
		}
		if _, ok := v["projected"]; !ok {
			return identityVolume + " (not projected)"
		}
		var auds []string
		for _, s := range list(dig(v, "projected"), "sources") {
			if tok := dig(s, "serviceAccountToken"); len(tok) > 0 {
				aud := str(tok, "audience")
				if aud == "" {
					aud = "the API server's"
				}
				auds = append(auds, "audience "+aud)
			}
		}
		if len(auds) == 0 {
			return identityVolume + " (projected, no serviceAccountToken)"
		}
		return identityVolume + " (projected serviceAccountToken, " + strings.Join(auds, ", ") + ")"
	}
	return "no volume " + identityVolume
}

// checkEBSNode reports the EBS CSI node plugin: it calls no AWS API, so it has no role, and it
// reads its instance from its Node (--metadata-sources=kubernetes), as no pod reaches the
// instance metadata service.
func checkEBSNode(release, pod string, spec map[string]any, withARN []map[string]any, w *strings.Builder) []Finding {
	var out []Finding
	for _, c := range withARN {
		out = append(out, Finding{release, pod, str(c, "name"), "the EBS CSI node plugin has AWS_ROLE_ARN: it calls no AWS API, and no role trusts its ServiceAccount"})
	}
	sources := "none"
	for _, c := range list(spec, "containers") {
		if str(c, "name") != "ebs-plugin" {
			continue
		}
		if v, ok := flagValue(strs(c["args"]), "metadata-sources"); ok {
			sources = v
		}
	}
	if sources != "kubernetes" {
		out = append(out, Finding{release, pod, "ebs-plugin", fmt.Sprintf("--metadata-sources is %s, want kubernetes (values node.metadataSources): no pod reaches the instance metadata service", sources)})
	}
	status := "ok  "
	if len(out) > 0 {
		status = "FAIL"
	}
	fmt.Fprintf(w, "  %s %-28s %-40s %-14s EBS node plugin: %d container(s) with AWS_ROLE_ARN (want 0), --metadata-sources=%s (want kubernetes)\n", status, release, pod, "ebs-plugin", len(withARN), sources)
	return out
}

// serviceAccountOf is the ServiceAccount a pod runs as.
func serviceAccountOf(spec map[string]any) string {
	for _, k := range []string{"serviceAccountName", "serviceAccount"} {
		if v := str(spec, k); v != "" {
			return v
		}
	}
	return "default"
}

// envValue is the literal value of a container's environment variable; ok is false when it is
// absent (a valueFrom counts as present, with an empty value).
func envValue(c map[string]any, name string) (string, bool) {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			if e["value"] == nil {
				return "(not a literal value)", e["valueFrom"] != nil
			}
			return fmt.Sprint(e["value"]), true
		}
	}
	return "", false
}

func envList(c map[string]any, name string) []string {
	if v, ok := envValue(c, name); ok {
		return []string{v}
	}
	return nil
}

func orNone(s []string) string {
	s = slices.DeleteFunc(slices.Clone(s), func(v string) bool { return v == "" })
	if len(s) == 0 {
		return "none"
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}
