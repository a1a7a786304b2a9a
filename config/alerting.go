// Alerting: where the stack's alerts go and the queue depths they fire at (keys alertReceiver,
// alertReceiverSecret and alertQueueDepth).

package config

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/alerting"
)

// Alerting is where a stack's alerts are delivered and the thresholds that are the stack's to
// choose (keys alertReceiver, alertReceiverSecret and alertQueueDepth).
type Alerting struct {
	// Receiver is the destination of the stack's alerts; nil keeps them in Alertmanager.
	Receiver *alerting.Receiver
	// ReceiverSecret is the Slack webhook URL or the SMTP password (a Pulumi secret); set by
	// Load when Receiver is.
	ReceiverSecret pulumi.StringOutput
	// QueueDepth is each work queue's ready-message depth that alerts.
	QueueDepth map[string]int
}

// WorkQueues are the RabbitMQ queues Celery workers consume (ARCHITECTURE.md section 3).
var WorkQueues = []string{"q.ai", "q.api", "q.batch", "q.sched"}

// DefaultQueueDepth is the depth each work queue alerts at: 80% of the queue's max-length
// policy (past which tasks are dead-lettered), and 500 for q.sched, which has none.
var DefaultQueueDepth = map[string]int{"q.ai": 4000, "q.api": 1600, "q.batch": 800, "q.sched": 500}

// Queue depth bounds: below MinQueueDepth a normal burst alerts; MaxQueueDepth is below the
// largest max-length policy (q.ai's 5000), so a depth that can be reached is always chosen.
const (
	MinQueueDepth = 10
	MaxQueueDepth = 4999
)

var slackChannelRE = regexp.MustCompile(`^[#@][a-z0-9._-]{1,80}$`)
var smarthostRE = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]{1,5}$`)

// alerting reads alertReceiver and alertQueueDepth. The receiver's secret is read by Load.
func (p *parser) alerting(c *Config) {
	c.Alerting.QueueDepth = map[string]int{}
	for q, d := range DefaultQueueDepth {
		c.Alerting.QueueDepth[q] = d
	}
	depths := map[string]int{}
	if p.object("alertQueueDepth", &depths, false) {
		key := qualify("alertQueueDepth")
		for q, d := range depths {
			switch {
			case !slices.Contains(WorkQueues, q):
				p.fail(key+"."+q, strconv.Quote(q), fmt.Sprintf("a work queue: one of %v", WorkQueues))
			case d < MinQueueDepth || d > MaxQueueDepth:
				p.fail(key+"."+q, strconv.Itoa(d), fmt.Sprintf("%d to %d ready messages", MinQueueDepth, MaxQueueDepth))
			default:
				c.Alerting.QueueDepth[q] = d
			}
		}
	}

	var r alerting.Receiver
	if !p.object("alertReceiver", &r, false) {
		return
	}
	key := qualify("alertReceiver")
	switch r.Kind {
	case alerting.ReceiverSlack:
		if !slackChannelRE.MatchString(r.Channel) {
			p.fail(key+".channel", strconv.Quote(r.Channel), "a Slack channel such as #waste-coach-alerts (the webhook URL goes in the secret alertReceiverSecret)")
		}
		if r.To != "" || r.From != "" || r.Smarthost != "" || r.Username != "" {
			p.fail(key, "(to/from/smarthost/username with kind slack)", "only kind and channel for a Slack receiver")
		}
	case alerting.ReceiverEmail:
		for _, f := range []struct{ name, v string }{{"to", r.To}, {"from", r.From}} {
			if _, err := mail.ParseAddress(f.v); err != nil || strings.ContainsAny(f.v, "\n\r") {
				p.fail(key+"."+f.name, strconv.Quote(f.v), "an e-mail address such as ops@example.com")
			}
		}
		if !smarthostRE.MatchString(r.Smarthost) {
			p.fail(key+".smarthost", strconv.Quote(r.Smarthost), "the SMTP server as host:port, such as smtp.example.com:587")
		}
		if strings.TrimSpace(r.Username) == "" {
			p.fail(key+".username", strconv.Quote(r.Username), "the SMTP login (its password goes in the secret alertReceiverSecret)")
		}
		if r.Channel != "" {
			p.fail(key+".channel", strconv.Quote(r.Channel), "no channel for an e-mail receiver")
		}
	default:
		p.fail(key+".kind", strconv.Quote(r.Kind), fmt.Sprintf("%q (with channel) or %q (with to, from, smarthost, username)", alerting.ReceiverSlack, alerting.ReceiverEmail))
		return
	}
	c.Alerting.Receiver = &r
}

// loadAlertReceiverSecret reads alertReceiverSecret, required with alertReceiver and only as a
// Pulumi secret. No message repeats its value.
func loadAlertReceiverSecret(ctx *pulumi.Context, cfg *Config) error {
	key := Project + ":alertReceiverSecret"
	raw, ok := ctx.GetConfig(key)
	how := "set it with `pulumi config set --secret alertReceiverSecret <Slack webhook URL or SMTP password>`"
	switch {
	case cfg.Alerting.Receiver == nil && ok && strings.TrimSpace(raw) != "":
		return &Error{Key: key, Value: "(set without alertReceiver)", Allowed: "only together with alertReceiver, which says where it is used"}
	case cfg.Alerting.Receiver == nil:
		return nil
	case !ok || strings.TrimSpace(raw) == "":
		return &Error{Key: key, Allowed: "required with alertReceiver: " + how}
	case !ctx.IsConfigSecret(key):
		return &Error{Key: key, Value: "(plain text)", Allowed: "a secret: " + how}
	case cfg.Alerting.Receiver.Kind == alerting.ReceiverSlack && !strings.HasPrefix(raw, "https://"):
		return &Error{Key: key, Value: "(secret value, not an https URL)", Allowed: "the Slack incoming-webhook URL, https://hooks.slack.com/services/..."}
	}
	cfg.Alerting.ReceiverSecret = pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
	return nil
}
