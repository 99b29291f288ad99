package main

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("herald streamer", func() {
	It("names a missing or doubled source, a bad --channel, --secrets-poll and --log-level", func() {
		code, _, stderr := invoke("streamer")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring("give exactly one of --config FILE or --channel NAMESPACE/NAME"))
		code, _, stderr = invoke("streamer", "--config", "x.yaml", "--channel", "apps/notifications")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring("give exactly one of"))
		code, _, stderr = invoke("streamer", "--channel", "notifications")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`--channel: channel "notifications" must be NAMESPACE/NAME`))
		code, _, stderr = invoke("streamer", "--config", "x.yaml", "--log-level", "loud")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`--log-level must be debug, info, warn or error, not "loud"`))
		code, _, stderr = invoke("streamer", "--config", "x.yaml", "--secrets-poll", "0s")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`--secrets-poll must be a positive duration (such as 5s), not 0s`))
	})
})
