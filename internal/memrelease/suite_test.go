package memrelease

import (
	"testing"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestMemRelease(t *testing.T) {
	testutil.RunSuite(t, "memory release")
}
