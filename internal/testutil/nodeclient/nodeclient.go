// Package nodeclient is the harness of the suites that run a client program
// under Node against real streamers (test/eventsource, test/jsclient): the
// suite's setup and leak check, the Node programs that report what they did
// one JSON line at a time, and the streamers they connect to, served in the
// test process on loopback ports.
package nodeclient

import (
	"os/exec"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"go.uber.org/goleak"
)

// InstallHint says how a suite's npm packages get installed.
const InstallHint = "run make test, which installs them via hack/npm-deps.sh"

// Node is the node binary the suite's programs run under.
type Node struct {
	// path is set by the suite's BeforeSuite.
	path string
}

// Lookup finds node on PATH, for a suite that sets itself up otherwise
// than with SetUpSuite.
func Lookup() (*Node, error) {
	path, err := exec.LookPath("node")
	if err != nil {
		return nil, err
	}
	return &Node{path: path}, nil
}

// SetUpSuite declares the suite's BeforeSuite and AfterSuite, and returns
// the Node that the BeforeSuite finds. Call it once, at the top level of the
// suite's package; runs says what the suite runs under Node, packages are
// the npm packages its programs import.
//
// The BeforeSuite fails the suite when Node or a package is missing rather
// than skipping it: a skipped suite would let CI pass without ever running
// the client. The AfterSuite expects every stream, reader goroutine and Node
// process of the suite to have ended.
func SetUpSuite(runs string, packages ...string) *Node {
	node := &Node{}
	var leaksBefore goleak.Option
	ginkgo.BeforeSuite(func() {
		gomega.SetDefaultEventuallyTimeout(10 * time.Second)
		found, err := Lookup()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "node is not on PATH: this suite runs "+runs+" under Node.js 20 or newer; "+
			"install Node.js and npm (Debian: apt-get install nodejs npm), then "+InstallHint)
		*node = *found
		for _, pkg := range packages {
			gomega.Expect(filepath.Join("node_modules", pkg, "package.json")).To(gomega.BeAnExistingFile(),
				"the suite's npm packages are not installed: "+InstallHint)
		}
		leaksBefore = goleak.IgnoreCurrent()
	})
	ginkgo.AfterSuite(func() {
		gomega.Eventually(func() error { return goleak.Find(leaksBefore) }).Should(gomega.Succeed())
	})
	return node
}
