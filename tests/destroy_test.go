package tests

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
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
