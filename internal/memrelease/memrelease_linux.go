package memrelease

import (
	"fmt"
	"os"
	"syscall"
)

// releaseExecutable unmaps the executable's read-only pages with
// madvise(MADV_DONTNEED): for a private file mapping that was never written,
// the next access maps the page cache's page again.
func releaseExecutable() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("failed to find the executable: %w", err)
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return fmt.Errorf("failed to read the memory map: %w", err)
	}
	defer func() { _ = maps.Close() }()
	ranges, err := readOnlyMappings(maps, exe)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r.start, r.end-r.start, syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("failed to release the executable's pages at %#x: %w", r.start, errno)
		}
	}
	return nil
}
