//go:build !linux

package memrelease

// releaseExecutable does nothing where there is no /proc/self/maps.
func releaseExecutable() error { return nil }
