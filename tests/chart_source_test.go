package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
)

// TestReleasesInstallOnlyCheckedArchives: Helm never fetches a chart itself (it would check no
// digest). With chartSource set to a folder, every release installs the pinned archive from it
// and asks no repository for anything (an account without internet access, and the offline
// engine run); without it, the program fetches each archive from its public repository, checks
// it against the pin, and the release installs that checked copy under .charts/ (a path
// relative to the program, the same on every machine), again without a repository or version.
func TestReleasesInstallOnlyCheckedArchives(t *testing.T) {
	dir := t.TempDir()
	cache, err := offline.ChartsDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range versions.Charts() {
		b, err := os.ReadFile(filepath.Join(cache, c.Archive()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Archive()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	local, err := offline.RunConfig("prod", prodWith(t, map[string]string{"waste-coach-infra:chartSource": dir}))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]versions.Chart{}
	for _, c := range versions.Charts() {
		byName[c.Name] = c
	}
	check := func(how, wantDir string, releases []*mocks.Resource) {
		t.Helper()
		if len(releases) != len(versions.Charts()) {
			t.Fatalf("%s: %d releases, want one per pinned chart (%d)", how, len(releases), len(versions.Charts()))
		}
		for _, rel := range releases {
			chart := filepath.Base(str(rel, "chart"))
			_, ok := byName[trimArchive(chart)]
			dir := filepath.Dir(str(rel, "chart"))
			if wantDir == ".charts" { // the checked copy, in a folder named by its sum
				dir = filepath.Dir(dir)
			}
			if !ok || dir != wantDir {
				t.Errorf("%s: release %s: chart = %q, want an archive of a pinned chart in %s", how, rel.Name, str(rel, "chart"), wantDir)
			}
			if repo, version := prop(rel, "repositoryOpts"), prop(rel, "version"); !repo.IsNull() || !version.IsNull() {
				t.Errorf("%s: release %s: repositoryOpts = %v, version = %v: Helm would fetch the chart itself, unchecked", how, rel.Name, repo, version)
			}
		}
	}
	check("chartSource folder", dir, local.OfType("kubernetes:helm.sh/v3:Release"))
	check("public repositories", ".charts", run(t, "prod").OfType("kubernetes:helm.sh/v3:Release"))
	// The checked copies the releases name are there, with the pinned bytes.
	for _, rel := range run(t, "prod").OfType("kubernetes:helm.sh/v3:Release") {
		path := str(rel, "chart")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the checked copy %s: %v", path, err)
		}
		c := byName[trimArchive(filepath.Base(path))]
		if sum := sha256.Sum256(b); !c.Accepts(hex.EncodeToString(sum[:]), true) || filepath.Base(filepath.Dir(path)) != hex.EncodeToString(sum[:6]) {
			t.Errorf("%s has sha256 %x: not a pin of versions, or not in the folder its sum names", path, sum)
		}
	}
}

// trimArchive returns the chart name of "<name>-<version>.tgz".
func trimArchive(archive string) string {
	for _, c := range versions.Charts() {
		if archive == c.Archive() {
			return c.Name
		}
	}
	return ""
}
