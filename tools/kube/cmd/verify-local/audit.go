package main

// The API server's audit log: the control plane runs the rendered audit policy (a policy the API
// server cannot load stops it from starting), and a few requests of the admin client prove that
// the log records what the policy says: who read a Secret but not its content, the body of an RBAC
// change, and nothing for health checks or ordinary reads.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// auditFlags are the API server's audit flags taken from the rendered kubeadm configuration.
var auditFlags = []string{"audit-policy-file", "audit-log-path", "audit-log-maxsize", "audit-log-maxbackup", "audit-log-maxage"}

// auditConfig is how this control plane's API server audits: the rendered policy, and a log in
// the work folder instead of the master's path.
type auditConfig struct {
	// policy is the rendered kubeadm/audit-policy.yaml, absolute.
	policy string
	// log is where this API server writes its audit log (<work>/audit.log).
	log string
	// masterPolicy and masterLog are the ClusterConfiguration's audit-policy-file and
	// audit-log-path: the master's paths, reported, not used here.
	masterPolicy, masterLog string
	// rotation are the rendered --audit-log-max* flags, passed as they are.
	rotation []string
	// source is the rendered kubeadm configuration the flags come from.
	source string
}

// renderedAuditConfig reads the render's audit policy and the ClusterConfiguration's audit flags:
// both paths must be set, and the policy file the flag names must be this one (its name carries
// the content's SHA-256, as cluster.AuditPolicyPath makes it).
func renderedAuditConfig(dir, work string) (*auditConfig, error) {
	policy, err := filepath.Abs(filepath.Join(dir, "kubeadm", "audit-policy.yaml"))
	if err != nil {
		return nil, err
	}
	content, err := os.ReadFile(policy)
	if err != nil {
		return nil, err
	}
	args, source, err := renderedAPIServerArgs(dir, auditFlags)
	if err != nil {
		return nil, err
	}
	a := &auditConfig{policy: policy, log: filepath.Join(work, "audit.log"), source: source}
	for _, arg := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		switch name {
		case "audit-policy-file":
			a.masterPolicy = value
		case "audit-log-path":
			a.masterLog = value
		default:
			a.rotation = append(a.rotation, arg)
		}
	}
	if a.masterPolicy == "" || a.masterLog == "" {
		return nil, fmt.Errorf("%s: the render writes kubeadm/audit-policy.yaml but its ClusterConfiguration sets audit-policy-file %q and audit-log-path %q", source, a.masterPolicy, a.masterLog)
	}
	sum := sha256.Sum256(content)
	if prefix := hex.EncodeToString(sum[:6]); !strings.Contains(filepath.Base(a.masterPolicy), prefix) {
		return nil, fmt.Errorf("%s: audit-policy-file %s is not named after the rendered kubeadm/audit-policy.yaml's content (sha256 %s…)", source, a.masterPolicy, prefix)
	}
	return a, nil
}

// flags are the API server's audit flags here: the rendered policy and rotation, the local log.
func (a *auditConfig) flags() []string {
	return append([]string{"--audit-policy-file=" + a.policy, "--audit-log-path=" + a.log}, a.rotation...)
}

// The audit check's requests: one name for every object it makes, one user agent to find them by.
const (
	auditProbeName      = "audit-probe"
	auditProbeNamespace = metav1.NamespaceDefault
	auditProbeAgent     = "verify-local-audit-probe"
)

// auditLogWait bounds the wait for the probe's events: the log backend writes each event before
// the request ends (blocking mode), but the client may see the response first.
const auditLogWait = 10 * time.Second

// checkAudit makes the probe's requests with the admin client's credentials and checks the audit
// log against the rendered policy. Runs after the objects are applied: the log has the traffic of
// a running control plane in it, not only the probe's.
func (v *verifier) checkAudit(ctx context.Context) {
	a := v.cp.audit
	if a == nil {
		return // "audit: not checked" was said with the control plane
	}
	fmt.Printf("audit log: requests of the admin client (user agent %s), then %s as the rendered policy shaped it:\n", auditProbeAgent, a.log)
	config := rest.CopyConfig(v.cp.config)
	config.UserAgent = auditProbeAgent
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		v.fail("audit: client: %v", err)
		return
	}
	defer cleanupAuditProbe(ctx, client)
	if err := auditProbe(ctx, client); err != nil {
		fmt.Printf("  FAIL %v\n", err)
		v.fail("audit: probe requests: %v", err)
		return
	}
	// Poll until every assertion holds (the probe's events are in), then read once more after a
	// moment: an event that must not be there has had its chance to be written.
	var results []auditAssertion
	deadline := time.Now().Add(auditLogWait)
	for {
		results = checkAuditLog(readAuditLog(a.log))
		if allHold(results) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if allHold(results) {
		time.Sleep(time.Second)
		results = checkAuditLog(readAuditLog(a.log))
	}
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("  FAIL %s: %v\n", r.what, r.err)
			v.fail("audit: %s: %v", r.what, r.err)
			continue
		}
		fmt.Printf("  ok: %s\n", r.what)
	}
}

