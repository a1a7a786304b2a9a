// Package stackfile reads a stack's configuration from Pulumi.yaml and Pulumi.<stack>.yaml the
// way the Pulumi CLI hands it to the program, so that offline runs (tests, the render command)
// evaluate exactly the configuration a deploy would.
package stackfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// SecretPlaceholder prefixes the stand-in for a `secure:` value, which cannot be decrypted
// offline. It is passed to the program as a secret, like the real value would be.
const SecretPlaceholder = "offline-placeholder-secret:"

// Config is a stack's configuration as the CLI passes it: fully qualified keys, values as
// strings (JSON for anything but a string), and the keys whose values are secret.
type Config struct {
	Values  map[string]string
	Secrets []string
}

type projectFile struct {
	Name   string `yaml:"name"`
	Config map[string]struct {
		Type    string `yaml:"type"`
		Default any    `yaml:"default"`
		Secret  bool   `yaml:"secret"`
		Items   any    `yaml:"items"`
	} `yaml:"config"`
}

type stackFile struct {
	Config map[string]any `yaml:"config"`
}

// Read loads Pulumi.yaml and Pulumi.<stack>.yaml from dir. Project defaults apply where the stack
// sets nothing, as with the CLI.
func Read(dir, stack string) (*Config, error) {
	var proj projectFile
	if err := readYAML(filepath.Join(dir, "Pulumi.yaml"), &proj); err != nil {
		return nil, err
	}
	var st stackFile
	if err := readYAML(filepath.Join(dir, "Pulumi."+stack+".yaml"), &st); err != nil {
		return nil, err
	}
	out := &Config{Values: map[string]string{}}
	for key, decl := range proj.Config {
		if decl.Type == "array" && decl.Items == nil {
			// The CLI cannot load such a project at all.
			return nil, fmt.Errorf("project file Pulumi.yaml: configuration key %s declares an array without the type of its items (items:)", key)
		}
	}
	for key, decl := range proj.Config {
		if decl.Default == nil {
			continue
		}
		v, err := encode(decl.Default)
		if err != nil {
			return nil, fmt.Errorf("default of config %s in Pulumi.yaml: %w", key, err)
		}
		out.Values[qualify(proj.Name, key)] = v
	}
	for key, raw := range st.Config {
		full := qualify(proj.Name, key)
		if m, ok := raw.(map[string]any); ok && len(m) == 1 && m["secure"] != nil {
			out.Values[full] = SecretPlaceholder + full
			out.Secrets = append(out.Secrets, full)
			continue
		}
		v, err := encode(raw)
		if err != nil {
			return nil, fmt.Errorf("config %s in Pulumi.%s.yaml: %w", key, stack, err)
		}
		out.Values[full] = v
	}
	// The CLI refuses to run a stack that leaves out a key the project declares without a
	// default ("Stack 'prod' is missing configuration value ..."): so does this.
	var missing []string
	for key, decl := range proj.Config {
		if _, set := out.Values[qualify(proj.Name, key)]; decl.Default == nil && !set {
			missing = append(missing, key)
		}
	}
	// It also refuses a key that the project declares secret unless the stack holds it encrypted,
	// set or not (so a secret key in Pulumi.yaml makes it required in every stack).
	for key, decl := range proj.Config {
		if full := qualify(proj.Name, key); decl.Secret && !slices.Contains(out.Secrets, full) {
			return nil, fmt.Errorf("stack file Pulumi.%s.yaml: configuration key %s must be encrypted as Pulumi.yaml declares it secret (the CLI refuses the stack otherwise)", stack, key)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("stack file Pulumi.%s.yaml: stack %s is missing configuration values %s, which Pulumi.yaml declares without a default", stack, stack, strings.Join(missing, ", "))
	}
	return out, nil
}

func readYAML(path string, out any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

func qualify(project, key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return project + ":" + key
}

// encode renders a value the way the CLI passes it: strings verbatim, everything else as JSON.
func encode(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
