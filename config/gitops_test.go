package config

import (
	"strings"
	"testing"
)

const gitopsKey = "waste-coach-infra:gitops"

func TestGitOpsIsOptional(t *testing.T) {
	for name, v := range map[string]string{"unset": "", "Pulumi.yaml's default": "{}"} {
		raw := validRaw()
		if v != "" {
			raw[gitopsKey] = v
		}
		c, err := parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.GitOps != nil {
			t.Errorf("%s: gitops %+v, want none (no Application)", name, c.GitOps)
		}
	}
}

func TestGitOpsAcceptsARepositoryPathRevisionAndNamespaces(t *testing.T) {
	raw := validRaw()
	raw[gitopsKey] = `{"repoURL":"https://github.com/example/waste-coach-deploy.git","path":"envs/prod","targetRevision":"main","namespaces":["app-jobs","reports"]}`
	c, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.GitOps; g == nil || g.RepoURL != "https://github.com/example/waste-coach-deploy.git" || g.Path != "envs/prod" || g.TargetRevision != "main" || strings.Join(g.Namespaces, ",") != "app-jobs,reports" {
		t.Errorf("gitops read as %+v", c.GitOps)
	}
}

// Each refusal names the key (with the field), the bad value and what is allowed; a credential in
// the URL is never repeated.
func TestGitOpsRefusals(t *testing.T) {
	good := map[string]string{"repoURL": `"https://github.com/example/deploy.git"`, "path": `"deploy"`, "targetRevision": `"main"`, "namespaces": `["app-jobs"]`}
	for name, tc := range map[string]struct {
		field, value string
		want         []string
	}{
		"ssh URL":                {"repoURL", `"git@github.com:example/deploy.git"`, []string{gitopsKey + ".repoURL", "https URL"}},
		"http URL":               {"repoURL", `"http://github.com/example/deploy.git"`, []string{gitopsKey + ".repoURL", `"http://github.com/..."`, "https URL"}},
		"URL without repository": {"repoURL", `"https://github.com/"`, []string{gitopsKey + ".repoURL"}},
		"credential in URL":      {"repoURL", `"https://x-token:ghp_secret@github.com/example/deploy.git"`, []string{gitopsKey + ".repoURL", "(a URL with credentials, not shown)"}},
		"credential, http":       {"repoURL", `"http://x:ghp_secret@github.com/example/deploy.git"`, []string{gitopsKey + ".repoURL", "credentials"}},
		"credential, no path":    {"repoURL", `"https://x:ghp_secret@github.com"`, []string{gitopsKey + ".repoURL", "credentials"}},
		"token in the query":     {"repoURL", `"https://github.com/example/deploy.git?access_token=ghp_secret"`, []string{gitopsKey + ".repoURL", "query"}},
		"namespaces not a list":  {"namespaces", `"jobs"`, []string{gitopsKey, "field namespaces must be a []string"}},
		"absolute path":          {"path", `"/deploy"`, []string{gitopsKey + ".path", `"/deploy"`}},
		"path leaving the repo":  {"path", `"deploy/../.."`, []string{gitopsKey + ".path"}},
		"empty path":             {"path", `""`, []string{gitopsKey + ".path"}},
		"revision with ..":       {"targetRevision", `"main..evil"`, []string{gitopsKey + ".targetRevision"}},
		"option as revision":     {"targetRevision", `"--upload-pack=x"`, []string{gitopsKey + ".targetRevision"}},
		"no namespaces":          {"namespaces", `[]`, []string{gitopsKey + ".namespaces", "0 namespaces", "1 to 10"}},
		"the program's data":     {"namespaces", `["data"]`, []string{gitopsKey + ".namespaces[0]", `"data"`, "does not own", "argocd", "monitoring"}},
		"the program's app":      {"namespaces", `["jobs","app"]`, []string{gitopsKey + ".namespaces[1]", `"app"`}},
		"a kube- namespace":      {"namespaces", `["kube-jobs"]`, []string{gitopsKey + ".namespaces[0]", "kube-*"}},
		"not a namespace name":   {"namespaces", `["App_Jobs"]`, []string{gitopsKey + ".namespaces[0]", "63 lower-case"}},
		"twice":                  {"namespaces", `["jobs","jobs"]`, []string{gitopsKey + ".namespaces[1]", "each namespace once"}},
	} {
		t.Run(name, func(t *testing.T) {
			fields := []string{}
			for k, v := range good {
				if k == tc.field {
					v = tc.value
				}
				fields = append(fields, `"`+k+`":`+v)
			}
			raw := validRaw()
			raw[gitopsKey] = "{" + strings.Join(fields, ",") + "}"
			_, err := parse(raw)
			if err == nil {
				t.Fatalf("%s accepted", raw[gitopsKey])
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "ghp_secret") {
				t.Errorf("the refusal repeats the credential: %v", err)
			}
		})
	}
	raw := validRaw()
	raw[gitopsKey] = `{"repoURL":"https://x:ghp_secret@github.com/example/deploy.git","path":"deploy","targetRevision":"main","namespaces":["jobs"],"namespace":"x"}`
	if _, err := parse(raw); err == nil || !strings.Contains(err.Error(), gitopsKey) || !strings.Contains(err.Error(), `unknown field "namespace"`) || strings.Contains(err.Error(), "ghp_secret") {
		t.Errorf("an unknown field must be refused by name, without repeating the object (its repoURL may hold a credential), got %v", err)
	}
}
