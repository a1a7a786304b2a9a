// Replica counts and autoscaling: each API service's and Celery pool's replica count, which is
// its autoscaler's minimum, the pools that may scale to zero, the maximums and the queue depth
// per Celery worker (keys apiReplicas, celeryReplicas, celeryScaleToZero, apiMaxReplicas,
// celeryMaxReplicas and celeryQueueLength).

package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// APIReplicas is the replica count of each FastAPI service.
type APIReplicas struct {
	// Auth is the auth service's count.
	Auth int `json:"auth"`
	// Users is the users service's count.
	Users int `json:"users"`
	// Waste is the waste service's count.
	Waste int `json:"waste"`
}

// CeleryReplicas is the replica count of each Celery worker pool.
type CeleryReplicas struct {
	// AI is the ai pool's count.
	AI int `json:"ai"`
	// Batch is the batch pool's count.
	Batch int `json:"batch"`
	// API is the api pool's count.
	API int `json:"api"`
}

// replicas reads apiReplicas and celeryReplicas, each workload's replica count and its
// autoscaler's minimum. The API services' counts are checked here, the Celery pools' by
// autoscaling, since a pool listed in celeryScaleToZero may be at zero.
func (p *parser) replicas(c *Config) {
	c.APIReplicas = APIReplicas{Auth: 2, Users: 2, Waste: 2}
	p.object("apiReplicas", &c.APIReplicas, false)
	c.CeleryReplicas = CeleryReplicas{AI: 3, Batch: 2, API: 2}
	p.object("celeryReplicas", &c.CeleryReplicas, false)
	for _, r := range []struct {
		key string
		n   int
	}{
		{"apiReplicas.auth", c.APIReplicas.Auth}, {"apiReplicas.users", c.APIReplicas.Users}, {"apiReplicas.waste", c.APIReplicas.Waste},
	} {
		if r.n < 1 || r.n > MaxReplicas {
			p.fail(qualify(r.key), strconv.Itoa(r.n), fmt.Sprintf("1 to %d replicas", MaxReplicas))
		}
	}
}

// Autoscaling bounds how far the API and the Celery pools scale (keys apiMaxReplicas,
// celeryMaxReplicas, celeryQueueLength and celeryScaleToZero). The minimum of each is its
// replica count (apiReplicas, celeryReplicas); the per-node fit is checked at the maximums.
type Autoscaling struct {
	// APIMax is each FastAPI service's maximum; its HorizontalPodAutoscaler scales on CPU
	// between apiReplicas and this.
	APIMax APIReplicas
	// CeleryMax is each Celery pool's maximum; KEDA scales the pool on its queues' depth between
	// celeryReplicas and this.
	CeleryMax CeleryReplicas
	// CeleryQueueLength is the ready messages per replica KEDA aims at on each pool's queues:
	// a queue holding 3 × this asks for 3 replicas.
	CeleryQueueLength CeleryReplicas
	// ScaleToZero lists the pools (ai, batch, api) whose minimum may be 0: with an empty queue
	// KEDA then removes every worker, and the first task waits for a worker to start.
	ScaleToZero []string
}

// CeleryPoolNames are the Celery worker pools, as named in celeryReplicas and the keys here.
var CeleryPoolNames = []string{"ai", "batch", "api"}

// MaxReplicas is the upper bound of any replica count or maximum: beyond it the nodes of the
// design record could never hold the pods, whatever their requests.
const MaxReplicas = 20

// Defaults of the autoscaling keys. A maximum not given is the larger of this and the minimum.
var (
	// DefaultAPIMax lets each API service grow by one pod over prod's two.
	DefaultAPIMax = APIReplicas{Auth: 3, Users: 3, Waste: 3}
	// DefaultCeleryMax gives the ai and batch pools one more worker each over prod's minimums; the
	// api pool stays at two, which is what worker-1 holds beside the API at its maximum.
	DefaultCeleryMax = CeleryReplicas{AI: 4, Batch: 3, API: 2}
	// DefaultCeleryQueueLength is the backlog per worker that asks for another one: ai tasks call
	// external AI services for seconds each (4 gevent slots), batch tasks run long (4 processes,
	// prefetch 1), api tasks are short (4 gevent slots).
	DefaultCeleryQueueLength = CeleryReplicas{AI: 10, Batch: 5, API: 20}
)

// Queue length bounds: 1 message per replica at least; 1000 is past every queue's useful
// backlog (q.batch holds at most 1000).
const (
	minQueueLengthPerReplica = 1
	maxQueueLengthPerReplica = 1000
)

