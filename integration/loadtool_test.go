package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load tool's numbers are only worth quoting if it counts right: these
// runs drive a real Caddy with it and check its report against what was
// published. Latency is not asserted (speed is for benchmarks).

var (
	loadToolOnce sync.Once
	loadToolBin  string
	loadToolErr  error
)

func buildLoadTool(t *testing.T) string {
	t.Helper()
	loadToolOnce.Do(func() {
		loadToolBin = filepath.Join(filepath.Dir(caddyBin), "ssebench")
		out, err := exec.Command("go", "build", "-o", loadToolBin, "../cmd/ssebench").CombinedOutput()
		if err != nil {
			loadToolErr = fmt.Errorf("building ssebench: %v\n%s", err, out)
		}
	})
	if loadToolErr != nil {
		t.Fatal(loadToolErr)
	}
	return loadToolBin
}

type loadReport struct {
	Subscribers int              `json:"subscribers"`
	FailedSubs  int              `json:"failed_subscribers"`
	Dropped     int              `json:"subscribers_dropped"`
	DropReasons map[string]int   `json:"dropped_reasons"`
	Expected    int64            `json:"deliveries_expected"`
	Delivered   int64            `json:"delivered"`
	Lost        int64            `json:"lost"`
	Duplicated  int64            `json:"duplicated"`
	OutOfOrder  int64            `json:"out_of_order"`
	Published   uint64           `json:"published"`
	Requests    int64            `json:"publish_requests"`
	Accepted    int64            `json:"publish_accepted"`
	Rejected    int64            `json:"publish_rejected"`
	ByStatus    map[string]int64 `json:"publish_rejected_by_status"`
	Errors      int64            `json:"publish_errors"`
	RetryWait   float64          `json:"publish_retry_wait_seconds"`
	PublishP99  float64          `json:"publish_latency_p99_ms"`
	P50         float64          `json:"latency_p50_ms"`
	ServerRSS   int64            `json:"server_rss_kib"`
	ServerCPU   float64          `json:"server_cpu_seconds"`
	ToolCPUPerM float64          `json:"tool_cpu_seconds_per_million_deliveries"`
}

