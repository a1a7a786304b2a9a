//go:build tools

// Package tools pins kwok, which tools/engine/build.sh builds.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
