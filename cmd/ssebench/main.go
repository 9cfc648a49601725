// Command ssebench loads an SSE hub the way users do: N real EventSource
// subscriptions over loopback, events published at a set rate through the
// hub's HTTP publish API, and delivery measured end to end.
//
//	ssebench -sub 'http://127.0.0.1:8080/events?topic=bench' \
//	         -pub 'http://127.0.0.1:8080/_sse/publish?topic=bench' \
//	         -subs 1000 -rate 500 -size 256 -duration 10s -pid $(pgrep caddy)
//
// It drives caddy-sse and Nchan alike (-mode nchan posts raw bodies to an
// Nchan publisher location). Each event's data carries its sequence number
// and send time, so every subscriber counts what it lost, got twice or got
// out of order (all must be 0) and the latency of each delivery. A stream
// the server ends before the run does is counted as dropped, and is not
// reconnected: everything published after it counts as lost.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	subURL, pubURL string
	subURLs        []string // -sub split on commas: subscribers take them in turn
	mode           string   // post, batch, stream, nchan
	subs           int
	rate           float64 // events per second; 0: as fast as publishers go
	size           int     // bytes of data per event
	duration       time.Duration
	batch          int // events per POST in batch mode
	publishers     int // concurrent publish connections (post, batch, nchan)
	connectConc    int // subscriptions opened at once
	http2          bool
	pids           []int
	jsonOut        bool
	label          string
	event          string // event name to publish ("" for the default)
	settle         time.Duration
	reader         string // epoll or goroutine: how HTTP/1.1 streams are read
	readers        int    // epoll readers
	progress       time.Duration
	mercure        mercureConfig // -mode mercure
}

func main() {
	var c config
	flag.StringVar(&c.subURL, "sub", "", "subscribe URL (EventSource endpoint); several, comma-separated, spread the subscribers over them in turn (instances sharing one Redis)")
	flag.StringVar(&c.pubURL, "pub", "", "publish URL")
	flag.StringVar(&c.mode, "mode", "post", "publish shape: post (one event per POST), batch (JSON array), stream (one held text/event-stream body), nchan (raw body to an Nchan publisher), mercure (form POSTs to an sse_mercure route with tokens)")
	flag.IntVar(&c.subs, "subs", 100, "subscribers")
	flag.Float64Var(&c.rate, "rate", 100, "events per second to publish; 0 = as fast as possible")
	flag.IntVar(&c.size, "size", 256, "bytes of data per event")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to publish")
	flag.IntVar(&c.batch, "batch", 50, "events per POST in batch mode")
	flag.IntVar(&c.publishers, "publishers", 4, "concurrent publish connections")
	flag.IntVar(&c.connectConc, "connect-concurrency", 200, "subscriptions opened at once")
	flag.BoolVar(&c.http2, "http2", false, "subscribe over HTTP/2 (https URLs; certificates are not verified)")
	pidList := flag.String("pid", "", "server process ids, comma-separated (nginx: its workers), to report memory and CPU from /proc")
	flag.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	flag.StringVar(&c.label, "label", "", "a name for this run in the report")
	flag.StringVar(&c.event, "event", "", "event name to publish")
	flag.DurationVar(&c.settle, "settle", 3*time.Second, "how long to wait for the last deliveries after publishing stops")
	flag.StringVar(&c.reader, "reader", "epoll", "how HTTP/1.1 streams are read: epoll (a few readers with their own epoll sets; Linux) or goroutine (one each, through Go's netpoller)")
	// One reader by default: on the server's own cores a second one took
	// more CPU (each sleeping reader is another thread to wake per burst)
	// and gave a worse p99 in alternating 10,000-stream fan-outs.
	flag.IntVar(&c.readers, "readers", 1, "epoll readers (threads reading HTTP/1.1 streams)")
	flag.StringVar(&c.mercure.key, "mercure-key", "", "-mode mercure: the hub's HS256 key; the tool mints a publisher token and a subscriber token with it")
	flag.StringVar(&c.mercure.issuer, "mercure-issuer", "https://localhost", "-mode mercure: the tokens' iss (an issuer the hub trusts)")
	flag.StringVar(&c.mercure.audience, "mercure-audience", "", "-mode mercure: the tokens' aud (the hub's resource identifier; default: the publish URL without its query)")
	flag.StringVar(&c.mercure.topic, "mercure-topic", "https://example.com/bench", "-mode mercure: the topic of every update (subscribe with match= naming it)")
	flag.Float64Var(&c.mercure.tokenShare, "mercure-token-share", 0.5, "-mode mercure: share of subscribers that present a subscriber token (0 to 1)")
	flag.BoolVar(&c.mercure.private, "mercure-private", false, "-mode mercure: publish private updates (needs -mercure-token-share 1)")
	flag.DurationVar(&c.progress, "progress", time.Second, "on runs of 3s or longer, print a progress line on stderr this often; 0: never")
	summary := flag.String("summarize", "", "instead of running: summarize a JSON-lines file of runs (bench/compare.sh)")
	machine := flag.String("machine", "", "with -summarize: a description of the machine")
	markdown := flag.String("markdown", "", "with -summarize: write the Markdown report here")
	svg := flag.String("svg", "", "with -summarize: write the latency plot here")
	notes := flag.String("notes", "", "with -summarize: a Markdown file of analysis to append")
	flag.Usage = usage
	flag.Parse()
	if *summary != "" {
		if err := summarize(*summary, *machine, *markdown, *svg, *notes); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench:", err)
			os.Exit(exitFailed)
		}
		return
	}
	for _, f := range strings.Split(*pidList, ",") {
		if pid, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && pid > 0 {
			c.pids = append(c.pids, pid)
		}
	}

	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(exitUsage)
	}
	raiseFileLimit()

	// Bounded in time whatever happens: connect, publish, settle, plus slack.
	limit := c.duration + c.settle + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(exitFailed)
	}
	if c.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
	status := rep.exitStatus()
	if status != exitOK {
		fmt.Fprintf(os.Stderr, "ssebench: exit %d: %s\n", status, rep.verdict())
	}
	os.Exit(status)
}

