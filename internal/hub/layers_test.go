package hub

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoOuterLayer keeps the layering from rotting silently: the
// core (this package) depends only on the standard library, zap and
// humanize (none of this module's other packages), and the Redis engine on
// nothing of Caddy, JWT or Mercure.
func TestCoreImportsNoOuterLayer(t *testing.T) {
	const module = "github.com/ssehub/caddy-sse/"
	for pkg, allowed := range map[string]func(dep string) bool{
		module + "internal/hub": func(dep string) bool {
			stdlib := !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".")
			return stdlib || dep == module+"internal/hub" ||
				strings.HasPrefix(dep, "go.uber.org/") || strings.HasPrefix(dep, "github.com/dustin/go-humanize")
		},
		module + "internal/redishub": func(dep string) bool {
			// Our own packages are named by their path below the module
			// (whose name contains "caddy").
			name := strings.ToLower(strings.TrimPrefix(dep, module))
			return !strings.Contains(name, "caddy") && !strings.Contains(name, "jwt") && !strings.Contains(name, "mercure")
		},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if !allowed(dep) {
				t.Errorf("%s depends on %s, which its layer must not import", pkg, dep)
			}
		}
	}
}
