// Package streamer is the data plane: it serves Server-Sent Event streams to
// application clients and accepts events from publishers. Its parts live in
// sub-packages named for their concepts (auth, log, hub, sse, event, publish, kube);
// they land with the streamer issue.
package streamer
