// Package release makes the one change a release pull request may carry: the image of one
// service in a stack file (images.<service>), by digest, from an allowed registry. It edits the
// file's text in place, so the pull request's diff is that one line and every comment and the
// layout of the file stay, and it proves that nothing else in the configuration changed.
package release

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/config"
)

// Services are the application's services, the keys of the images config, in their order in
// config.Images: the only values a release may name.
func Services() []string {
	t := reflect.TypeFor[config.Images]()
	var out []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// CheckService refuses a service that is not a key of the images config.
func CheckService(service string) error {
	if !slices.Contains(Services(), service) {
		return fmt.Errorf("service %s is not one of the images config's keys (%s)", strconv.Quote(service), strings.Join(Services(), ", "))
	}
	return nil
}

var (
	// registryRE is a registry host and the organisation under it, such as ghcr.io/example.
	registryRE = regexp.MustCompile(`^[a-z0-9]+([.-][a-z0-9]+)*(\.[a-z]{2,})(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)
	// pinnedRE is a repository name (path components after the registry) and a sha256 digest.
	pinnedRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*@sha256:[a-f0-9]{64}$`)
)

// CheckImage refuses an image that is not in registry (a host and organisation, such as
// ghcr.io/example) or not pinned by a sha256 digest: a tag can be moved to other content after
// review, a digest cannot.
func CheckImage(image, registry string) error {
	if !registryRE.MatchString(registry) {
		return fmt.Errorf("allowed registry %s is not a lower-case registry host and organisation, such as ghcr.io/example", strconv.Quote(registry))
	}
	rest, ok := strings.CutPrefix(image, registry+"/")
	if !ok {
		return fmt.Errorf("image %s is not in the allowed registry %s/", strconv.Quote(image), registry)
	}
	if !pinnedRE.MatchString(rest) {
		return fmt.Errorf("image %s is not <registry>/<name>@sha256:<64 lower-case hex> (a release is pinned by digest, never by tag)", strconv.Quote(image))
	}
	return nil
}

// Pinned reports whether image is a repository name with a sha256 digest and no tag.
func Pinned(image string) bool {
	host, rest, ok := strings.Cut(image, "/")
	return ok && host != "" && pinnedRE.MatchString(rest)
}

// Change is one service's image moving from one reference to another.
type Change struct {
	Service, From, To string
}

// imagesKey is the images config's key in a stack file.
const imagesKey = config.Project + ":images"

// Images returns the images of a stack file by service.
func Images(stackFile []byte) (map[string]string, error) {
	var doc struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(stackFile, &doc); err != nil {
		return nil, fmt.Errorf("read the stack file: %w", err)
	}
	m, ok := doc.Config[imagesKey].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the stack file has no %s mapping", imagesKey)
	}
	out := map[string]string{}
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s.%s is not a string", imagesKey, k)
		}
		out[k] = s
	}
	return out, nil
}

// SetImage returns the stack file with images.<service> set to image, and the image it
// replaces. Only the value's text changes; the result is checked to differ from the input in
// that one value and nowhere else.
func SetImage(stackFile []byte, service, image string) ([]byte, string, error) {
	if err := CheckService(service); err != nil {
		return nil, "", err
	}
	if !Pinned(image) {
		return nil, "", fmt.Errorf("image %s is not pinned by a sha256 digest", strconv.Quote(image))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(stackFile, &root); err != nil {
		return nil, "", fmt.Errorf("read the stack file: %w", err)
	}
	node := lookup(&root, "config", imagesKey, service)
	if node == nil || node.Kind != yaml.ScalarNode {
		return nil, "", fmt.Errorf("the stack file has no %s.%s to change", imagesKey, service)
	}
	lines := bytes.Split(stackFile, []byte("\n"))
	line := lines[node.Line-1]
	start, end := node.Column-1, -1
	switch node.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if q := bytes.IndexByte(line[start+1:], line[start]); q >= 0 {
			end = start + 1 + q + 1
		}
	case 0:
		if end = start + len(node.Value); end > len(line) || string(line[start:end]) != node.Value {
			end = -1
		}
	}
	if end < 0 {
		return nil, "", fmt.Errorf("%s.%s is written in a form this edit does not handle (line %d): write it as a plain value on one line", imagesKey, service, node.Line)
	}
	edited := slices.Concat(line[:start], []byte(image), line[end:])
	lines[node.Line-1] = edited
	out := bytes.Join(lines, []byte("\n"))
	if err := onlyImageChanged(stackFile, out, service, image); err != nil {
		return nil, "", err
	}
	return out, node.Value, nil
}

// lookup follows mapping keys from a document node.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// onlyImageChanged proves that after differs from before in images.<service> only, and that it
// holds image there.
func onlyImageChanged(before, after []byte, service, image string) error {
	var b, a map[string]any
	if err := yaml.Unmarshal(before, &b); err != nil {
		return err
	}
	if err := yaml.Unmarshal(after, &a); err != nil {
		return fmt.Errorf("the edited stack file is not YAML: %w", err)
	}
	got, _ := a["config"].(map[string]any)[imagesKey].(map[string]any)[service].(string)
	if got != image {
		return fmt.Errorf("the edited stack file holds %s for %s.%s, not %s", strconv.Quote(got), imagesKey, service, image)
	}
	b["config"].(map[string]any)[imagesKey].(map[string]any)[service] = image
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("the edit changed more than %s.%s", imagesKey, service)
	}
	return nil
}

// Promote returns the target stack file with the images of services copied from the source
// stack file, and the changes made (none when the target already runs them). Every image copied
// must be pinned by digest: a promotion ships exactly what the source stack ran.
func Promote(source, target []byte, services []string) ([]byte, []Change, error) {
	from, err := Images(source)
	if err != nil {
		return nil, nil, fmt.Errorf("source stack: %w", err)
	}
	var unpinned []string
	for _, s := range services {
		if err := CheckService(s); err != nil {
			return nil, nil, err
		}
		if !Pinned(from[s]) {
			unpinned = append(unpinned, s+"="+strconv.Quote(from[s]))
		}
	}
	if len(unpinned) > 0 {
		return nil, nil, fmt.Errorf("the source stack runs images not pinned by digest: %s; release each by digest first (the release workflow), or promote only the pinned services", strings.Join(unpinned, ", "))
	}
	var changes []Change
	out := target
	for _, s := range services {
		next, old, err := SetImage(out, s, from[s])
		if err != nil {
			return nil, nil, fmt.Errorf("target stack: %w", err)
		}
		if old != from[s] {
			changes = append(changes, Change{Service: s, From: old, To: from[s]})
			out = next
		}
	}
	return out, changes, nil
}
