package freeport_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/freeport"
)

func TestFreeport(t *testing.T) {
	testutil.RunSuite(t, "freeport")
}

var _ = Describe("stable ports", func() {
	It("are distinct free loopback ports below the kernel's ephemeral range", func() {
		ports, err := freeport.Stable(6)
		Expect(err).NotTo(HaveOccurred())
		Expect(ports).To(HaveLen(6))
		seen := map[int]bool{}
		for _, port := range ports {
			Expect(seen).NotTo(HaveKey(port))
			seen[port] = true
			if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
				low, err := strconv.Atoi(strings.Fields(string(data))[0])
				Expect(err).NotTo(HaveOccurred())
				Expect(port).To(BeNumerically("<", low))
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			Expect(err).NotTo(HaveOccurred(), "port %d is free", port)
			Expect(ln.Close()).To(Succeed())
		}
	})
})
