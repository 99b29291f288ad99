// Package version holds the build's identity, stamped by the linker
// (see the Makefile's LDFLAGS) and printed by "herald version".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time with -X; the zero values describe a plain "go build".
var (
	// Version is the release, e.g. v0.1.0, or "dev".
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = ""
)

// Info is the build identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the identity of the running binary. When the linker did not
// stamp a commit, the VCS revision recorded by the Go toolchain is used.
func Get() Info {
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return Info{
		Version:   Version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String is the one-line form printed by "herald version".
func (i Info) String() string {
	s := fmt.Sprintf("herald %s (%s, %s)", i.Version, i.GoVersion, i.Platform)
	if i.Commit != "" {
		s = fmt.Sprintf("herald %s commit %s (%s, %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
	}
	return s
}
