package apiserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestAPIServer(t *testing.T) {
	testutil.RunSuite(t, "envtest assets and API server helpers")
}

// assetsScript runs hack/envtest-assets.sh with KUBEBUILDER_ASSETS set.
func assetsScript(assets string) (string, string, error) {
	cmd := exec.Command("bash", filepath.Join("..", "..", "hack", "envtest-assets.sh"))
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+assets)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

var _ = Describe("hack/envtest-assets.sh", func() {
	It("honours a preset KUBEBUILDER_ASSETS that holds both binaries", func() {
		dir := GinkgoT().TempDir()
		for _, name := range []string{"kube-apiserver", "etcd"} {
			Expect(os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755)).To(Succeed())
		}
		stdout, _, err := assetsScript(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(stdout)).To(Equal(dir))
	})

	It("refuses a preset KUBEBUILDER_ASSETS without them, naming the problem", func() {
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\n"), 0o755)).To(Succeed())
		stdout, stderr, err := assetsScript(dir)
		Expect(err).To(HaveOccurred())
		Expect(stdout).To(BeEmpty())
		Expect(stderr).To(ContainSubstring("does not contain executable kube-apiserver and etcd"))
	})
})