// auditProbe makes the requests checkAuditLog looks for. The reads that must not be logged come
// first, so that by the time the RBAC writes are in the log, their events would be too.
func auditProbe(ctx context.Context, client kubernetes.Interface) error {
	if _, err := client.CoreV1().Pods(auditProbeNamespace).List(ctx, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if _, err := client.CoreV1().RESTClient().Get().AbsPath("/healthz").DoRaw(ctx); err != nil {
		return fmt.Errorf("GET /healthz: %w", err)
	}
	// kubectl exec opens a WebSocket with a GET on pods/exec: the policy must record it whatever
	// the verb. No such pod: the request is refused, and audited all the same.
	_, _ = client.CoreV1().RESTClient().Get().Namespace(auditProbeNamespace).Resource("pods").Name(auditProbeName).
		SubResource("exec").Param("command", "true").Param("stdout", "true").DoRaw(ctx)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: auditProbeName, Namespace: auditProbeNamespace}, StringData: map[string]string{"v": "audit-probe-secret-value"}}
	if _, err := client.CoreV1().Secrets(auditProbeNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create secret %s/%s: %w", auditProbeNamespace, auditProbeName, err)
	}
	if _, err := client.CoreV1().Secrets(auditProbeNamespace).Get(ctx, auditProbeName, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("get secret %s/%s: %w", auditProbeNamespace, auditProbeName, err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: auditProbeName, Namespace: auditProbeNamespace},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}
	if _, err := client.RbacV1().Roles(auditProbeNamespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create role %s/%s: %w", auditProbeNamespace, auditProbeName, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: auditProbeName, Namespace: auditProbeNamespace},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: auditProbeName}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: auditProbeName},
	}
	if _, err := client.RbacV1().RoleBindings(auditProbeNamespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create rolebinding %s/%s: %w", auditProbeNamespace, auditProbeName, err)
	}
	return nil
}

// cleanupAuditProbe deletes what the probe made (best effort: the check is over).
func cleanupAuditProbe(ctx context.Context, client kubernetes.Interface) {
	_ = client.RbacV1().RoleBindings(auditProbeNamespace).Delete(ctx, auditProbeName, metav1.DeleteOptions{})
	_ = client.RbacV1().Roles(auditProbeNamespace).Delete(ctx, auditProbeName, metav1.DeleteOptions{})
	_ = client.CoreV1().Secrets(auditProbeNamespace).Delete(ctx, auditProbeName, metav1.DeleteOptions{})
}

// readAuditLog is the log so far; none yet is an empty log.
func readAuditLog(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return []byte(fmt.Sprintf("unreadable audit log %s: %v\n", path, err)) // fails the parse, with the reason
	}
	return b
}

