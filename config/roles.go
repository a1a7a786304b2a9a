// The node roles, one node each, and what follows from a role: the workload label pods select it
// by, whether it runs the control plane or the application, and its smallest root volume.

package config

// Role is what a node is for. The platform has exactly one node of each role.
type Role string

// The four node roles of ARCHITECTURE.md section 1.
const (
	// RoleMaster runs the control plane, the cluster's own controllers and monitoring.
	RoleMaster Role = "master"
	// RoleWorker1 runs the FastAPI services and the api Celery workers.
	RoleWorker1 Role = "worker-1"
	// RoleWorker2 runs the async Celery workers (ai, batch).
	RoleWorker2 Role = "worker-2"
	// RoleStorage runs RabbitMQ, PostgreSQL, Redis and Celery beat.
	RoleStorage Role = "storage"
)

// Roles lists every role in the order nodes are declared and reported.
var Roles = []Role{RoleMaster, RoleWorker1, RoleWorker2, RoleStorage}

// Workload labels, the values of WorkloadLabel that pods select nodes by.
const (
	WorkloadApplication  = "application"
	WorkloadAsyncWorkers = "async-workers"
	WorkloadStorage      = "storage"
)

// WorkloadLabel is the node label key that pins workloads to a node role.
const WorkloadLabel = "workload"

// ControlPlane reports whether the role runs the Kubernetes control plane.
func (r Role) ControlPlane() bool { return r == RoleMaster }

// Workload returns the value of the workload label for the role's node, or "" for the control
// plane, which is selected by its standard node-role label instead.
func (r Role) Workload() string {
	switch r {
	case RoleWorker1:
		return WorkloadApplication
	case RoleWorker2:
		return WorkloadAsyncWorkers
	case RoleStorage:
		return WorkloadStorage
	}
	return ""
}

// RunsApplication reports whether application pods on the role's node call S3 with the node's
// instance profile (the API services hand out pre-signed URLs; Celery workers read uploads).
func (r Role) RunsApplication() bool { return r == RoleWorker1 || r == RoleWorker2 }

// MinRootGiB is the smallest root volume the role works with: container images, logs and, on the
// master, etcd live on the root volume (application data lives on EBS volumes of its own).
func (r Role) MinRootGiB() int {
	switch r {
	case RoleMaster:
		return 40
	case RoleStorage:
		return 30
	}
	return 20
}