// celeryPool returns a pool's field of a CeleryReplicas value.
func celeryPool(r *CeleryReplicas, pool string) *int {
	switch pool {
	case "ai":
		return &r.AI
	case "batch":
		return &r.Batch
	case "api":
		return &r.API
	}
	panic("config: unknown Celery pool " + pool)
}

// CeleryPool returns a pool's value (ai, batch or api).
func (r CeleryReplicas) CeleryPool(pool string) int { return *celeryPool(&r, pool) }

// autoscaling reads the autoscaling keys after replicas has read the minimums.
func (p *parser) autoscaling(c *Config) {
	a := &c.Autoscaling
	if p.object("celeryScaleToZero", &a.ScaleToZero, false) {
		for i, pool := range a.ScaleToZero {
			if !slices.Contains(CeleryPoolNames, pool) {
				p.fail(fmt.Sprintf("%s[%d]", qualify("celeryScaleToZero"), i), strconv.Quote(pool), "a Celery pool: one of "+strings.Join(CeleryPoolNames, ", "))
			}
		}
	}
	for _, pool := range CeleryPoolNames {
		n, key := c.CeleryReplicas.CeleryPool(pool), qualify("celeryReplicas."+pool)
		switch {
		case n == 0 && !slices.Contains(a.ScaleToZero, pool):
			p.fail(key, "0", fmt.Sprintf("1 to %d replicas; 0 only for a pool listed in celeryScaleToZero", MaxReplicas))
		case n < 0 || n > MaxReplicas:
			p.fail(key, strconv.Itoa(n), fmt.Sprintf("1 to %d replicas (0 for a pool listed in celeryScaleToZero)", MaxReplicas))
		}
	}

	a.APIMax = APIReplicas{Auth: max(DefaultAPIMax.Auth, c.APIReplicas.Auth), Users: max(DefaultAPIMax.Users, c.APIReplicas.Users), Waste: max(DefaultAPIMax.Waste, c.APIReplicas.Waste)}
	p.object("apiMaxReplicas", &a.APIMax, false)
	for _, s := range []struct {
		name     string
		min, max int
	}{{"auth", c.APIReplicas.Auth, a.APIMax.Auth}, {"users", c.APIReplicas.Users, a.APIMax.Users}, {"waste", c.APIReplicas.Waste, a.APIMax.Waste}} {
		if s.max < max(s.min, 1) || s.max > MaxReplicas {
			p.fail(qualify("apiMaxReplicas."+s.name), strconv.Itoa(s.max), fmt.Sprintf("at least apiReplicas.%s (%d) and at most %d", s.name, s.min, MaxReplicas))
		}
	}

	a.CeleryMax = DefaultCeleryMax
	for _, pool := range CeleryPoolNames {
		*celeryPool(&a.CeleryMax, pool) = max(DefaultCeleryMax.CeleryPool(pool), c.CeleryReplicas.CeleryPool(pool))
	}
	p.object("celeryMaxReplicas", &a.CeleryMax, false)
	a.CeleryQueueLength = DefaultCeleryQueueLength
	p.object("celeryQueueLength", &a.CeleryQueueLength, false)
	for _, pool := range CeleryPoolNames {
		lo, hi := c.CeleryReplicas.CeleryPool(pool), a.CeleryMax.CeleryPool(pool)
		// A pool that may be at zero still needs one worker when work arrives.
		if hi < max(lo, 1) || hi > MaxReplicas {
			p.fail(qualify("celeryMaxReplicas."+pool), strconv.Itoa(hi), fmt.Sprintf("at least celeryReplicas.%s (%d), at least 1, and at most %d", pool, lo, MaxReplicas))
		}
		if q := a.CeleryQueueLength.CeleryPool(pool); q < minQueueLengthPerReplica || q > maxQueueLengthPerReplica {
			p.fail(qualify("celeryQueueLength."+pool), strconv.Itoa(q), fmt.Sprintf("%d to %d ready messages per worker (default %d)", minQueueLengthPerReplica, maxQueueLengthPerReplica, DefaultCeleryQueueLength.CeleryPool(pool)))
		}
	}
}

// AutoscalingKey names the config key that bounds a workload's maximum replicas, for messages
// that must tell an operator which value to lower: apiMaxReplicas.<service> for the API
// services, celeryMaxReplicas.<pool> for the Celery pools (Deployment celery-<pool>).
func AutoscalingKey(deployment string) (string, bool) {
	if pool, ok := strings.CutPrefix(deployment, "celery-"); ok && slices.Contains(CeleryPoolNames, pool) {
		return qualify("celeryMaxReplicas." + pool), true
	}
	if slices.Contains([]string{"auth", "users", "waste"}, deployment) {
		return qualify("apiMaxReplicas." + deployment), true
	}
	return "", false
}
