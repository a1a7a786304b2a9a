package main

import (
	"strings"
	"testing"
	"time"
)

// TestDevIsSkippedOutsideItsHoursAndProdIsNot: read from the repository's own stack files,
// dev (office hours MON-FRI in Asia/Seoul) is closed on a Saturday with a notice that says what
// happens to the merge, open on a Monday morning; prod, which has no office hours, is always open.
func TestDevIsSkippedOutsideItsHoursAndProdIsNot(t *testing.T) {
	saturday := time.Date(2026, 12, 12, 3, 0, 0, 0, time.UTC)
	monday := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC) // 11:00 in Seoul
	open, why, err := check("../..", "dev", saturday)
	if err != nil {
		t.Fatal(err)
	}
	if open || !strings.Contains(why, "outside the deploy window") || !strings.Contains(why, "deploys the other stacks") {
		t.Errorf("dev on a Saturday: open %v, %q; want closed with the reason and what happens to the merge", open, why)
	}
	if open, _, err := check("../..", "dev", monday); err != nil || !open {
		t.Errorf("dev on a Monday at 11:00 in Seoul: open %v, %v; want open", open, err)
	}
	if open, _, err := check("../..", "prod", saturday); err != nil || !open {
		t.Errorf("prod on a Saturday: open %v, %v; want open (no office hours)", open, err)
	}
}
