//go:build race

package fleettest

// raceEnabled: the test binary runs under the race detector, so the herald
// binary it builds does too.
const raceEnabled = true
