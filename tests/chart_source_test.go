package tests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
)

// TestReleasesInstallFromTheChartSourceFolder: with chartSource set to a folder, every Helm
// release installs the pinned archive from it and asks no repository for anything (an account
// without internet access, and the offline engine run); without it, each release names its
// public repository and exact version.
func TestReleasesInstallFromTheChartSourceFolder(t *testing.T) {
	dir := t.TempDir()
	for _, c := range versions.Charts() {
		if err := os.WriteFile(filepath.Join(dir, c.Archive()), []byte("archive"), 0o600); err != nil {
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
	releases := local.OfType("kubernetes:helm.sh/v3:Release")
	if len(releases) != len(versions.Charts()) {
		t.Fatalf("%d releases, want one per pinned chart (%d)", len(releases), len(versions.Charts()))
	}
	for _, rel := range releases {
		chart := filepath.Base(str(rel, "chart"))
		pinned, ok := byName[trimArchive(chart)]
		if !ok || str(rel, "chart") != filepath.Join(dir, pinned.Archive()) {
			t.Errorf("release %s: chart = %q, want an archive of a pinned chart in %s", rel.Name, str(rel, "chart"), dir)
		}
		if repo := prop(rel, "repositoryOpts"); !repo.IsNull() {
			t.Errorf("release %s: repositoryOpts = %v, want none with a local chart folder", rel.Name, repo)
		}
	}

	for _, rel := range run(t, "prod").OfType("kubernetes:helm.sh/v3:Release") {
		pinned, ok := byName[str(rel, "chart")]
		if !ok || str(rel, "version") != pinned.Version || str(rel, "repositoryOpts", "repo") != pinned.Repo {
			t.Errorf("release %s without chartSource: chart %q version %q from %q, want a pinned chart from its public repository",
				rel.Name, str(rel, "chart"), str(rel, "version"), str(rel, "repositoryOpts", "repo"))
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
