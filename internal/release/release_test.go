package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestServicesAreTheImagesConfigKeys(t *testing.T) {
	if got := strings.Join(Services(), ","); got != "auth,users,waste,celery" {
		t.Errorf("services %s", got)
	}
}

// Untrusted dispatch inputs: only a known service, only the allowed registry, only a digest.
func TestChecksRefuseWhatAReleaseMustNotShip(t *testing.T) {
	const reg = "ghcr.io/example"
	if err := CheckImage("ghcr.io/example/waste-coach-auth@"+digestA, reg); err != nil {
		t.Errorf("a pinned image of the registry refused: %v", err)
	}
	for name, tc := range map[string]struct{ image, registry, want string }{
		"tag":                  {"ghcr.io/example/waste-coach-auth:1.2.3", reg, "pinned by digest"},
		"tag and digest":       {"ghcr.io/example/waste-coach-auth:1.2.3@" + digestA, reg, "pinned by digest"},
		"short digest":         {"ghcr.io/example/waste-coach-auth@sha256:abc", reg, "64 lower-case hex"},
		"other organisation":   {"ghcr.io/other/waste-coach-auth@" + digestA, reg, "not in the allowed registry"},
		"organisation prefix":  {"ghcr.io/example-evil/auth@" + digestA, reg, "not in the allowed registry"},
		"other registry":       {"docker.io/example/auth@" + digestA, reg, "not in the allowed registry"},
		"shell text":           {"ghcr.io/example/auth@" + digestA + "; curl x | sh", reg, "pinned by digest"},
		"newline":              {"ghcr.io/example/auth@" + digestA + "\nx: y", reg, "pinned by digest"},
		"registry with scheme": {"ghcr.io/example/auth@" + digestA, "https://ghcr.io/example", "allowed registry"},
		"registry upper case":  {"ghcr.io/Example/auth@" + digestA, "ghcr.io/Example", "allowed registry"},
	} {
		err := CheckImage(tc.image, tc.registry)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q accepted or refused for another reason: %v", name, tc.image, err)
		}
	}
	for _, s := range []string{"", "postgres", "auth; rm -rf /", "Auth"} {
		if err := CheckService(s); err == nil || !strings.Contains(err.Error(), "auth, users, waste, celery") {
			t.Errorf("service %q: %v", s, err)
		}
	}
}

func readStack(t *testing.T, stack string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Pulumi."+stack+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diffLines returns the lines that differ between two texts of the same line count.
func diffLines(t *testing.T, a, b []byte) []string {
	t.Helper()
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(al) != len(bl) {
		t.Fatalf("line count changed: %d -> %d", len(al), len(bl))
	}
	var out []string
	for i := range al {
		if al[i] != bl[i] {
			out = append(out, al[i]+" => "+bl[i])
		}
	}
	return out
}

// The release pull request's diff is the one line of images.<service> in the real stack file:
// comments, order and the other images stay as they are.
func TestSetImageChangesOneLineOfTheRealStackFile(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		before := readStack(t, stack)
		image := "ghcr.io/example/waste-coach-users@" + digestB
		after, old, err := SetImage(before, "users", image)
		if err != nil {
			t.Fatalf("%s: %v", stack, err)
		}
		if !strings.HasPrefix(old, "ghcr.io/example/waste-coach-users") {
			t.Errorf("%s: replaced %q, want users' image", stack, old)
		}
		d := diffLines(t, before, after)
		if len(d) != 1 || !strings.Contains(d[0], "users: "+image) {
			t.Errorf("%s: changed lines %q, want only the users image", stack, d)
		}
	}
}

func TestSetImageHandlesFlowAndQuotedValues(t *testing.T) {
	in := []byte("config:\n  # comment\n  waste-coach-infra:images: {auth: \"ghcr.io/e/auth:1\", users: 'ghcr.io/e/users:1', waste: ghcr.io/e/waste:1, celery: ghcr.io/e/celery:1}\n  waste-coach-infra:other: auth\n")
	out, old, err := SetImage(in, "users", "ghcr.io/e/users@"+digestA)
	if err != nil {
		t.Fatal(err)
	}
	want := "config:\n  # comment\n  waste-coach-infra:images: {auth: \"ghcr.io/e/auth:1\", users: ghcr.io/e/users@" + digestA + ", waste: ghcr.io/e/waste:1, celery: ghcr.io/e/celery:1}\n  waste-coach-infra:other: auth\n"
	if old != "ghcr.io/e/users:1" || string(out) != want {
		t.Errorf("got old %q and\n%s\nwant\n%s", old, out, want)
	}
	if _, _, err := SetImage(in, "beat", "ghcr.io/e/beat@"+digestA); err == nil {
		t.Error("a service outside the images config was set")
	}
	if _, _, err := SetImage([]byte("config:\n  waste-coach-infra:images: {}\n"), "auth", "ghcr.io/e/auth@"+digestA); err == nil {
		t.Error("a stack file without images.auth was edited")
	}
}

// Promotion copies dev's digests; a tag in dev is refused (prod would run something no digest
// pins), and a second promotion finds nothing to do.
func TestPromoteCopiesDigestsOnly(t *testing.T) {
	dev := readStack(t, "dev")
	prod := readStack(t, "prod")
	if _, _, err := Promote(dev, prod, Services()); err == nil || !strings.Contains(err.Error(), "auth=") {
		t.Fatalf("dev's tagged images promoted: %v", err)
	}
	pinned := "ghcr.io/example/waste-coach-auth@" + digestA
	dev, _, err := SetImage(dev, "auth", pinned)
	if err != nil {
		t.Fatal(err)
	}
	out, changes, err := Promote(dev, prod, []string{"auth"})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Service != "auth" || changes[0].To != pinned {
		t.Errorf("changes %+v", changes)
	}
	if d := diffLines(t, prod, out); len(d) != 1 || !strings.Contains(d[0], "auth: "+pinned) {
		t.Errorf("prod changed lines %q, want only auth's", d)
	}
	if _, again, err := Promote(dev, out, []string{"auth"}); err != nil || len(again) != 0 {
		t.Errorf("a second promotion changed %+v (%v)", again, err)
	}
}
