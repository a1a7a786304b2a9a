package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waste-coach/infra/infra"
)

// TestEverySpotNodesRequestIsCancelledWhenItIsDeleted: the AWS provider leaves a deleted spot
// instance's persistent request open (terraform-provider-aws#38142), and EC2 then relaunches an
// instance nobody tracks until 2035. So each spot node has a command on the deploying machine
// whose delete step cancels its request: it depends on the instance (deleted before it, on
// destroy and replacement), its trigger is the request id (a replaced node's command is
// replaced, and the old one cancels the old request), and it runs the cancel script. A stopped
// node deletes nothing, so its request stays. On-demand nodes have one too, whose request id is
// empty: a node set to on-demand stays a spot instance until it is replaced, and removing its
// command would cancel the request under the running instance.
func TestEverySpotNodesRequestIsCancelledWhenItIsDeleted(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		r := run(t, stack)
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			name := inst.Name + "-spot-request"
			cmd := must(t, r, "command:local:Command", name)
			if str(cmd, "delete") != infra.CancelSpotRequestScript || !r.DependsOn(cmd, inst) {
				t.Errorf("%s: %s does not run the cancel script on delete, after depending on %s", stack, name, inst.Name)
			}
			if env := prop(cmd, "environment"); !env.HasValue() || !env.ObjectValue().HasValue("SPOT_REQUEST") || str(cmd, "environment", "AWS_REGION") != r.Config.Region {
				t.Errorf("%s: %s's environment %v lacks the request id or the region", stack, name, env)
			}
			// The request id as the provider reports it: a spot instance's, or an empty string
			// (an absent output would be unknown in every preview: a replacement each time).
			if req := str(cmd, "environment", "SPOT_REQUEST"); (stack == "dev") != strings.HasPrefix(req, "sir-") || stack == "prod" && req != "" {
				t.Errorf("%s: %s's SPOT_REQUEST is %q", stack, name, req)
			}
			if len(prop(cmd, "triggers").ArrayValue()) != 1 {
				t.Errorf("%s: %s has triggers %v, want the request id alone", stack, name, prop(cmd, "triggers"))
			}
		}
	}
}

// TestTheCancelScriptCancelsOrSaysWhy: the delete step, run with a stand-in aws on its PATH,
// cancels the node's request in its region; a request EC2 no longer knows is fine, any other
// failure fails the delete (and so the destroy, instead of leaving a relaunching request), and
// without the AWS CLI it names the command to run by hand.
func TestTheCancelScriptCancelsOrSaysWhy(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	fake := `#!/bin/sh
echo "$*" >> "` + calls + `"
case "$FAKE" in
  ok) echo cancelled ;;
  gone) echo "An error occurred (InvalidSpotInstanceRequestID.NotFound) when calling the CancelSpotInstanceRequests operation" >&2; exit 254 ;;
  *) echo "An error occurred (UnauthorizedOperation)" >&2; exit 254 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	run := func(path, request, mode string) (string, error) {
		cmd := exec.Command(bash, "-c", infra.CancelSpotRequestScript)
		cmd.Env = []string{"PATH=" + path, "SPOT_REQUEST=" + request, "AWS_REGION=ap-northeast-2", "FAKE=" + mode}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	sys := bin + ":/usr/bin:/bin"
	if out, err := run(sys, "sir-abc", "ok"); err != nil || !strings.Contains(out, "sir-abc: cancelled") {
		t.Errorf("a cancel that succeeds: %v %q", err, out)
	}
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "ec2 cancel-spot-instance-requests --region ap-northeast-2 --spot-instance-request-ids sir-abc") {
		t.Errorf("aws was called with %q", b)
	}
	if out, err := run(sys, "sir-abc", "gone"); err != nil || !strings.Contains(out, "gone already") {
		t.Errorf("a request EC2 no longer knows: %v %q, want success", err, out)
	}
	if out, err := run(sys, "sir-abc", "denied"); err == nil || !strings.Contains(out, "UnauthorizedOperation") {
		t.Errorf("a refused cancel: %v %q, want the delete to fail with the reason", err, out)
	}
	if out, err := run(noAWSPath(t), "", "ok"); err != nil || !strings.Contains(out, "nothing to cancel") {
		t.Errorf("no request recorded: %v %q", err, out)
	}
	if out, err := run(noAWSPath(t), "sir-abc", "ok"); err == nil || !strings.Contains(out, "--spot-instance-request-ids sir-abc") {
		t.Errorf("without the AWS CLI: %v %q, want a failure naming the command to run", err, out)
	}
}

// noAWSPath is a PATH with bash and sh but no aws: an on-demand node's delete, or a machine
// without the AWS CLI.
func noAWSPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"bash", "sh"} {
		if p, err := exec.LookPath(tool); err == nil {
			if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
