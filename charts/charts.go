// Package charts reads the pinned Helm charts' archives for what the program must own itself:
// the CustomResourceDefinitions a chart ships in a crds/ folder. Helm installs those once, never
// upgrades them with the chart and never deletes them on uninstall, so a destroyed stack would
// leave them (and every custom resource of theirs) behind. The program declares them instead
// (workloads/crds.go) and installs the releases with skipCrds.
package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// Archives opens the archive of a pinned chart, as `helm pull` would write it.
type Archives interface {
	Archive(c versions.Chart) ([]byte, error)
}

// For returns the archives of a stack's chart source: its folder, its mirror, or each chart's
// public repository. They are the archives its Helm releases install.
func For(src config.ChartSource) Archives {
	if src.Folder != "" {
		return Folder(src.Folder)
	}
	return Repositories{Mirror: src.Mirror}
}

// Verify refuses an archive whose sha256 is not the chart's pin in versions: the archive its
// repository publishes (Chart.SHA256), or, when fromFolder, also the offline checks' repackage
// of the same release (Chart.CheckCacheSHA256). The message names the chart, both sums and
// where the pin lives, so a changed upstream archive or a tampered mirror is told from a bump
// that forgot its sum.
func Verify(c versions.Chart, archive []byte, fromFolder bool) error {
	sum := sha256.Sum256(archive)
	got := hex.EncodeToString(sum[:])
	if c.Accepts(got, fromFolder) {
		return nil
	}
	want := c.SHA256
	if want == "" {
		want = "(none pinned)"
	}
	if fromFolder && c.CheckCacheSHA256 != "" {
		want += " or the offline check cache's " + c.CheckCacheSHA256
	}
	return fmt.Errorf("chart %s: archive sha256 %s, but versions/versions.go pins %s: not installed", c.Archive(), got, want)
}

// Folder is a local folder of chart archives (chartSource set to a folder).
type Folder string

// Archive reads the chart's archive from the folder and verifies it against the pin.
func (f Folder) Archive(c versions.Chart) ([]byte, error) {
	b, err := os.ReadFile(f.Path(c))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", c.Name, c.Version, err)
	}
	if err := Verify(c, b, true); err != nil {
		return nil, fmt.Errorf("%w (from the folder %s)", err, string(f))
	}
	return b, nil
}

// Path is where the folder holds the chart's archive.
func (f Folder) Path(c versions.Chart) string { return filepath.Join(string(f), c.Archive()) }

// Copy writes a verified archive to dir/<first 12 hex digits of its sha256>/<name>-<version>.tgz,
// the file a Helm release then installs, so that the bytes Helm reads are the bytes checked (left
// to fetch the chart itself, Helm would download it again and check no digest). The folder named
// by the sum keeps two builds of one version apart (the published archive a deploy installs, the
// offline cache's that tests and renders use): neither ever overwrites the other under a running
// deploy. The file is replaced whole (written beside it, then renamed), and only when its bytes
// differ. It returns the path: with a relative dir it is the same on every machine, so the
// release's inputs do not change with who runs the program.
func Copy(dir string, c versions.Chart, archive []byte) (string, error) {
	if err := Verify(c, archive, true); err != nil {
		return "", err
	}
	sum := sha256.Sum256(archive)
	dir = filepath.Join(dir, hex.EncodeToString(sum[:6]))
	dst := filepath.Join(dir, c.Archive())
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, archive) {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, c.Archive()+".*")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(archive); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}

// Repositories fetch archives over the Helm repository protocol: the repository's index.yaml
// names the archive's URL and its SHA-256 digest, which must be the pin in versions, and the
// download must match it. An index that gives another digest, an archive URL or a redirect that
// leaves https for plain http are refused.
type Repositories struct {
	// Mirror serves every pinned chart; "" fetches each chart from its own repository.
	Mirror string
	// Client is the HTTP client; nil uses one with a two-minute timeout (and the environment's
	// HTTPS_PROXY, like any default transport).
	Client *http.Client
	// RetryPause is the pause before the first retry, doubled for each next; 0 means 2 s.
	RetryPause time.Duration
}

// index is the part of a repository's index.yaml that locates an archive.
type index struct {
	Entries map[string][]indexEntry `yaml:"entries"`
}

type indexEntry struct {
	Version string   `yaml:"version"`
	URLs    []string `yaml:"urls"`
	Digest  string   `yaml:"digest"`
}

// Archive downloads the chart's archive and checks it against the index's digest.
func (r Repositories) Archive(c versions.Chart) ([]byte, error) {
	repo := c.Repo
	if r.Mirror != "" {
		repo = r.Mirror
	}
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("chart %s %s from %s: %w", c.Name, c.Version, repo, err)
	}
	base, err := url.Parse(strings.TrimSuffix(repo, "/") + "/")
	if err != nil {
		return fail(err)
	}
	raw, err := r.get(base.JoinPath("index.yaml").String())
	if err != nil {
		return fail(err)
	}
	var idx index
	if err := yaml.Unmarshal(raw, &idx); err != nil {
		return fail(fmt.Errorf("index.yaml: %w", err))
	}
	i := slices.IndexFunc(idx.Entries[c.Name], func(e indexEntry) bool { return e.Version == c.Version })
	if i < 0 || len(idx.Entries[c.Name][i].URLs) == 0 {
		return fail(errors.New("index.yaml lists no such version"))
	}
	entry := idx.Entries[c.Name][i]
	if entry.Digest != c.SHA256 {
		// Said before any download: a repository that republished the version, or a mirror
		// serving another build of it, is named as such.
		return fail(fmt.Errorf("index.yaml gives the digest %q for it, but versions/versions.go pins %q: not installed", entry.Digest, c.SHA256))
	}
	// An entry's URL may be relative to the repository, as `helm repo index` writes it.
	ref, err := url.Parse(entry.URLs[0])
	if err != nil {
		return fail(err)
	}
	archiveURL := base.ResolveReference(ref)
	if archiveURL.Scheme != base.Scheme && archiveURL.Scheme != "https" {
		return fail(fmt.Errorf("index.yaml sends the download to %s: not over %s like the index", archiveURL, base.Scheme))
	}
	b, err := r.get(archiveURL.String())
	if err != nil {
		return fail(err)
	}
	if err := Verify(c, b, false); err != nil {
		return fail(err)
	}
	return b, nil
}

