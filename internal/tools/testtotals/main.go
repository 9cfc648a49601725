// Command testtotals reads `go test -json` on its standard input and
// writes what plain `go test` would (a line per package, the output of the
// tests that failed), then the totals of passed, failed and skipped tests.
// It exits 1 when a test or package failed. .ci/gotest runs it.
//
//	go test -json ./... | testtotals [-v]
//
// -v writes every test's output, as go test -v would.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "write every test's output, not only that of failed tests")
	flag.Parse()
	t, err := run(os.Stdin, os.Stdout, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testtotals:", err)
		os.Exit(2)
	}
	if t.failed > 0 || t.packagesFailed > 0 {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // of build-output and build-fail
	Test       string
	Output     string
}

// totals counts tests by outcome; subtests count as tests, as go test
// counts them.
type totals struct {
	passed, failed, skipped int
	packagesFailed          int
	failedTests             []string // "TestX (package)", in the order they failed
}

// run copies in to out as described above and returns the totals.
func run(in io.Reader, out io.Writer, verbose bool) (totals, error) {
	var t totals
	w := bufio.NewWriter(out)
	defer w.Flush()
	// held is each running top-level test's output, its subtests' included:
	// written if it fails, dropped if not.
	held := map[string]*strings.Builder{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event: pass it on
			continue
		}
		if e.Test == "" {
			switch e.Action {
			case "output", "build-output":
				if strings.HasPrefix(e.Output, "FAIL") {
					writeHeld(w, held, e.Package)
				}
				if verbose || strings.TrimSpace(e.Output) != "PASS" {
					w.WriteString(e.Output)
				}
			case "fail":
				t.packagesFailed++
				writeHeld(w, held, e.Package)
			}
			w.Flush()
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		key := e.Package + " " + top
		switch e.Action {
		case "output":
			if verbose {
				w.WriteString(e.Output)
			} else if !isFraming(e.Output) {
				b := held[key]
				if b == nil {
					b = new(strings.Builder)
					held[key] = b
				}
				b.WriteString(e.Output)
			}
		case "pass":
			t.passed++
		case "skip":
			t.skipped++
		case "fail":
			t.failed++
			t.failedTests = append(t.failedTests, fmt.Sprintf("%s (%s)", e.Test, e.Package))
		}
		if e.Test == top && (e.Action == "pass" || e.Action == "skip" || e.Action == "fail") {
			if b := held[key]; b != nil && e.Action == "fail" {
				w.WriteString(b.String())
				w.Flush()
			}
			delete(held, key)
		}
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped (subtests included)\n", t.passed, t.failed, t.skipped)
	if t.packagesFailed > 0 {
		fmt.Fprintf(w, "packages failed: %d\n", t.packagesFailed)
	}
	for _, name := range t.failedTests {
		fmt.Fprintf(w, "FAILED %s\n", name)
	}
	return t, nil
}

// writeHeld writes and forgets the output held for tests of pkg: tests
// still running when their package failed (a crash, a timeout) have no
// outcome of their own, and what they wrote tells why.
func writeHeld(w *bufio.Writer, held map[string]*strings.Builder, pkg string) {
	for _, key := range slices.Sorted(maps.Keys(held)) {
		if strings.HasPrefix(key, pkg+" ") {
			w.WriteString(held[key].String())
			delete(held, key)
		}
	}
}

// isFraming reports whether a test's output line is one of go test -v's
// "=== RUN", "=== PAUSE", "=== CONT" or "=== NAME" lines, which plain go
// test does not write.
func isFraming(line string) bool {
	return strings.HasPrefix(line, "=== ")
}