// Exit statuses; usage() explains them.
const (
	exitOK      = 0
	exitFailed  = 1 // the run could not be made
	exitUsage   = 2
	exitBroken  = 3 // dropped, lost, duplicated, out of order, or not connected
	exitNothing = 4 // nothing was delivered
)

func (r *report) exitStatus() int {
	switch {
	case r.Delivered == 0:
		return exitNothing
	case r.Dropped > 0 || r.FailedSubs > 0 || r.Lost+r.Duplicated+r.OutOfOrder > 0:
		return exitBroken
	}
	return exitOK
}

// verdict says in one line what made the run fail, for exit statuses 3
// and 4.
func (r *report) verdict() string {
	var why []string
	if r.Delivered == 0 {
		if r.Published == 0 {
			why = append(why, fmt.Sprintf("nothing was delivered: no event was accepted (%d publish requests: %d refused%s, %d unanswered)",
				r.Requests, r.Rejected, statusList(r.RejectedByStatus, " ", ""), r.PublishErrors))
		} else {
			why = append(why, fmt.Sprintf("nothing was delivered: none of %d accepted events reached the %d connected subscribers",
				r.Published, r.Subscribers-r.FailedSubs))
		}
	}
	if r.FailedSubs > 0 {
		why = append(why, fmt.Sprintf("%d of %d subscriptions failed (first: %s)", r.FailedSubs, r.Subscribers, r.FailedReason))
	}
	if r.Dropped > 0 {
		why = append(why, fmt.Sprintf("%d subscribers dropped (%s)", r.Dropped, reasonList(r.DropReasons)))
	}
	if r.Lost+r.Duplicated+r.OutOfOrder > 0 && r.Delivered > 0 {
		why = append(why, fmt.Sprintf("deliveries lost %d, duplicated %d, out of order %d", r.Lost, r.Duplicated, r.OutOfOrder))
	}
	return strings.Join(why, "; ")
}

