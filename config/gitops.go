// What Argo CD syncs from Git (key gitops): the application team's own manifests, from one
// repository path and revision, into namespaces that the program does not own. Without the key,
// Argo CD syncs nothing and is only the UI.

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// GitOps is the Argo CD Application the program declares: where the application team's
// manifests are and the namespaces they may be applied to.
type GitOps struct {
	// RepoURL is the Git repository, an https URL without credentials (a public repository, or
	// one whose read credential is given to Argo CD as a repository Secret).
	RepoURL string `json:"repoURL"`
	// Path is the folder of the manifests inside the repository, relative to its root.
	Path string `json:"path"`
	// TargetRevision is the branch, tag or commit Argo CD follows.
	TargetRevision string `json:"targetRevision"`
	// Namespaces are the only namespaces the manifests may be applied to; the program declares
	// them (a namespace is cluster-scoped, which Argo CD may not create).
	Namespaces []string `json:"namespaces"`
}

// PlatformNamespaces are the namespaces the program, the charts it installs, Calico's operator and
// Kubernetes itself own. A gitops namespace may be none of them: Argo CD would then prune and
// self-heal objects that the program declares, and the two would undo each other's changes.
// tests/gitops_test.go fails when the program declares an object in a namespace missing here.
var PlatformNamespaces = []string{
	"app", "argocd", "calico-apiserver", "calico-system", "data", "default", "keda",
	"kube-node-lease", "kube-public", "kube-system", "logging", "monitoring", "node-metrics", "tigera-operator",
}

// maxGitOpsNamespaces bounds the list: each namespace is one more set of objects the program
// declares and one more place the application team's pods may run.
const maxGitOpsNamespaces = 10

var (
	namespaceRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	repoPathRE    = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)
	gitRevisionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// gitops reads gitops, {repoURL, path, targetRevision, namespaces}; {} (Pulumi.yaml's default)
// declares no Application.
func (p *parser) gitops(c *Config) {
	var g GitOps
	if v, ok := p.raw("gitops", false); ok {
		// Decoded here, not with p.object: its message quotes the raw value, and repoURL may
		// hold a credential (the message reaches pull-request comments).
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			p.fail(qualify("gitops"), "(the gitops object, not shown: its repoURL may hold a credential)",
				fmt.Sprintf("an object {repoURL, path, targetRevision, namespaces} as Pulumi.yaml documents (%s)", redactedDecodeError(err)))
			return
		}
	} else {
		return
	}
	if g.RepoURL == "" && g.Path == "" && g.TargetRevision == "" && g.Namespaces == nil {
		return
	}
	key := qualify("gitops")
	bad := len(p.errs)

	// repoURL is never quoted: a user, a token or a query may hold a credential. What is shown
	// is the scheme and host, which hold none.
	u, err := url.Parse(g.RepoURL)
	shown := "(not a URL)"
	if err == nil {
		shown = strconv.Quote(u.Scheme + "://" + u.Host + "/...")
	}
	switch {
	case err == nil && u.User != nil:
		p.fail(key+".repoURL", "(a URL with credentials, not shown)", "a URL without user or token: it would be readable in the Application object and the stack's state; give Argo CD a repository Secret instead (docs/delivery.md)")
	case err == nil && (u.RawQuery != "" || u.Fragment != ""):
		p.fail(key+".repoURL", "(a URL with a query or fragment, not shown)", "a repository URL without query or fragment")
	case err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") == "":
		p.fail(key+".repoURL", shown, "the https URL of the Git repository, such as https://github.com/<org>/<repo>.git (Argo CD polls it)")
	}

	if !repoPathRE.MatchString(g.Path) || path.Clean(g.Path) != g.Path || slices.Contains(strings.Split(g.Path, "/"), "..") {
		p.fail(key+".path", strconv.Quote(g.Path), "the manifests' folder relative to the repository root, such as deploy/prod or . (letters, digits, . _ - and /, no .. and no leading or trailing /)")
	}

	rev := g.TargetRevision
	if !gitRevisionRE.MatchString(rev) || len(rev) > 255 || strings.Contains(rev, "..") || strings.HasSuffix(rev, "/") || strings.HasSuffix(rev, ".lock") || strings.Contains(rev, "//") {
		p.fail(key+".targetRevision", strconv.Quote(rev), "a branch, tag or commit, such as main, v1.4.0 or a 40-hex commit (letters, digits, . _ - and /)")
	}

	if len(g.Namespaces) == 0 || len(g.Namespaces) > maxGitOpsNamespaces {
		p.fail(key+".namespaces", fmt.Sprintf("%d namespaces", len(g.Namespaces)), fmt.Sprintf("1 to %d namespaces for the application team's objects", maxGitOpsNamespaces))
	}
	seen := map[string]bool{}
	for i, ns := range g.Namespaces {
		k := fmt.Sprintf("%s.namespaces[%d]", key, i)
		switch {
		case !namespaceRE.MatchString(ns) || len(ns) > 63:
			p.fail(k, strconv.Quote(ns), "a namespace name: at most 63 lower-case letters, digits and dashes, starting and ending with a letter or digit")
		case slices.Contains(PlatformNamespaces, ns) || strings.HasPrefix(ns, "kube-"):
			p.fail(k, strconv.Quote(ns), fmt.Sprintf("a namespace the program does not own (none of %s, nor kube-*): Argo CD would prune and overwrite the program's objects there", strings.Join(PlatformNamespaces, ", ")))
		case seen[ns]:
			p.fail(k, strconv.Quote(ns), "each namespace once")
		}
		seen[ns] = true
	}
	if len(p.errs) > bad {
		return
	}
	c.GitOps = &g
}

// redactedDecodeError is a JSON decoding error without the offending value: for an unknown
// field, its name; otherwise the field and the type expected.
func redactedDecodeError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %s must be a %s", typeErr.Field, typeErr.Type)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return msg[len("json: "):]
	}
	return "not a JSON object"
}
