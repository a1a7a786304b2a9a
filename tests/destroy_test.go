package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

// bucketTypes are the S3 bucket resource types of pulumi-aws; a bucket of either is checked.
var bucketTypes = []string{"aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket"}

// TestNonProductionBucketsAreDestroyedWithTheirObjects: S3 deletes only an empty bucket, so a
// bucket without forceDestroy makes `pulumi destroy` of a stack fail as soon as it holds one
// object (an upload, a backup). Every bucket of a non-production stack sets forceDestroy; no
// bucket of production does (its data is protected and retained instead).
func TestNonProductionBucketsAreDestroyedWithTheirObjects(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		prod := r.Stack == "prod"
		n := 0
		for _, typ := range bucketTypes {
			for _, b := range r.OfType(typ) {
				n++
				got := str(b, "forceDestroy")
				switch {
				case prod && got == "true":
					t.Errorf("prod bucket %s (%s) forceDestroy = true: a destroy would delete production objects", b.Name, str(b, "bucket"))
				case !prod && got != "true":
					t.Errorf("%s bucket %s (%s) forceDestroy = %q, want true: destroy fails on a bucket that holds an object", r.Stack, b.Name, str(b, "bucket"), got)
				}
			}
		}
		if n < 2 {
			t.Errorf("%s declares %d buckets, want at least the uploads and backups buckets", r.Stack, n)
		}
	})
}

// TestDestroyRunbookDeletesTheStacksSnapshots: Data Lifecycle Manager's snapshots survive the
// policy's deletion (AWS deletes none of them), so the destroy runbook must give the command that
// lists and deletes them by the tag the policy puts on every snapshot it makes.
func TestDestroyRunbookDeletesTheStacksSnapshots(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Destroy\n")
	if start < 0 {
		t.Fatal("docs/operations.md has no Destroy section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	for _, want := range []string{"Name=tag:" + config.SnapshotTagKey + ",Values=", "aws ec2 delete-snapshot", "forceDestroy"} {
		if !strings.Contains(section, want) {
			t.Errorf("docs/operations.md Destroy section lacks %q: a non-production destroy leaves the DLM snapshots (tag %s) and the buckets' objects", want, config.SnapshotTagKey)
		}
	}
}

// TestAggregatedAPIsGoBeforeTheNamespaces: the namespace controller finalizes no namespace
// while discovery of an aggregated API fails, so a destroy must uninstall the releases that
// serve one (metrics-server, KEDA) and their APIServices before it deletes any namespace. Each
// waits for every namespace of the tier: Pulumi deletes it first. (In the offline engine run,
// whose pods never serve, the namespaces once took every parallel slot first and each timed out.)
func TestAggregatedAPIsGoBeforeTheNamespaces(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		namespaces := r.OfType("kubernetes:core/v1:Namespace")
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			if name := str(rel, "name"); name == "metrics-server" || name == "keda" {
				for _, ns := range namespaces {
					if strings.HasPrefix(ns.Name, "sesacthon-ns-") && !slices.Contains(rel.Dependencies, ns.URN) {
						t.Errorf("release %s does not wait for namespace %s: a destroy could delete the namespace while the API it serves is gone", name, ns.Name)
					}
				}
			}
		}
	})
}

// TestANonProductionDestroyDeletesItsSnapshots: DLM's snapshots belong to no resource, so a dev
// destroy would leave them for ever. A command's delete step deletes the snapshots tagged with
// the stack's cluster id, and the DLM policy waits for it (deleted first: no snapshot is taken
// after the listing). Production keeps its snapshots: no such command there.
func TestANonProductionDestroyDeletesItsSnapshots(t *testing.T) {
	for stack, want := range map[string]bool{"dev": true, "prod": false} {
		r := run(t, stack)
		var cleanup *mocks.Resource
		for _, c := range r.OfType("command:local:Command") {
			if strings.HasSuffix(c.Name, "snapshots-cleanup") {
				cleanup = c
			}
		}
		if !want {
			if cleanup != nil {
				t.Errorf("%s: %s would delete production's snapshots on destroy", stack, cleanup.Name)
			}
			continue
		}
		if cleanup == nil {
			t.Fatalf("%s: no snapshots-cleanup command", stack)
		}
		if str(cleanup, "delete") != infra.DeleteSnapshotsScript || str(cleanup, "environment", "CLUSTER_ID") != r.Config.ClusterID() ||
			str(cleanup, "environment", "SNAPSHOT_TAG") != config.SnapshotTagKey {
			t.Errorf("%s: %s does not delete the snapshots tagged %s=%s", stack, cleanup.Name, config.SnapshotTagKey, r.Config.ClusterID())
		}
		for _, p := range r.OfType("aws:dlm/lifecyclePolicy:LifecyclePolicy") {
			if !r.DependsOn(p, cleanup) {
				t.Errorf("%s: DLM policy %s does not wait for %s: it could take a snapshot after the listing", stack, p.Name, cleanup.Name)
			}
		}
	}
}

// TestTheSnapshotCleanupDeletesOnlyTheStacksSnapshots: run against a stand-in aws, the delete
// step deletes the snapshots listed by the stack's tag, in its region, once the stack's DLM
// policy is gone (a destroy); while the policy exists (the command alone replaced in an `up`)
// it deletes nothing.
func TestTheSnapshotCleanupDeletesOnlyTheStacksSnapshots(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	fake := `#!/bin/sh
echo "$*" >> "` + calls + `"
case "$2" in
  get-lifecycle-policies)
    if [ "$POLICY" = gone ]; then echo "An error occurred (ResourceNotFoundException) when calling the GetLifecyclePolicies operation" >&2; exit 254; fi
    echo policy-0123 ;;
  describe-snapshots) printf 'snap-1\tsnap-2\n' ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(policy string) (string, string) {
		_ = os.Remove(calls)
		cmd := exec.Command("bash", "-c", infra.DeleteSnapshotsScript)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SNAPSHOT_TAG=" + config.SnapshotTagKey, "CLUSTER_ID=dev-sesacthon", "AWS_REGION=ap-northeast-2", "POLICY=" + policy}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clean-up with the policy %s: %v %s", policy, err, out)
		}
		b, _ := os.ReadFile(calls)
		return string(out), string(b)
	}
	lookup := "dlm get-lifecycle-policies --region ap-northeast-2 --target-tags " + config.SnapshotTagKey + "=dev-sesacthon --query Policies[].PolicyId --output text\n"
	out, called := run("gone")
	want := lookup + "ec2 describe-snapshots --region ap-northeast-2 --owner-ids self --filters Name=tag:" + config.SnapshotTagKey + ",Values=dev-sesacthon --query Snapshots[].SnapshotId --output text\n" +
		"ec2 delete-snapshot --region ap-northeast-2 --snapshot-id snap-1\nec2 delete-snapshot --region ap-northeast-2 --snapshot-id snap-2\n"
	if called != want || !strings.Contains(out, "2 snapshot(s) of dev-sesacthon deleted") {
		t.Errorf("destroy: aws was called with\n%s\nwant\n%s(output %s)", called, want, out)
	}
	if out, called := run("present"); called != lookup || !strings.Contains(out, "not a destroy") {
		t.Errorf("with the DLM policy still there: aws was called with\n%s(output %s); want the lookup alone", called, out)
	}
}
