package sse_test

import (
	"testing"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestSSE(t *testing.T) {
	testutil.RunSuite(t, "SSE framing")
}
