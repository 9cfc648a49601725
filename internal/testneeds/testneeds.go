// Package testneeds lets a test require an outside program (chromium,
// redis-server, nginx) and makes sure a suite skipped for a missing one
// cannot go unnoticed.
//
// A test calls Binary; the package's TestMain calls Run. Under CI=true a
// missing program fails the test. Elsewhere the test is skipped, and Run
// prints one summary of every suite skipped and why where a plain
// `go test ./...` shows it: that command keeps a passing package's output
// to itself (it prints only "ok"), so the summary is written to the go
// command's own standard error.
package testneeds

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// skipped is what Binary recorded, by suite.
var (
	mu      sync.Mutex
	skipped = map[string]*skip{}
)

type skip struct {
	reason string
	tests  int
}

// Binary returns the path of the program name. When it is not on PATH, the
// test fails if CI=true; otherwise it is skipped, and the skip is recorded
// for Run's summary. suite names the tests that need the program ("the
// Redis tests"); install says how to get it.
func Binary(t testing.TB, name, suite, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	reason := fmt.Sprintf("%s is not on PATH (install it: %s)", name, install)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s did not run: %s", suite, reason)
	}
	record(suite, reason)
	uncacheable()
	t.Skipf("SKIPPED, NOT PASSED: %s did not run: %s", suite, reason)
	return ""
}

func record(suite, reason string) {
	mu.Lock()
	defer mu.Unlock()
	s := skipped[suite]
	if s == nil {
		s = &skip{reason: reason}
		skipped[suite] = s
	}
	s.tests++
}

// uncacheable keeps `go test` from caching this run. A cached pass is
// replayed as a bare "ok (cached)", without the summary, so a second
// `go test ./...` would hide the skip again. The go command refuses to
// cache a run that opened a file of the module modified less than two
// seconds before it saves the result; a file dated in the future always is
// (an hour covers the longest run). The file is ignored by git.
func uncacheable() {
	root, ok := moduleRoot()
	if !ok {
		return
	}
	marker := filepath.Join(root, ".tests-skipped")
	if err := os.WriteFile(marker, []byte("A test run skipped tests; this file keeps `go test` from caching it (internal/testneeds). Safe to delete.\n"), 0o644); err != nil {
		return
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(marker, future, future)
}

// moduleRoot is the directory of the go.mod above the working directory
// (the go command runs a test in its package's directory).
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Run runs the package's tests and, if suites were skipped, prints which
// and why. It returns m.Run's exit code, for os.Exit.
func Run(m *testing.M) int {
	code := m.Run()
	if text := summary(); text != "" {
		out := goStderr()
		if out == nil {
			out = os.Stderr
		} else {
			defer out.Close()
		}
		fmt.Fprint(out, text)
	}
	return code
}

// summary is the report of the skipped suites, or "" when none was.
func summary() string {
	mu.Lock()
	defer mu.Unlock()
	if len(skipped) == 0 {
		return ""
	}
	suites := make([]string, 0, len(skipped))
	total := 0
	for suite, s := range skipped {
		suites = append(suites, suite)
		total += s.tests
	}
	sort.Strings(suites)
	var b strings.Builder
	fmt.Fprintf(&b, "SKIPPED, NOT PASSED: %s: %d test(s) did not run:\n", packagePath(), total)
	for _, suite := range suites {
		s := skipped[suite]
		fmt.Fprintf(&b, "    %s (%d): %s\n", suite, s.tests, s.reason)
	}
	b.WriteString("    `bash .ci/test` installs what is missing; with CI=true these tests fail instead of skipping.\n")
	return b.String()
}

// packagePath is the import path of the package under test.
func packagePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		return strings.TrimSuffix(bi.Path, ".test")
	}
	dir, _ := os.Getwd()
	return dir
}

// goStderr opens the go command's standard error when this test binary's
// output would otherwise not be shown: it runs under `go test` in
// package-list mode (`go test ./...`) without -v or -json, where the go
// command collects the output and throws it away when the package passes.
// It returns nil wherever that is not known to be so, or where writing
// there could harm the go command's own output; Run then falls back to
// this binary's standard error, which the go command shows with -v, with
// -json, on a failure, and in local-directory mode.
func goStderr() *os.File {
	if v := flag.Lookup("test.v"); v == nil || v.Value.String() != "false" {
		return nil // -v or -json: the output is shown
	}
	parent := "/proc/" + strconv.Itoa(os.Getppid())
	if exe, err := os.Readlink(parent + "/exe"); err != nil || filepath.Base(exe) != "go" {
		return nil // not run by the go command (a -exec wrapper, a binary run by hand)
	}
	// Local-directory mode (`go test` with no package): our output goes
	// to the go command's standard output already.
	ours, err1 := os.Stdout.Stat()
	theirs, err2 := os.Stat(parent + "/fd/1")
	if err1 != nil || err2 != nil || os.SameFile(ours, theirs) {
		return nil
	}
	path := parent + "/fd/2"
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	// A regular file opened anew has its own offset: unless the go
	// command writes it in append mode, its next lines would overwrite ours.
	if info.Mode().IsRegular() && !appending(parent+"/fdinfo/2") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}

// appending reports whether the descriptor described by an fdinfo file
// was opened with O_APPEND (its "flags:" field, in octal).
func appending(fdinfo string) bool {
	b, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&syscall.O_APPEND != 0
		}
	}
	return false
}
