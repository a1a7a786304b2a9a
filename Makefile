# Everyday commands. The README lists the two that matter on a fresh machine.
STACK ?= prod
BIN   := $(CURDIR)/.bin

.PHONY: render test chartfit verify-local verify-local-newest verify-local-negative engine compat lint prerequisites

render:
	go run ./cmd/render -stack $(STACK) -out out/$(STACK)

test:
	go test ./...

# The chart pods the per-node fit counts, proved against the pinned charts rendered with the
# Helm SDK (tools/charts/README.md).
chartfit: render
	cd tools/charts && go build -o $(BIN)/chartfit ./cmd/chartfit
	$(BIN)/chartfit -dir out/$(STACK)

# Every rendered Kubernetes object of a stack against a real API server and scheduler on
# 127.0.0.1 (tools/kube/README.md).
verify-local: chartfit prerequisites
	tools/kube/build.sh
	cd tools/kube && go build -o $(BIN)/verify-local ./cmd/verify-local
	$(BIN)/verify-local -dir out/$(STACK) -bin $(BIN)

# The same on the API server of the newest minor an upgrade walks to (v1.36).
verify-local-newest: chartfit prerequisites
	tools/kube/build.sh
	tools/kubeadm/build-apiserver.sh v1.36
	cd tools/kube && go build -o $(BIN)/verify-local ./cmd/verify-local
	$(BIN)/verify-local -dir out/$(STACK) -bin $(BIN) -apiserver $(BIN)/kube-apiserver-$$(tools/module-version.sh tools/kubeadm/v1.36 k8s.io/kubernetes)

# The same check on deliberately broken objects: it must report every one of them.
verify-local-negative: prerequisites
	tools/kube/build.sh
	cd tools/kube && go build -o $(BIN)/verify-local ./cmd/verify-local
	$(BIN)/verify-local -dir tools/kube/testdata/broken -bin $(BIN) -timeout 30s -expect-failure

# The whole program through the real Pulumi CLI, engine and Kubernetes provider, offline, against
# a local control plane with kwok nodes in a loopback-only network namespace (tools/engine/run.sh;
# AWS and the SSH commands are stand-ins). Needs root for the namespace; first build ~20 min.
engine: prerequisites
	tools/engine/run.sh $(STACK)

# The release-compatibility check (docs/delivery.md): the stack deployed by the commit in
# .ci/released, previewed with this commit; only .ci/compat-allowlist may replace or delete.
compat: prerequisites
	tools/engine/run.sh $(STACK) compat

lint:
	$(BIN)/golangci-lint run ./...
	$(BIN)/actionlint
	shellcheck tools/kube/build.sh .ci/run

# What the local control plane needs beyond Go: etcd (Debian's etcd-server). As root it is
# installed as .ci/run installs it; otherwise the message names the package.
prerequisites:
	@command -v etcd > /dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server; \
	  else \
	    echo "etcd not found: install Debian/Ubuntu's etcd-server (sudo apt-get install etcd-server) and run again" >&2; exit 1; \
	  fi; }
