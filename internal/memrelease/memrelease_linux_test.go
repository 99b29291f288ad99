package memrelease

import (
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Release", func() {
	It("takes the executable's pages out of the process's resident memory, and the process runs on", func() {
		// Symbolising a profile maps the runtime's function tables, as the
		// process's start mapped its inits' code (and another spec may
		// have released those already).
		Expect(pprof.Lookup("goroutine").WriteTo(io.Discard, 2)).To(Succeed())
		before := residentFileKiB()
		Expect(Release()).To(Succeed())
		after := residentFileKiB()
		// What the test runs after the release maps some pages again,
		// fewer than were mapped.
		Expect(after).To(BeNumerically("<", before*3/4), "RssFile before %d KiB, after %d KiB", before, after)
		// Code and constants read after the release are those of the file.
		Expect(strings.ToUpper("still runs")).To(Equal("STILL RUNS"))
	})
})

// residentFileKiB is the process's resident memory mapped from files (the
// executable's pages), RssFile of /proc/self/status.
func residentFileKiB() int {
	GinkgoHelper()
	status, err := os.ReadFile("/proc/self/status")
	Expect(err).NotTo(HaveOccurred())
	for line := range strings.Lines(string(status)) {
		if value, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(value), " kB"))
			Expect(err).NotTo(HaveOccurred())
			return kib
		}
	}
	Fail("no RssFile in /proc/self/status")
	return 0
}
