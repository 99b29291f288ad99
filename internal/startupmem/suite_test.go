package startupmem

import (
	"testing"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestStartupMem(t *testing.T) {
	testutil.RunSuite(t, "startup memory")
}
