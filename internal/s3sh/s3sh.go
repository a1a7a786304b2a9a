// Package s3sh is the S3 code of the shell scripts that reach the backups bucket: the backup
// CronJobs (workloads: etcd snapshot, PostgreSQL backups), which source it from their ConfigMap,
// and the master's first boot (cluster: kubeadm-init), which looks for the newest etcd snapshot
// of its cluster and downloads it.
package s3sh

import _ "embed"

// Script defines shell functions only (POSIX sh; sourcing it runs nothing): credentials from the
// instance role, object URLs, signed requests, uploads, downloads and listings.
//
//go:embed s3.sh
var Script string

// File is Script's file name beside the scripts that source it.
const File = "s3.sh"
