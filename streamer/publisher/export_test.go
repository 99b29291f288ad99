package publisher

// Priorities exposes the priorities the client accepts, for the specs that
// tie them to the streamer's.
var Priorities = priorities