// runLoadTool runs ssebench with -json and returns its report and exit
// status; a run that printed no report fails the test.
func runLoadTool(t *testing.T, bin string, args ...string) (loadReport, int) {
	t.Helper()
	rep, code, err := loadTool(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return rep, code
}

// loadTool is runLoadTool for a goroutine other than the test's.
func loadTool(bin string, args ...string) (loadReport, int, error) {
	cmd := exec.Command(bin, append([]string{"-json"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return loadReport{}, 0, fmt.Errorf("ssebench %v: %v", args, err)
	}
	var rep loadReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return loadReport{}, code, fmt.Errorf("ssebench %v exited %d; report %q: %v\n%s", args, code, out, err, stderr.String())
	}
	return rep, code, nil
}

func TestLoadToolCountsEveryDelivery(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse /events {
		topic bench
	}
	sse_publish /publish
}`)
	runs := []struct {
		name string
		args []string
	}{
		{"epoll reader, one event per POST", []string{"-reader", "epoll", "-mode", "post"}},
		{"two epoll readers", []string{"-reader", "epoll", "-readers", "2", "-mode", "post"}},
		{"goroutine reader, JSON batches", []string{"-reader", "goroutine", "-mode", "batch", "-batch", "10"}},
		{"epoll reader, streaming publish", []string{"-reader", "epoll", "-mode", "stream"}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			args := append([]string{
				"-sub", c.base + "/events?topic=bench", "-pub", c.base + "/publish?topic=bench",
				"-subs", "50", "-rate", "300", "-duration", "1s", "-settle", "10s",
				"-pid", strconv.Itoa(c.cmd.Process.Pid),
			}, r.args...)
			rep, code := runLoadTool(t, bin, args...)
			switch {
			case code != 0:
				t.Errorf("exit status %d, want 0: %+v", code, rep)
			case rep.Subscribers != 50 || rep.FailedSubs != 0 || rep.Dropped != 0:
				t.Errorf("subscribers %d, failed %d, dropped %d: want 50, 0, 0", rep.Subscribers, rep.FailedSubs, rep.Dropped)
			case rep.Published < 10 || rep.Errors != 0 || rep.Rejected != 0 || rep.Accepted == 0 || rep.Requests != rep.Accepted:
				t.Errorf("published %d; requests %d: %d accepted, %d rejected, %d errors: want every request accepted", rep.Published, rep.Requests, rep.Accepted, rep.Rejected, rep.Errors)
			case rep.Expected != int64(rep.Published)*50 || rep.Delivered != rep.Expected:
				t.Errorf("expected %d, delivered %d, want both %d (published %d × 50)", rep.Expected, rep.Delivered, rep.Published*50, rep.Published)
			case rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0:
				t.Errorf("lost %d, duplicated %d, out of order %d: want 0", rep.Lost, rep.Duplicated, rep.OutOfOrder)
			case rep.P50 <= 0 || rep.ServerRSS <= 0 || rep.ToolCPUPerM <= 0:
				t.Errorf("latency p50 %v ms, server RSS %d KiB, tool CPU %v s/M: want all measured", rep.P50, rep.ServerRSS, rep.ToolCPUPerM)
			case !slices.Contains(r.args, "stream") && rep.PublishP99 <= 0:
				t.Errorf("publish round trip p99 %v ms: want it measured", rep.PublishP99)
			}
		})
	}
}

// -http2 subscribes over TLS through Go's HTTP/2 client, whose body reader
// has already undone the framing.
func TestLoadToolOverHTTP2(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `https://127.0.0.1:{PORT} {
	tls {CERT} {KEY}
	sse /events {
		topic bench
	}
}
http://127.0.0.1:{PORT2} {
	sse_publish /publish
}`)
	rep, code := runLoadTool(t, bin, "-http2",
		"-sub", fmt.Sprintf("https://127.0.0.1:%d/events?topic=bench", c.port),
		"-pub", fmt.Sprintf("http://127.0.0.1:%d/publish?topic=bench", c.port2),
		"-subs", "20", "-rate", "200", "-duration", "1s", "-settle", "10s")
	if code != 0 || rep.FailedSubs+rep.Dropped != 0 || rep.Published < 10 || rep.Delivered != int64(rep.Published)*20 || rep.Lost+rep.Duplicated+rep.OutOfOrder != 0 {
		t.Fatalf("over HTTP/2: exit %d, %d failed and %d dropped subscribers, published %d, delivered %d, lost %d, duplicated %d, out of order %d",
			code, rep.FailedSubs, rep.Dropped, rep.Published, rep.Delivered, rep.Lost, rep.Duplicated, rep.OutOfOrder)
	}
}

// A stream the server ends during the run is a dropped subscriber, over
// either reader: the tool counts it, says why, does not reconnect it, and
// counts everything published after as lost. A reload ends every open
// stream (after a retry hint), so it drops all of them mid-run.
func TestLoadToolReportsDroppedSubscribers(t *testing.T) {
	bin := buildLoadTool(t)
	site := func(heartbeat string) string {
		// The heartbeat differs between configurations only so that a
		// reload is a change (Caddy skips loading an unchanged config).
		return `http://127.0.0.1:{PORT} {
	sse /events {
		topic bench
		heartbeat ` + heartbeat + `
	}
	sse_publish /publish
}`
	}
	c := startCaddy(t, site("15s"))
	for i, reader := range []string{"epoll", "goroutine"} {
		t.Run(reader, func(t *testing.T) {
			const subs = 20
			before := c.stats(t, "default").Published
			type result struct {
				rep  loadReport
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				rep, code, err := loadTool(bin, "-reader", reader,
					"-sub", c.base+"/events?topic=bench", "-pub", c.base+"/publish?topic=bench",
					"-subs", strconv.Itoa(subs), "-rate", "200", "-duration", "4s", "-settle", "2s")
				done <- result{rep, code, err}
			}()
			// Reload once the tool publishes: its subscribers are all
			// connected by then.
			if ok, _ := drillPoll(30*time.Second, func() bool { return c.stats(t, "default").Published > before }); !ok {
				t.Fatal("the load tool did not start publishing")
			}
			c.reload(site([]string{"16s", "17s"}[i]))
			var r result
			select {
			case r = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the load tool did not finish")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			rep := r.rep
			reasons := 0
			for why, n := range rep.DropReasons {
				if why != "ended" && why != "closed" {
					t.Errorf("%d streams dropped for %q: want the server's close (ended or closed)", n, why)
				}
				reasons += n
			}
			switch {
			case r.code != 3:
				t.Errorf("exit status %d, want 3 (dropped)", r.code)
			case rep.FailedSubs != 0 || rep.Dropped != subs || reasons != subs:
				t.Errorf("failed %d, dropped %d (%v): want 0 and every one of %d", rep.FailedSubs, rep.Dropped, rep.DropReasons, subs)
			case rep.Delivered == 0 || rep.Lost == 0:
				t.Errorf("delivered %d, lost %d: want some of each (the drop came mid-run)", rep.Delivered, rep.Lost)
			case rep.Expected != int64(rep.Published)*subs || rep.Delivered+rep.Lost-rep.Duplicated != rep.Expected:
				t.Errorf("expected %d (published %d × %d) = delivered %d + lost %d − duplicated %d does not hold",
					rep.Expected, rep.Published, subs, rep.Delivered, rep.Lost, rep.Duplicated)
			}
		})
	}
}

// Refused publishes are counted by status, a Retry-After is waited out
// before the retry, and a run that delivered nothing says so in its exit
// status.
func TestLoadToolCountsRefusedPublishes(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse /events {
		topic bench
	}
	sse_publish /publish
	handle /busy {
		header Retry-After 1
		respond 503
	}
}`)
	sub := c.base + "/events?topic=bench"
	t.Run("undeclared topic", func(t *testing.T) {
		rep, code := runLoadTool(t, bin, "-sub", sub, "-pub", c.base+"/publish?topic=undeclared",
			"-subs", "5", "-rate", "100", "-duration", "1s", "-settle", "100ms")
		if code != 4 || rep.Published != 0 || rep.Accepted != 0 || rep.Requests < 10 || rep.Rejected != rep.Requests || len(rep.ByStatus) != 1 {
			t.Fatalf("exit %d; published %d; requests %d: %d accepted, %d rejected %v: want exit 4 and every request refused with one status",
				code, rep.Published, rep.Requests, rep.Accepted, rep.Rejected, rep.ByStatus)
		}
		for st := range rep.ByStatus {
			if st[0] != '4' {
				t.Errorf("refused with %s, want a 4xx", st)
			}
		}
	})
	t.Run("503 with Retry-After", func(t *testing.T) {
		// Two publishers over 2 s, each refused and told to wait 1 s:
		// at most 3 requests each, where without waiting there would
		// be thousands.
		rep, code := runLoadTool(t, bin, "-sub", sub, "-pub", c.base+"/busy",
			"-subs", "5", "-rate", "0", "-publishers", "2", "-duration", "2s", "-settle", "100ms")
		if code != 4 || rep.Requests < 2 || rep.Requests > 6 || rep.ByStatus["503"] != rep.Requests || rep.RetryWait < 1.5 {
			t.Fatalf("exit %d; requests %d, refused %v, %.1fs waited: want exit 4, 2 to 6 requests all 503, about 2 s waited per publisher",
				code, rep.Requests, rep.ByStatus, rep.RetryWait)
		}
	})
}

