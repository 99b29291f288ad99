# Herald — build, generate, test. `make help` lists the targets.

GO      ?= go
BIN     ?= bin
IMG     ?= ghcr.io/herald-notify/herald:$(VERSION)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w \
	-X github.com/herald-notify/herald/internal/version.Version=$(VERSION) \
	-X github.com/herald-notify/herald/internal/version.Commit=$(COMMIT)

# Tools are pinned (controller-gen by a tool directive in go.mod, golangci-lint
# by version here) and run through the go command:
# nothing is installed by hand.
CONTROLLER_GEN := $(GO) tool controller-gen
GOLANGCI_LINT  := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

# Test flags: race detector on, no cached results. Ginkgo suites randomize
# their spec order themselves.
TEST_FLAGS ?= -race -count=1 -timeout 60m
TEST_PKGS  ?= ./...

.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash -o pipefail

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate the CRDs and the operator's RBAC role into config/, and copy them into the chart.
	$(CONTROLLER_GEN) crd rbac:roleName=herald-operator \
		paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases \
		output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/*.yaml charts/herald/crds/
	cp config/rbac/role.yaml charts/herald/files/operator-role.yaml
	cp config/rbac/user_roles.yaml charts/herald/files/user-roles.yaml
	cp config/rbac/operator_policy.yaml charts/herald/files/operator-policy.yaml

.PHONY: fmt
fmt: ## Format the Go code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: ## Run golangci-lint (config in .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: verify-generated
verify-generated: ## Fail when generated code or manifests, or formatting, are out of date.
	hack/verify-generated.sh

.PHONY: envtest-assets
envtest-assets: ## Build (once, cached) the kube-apiserver and etcd that tests run.
	@hack/envtest-assets.sh

.PHONY: test
test: verify-generated vet ## Run every test, on a real kube-apiserver and etcd.
	@hack/npm-deps.sh && assets="$$(hack/envtest-assets.sh)" && helm="$$(hack/helm.sh)" && \
	chromium="$$(hack/chromium.sh)" && kubectl="$$(command -v kubectl || echo "$$assets/kubectl")" && \
	echo "KUBEBUILDER_ASSETS=$$assets KUBECTL=$$kubectl HELM=$$helm CHROMIUM=$$chromium" && \
	KUBEBUILDER_ASSETS="$$assets" KUBECTL="$$kubectl" HELM="$$helm" CHROMIUM="$$chromium" $(GO) test $(TEST_FLAGS) $(TEST_PKGS)

##@ Build

.PHONY: build
build: ## Build the herald binary into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/herald .

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG) .

##@ Benchmarks

# BENCH_FLAGS pass more flags to the load generator, such as
# BENCH_FLAGS=-profiles=bin/profiles to keep the streamer's pprof profiles.
BENCH_FLAGS ?=

.PHONY: bench
bench: build ## Load the streamer with real SSE streams (hack/bench): the embedded log, then NATS (three local nodes); results into docs/benchmarks.{json,md}. About seven minutes.
	$(GO) run ./hack/bench -herald $(BIN)/herald -json docs/benchmarks.json -markdown docs/benchmarks.md $(BENCH_FLAGS)

##@ Run

.PHONY: run
run: build ## Run a local platform: a real API server with the CRDs and samples, the operator, and the streamer pods it asks for as local processes (Ctrl-C stops it).
	@assets="$$(hack/envtest-assets.sh)" && KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/localplatform -herald $(BIN)/herald

##@ Deployment

.PHONY: install
install: ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs (and every channel and event!) from the current cluster.
	kubectl delete --ignore-not-found -k config/crd
