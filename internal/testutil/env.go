package testutil

import (
	"os"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// SetEnv sets an environment variable until the node that called it ends:
// the spec, or the suite when called in a BeforeSuite.
func SetEnv(key, value string) {
	ginkgo.GinkgoHelper()
	previous, had := os.LookupEnv(key)
	gomega.Expect(os.Setenv(key, value)).To(gomega.Succeed())
	ginkgo.DeferCleanup(func() {
		if had {
			gomega.Expect(os.Setenv(key, previous)).To(gomega.Succeed())
		} else {
			gomega.Expect(os.Unsetenv(key)).To(gomega.Succeed())
		}
	})
}