// A subscribe URL that is not an event stream (a wrong path, a page) makes
// the tool fail with a message saying so, rather than report subscribers
// that got nothing. When only some subscriptions are wrong, the run is
// reported, with exit status 3 and the first wrong answer.
func TestLoadToolFailsOnWhatIsNotAnEventStream(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse /events {
		topic bench
	}
	sse_publish /publish
	respond /page "<p>hello</p>" 200
	respond /missing 404
}`)
	pub := c.base + "/publish?topic=bench"
	run := func(sub string) (int, string, string) {
		cmd := exec.Command(bin, "-sub", sub, "-pub", pub, "-subs", "4", "-rate", "50", "-duration", "1s", "-settle", "2s")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	for _, tc := range []struct{ path, want string }{
		{"/missing?topic=bench", "answered 404 Not Found, want 200 OK"},
		{"/page", `answered 200 with Content-Type "text/plain; charset=utf-8", want text/event-stream`},
	} {
		code, _, stderr := run(c.base + tc.path)
		if code != 1 || !strings.Contains(stderr, "no subscriber connected") || !strings.Contains(stderr, tc.want) {
			t.Errorf("-sub %s: exit %d, stderr %q: want 1 and a message saying %q", tc.path, code, stderr, tc.want)
		}
	}
	// Subscribers take the comma-separated URLs in turn: half go wrong.
	code, stdout, stderr := run(c.base + "/events?topic=bench," + c.base + "/missing")
	if code != 3 || !strings.Contains(stderr, "2 of 4 subscriptions failed") || !strings.Contains(stderr, "404 Not Found") ||
		!strings.Contains(stdout, "4 subscribers (2 failed)") {
		t.Errorf("half the subscriptions wrong: exit %d\nstdout %s\nstderr %s\nwant 3, a report with 2 failed and the reason on stderr", code, stdout, stderr)
	}
}

// -mode mercure drives sse_mercure as Mercure apps do: 1.0 tokens it mints
// itself, form POSTs, match= subscriptions, half of them with a token; it
// must count every delivery, and private updates (every subscriber with a
// token) too. Run against a hub configured as Mercure's quickstart.
func TestLoadToolMercureMode(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse_mercure /.well-known/mercure {
		issuer https://localhost {
			publisher {
				jwt "!ChangeThisMercureHubJWTSecretKey!" HS256
			}
			subscriber {
				jwt "!ChangeThisMercureHubJWTSecretKey!" HS256
			}
		}
		anonymous
	}
}`)
	hub := c.base + "/.well-known/mercure"
	for _, extra := range [][]string{nil, {"-mercure-token-share", "1", "-mercure-private"}} {
		t.Run(strings.Join(append([]string{"mercure"}, extra...), " "), func(t *testing.T) {
			args := append([]string{
				"-mode", "mercure", "-mercure-key", "!ChangeThisMercureHubJWTSecretKey!", "-mercure-issuer", "https://localhost",
				"-sub", hub + "?match=https://example.com/bench", "-pub", hub,
				"-subs", "40", "-rate", "200", "-duration", "1s", "-settle", "10s",
			}, extra...)
			rep, code := runLoadTool(t, bin, args...)
			switch {
			case code != 0:
				t.Errorf("exit status %d, want 0: %+v", code, rep)
			case rep.Subscribers != 40 || rep.FailedSubs != 0 || rep.Dropped != 0:
				t.Errorf("subscribers %d, failed %d, dropped %d: want 40, 0, 0", rep.Subscribers, rep.FailedSubs, rep.Dropped)
			case rep.Published < 10 || rep.Rejected != 0 || rep.Requests != rep.Accepted:
				t.Errorf("published %d; requests %d: %d accepted, %d rejected: want every request accepted", rep.Published, rep.Requests, rep.Accepted, rep.Rejected)
			case rep.Delivered != int64(rep.Published)*40 || rep.Lost+rep.Duplicated+rep.OutOfOrder != 0:
				t.Errorf("delivered %d of %d × 40; lost %d, duplicated %d, out of order %d", rep.Delivered, rep.Published, rep.Lost, rep.Duplicated, rep.OutOfOrder)
			}
		})
	}
}