// auditEvent is what the check reads of an audit.k8s.io/v1 Event.
type auditEvent struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Level      string `json:"level"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	RequestObject  json.RawMessage `json:"requestObject"`
	ResponseObject json.RawMessage `json:"responseObject"`
}

// is reports whether the event is the probe's verb on its object of resource (in group).
func (e *auditEvent) is(verb, group, resource string) bool {
	return e.UserAgent == auditProbeAgent && e.Verb == verb && e.ObjectRef != nil && e.ObjectRef.APIGroup == group &&
		e.ObjectRef.Resource == resource && e.ObjectRef.Namespace == auditProbeNamespace && e.ObjectRef.Name == auditProbeName
}

func (e *auditEvent) String() string {
	return fmt.Sprintf("%s %s %s by %s at level %s, stage %s", e.Verb, e.RequestURI, e.UserAgent, e.User.Username, e.Level, e.Stage)
}

func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// auditAssertion is one thing the log must show: err is nil when it does.
type auditAssertion struct {
	what string
	err  error
}

func allHold(results []auditAssertion) bool {
	for _, r := range results {
		if r.err != nil {
			return false
		}
	}
	return true
}

// checkAuditLog checks an audit log (one JSON Event a line; a last line not yet ended is left for
// the next read) against what the rendered policy promises for the probe's requests.
func checkAuditLog(log []byte) []auditAssertion {
	var events []auditEvent
	var bad []string
	lines := bytes.Split(log, []byte("\n"))
	for i, line := range lines[:len(lines)-1] { // the last is "" or a line still being written
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e auditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", i+1, err))
			continue
		}
		if e.APIVersion != "audit.k8s.io/v1" || e.Kind != "Event" {
			bad = append(bad, fmt.Sprintf("line %d: %s %s, want audit.k8s.io/v1 Event", i+1, e.APIVersion, e.Kind))
			continue
		}
		events = append(events, e)
	}
	var out []auditAssertion
	add := func(what string, err error) { out = append(out, auditAssertion{what, err}) }

	var parseErr error
	if len(bad) > 0 {
		parseErr = fmt.Errorf("%d line(s) not an Event: %s", len(bad), strings.Join(bad[:min(len(bad), 3)], "; "))
	}
	add(fmt.Sprintf("%d events, each line an audit.k8s.io/v1 Event", len(events)), parseErr)

	add("get secret "+auditProbeNamespace+"/"+auditProbeName+" logged at level Metadata, without requestObject or responseObject",
		checkLogged(events, "get", "", "secrets", "Metadata", ""))
	add("create role "+auditProbeNamespace+"/"+auditProbeName+" logged at level Request, with the Role as requestObject",
		checkLogged(events, "create", rbacv1.GroupName, "roles", "Request", "Role"))
	add("create rolebinding "+auditProbeNamespace+"/"+auditProbeName+" logged at level Request, with the RoleBinding as requestObject",
		checkLogged(events, "create", rbacv1.GroupName, "rolebindings", "Request", "RoleBinding"))

	add("get pods/exec of "+auditProbeNamespace+"/"+auditProbeName+" (kubectl exec's WebSocket) logged at level Metadata", func() error {
		for i := range events {
			e := &events[i]
			if e.UserAgent == auditProbeAgent && e.Verb == "get" && e.ObjectRef != nil && e.ObjectRef.Resource == "pods" &&
				e.ObjectRef.Subresource == "exec" && e.ObjectRef.Name == auditProbeName {
				if e.Level != "Metadata" {
					return fmt.Errorf("logged at level %s", e.Level)
				}
				return nil
			}
		}
		return fmt.Errorf("no event")
	}())
	add("no event for /healthz", none(events, func(e *auditEvent) bool {
		path, _, _ := strings.Cut(e.RequestURI, "?")
		return path == "/healthz" || strings.HasPrefix(path, "/healthz/")
	}))
	add("no event at stage RequestReceived (omitStages)", none(events, func(e *auditEvent) bool { return e.Stage == "RequestReceived" }))
	add("no event for the list of pods (reads other than secrets and configmaps are not logged)", none(events, func(e *auditEvent) bool {
		return e.UserAgent == auditProbeAgent && e.Verb == "list" && e.ObjectRef != nil && e.ObjectRef.APIGroup == "" && e.ObjectRef.Resource == "pods"
	}))
	return out
}

// checkLogged checks the probe's events for verb on resource: at least one, each at level, with
// the request body (the probe's object of requestKind) when requestKind is set, without it
// otherwise, never with the response's.
func checkLogged(events []auditEvent, verb, group, resource, level, requestKind string) error {
	found := 0
	for i := range events {
		e := &events[i]
		if !e.is(verb, group, resource) {
			continue
		}
		found++
		if e.Level != level {
			return fmt.Errorf("logged at level %s (stage %s)", e.Level, e.Stage)
		}
		if present(e.ResponseObject) {
			return fmt.Errorf("logged with a responseObject (stage %s)", e.Stage)
		}
		if requestKind == "" {
			if present(e.RequestObject) {
				return fmt.Errorf("logged with a requestObject (stage %s)", e.Stage)
			}
			continue
		}
		if !present(e.RequestObject) {
			return fmt.Errorf("logged without its requestObject (stage %s)", e.Stage)
		}
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(e.RequestObject, &obj); err != nil || obj.Kind != requestKind || obj.Metadata.Name != auditProbeName {
			return fmt.Errorf("requestObject is not the %s %s (%.80s)", requestKind, auditProbeName, e.RequestObject)
		}
	}
	if found == 0 {
		return errors.New("no event")
	}
	return nil
}

// none fails when any event matches, quoting the first.
func none(events []auditEvent, match func(*auditEvent) bool) error {
	n, first := 0, ""
	for i := range events {
		if match(&events[i]) {
			if n == 0 {
				first = events[i].String()
			}
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d event(s), the first %s", n, first)
	}
	return nil
}
