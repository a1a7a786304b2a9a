package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// secretSig marks a secret value in a state export.
const secretSig = "4dabf18193072939515e22adb298388d"

// secretsStayEncrypted exports the state twice: as stored, and with --show-secrets. No value the
// engine holds as a secret may appear in plain text anywhere in the stored export, and the values
// that must be secrets (the generated passwords, the SSH private key, the kubeconfig's client key,
// the join token) must be held as secrets. A leak is reported with the resource and property.
func secretsStayEncrypted(cli func(...string) ([]byte, error), kubeconfig, out string) error {
	// As stored: the CLI's export without --show-secrets (the Automation API's Export decrypts).
	stored, err := cli("stack", "export")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "state-export.json"), stored, 0o600); err != nil {
		return err
	}
	if strings.Contains(string(stored), `"plaintext"`) {
		return errors.New("the stored export holds secrets as plaintext, not ciphertext: is the passphrase secrets provider in use?")
	}
	shown, err := cli("stack", "export", "--show-secrets")
	if err != nil {
		return err
	}
	var shownDoc, storedDoc any
	if err := json.Unmarshal(shown, &shownDoc); err != nil {
		return err
	}
	if err := json.Unmarshal(stored, &storedDoc); err != nil {
		return err
	}
	var secrets []string
	collectSecrets(shownDoc, &secrets)

	key, err := clientKey(kubeconfig)
	if err != nil {
		return err
	}
	must := map[string]string{
		"a generated password (random.RandomPassword)": "-password-",
		"the SSH private key":                          "PRIVATE KEY-----",
		"the kubeconfig's client key":                  key,
		"the join token (stdout of the token command)": "-stdout-of-",
	}
	var problems []string
	for what, marker := range must {
		if !slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(s, marker) }) {
			problems = append(problems, fmt.Sprintf("%s is not held as a secret", what))
		}
	}
	// Every plain string of the stored state, with where it is.
	long := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= 16 {
			long[s] = true
		}
	}
	walkPlain(storedDoc, "", func(where, v string) {
		for _, marker := range []string{"-password-", "PRIVATE KEY-----", key} {
			if strings.Contains(v, marker) {
				problems = append(problems, fmt.Sprintf("%s holds %q in plain text", where, shorten(marker)))
			}
		}
		if long[v] {
			problems = append(problems, fmt.Sprintf("%s holds a secret value in plain text: %q", where, shorten(v)))
		}
	})
	if len(problems) > 0 {
		sort.Strings(problems)
		problems = slices.Compact(problems)
		return fmt.Errorf("secrets in the state (%d findings; the stored export is %s):\n  %s", len(problems), filepath.Join(out, "state-export.json"), strings.Join(problems, "\n  "))
	}
	fmt.Printf("engine: pulumi stack export: %d secret values, none in plain text anywhere (passwords, SSH key, kubeconfig, join token among them)\n", len(secrets))
	return nil
}

// walkPlain calls f with every string of a stored export that is not inside a secret, and where
// it is: the resource's URN and the property path.
func walkPlain(v any, where string, f func(where, v string)) {
	switch t := v.(type) {
	case string:
		f(where, t)
	case map[string]any:
		if t[secretSig] != nil {
			return
		}
		if urn, ok := t["urn"].(string); ok {
			where = urn
		}
		for k, e := range t {
			if k == "urn" {
				continue
			}
			walkPlain(e, where+"."+k, f)
		}
	case []any:
		for i, e := range t {
			walkPlain(e, fmt.Sprintf("%s[%d]", where, i), f)
		}
	}
}

// collectSecrets gathers every secret of a --show-secrets export that is a string as a whole.
func collectSecrets(v any, out *[]string) {
	switch t := v.(type) {
	case map[string]any:
		if t[secretSig] != nil {
			if p, ok := t["plaintext"].(string); ok {
				var inner any
				if json.Unmarshal([]byte(p), &inner) == nil {
					if s, ok := inner.(string); ok && s != "" {
						*out = append(*out, s)
					}
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
