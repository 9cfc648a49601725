package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// validate runs `caddy validate` on caddyfile, as a user would, and returns
// its standard output and its log (standard error).
func validate(t *testing.T, caddyfile string) (stdout, log string, err error) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), caddyBin, "validate", "--config", cfg, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// A misspelt hub in sse_publish is reported by `caddy validate` as it is
// by `caddy run` (TestPublishToHubWithoutTopicsWarnsAtLoad): validate
// provisions every module but starts none, so the warning that needs every
// handler provisioned cannot wait for Start there. The configuration stays
// valid: it runs, and only publishes to that hub are refused.
func TestValidateWarnsOfPublishToHubWithoutTopics(t *testing.T) {
	t.Parallel()
	stdout, log, err := validate(t, `{
	admin off
	persist_config off
}
http://127.0.0.1:8080 {
	sse /events {
		hub news
		topic headlines
	}
	sse_publish /publish {
		hub nwes
	}
}
`)
	if err != nil || !strings.Contains(stdout, "Valid configuration") {
		t.Fatalf("caddy validate: %v\nstdout: %s\nlog:\n%s", err, stdout, log)
	}
	if got := hubsWarnedIn(t, log); !slices.Equal(got, []string{"nwes"}) {
		t.Fatalf("caddy validate warned about hubs %q, want exactly [nwes]\n%s", got, log)
	}

	// Spelt right, it validates without the warning.
	_, log, err = validate(t, `{
	admin off
	persist_config off
}
http://127.0.0.1:8080 {
	sse /events {
		hub news
		topic headlines
	}
	sse_publish /publish {
		hub news
	}
}
`)
	if err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, log)
	}
	if got := hubsWarnedIn(t, log); len(got) != 0 {
		t.Fatalf("caddy validate warned about hubs %q with every hub declared\n%s", got, log)
	}
}
