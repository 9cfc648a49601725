package redishub

import (
	"os"
	"testing"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// TestMain reports the Redis tests skipped for want of redis-server (see
// internal/testneeds), where a plain `go test ./...` shows it.
func TestMain(m *testing.M) { os.Exit(testneeds.Run(m)) }
