package caddysse

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestCaddyfileAdaptToJSON runs the golden files in
// testdata/caddyfile_adapt: each holds a Caddyfile, a line "----------",
// then the JSON that `caddy adapt` must produce for it. Every option of
// both directives appears in one of them, so they double as the reference
// of each option's JSON twin.
func TestCaddyfileAdaptToJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/caddyfile_adapt")
	}

	winNewlines := regexp.MustCompile(`\r?\n`)

	for _, path := range files {
		filename := filepath.Base(path)
		t.Run(filename, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading %s: %v", path, err)
			}
			parts := strings.Split(winNewlines.ReplaceAllString(string(data), "\n"), "----------")
			if len(parts) != 2 {
				t.Fatalf("%s: want one Caddyfile and one JSON part separated by a line of ----------, got %d parts", filename, len(parts))
			}
			caddyfile, expected := strings.TrimSpace(parts[0])+"\n", strings.TrimSpace(parts[1])
			if !caddytest.CompareAdapt(t, filename, caddyfile, "caddyfile", expected) {
				t.Errorf("adapting %s did not produce the expected JSON (diff above)", filename)
			}
		})
	}
}
