package testneeds

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The summary names every suite once, with its count and reason.
func TestSummaryListsEverySkippedSuite(t *testing.T) {
	if summary() != "" {
		t.Fatal("a summary before anything was skipped")
	}
	defer func() { skipped = map[string]*skip{} }()
	record("the Redis engine tests", "redis-server is not on PATH")
	record("the browser tests", "chromium is not on PATH")
	record("the Redis engine tests", "redis-server is not on PATH")
	got := summary()
	for _, want := range []string{
		"SKIPPED, NOT PASSED: github.com/ssehub/caddy-sse/internal/testneeds: 3 test(s) did not run:\n",
		"    the Redis engine tests (2): redis-server is not on PATH\n",
		"    the browser tests (1): chromium is not on PATH\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

// appending reads O_APPEND from /proc's fdinfo: writing into a file the go
// command did not open for appending would overwrite its output.
func TestAppendingReadsTheOpenFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		flags int
		want  bool
	}{
		{os.O_WRONLY | os.O_CREATE | os.O_TRUNC, false},
		{os.O_WRONLY | os.O_CREATE | syscall.O_APPEND, true},
	} {
		f, err := os.OpenFile(path, c.flags, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if got := appending(fmt.Sprintf("/proc/self/fdinfo/%d", f.Fd())); got != c.want {
			t.Errorf("flags %o: appending %v, want %v", c.flags, got, c.want)
		}
		f.Close()
	}
}
