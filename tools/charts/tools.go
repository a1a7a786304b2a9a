//go:build tools

// Package tools pins the pulumi-kubernetes provider in this module, so that chartfit renders the
// charts with exactly the Helm SDK and Kubernetes libraries the provider deploys them with, and
// so that tools/engine/build.sh builds the provider from this module's go.mod and go.sum: one
// module graph, whose packages a cold machine compiles once for both (issue 30). The provider's
// main package embeds a schema that must be generated next to it first, so build.sh builds it
// from a scratch copy of that one package inside this module.
//
// kwok, which plays the nodes of the engine runs, is pinned here too, at v0.7.0: the last release
// whose Kubernetes libraries (v0.33) are the provider's, so that it compiles almost nothing of its
// own (v0.8.0 needs v0.36). It is only a client of the local API server.
package tools

import (
	_ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	_ "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
