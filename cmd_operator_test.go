package main

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/operator"
	"github.com/herald-notify/herald/internal/testutil"
)

// unreachableKubeconfig names an API server that nothing serves: enough for
// the operator to find its configuration, never to reach it.
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`

var _ = Describe("herald operator", func() {
	It("names the missing --streamer-image outside a pod, a bad --log-level and a stray argument", func() {
		kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(os.WriteFile(kubeconfig, []byte(unreachableKubeconfig), 0o600)).To(Succeed())
		testutil.SetEnv("KUBECONFIG", kubeconfig)
		testutil.SetEnv(operator.EnvPodName, "")
		code, _, stderr := invoke("operator", "--health-probe-bind-address", "0", "--metrics-bind-address", "0")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring("herald operator: usage error: --streamer-image is required when POD_NAME and POD_NAMESPACE are not set"))
		code, _, stderr = invoke("operator", "--log-level", "loud")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`--log-level must be debug, info, warn or error, not "loud"`))
		code, _, stderr = invoke("operator", "now")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`unexpected argument "now"`))
	})
})