func usage() {
	fmt.Fprintf(flag.CommandLine.Output(), `Usage: ssebench -sub URL -pub URL [flags]
       ssebench -summarize results.jsonl [-markdown out.md] [-svg out.svg]

Subscribes -subs streams, publishes for -duration, waits up to -settle for
the last deliveries, then reports (text, or JSON with -json) for the run:
subscribers that failed to connect and that were dropped (their stream
ended before the run did, and why), deliveries expected (events published
× connected subscribers), delivered, lost, duplicated and out of order;
publish requests accepted (and per second), rejected by status, and
unanswered, with round-trip percentiles; delivery latency; and the
server's and the tool's CPU and memory.

A dropped subscriber is not reconnected during the run: what a reconnect
would replay is not what was measured, so everything published after the
drop counts as lost. A refusal carrying Retry-After (503 or 429) is waited
out, up to the end of the run, and the same event is sent again; every
refusal is counted.

Exit status (the report is printed in every case but 1 and 2):
  0  every connected subscriber got every accepted event once, in order,
     and none was dropped
  1  the run could not be made (no subscriber connected, a reader failed)
  2  bad flags
  3  a subscriber was dropped or failed to connect, or a delivery was
     lost, duplicated or out of order
  4  nothing was delivered (no event accepted, or none arrived)

Example: Caddy with bench/Caddyfile.bench (topic "bench" on port 8090),
1000 subscribers, 500 events/s of 256 bytes for 30 s, with the server's
memory and CPU:

  go run ./cmd/caddy run --config bench/Caddyfile.bench &
  ssebench -sub 'http://127.0.0.1:8090/events?topic=bench' \
           -pub 'http://127.0.0.1:8090/publish?topic=bench' \
           -subs 1000 -rate 500 -size 256 -duration 30s -pid "$(pgrep -x caddy)"

A subscription must be answered 200 with Content-Type text/event-stream;
any other answer is a failed subscriber, with the answer in the report.
Mercure (-mode mercure): updates are form POSTs with a publisher token
minted from -mercure-key, subscribers GET the hub URL with match= and a
share of them (-mercure-token-share, default half) present a subscriber
token, as logged-in users do:

  ssebench -mode mercure -mercure-key '!ChangeThisMercureHubJWTSecretKey!' \
           -sub 'http://127.0.0.1:8090/.well-known/mercure?match=https://example.com/bench' \
           -pub 'http://127.0.0.1:8090/.well-known/mercure' -subs 1000 -rate 500

Runs of 3s or longer print a progress line on stderr every -progress:
  t=3s subscribers=1000 delivered=1500000 rate=500000/s dropped=0

Flags:
`)
	flag.PrintDefaults()
}

func (c *config) check() error {
	switch {
	case c.subURL == "" || c.pubURL == "":
		return fmt.Errorf("-sub and -pub are required")
	case c.subs < 1:
		return fmt.Errorf("-subs must be at least 1")
	case c.size < 32:
		return fmt.Errorf("-size must be at least 32 bytes (sequence and timestamp travel in the data)")
	case c.duration <= 0 || c.duration > 30*time.Minute:
		return fmt.Errorf("-duration must be between 0 and 30m")
	case c.reader != "epoll" && c.reader != "goroutine":
		return fmt.Errorf("-reader %q: use epoll or goroutine", c.reader)
	case c.readers < 1 || c.readers > 64:
		return fmt.Errorf("-readers must be between 1 and 64")
	}
	switch c.mode {
	case "post", "batch", "stream", "nchan":
	case "mercure":
		if c.mercure.audience == "" {
			if u, err := url.Parse(c.pubURL); err == nil {
				u.RawQuery = ""
				c.mercure.audience = u.String()
			}
		}
		if err := c.mercure.prepare(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-mode %q: use post, batch, stream, nchan or mercure", c.mode)
	}
	c.subURLs = strings.Split(c.subURL, ",")
	for _, u := range append([]string{c.pubURL}, c.subURLs...) {
		if err := loopbackOnly(u); err != nil {
			return err
		}
	}
	return nil
}

// loopbackOnly refuses any target that is not this machine: a load tool
// pointed elsewhere by mistake is an attack.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return nil
}

// raiseFileLimit lifts the soft descriptor limit to the hard one: 10,000
// subscribers need 10,000 sockets.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
