package workloads

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Disruption budgets: every workload that can run more than one pod (the API services, the
// Celery pools, the RabbitMQ brokers) may lose one pod at a time to a voluntary disruption (a
// drain, a node replacement): a drain never takes a whole pool at once, and each evicted pod is
// replaced before the next goes. One unavailable pod, not a minimum available, so that the
// budget follows the autoscaler's count and a pool at one pod still lets a drain finish.
// Single-pod workloads (beat, the default backend, PostgreSQL, Redis, the certificate exporter)
// have no budget, so nothing of theirs ever blocks a drain.
//
// Pods that are not Ready: for the API services and the brokers, unready means unwell, and such
// a pod may always be evicted (EvictUnready), so a crash-looping pod never holds a drain. A
// Celery worker's readiness also fails while its pool is too busy to answer the ping, or while
// the broker is down; with AlwaysAllow a drain would take every busy worker of the pool at once.
// The pools' budgets therefore let an unready worker go only while the pool keeps its other
// workers Ready (EvictUnreadyIfHealthy). A pool with two or more workers unready for good then
// holds a drain: a node's removal bounds that wait (cluster.MemberDeleteScript), and an operator
// draining by hand sees which pods and can stop them knowingly (docs/operations.md).
//
// Every pool is pinned to one node: draining that node evicts one pod per pool, and the next
// waits until the evicted one runs again somewhere, which is on the replacement node when a
// node is replaced (the new node joins before the old one is drained), and nowhere while the
// only node is cordoned (docs/operations.md says how an upgrade drains such a node).
const (
	// DisruptionMaxUnavailable is how many pods of a budgeted workload a drain may evict at once.
	DisruptionMaxUnavailable = 1
	// EvictUnready lets a drain evict pods that are not Ready whatever the budget.
	EvictUnready = "AlwaysAllow"
	// EvictUnreadyIfHealthy lets a drain evict a pod that is not Ready only while the budget is
	// met without it: the Celery pools, whose workers are unready when busy.
	EvictUnreadyIfHealthy = "IfHealthyBudget"
)

// disruptionBudget declares the PodDisruptionBudget of the workload whose pods selector(name)
// selects, labelled l, after deps; unready is its unhealthy-pod eviction policy.
func (s *scope) disruptionBudget(namespace, name, unready string, l pulumi.StringMap, deps ...pulumi.Resource) error {
	if _, err := policyv1.NewPodDisruptionBudget(s.ctx, s.resourceName(namespace, name), &policyv1.PodDisruptionBudgetArgs{
		Metadata: meta(name, namespace, l),
		Spec: policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable:             pulumi.Int(DisruptionMaxUnavailable),
			Selector:                   &metav1.LabelSelectorArgs{MatchLabels: selector(name)},
			UnhealthyPodEvictionPolicy: pulumi.String(unready),
		},
	}, s.opts(namespace, deps...)...); err != nil {
		return fmt.Errorf("disruption budget %s: %w", name, err)
	}
	return nil
}
