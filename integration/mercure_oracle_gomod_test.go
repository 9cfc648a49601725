package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMercureOracleNotInProductModule: Mercure (AGPL) runs only as a test
// oracle, built from the separate module in oracle/. The product's module
// graph must never reach it, not even indirectly.
func TestMercureOracleNotInProductModule(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = ".." // the main module
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/ssehub/caddy-sse") {
		t.Fatalf("go list -m all did not list the main module:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "dunglas/mercure") {
			t.Errorf("the product module requires Mercure: %q (the oracle belongs in oracle/go.mod only)", line)
		}
	}
}
