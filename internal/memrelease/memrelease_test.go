package memrelease

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// maps is a /proc/self/maps of a herald process: its executable's code,
// constant data and data, a shared library, the heap and the stack.
const maps = `00400000-0246a000 r-xp 00000000 fe:00 9977978                            /opt/herald bin/herald
0246a000-04ca1000 r--p 0206a000 fe:00 9977978                            /opt/herald bin/herald
04ca1000-04d8b000 rw-p 048a1000 fe:00 9977978                            /opt/herald bin/herald
04d8b000-04dbc000 rw-p 00000000 00:00 0
7f2a470e0000-7f2a47500000 rw-p 00000000 00:00 0
7f2a47500000-7f2a47510000 r--p 00000000 fe:00 1234                       /usr/lib/libc.so.6
7ffd1b9f2000-7ffd1ba13000 rw-p 00000000 00:00 0                          [stack]
`

var _ = Describe("readOnlyMappings", func() {
	It("finds the executable's read-only ranges, not its data or other files", func() {
		found, err := readOnlyMappings(strings.NewReader(maps), "/opt/herald bin/herald")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(Equal([]mapping{
			{start: 0x400000, end: 0x246a000},
			{start: 0x246a000, end: 0x4ca1000},
		}))
	})

	It("matches an executable replaced on disk by its path as the kernel shows it", func() {
		found, err := readOnlyMappings(strings.NewReader(
			"00400000-0246a000 r-xp 00000000 fe:00 9977978 /opt/herald (deleted)\n"), "/opt/herald (deleted)")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(Equal([]mapping{{start: 0x400000, end: 0x246a000}}))
	})

	It("names an address range it cannot read", func() {
		_, err := readOnlyMappings(strings.NewReader(
			"00400000-zz r-xp 00000000 fe:00 9977978 /opt/herald\n"), "/opt/herald")
		Expect(err).To(MatchError(ContainSubstring(`unexpected address range "00400000-zz"`)))
	})
})
