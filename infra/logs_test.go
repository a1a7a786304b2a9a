package infra

import (
	"slices"
	"strings"
	"testing"
)

// The nodes' log policy names the stack's group and its streams, and nothing else; the reader's
// group-scoped statement names the same, and it may write nothing.
func TestLogPoliciesAreLimitedToTheGroup(t *testing.T) {
	const group = "arn:aws:logs:ap-northeast-2:123456789012:log-group:/waste-coach/prod-sesacthon"
	w := LogWriterPolicy(group)
	if len(w.Statement) != 1 {
		t.Fatalf("writer policy has %d statements", len(w.Statement))
	}
	if got := w.Statement[0].Resource.([]string); !slices.Equal(got, []string{group, group + ":log-stream:*"}) {
		t.Errorf("writer resources %v, want the group and its streams", got)
	}
	if slices.Contains(w.Statement[0].Action, "logs:CreateLogGroup") || slices.Contains(w.Statement[0].Action, "logs:PutRetentionPolicy") {
		t.Errorf("writer may create groups or change retention: %v", w.Statement[0].Action)
	}
	for _, st := range LogReaderPolicy(group).Statement {
		for _, a := range st.Action {
			if strings.HasPrefix(a, "logs:Put") || strings.HasPrefix(a, "logs:Create") || strings.HasPrefix(a, "logs:Delete") {
				t.Errorf("reader may %s", a)
			}
		}
		if st.Resource != "*" && !slices.Equal(st.Resource.([]string), logGroupResources(group)) {
			t.Errorf("reader statement %s on %v", st.Sid, st.Resource)
		}
	}
}
