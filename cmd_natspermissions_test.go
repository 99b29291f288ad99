package main

import (
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

var _ = Describe("herald nats-permissions", func() {
	It("prints a block the NATS server's own parser reads into the channel's permissions", func() {
		code, stdout, stderr := invoke("nats-permissions", "shop/shop-notifications")
		Expect(code).To(Equal(0), stderr)
		Expect(stdout).To(HavePrefix("# The NATS permissions of the streamers of NotificationChannel shop/shop-notifications"))

		config := "authorization {\n  users: [\n    {user: herald, password: pw, " + stdout + "}\n  ]\n}\n"
		path := filepath.Join(GinkgoT().TempDir(), "nats.conf")
		Expect(os.WriteFile(path, []byte(config), 0o600)).To(Succeed())
		opts, err := server.ProcessConfigFile(path)
		Expect(err).NotTo(HaveOccurred(), config)
		Expect(opts.Users).To(HaveLen(1))
		want := jetstreamlog.ChannelPermissions("shop", "shop-notifications")
		got := opts.Users[0].Permissions
		Expect(got.Publish.Allow).To(Equal(want.Publish))
		Expect(got.Subscribe.Allow).To(Equal(want.Subscribe))
		Expect(got.Response).NotTo(BeNil(), "allow_responses")
		Expect(got.Publish.Allow).To(ContainElement("herald.shop.shop-notifications.events"))
	})

	DescribeTable("names what is wrong with its argument",
		func(args []string, message string) {
			code, _, stderr := invoke(append([]string{"nats-permissions"}, args...)...)
			Expect(code).To(Equal(2))
			Expect(stderr).To(ContainSubstring(message))
		},
		Entry("none", []string{}, "give the channel as one argument NAMESPACE/NAME"),
		Entry("no namespace", []string{"shop-notifications"}, `"shop-notifications" is not NAMESPACE/NAME`),
		Entry("a bad namespace", []string{"Shop/app"}, `namespace "Shop": a lowercase RFC 1123 label`),
		Entry("a bad name", []string{"shop/app_1"}, `channel name "app_1": a lowercase RFC 1123 subdomain`),
	)
})
