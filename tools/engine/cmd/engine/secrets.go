package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"gopkg.in/yaml.v3"
)

// secretSig marks a secret value in a state export.
const secretSig = "4dabf18193072939515e22adb298388d"

// secretsStayEncrypted exports the state twice: as stored, and with --show-secrets. Every value
// the engine holds as a secret must appear in the stored export only as ciphertext; and the
// values that must be secrets (the generated passwords, the SSH private key, the kubeconfig's
// client key, the join token) must be among them.
func secretsStayEncrypted(ctx context.Context, stack auto.Stack, cli func(...string) ([]byte, error), kubeconfig string) error {
	stored, err := stack.Export(ctx)
	if err != nil {
		return err
	}
	plain := string(stored.Deployment)
	shown, err := cli("stack", "export", "--show-secrets")
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(shown, &doc); err != nil {
		return err
	}
	var secrets []string
	collectSecrets(doc, &secrets)

	key, err := clientKey(kubeconfig)
	if err != nil {
		return err
	}
	must := map[string]string{
		"a generated password (random.RandomPassword)": "-password-",
		"the SSH private key":                          "PRIVATE KEY",
		"the kubeconfig's client key":                  key,
		"the join token (stdout of the token command)": "-stdout-of-",
	}
	var problems []string
	for what, marker := range must {
		held := false
		for _, s := range secrets {
			if strings.Contains(s, marker) {
				held = true
				break
			}
		}
		if !held {
			problems = append(problems, fmt.Sprintf("%s is not held as a secret", what))
		}
	}
	for _, marker := range []string{"-password-", "PRIVATE KEY", key} {
		if strings.Contains(plain, escape(marker)) {
			problems = append(problems, fmt.Sprintf("the stored state holds %q in plain text", shorten(marker)))
		}
	}
	leaked := 0
	for _, s := range secrets {
		if len(s) >= 12 && strings.Contains(plain, escape(s)) {
			leaked++
			problems = append(problems, fmt.Sprintf("a secret value also appears in plain text: %q", shorten(s)))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("secrets in the state:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Printf("engine: pulumi stack export: %d secret values, each only as ciphertext (passwords, SSH key, kubeconfig, join token among them)\n", len(secrets))
	return nil
}

// collectSecrets gathers every string inside a secret of a --show-secrets export.
func collectSecrets(v any, out *[]string) {
	switch t := v.(type) {
	case map[string]any:
		if t[secretSig] != nil {
			if p, ok := t["plaintext"].(string); ok {
				var inner any
				if json.Unmarshal([]byte(p), &inner) == nil {
					collectStrings(inner, out)
				}
			}
			return
		}
		for _, e := range t {
			collectSecrets(e, out)
		}
	case []any:
		for _, e := range t {
			collectSecrets(e, out)
		}
	}
}

// collectStrings gathers every string in a decoded value.
func collectStrings(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		if t != "" {
			*out = append(*out, t)
		}
	case map[string]any:
		for _, e := range t {
			collectStrings(e, out)
		}
	case []any:
		for _, e := range t {
			collectStrings(e, out)
		}
	}
}

// escape is s as it appears inside a JSON string.
func escape(s string) string {
	b, _ := json.Marshal(s)
	return string(bytes.Trim(b, `"`))
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-8:]
	}
	return s
}

func clientKey(kubeconfig string) (string, error) {
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		return "", err
	}
	var kc struct {
		Users []struct {
			User struct {
				Key string `yaml:"client-key-data"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil || len(kc.Users) == 0 || kc.Users[0].User.Key == "" {
		return "", fmt.Errorf("%s: no client-key-data (%v)", kubeconfig, err)
	}
	return kc.Users[0].User.Key, nil
}
