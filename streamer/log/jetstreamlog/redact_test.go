package jetstreamlog_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

var _ = DescribeTable("RedactURLs leaves out the credentials a NATS URL carries",
	func(urls, want string) {
		Expect(jetstreamlog.RedactURLs(urls)).To(Equal(want))
	},
	Entry("user and password", "nats://herald:s3cret@nats-1:4222", "nats://nats-1:4222"),
	Entry("a token as user", "tls://tok3n@nats-1:4222", "tls://nats-1:4222"),
	Entry("a list, some with credentials", "nats://a:b@n1:4222, nats://n2:4222", "nats://n1:4222,nats://n2:4222"),
	Entry("none", "nats://n1:4222", "nats://n1:4222"),
	Entry("unparsable with an @", "nats://us er:pa%zz@n1", "(a URL that cannot be parsed)"),
)
