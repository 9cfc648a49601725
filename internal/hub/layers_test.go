package hub

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoOuterLayer keeps the layering from rotting silently: the
// core (this package) imports nothing of Caddy, Redis, JWT or Mercure, and
// the Redis engine nothing of Caddy or Mercure. Only the standard library,
// zap and humanize may appear under the core.
func TestCoreImportsNoOuterLayer(t *testing.T) {
	for pkg, forbidden := range map[string][]string{
		"github.com/ssehub/caddy-sse/internal/hub":      {"caddy", "redis", "jwt", "mercure"},
		"github.com/ssehub/caddy-sse/internal/redishub": {"caddy", "jwt", "mercure"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			// Our own packages are named by their path below the module
			// (whose name contains "caddy").
			name := strings.TrimPrefix(dep, "github.com/ssehub/caddy-sse/")
			for _, f := range forbidden {
				if strings.Contains(strings.ToLower(name), f) {
					t.Errorf("%s depends on %s: it must not import anything of %s", pkg, dep, f)
				}
			}
		}
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/ssehub/caddy-sse/internal/hub").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		stdlib := !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".")
		allowed := stdlib || strings.HasPrefix(dep, "github.com/ssehub/caddy-sse/internal/") ||
			strings.HasPrefix(dep, "go.uber.org/") || strings.HasPrefix(dep, "github.com/dustin/go-humanize")
		if !allowed {
			t.Errorf("the core depends on %s: only the standard library, zap and humanize are allowed", dep)
		}
	}
}
