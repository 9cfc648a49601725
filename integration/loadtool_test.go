package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
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
	Subscribers int     `json:"subscribers"`
	FailedSubs  int     `json:"failed_subscribers"`
	Published   uint64  `json:"published"`
	Errors      int64   `json:"publish_errors"`
	Delivered   int64   `json:"delivered"`
	Lost        int64   `json:"lost"`
	Late        int64   `json:"duplicated_or_out_of_order"`
	P50         float64 `json:"latency_p50_ms"`
	ServerRSS   int64   `json:"server_rss_kib"`
	ServerCPU   float64 `json:"server_cpu_seconds"`
	ToolCPUPerM float64 `json:"tool_cpu_seconds_per_million_deliveries"`
}

func TestLoadToolCountsEveryDelivery(t *testing.T) {
	bin := buildLoadTool(t)
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse /events {
		topic bench {
			replay 1000
		}
		heartbeat 15s
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
				"-json", "-sub", c.base + "/events?topic=bench", "-pub", c.base + "/publish?topic=bench",
				"-subs", "50", "-rate", "300", "-duration", "1s", "-settle", "10s",
				"-pid", strconv.Itoa(c.cmd.Process.Pid),
			}, r.args...)
			out, err := exec.Command(bin, args...).Output()
			if err != nil {
				t.Fatalf("ssebench %v: %v\n%s", args, err, out)
			}
			var rep loadReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("report %q: %v", out, err)
			}
			switch {
			case rep.Subscribers != 50 || rep.FailedSubs != 0:
				t.Errorf("subscribers %d, failed %d: want 50 and 0", rep.Subscribers, rep.FailedSubs)
			case rep.Published < 10 || rep.Errors != 0:
				t.Errorf("published %d with %d errors: want some and none", rep.Published, rep.Errors)
			case rep.Delivered != int64(rep.Published)*50:
				t.Errorf("delivered %d, want %d (published %d × 50)", rep.Delivered, rep.Published*50, rep.Published)
			case rep.Lost != 0 || rep.Late != 0:
				t.Errorf("lost %d, late %d: want 0", rep.Lost, rep.Late)
			case rep.P50 <= 0 || rep.ServerRSS <= 0 || rep.ToolCPUPerM <= 0:
				t.Errorf("latency p50 %v ms, server RSS %d KiB, tool CPU %v s/M: want all measured", rep.P50, rep.ServerRSS, rep.ToolCPUPerM)
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
	out, err := exec.Command(bin, "-json", "-http2",
		"-sub", fmt.Sprintf("https://127.0.0.1:%d/events?topic=bench", c.port),
		"-pub", fmt.Sprintf("http://127.0.0.1:%d/publish?topic=bench", c.port2),
		"-subs", "20", "-rate", "200", "-duration", "1s", "-settle", "10s").Output()
	if err != nil {
		t.Fatalf("ssebench: %v\n%s", err, out)
	}
	var rep loadReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if rep.FailedSubs != 0 || rep.Published < 10 || rep.Delivered != int64(rep.Published)*20 || rep.Lost+rep.Late != 0 {
		t.Fatalf("over HTTP/2: %d failed subscribers, published %d, delivered %d, lost %d, late %d",
			rep.FailedSubs, rep.Published, rep.Delivered, rep.Lost, rep.Late)
	}
}
