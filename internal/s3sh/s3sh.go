// Package s3sh is the S3 code of the shell scripts that reach the backups bucket: the backup
// CronJobs (workloads: etcd snapshot, PostgreSQL backups), which source it from their ConfigMap,
// and the master's first boot (cluster: kubeadm-init), which looks for the newest etcd snapshot
// of its cluster and downloads it.
package s3sh

import _ "embed"

// Script defines shell functions only (POSIX sh; sourcing it runs nothing): credentials from the
// instance role, object URLs, signed requests and uploads. The backup CronJobs' ConfigMaps carry
// it: changing it replaces those ConfigMaps, and the StatefulSet that mounts one, on every
// running stack. workloads/scripts/s3.sh links to it, where shellcheck finds it for the backup
// scripts' `source=s3.sh`.
//
//go:embed s3.sh
var Script string

// ReadScript adds downloads and listings to Script (and needs it sourced first): only the
// master's first boot reads the bucket.
//
//go:embed s3-read.sh
var ReadScript string

// File is Script's file name beside the scripts that source it.
const File = "s3.sh"