// noDowngrade refuses a redirect from https to anything else: the index and the archives must
// travel authenticated all the way.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refused a redirect from %s to %s: not https", via[0].URL, req.URL)
	}
	return nil
}

// get fetches a URL, retrying a failed connection or a server error (5xx, 429) three times
// with a growing pause: a chart host's brief outage should not fail a preview.
func (r Repositories) get(u string) ([]byte, error) {
	client := &http.Client{Timeout: 2 * time.Minute}
	if r.Client != nil {
		c := *r.Client
		client = &c
	}
	client.CheckRedirect = noDowngrade
	pause := r.RetryPause
	if pause == 0 {
		pause = 2 * time.Second
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			time.Sleep(pause << (attempt - 1))
		}
		var b []byte
		var retry bool
		if b, retry, err = fetch(client, u); err == nil || !retry {
			return b, err
		}
	}
	return nil, err
}

// fetch GETs a URL once and says whether a failure is worth another attempt.
func fetch(client *http.Client, u string) (body []byte, retry bool, err error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, true, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return b, err != nil, err
}

// CRDs returns the CustomResourceDefinitions a chart archive ships in crds/ folders: the chart's
// own and those of the subcharts it bundles (kube-prometheus-stack keeps the Prometheus
// operator's in charts/crds/crds/), in archive order. Templates are not read: a CRD rendered
// from templates/ is a release object, which Helm deletes on uninstall.
//
// The objects are shared by every call with the same archive (a process that runs the program
// many times, like the tests, decodes the megabytes of the Prometheus operator's CRDs once):
// callers must not modify them.
func CRDs(archive []byte) ([]map[string]any, error) {
	key := sha256.Sum256(archive)
	if v, ok := decoded.Load(key); ok {
		return v.([]map[string]any), nil
	}
	crds, err := decodeCRDs(archive)
	if err != nil {
		return nil, err
	}
	decoded.Store(key, crds)
	return crds, nil
}

// decoded are the CRDs of the archives read so far, by the archive's SHA-256.
var decoded sync.Map

func decodeCRDs(archive []byte) ([]map[string]any, error) {
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	var out []map[string]any
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !inCRDFolder(h.Name) {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(body))
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			if obj == nil {
				continue // an empty document between two separators
			}
			if obj["kind"] != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s: a %v in a crds/ folder; only CustomResourceDefinitions are expected", h.Name, obj["kind"])
			}
			out = append(out, obj)
		}
	}
}

// inCRDFolder: <chart>/crds/<file> or <chart>/charts/<subchart>/crds/<file>, for YAML files
// (Helm reads .yaml, .yml and .json there).
func inCRDFolder(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
	default:
		return false
	}
	parts := strings.Split(path.Clean(name), "/")
	switch len(parts) {
	case 3:
		return parts[1] == "crds"
	case 5:
		return parts[1] == "charts" && parts[3] == "crds"
	}
	return false
}

// WithoutDescriptions returns a copy of a CRD's spec whose OpenAPI schemas carry no
// description. The Prometheus operator's CRDs are megabytes of field documentation (that is why
// the operator also publishes stripped-down CRDs): in the stack's state, which keeps each
// object's inputs and live outputs, they would outweigh everything else four to one, and every
// checkpoint and preview would carry them. Only the schema keyword goes: a field that is itself
// named "description" (a key of a properties map) stays.
func WithoutDescriptions(spec map[string]any) map[string]any {
	out := maps.Clone(spec)
	versions, _ := out["versions"].([]any)
	stripped := make([]any, len(versions))
	for i, v := range versions {
		vm, ok := v.(map[string]any)
		if !ok {
			stripped[i] = v
			continue
		}
		vm = maps.Clone(vm)
		if schema, ok := vm["schema"].(map[string]any); ok {
			schema = maps.Clone(schema)
			if s, ok := schema["openAPIV3Schema"].(map[string]any); ok {
				schema["openAPIV3Schema"] = stripSchema(s)
			}
			vm["schema"] = schema
		}
		stripped[i] = vm
	}
	if versions != nil {
		out["versions"] = stripped
	}
	return out
}

// stripSchema copies a JSON schema without its description, recursing into the schemas it
// holds: under properties, patternProperties and definitions (maps of name to schema), items,
// additionalProperties and not (a schema), and allOf, anyOf and oneOf (lists of schemas).
func stripSchema(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "description":
			continue
		case "properties", "patternProperties", "definitions":
			if m, ok := v.(map[string]any); ok {
				named := map[string]any{}
				for name, child := range m {
					named[name] = stripAny(child)
				}
				v = named
			}
		case "items", "additionalProperties", "not":
			v = stripAny(v)
		case "allOf", "anyOf", "oneOf":
			if l, ok := v.([]any); ok {
				list := make([]any, len(l))
				for i, child := range l {
					list[i] = stripAny(child)
				}
				v = list
			}
		}
		out[k] = v
	}
	return out
}

func stripAny(v any) any {
	if m, ok := v.(map[string]any); ok {
		return stripSchema(m)
	}
	return v // additionalProperties: true, or a list form of items
}
