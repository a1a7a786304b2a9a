package workloads

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
)

// Exchange is a RabbitMQ exchange of the messaging topology.
type Exchange struct {
	Name, Type string
}

// Queue is a RabbitMQ queue and how it is bound.
type Queue struct {
	Name string
	// Type is quorum or classic; the queue type can only be a queue argument.
	Type string
	// Exchange and RoutingKey bind the queue.
	Exchange, RoutingKey string
	// TTLSeconds and MaxLength are set by policy; zero means none.
	TTLSeconds, MaxLength int
	// DeadLetter sends expired, rejected and overflowing messages to dlx with key dlq.
	DeadLetter bool
}

// Topology is the messaging topology of ARCHITECTURE.md section 3: tasks are published to the
// topic exchange "tasks" and land in one queue per worker pool; what a queue cannot deliver goes
// to the direct exchange "dlx" and from there to q.dlq.
var Topology = struct {
	Exchanges []Exchange
	Queues    []Queue
}{
	Exchanges: []Exchange{{Name: "tasks", Type: "topic"}, {Name: "dlx", Type: "direct"}},
	Queues: []Queue{
		{Name: "q.ai", Type: "quorum", Exchange: "tasks", RoutingKey: "ai.*", TTLSeconds: 300, MaxLength: 5000, DeadLetter: true},
		{Name: "q.batch", Type: "quorum", Exchange: "tasks", RoutingKey: "batch.*", TTLSeconds: 3600, MaxLength: 1000, DeadLetter: true},
		{Name: "q.api", Type: "quorum", Exchange: "tasks", RoutingKey: "api.*", TTLSeconds: 300, MaxLength: 2000, DeadLetter: true},
		{Name: "q.sched", Type: "quorum", Exchange: "tasks", RoutingKey: "sched.*", DeadLetter: true},
		{Name: "q.dlq", Type: "classic", Exchange: "dlx", RoutingKey: "dlq"},
	},
}

// passwordHash computes RabbitMQ's rabbit_password_hashing_sha256 hash: base64 of a 4-byte salt
// followed by SHA-256(salt + password). The salt is derived from the user and password so the
// definitions, and so the pods, do not change on every deploy.
func passwordHash(user, password string) string {
	seed := sha256.Sum256([]byte("waste-coach/rabbitmq/" + user + "/" + password))
	salt := seed[:4]
	sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
	return base64.StdEncoding.EncodeToString(append(append([]byte{}, salt...), sum[:]...))
}

// Definitions renders the definitions file RabbitMQ loads at boot: users, the vhost, the
// topology, and the policies that carry every TTL, length limit and dead-letter setting.
func Definitions(adminPassword, appPassword string) string {
	type obj = map[string]any
	const vhost = "/"
	user := func(name, password string, tags []string) obj {
		return obj{"name": name, "password_hash": passwordHash(name, password), "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags}
	}
	all := func(u string) obj {
		return obj{"user": u, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
	}
	d := obj{
		"users":       []obj{user(rabbitAdminUser, adminPassword, []string{"administrator"}), user(rabbitAppUser, appPassword, []string{})},
		"vhosts":      []obj{{"name": vhost}},
		"permissions": []obj{all(rabbitAdminUser), all(rabbitAppUser)},
	}
	var exchanges, queues, bindings, policies []obj
	for _, e := range Topology.Exchanges {
		exchanges = append(exchanges, obj{"name": e.Name, "vhost": vhost, "type": e.Type, "durable": true, "auto_delete": false, "internal": false, "arguments": obj{}})
	}
	for _, q := range Topology.Queues {
		queues = append(queues, obj{"name": q.Name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": obj{"x-queue-type": q.Type}})
		bindings = append(bindings, obj{"source": q.Exchange, "vhost": vhost, "destination": q.Name, "destination_type": "queue", "routing_key": q.RoutingKey, "arguments": obj{}})
		def := obj{}
		if q.TTLSeconds > 0 {
			def["message-ttl"] = q.TTLSeconds * 1000
		}
		if q.MaxLength > 0 {
			def["max-length"] = q.MaxLength
		}
		if q.DeadLetter {
			def["dead-letter-exchange"] = "dlx"
			def["dead-letter-routing-key"] = "dlq"
		}
		if len(def) > 0 {
			policies = append(policies, obj{
				"vhost": vhost, "name": q.Name, "pattern": "^" + regexp.QuoteMeta(q.Name) + "$",
				"apply-to": "queues", "priority": 10, "definition": def,
			})
		}
	}
	d["exchanges"], d["queues"], d["bindings"], d["policies"] = exchanges, queues, bindings, policies
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("marshal rabbitmq definitions: %v", err)) // plain maps: cannot fail
	}
	return string(b)
}
