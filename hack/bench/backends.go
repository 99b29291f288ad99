package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// Backend names, the values of -backend.
const (
	backendEmbedded        = "embedded"
	backendNATS            = "nats"
	backendNATSDefaultSync = "nats-default-sync"
)

// natsStreamReplicas is the channel's broker.nats.streamReplicas on the NATS
// backends: every event is stored on all three local nodes, as the README's
// "Scaling out" recommends for production.
const natsStreamReplicas = 3

// backend is an event log the streamer is benchmarked with.
type backend struct {
	name   string
	broker notifyv1alpha1.BrokerType
	// nats says the log lives in a local three-node NATS cluster, which the
	// generator starts for the backend's scenarios and stops after them.
	nats bool
	// periodicSync leaves NATS's default fsync (every two minutes) instead
	// of the sync_interval: always that Herald recommends.
	periodicSync bool
	// scenarios are the scenarios the backend runs. The NATS backends run
	// those where every event goes through the broker; idle memory and the
	// connect rate do not touch the log, and a resume reads the window the
	// streamer keeps in memory, as the embedded log does.
	scenarios []string
	// log describes the log in the results.
	log string
}

// backends are the logs of -backend, in the order a run measures them.
var backends = []backend{
	{name: backendEmbedded, broker: notifyv1alpha1.BrokerEmbedded, scenarios: allScenarios, log: "embedded"},
	{
		name: backendNATS, broker: notifyv1alpha1.BrokerNATS, nats: true,
		scenarios: []string{scenarioBroadcast, scenarioPerUser},
		log:       "NATS JetStream, 3 local nodes, stream replicas 3, sync_interval: always",
	},
	// The default fsync is a comparison, not a setting to run: it only
	// changes what a publish waits for, so only the per-user scenario,
	// bounded by publishing, runs with it.
	{
		name: backendNATSDefaultSync, broker: notifyv1alpha1.BrokerNATS, nats: true, periodicSync: true,
		scenarios: []string{scenarioPerUser},
		log:       "NATS JetStream, 3 local nodes, stream replicas 3, default sync (fsync every 2 min; for comparison only, not safe)",
	},
}

func backendNames() []string { return namesOf(backends) }

// backendsUsage lists the backends with their scenarios, for -help.
func backendsUsage() string {
	parts := make([]string, len(backends))
	for i, b := range backends {
		parts[i] = fmt.Sprintf("%s (%s: %s)", b.name, strings.Join(b.scenarios, ","), b.log)
	}
	return strings.Join(parts, "; ")
}

// parseBackends resolves -backend's list, in the order of backends.
func parseBackends(list string) ([]backend, error) {
	names := strings.Split(list, ",")
	var out []backend
	for _, b := range backends {
		if slices.Contains(names, b.name) {
			out = append(out, b)
		}
	}
	for _, name := range names {
		if !slices.Contains(backendNames(), name) {
			return nil, fmt.Errorf("backend %q is not available: use one of %s", name, strings.Join(backendNames(), ","))
		}
	}
	return out, nil
}

// runs is the scenarios of asked that b runs, in the order asked.
func (b backend) runs(asked []string) []string {
	var out []string
	for _, s := range asked {
		if slices.Contains(b.scenarios, s) {
			out = append(out, s)
		}
	}
	return out
}

// only reports whether b is the one default backend that runs scenario: its
// rows then reproduce without naming the backend.
func (b backend) only(scenario string) bool {
	for _, other := range backends {
		if other.name != b.name && slices.Contains(other.scenarios, scenario) {
			return false
		}
	}
	return true
}

// BackendInfo describes one log a run measured.
type BackendInfo struct {
	Name      string   `json:"name"`
	Log       string   `json:"log"`
	Scenarios []string `json:"scenarios"`
	// StoreFilesystem is the filesystem of the NATS nodes' stores: with
	// sync_interval: always every write waits for its fsync, which a tmpfs
	// makes free.
	StoreFilesystem string `json:"storeFilesystem,omitempty"`
}

// Filesystem magic numbers of statfs(2), for the ones a store is likely on.
var filesystemNames = map[int64]string{
	0xef53:     "ext4",
	0x58465342: "xfs",
	0x9123683e: "btrfs",
	0x01021994: "tmpfs",
	0x794c7630: "overlayfs",
	0x2fc12fc1: "zfs",
}

// filesystem names the filesystem dir is on.
func filesystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	if name, ok := filesystemNames[int64(st.Type)]; ok { //nolint:unconvert // Type's width differs between architectures
		return name
	}
	return fmt.Sprintf("0x%x", st.Type)
}
