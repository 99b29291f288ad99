// Package memrelease gives memory back to the kernel: what a process needed
// only to start (Release), and what it grew to for a burst of work once it is
// quiet again (WhenQuiet).
//
// A herald binary holds the operator, the streamer and everything they link:
// every package's init runs in every process, and touches code and read-only
// data all over the executable, which the kernel then counts in the process's
// resident memory (RSS). A streamer serving no stream uses less than half of
// those pages afterwards. Release unmaps the rest: they stay in the kernel's
// page cache, shared and reclaimable, and a page the process uses again is
// mapped again on its first access (a minor fault, no read).
package memrelease

import (
	"bufio"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
)

// Release collects garbage, returns the free heap to the kernel
// (debug.FreeOSMemory) and, on Linux, unmaps the pages of the executable's
// read-only segments (its code and constant data). Call it once the process
// has started what it serves; it is safe at any time, only slower to run
// than to skip.
func Release() error {
	debug.FreeOSMemory()
	return releaseExecutable()
}

// mapping is one address range of /proc/self/maps.
type mapping struct {
	start, end uintptr
}

// readOnlyMappings returns the ranges of maps (in the format of
// /proc/self/maps) that map the file exe and cannot be written: writable
// ones hold the process's own data, which unmapping would reset.
func readOnlyMappings(maps io.Reader, exe string) ([]mapping, error) {
	var found []mapping
	scanner := bufio.NewScanner(maps)
	for scanner.Scan() {
		// address perms offset dev inode path; the path may hold spaces.
		fields := strings.SplitN(scanner.Text(), " ", 6)
		if len(fields) < 6 || strings.ContainsRune(fields[1], 'w') {
			continue
		}
		if path := strings.TrimLeft(fields[5], " "); path != exe {
			continue
		}
		from, to, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("unexpected address range %q in the memory map", fields[0])
		}
		start, err := strconv.ParseUint(from, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected address range %q in the memory map: %w", fields[0], err)
		}
		end, err := strconv.ParseUint(to, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected address range %q in the memory map: %w", fields[0], err)
		}
		found = append(found, mapping{start: uintptr(start), end: uintptr(end)})
	}
	return found, scanner.Err()
}
