package main

import (
	"bytes"
	"encoding/json"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/version"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestHerald(t *testing.T) {
	testutil.RunSuite(t, "herald command line")
}

// invoke runs herald with args and returns its exit status and output.
func invoke(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var _ = Describe("herald", func() {
	It("prints its version", func() {
		code, stdout, _ := invoke("version")
		Expect(code).To(Equal(0))
		Expect(stdout).To(HavePrefix("herald " + version.Version))
		Expect(stdout).To(ContainSubstring("linux/"))
	})

	It("prints its version as JSON", func() {
		code, stdout, _ := invoke("version", "--output", "json")
		Expect(code).To(Equal(0))
		var info version.Info
		Expect(json.Unmarshal([]byte(stdout), &info)).To(Succeed())
		Expect(info.Version).To(Equal(version.Version))
		Expect(info.GoVersion).To(HavePrefix("go1."))
	})

	DescribeTable("rejects bad usage with exit status 2 and says why",
		func(args []string, message string) {
			code, _, stderr := invoke(args...)
			Expect(code).To(Equal(2))
			Expect(stderr).To(ContainSubstring(message))
		},
		Entry("unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`),
		Entry("unknown output format", []string{"version", "--output", "yaml"}, `--output must be text or json, not "yaml"`),
		Entry("unknown flag", []string{"version", "--colour"}, "flag provided but not defined: -colour"),
		Entry("stray argument", []string{"version", "now"}, `unexpected argument "now"`),
	)

	It("lists its commands on help and without arguments", func() {
		code, stdout, _ := invoke("help")
		Expect(code).To(Equal(0))
		Expect(stdout).To(ContainSubstring("version"))
		code, stdout, _ = invoke()
		Expect(code).To(Equal(2))
		Expect(stdout).To(ContainSubstring("Usage: herald <command>"))
	})
})

var _ = It("prints a command's flags on -h", func() {
	code, stdout, _ := invoke("version", "-h")
	Expect(code).To(Equal(0))
	Expect(stdout).To(ContainSubstring("Usage of herald version:"))
	Expect(stdout).To(ContainSubstring("-output"))
})
