package mercure

import (
	"os"
	"testing"

	// The adapter tests read whole Caddyfiles (encode, respond, ...).
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// TestMain reports the Redis tests skipped for want of redis-server (see
// internal/testneeds), where a plain `go test ./...` shows it.
func TestMain(m *testing.M) { os.Exit(testneeds.Run(m)) }
