package testutil

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// RunSuite runs a package's Ginkgo specs in random order, so that no spec
// comes to depend on another having run first.
func RunSuite(t *testing.T, description string) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	suiteConfig, reporterConfig := ginkgo.GinkgoConfiguration()
	suiteConfig.RandomizeAllSpecs = true
	ginkgo.RunSpecs(t, description, suiteConfig, reporterConfig)
}
