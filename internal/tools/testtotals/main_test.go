package main

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// gotest runs .ci/gotest (the script .ci/test runs every package through)
// with args and returns its output and exit status.
func gotest(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../../../.ci/gotest"}, args...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf(".ci/gotest: %v\n%s", err, out)
	return "", 0
}

// A package with a test of each outcome, through the real go test: its
// line, the failed test's output and nothing of the others, then the
// totals and the failed test named; go test's exit status.
func TestGotestTotalsAFailingPackage(t *testing.T) {
	out, status := gotest(t, "-count=1", "./internal/tools/testtotals/testdata/fixture")
	if status != 1 {
		t.Errorf("exit status %d, want go test's 1", status)
	}
	const pkg = "github.com/ssehub/caddy-sse/internal/tools/testtotals/testdata/fixture"
	for _, want := range []string{
		"--- FAIL: TestFail", "shown: the reason", "boom", "\nFAIL\t" + pkg + "\t",
		"\ntests: 3 passed, 1 failed, 2 skipped (subtests included)\n",
		"packages failed: 1\n", "FAILED TestFail (" + pkg + ")\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"not shown", "=== RUN", "--- PASS", "--- SKIP"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("the output has %q, which plain go test does not show:\n%s", unwanted, out)
		}
	}
}

// A passing package (the README's suggestion for trying it): its ok line as
// go test writes it, and totals with none failed; exit status 0.
func TestGotestTotalsAPassingPackage(t *testing.T) {
	out, status := gotest(t, "-count=1", "./internal/testneeds")
	if status != 0 {
		t.Errorf("exit status %d, want 0:\n%s", status, out)
	}
	if !regexp.MustCompile(`(?m)^ok  \tgithub.com/ssehub/caddy-sse/internal/testneeds\t`).MatchString(out) {
		t.Errorf("no ok line for the package:\n%s", out)
	}
	if !regexp.MustCompile(`\ntests: [1-9][0-9]* passed, 0 failed, [0-9]+ skipped \(subtests included\)\n$`).MatchString(out) {
		t.Errorf("no totals with none failed at the end:\n%s", out)
	}
	if strings.Contains(out, "\nPASS\n") || strings.Contains(out, "=== RUN") {
		t.Errorf("the output is go test -v's, not go test's:\n%s", out)
	}
}

// With -v every test's output is shown, as go test -v shows it.
func TestGotestVerbose(t *testing.T) {
	out, _ := gotest(t, "-count=1", "-v", "./internal/tools/testtotals/testdata/fixture")
	for _, want := range []string{"=== RUN   TestPass", "not shown: this test passes", "--- SKIP: TestSkip", "tests: 3 passed, 1 failed, 2 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("with -v the output lacks %q:\n%s", want, out)
		}
	}
}

// Lines that are not go test -json events (a tool writing to stdout) pass
// through unchanged; a package that dies with a test running shows that
// test's output.
func TestRunPassesOtherLinesAndShowsACrashedTest(t *testing.T) {
	in := `not json
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"panic: oops\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
`
	var out strings.Builder
	tot, err := run(strings.NewReader(in), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "not json\npanic: oops\nFAIL\tp\t0.1s\n\ntests: 0 passed, 0 failed, 0 skipped (subtests included)\npackages failed: 1\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
	if tot.packagesFailed != 1 {
		t.Errorf("packages failed %d, want 1", tot.packagesFailed)
	}
}
