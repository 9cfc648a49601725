//go:build linux

// Command reference is the bench's yardstick: the least an SSE fan-out
// server can do on this machine, so that bench/compare.sh can say how far a
// real hub is from the limit and not only from another hub.
//
//	go run ./bench/reference -listen 127.0.0.1:18093
//	curl -N 'http://127.0.0.1:18093/events?topic=bench'
//	curl -d hello 'http://127.0.0.1:18093/publish?topic=bench'
//
// It speaks the two requests the load tool (cmd/ssebench) makes, and
// nothing else:
//
//	GET  /events?topic=X    a text/event-stream that lasts until either side closes
//	POST /publish?topic=X   one event, its data the body (Content-Length or
//	                        chunked); answered {"id":"N"}. A text/event-stream
//	                        body is a held stream of events instead, each
//	                        published as soon as it is parsed, answered
//	                        {"published":n,...} when the body ends.
//
// Why it is the limit: one epoll loop per core (each with its own
// SO_REUSEPORT listener), no goroutine, no bufio and no HTTP framework per
// connection, non-blocking writes. Each event is encoded once ("id: N",
// "data: ...") into one byte slice that every loop writes to its own
// subscribers as it is; events that arrive together are written together,
// one write per subscriber. Like caddy-sse by default, a loop that wrote
// out events less than -coalesce (10ms) ago gathers the next ones until
// the window ends: the first event after a quiet spell leaves at once, and
// a busy stream costs a write per window instead of one per event. What it leaves out is what a hub is for:
// no replay (Last-Event-ID), no topic declarations, no auth, no
// filtering, no metrics, no HTTP/2, no chunked framing on the stream (the
// body ends with the connection).
//
// What it keeps, so that the load tool's checks hold as they do for
// caddy-sse (0 lost, 0 duplicated, in order): ids increase per server and
// every loop sees events in id order; a subscriber whose socket is full
// keeps the rest in a pending buffer and is written when it becomes
// writable; while any subscriber is behind (pending above a quarter of
// -max-pending) publishers are not read, so publishing slows to what the
// subscribers take instead of dropping them; a subscriber behind for longer
// than -stall, or whose pending would pass -max-pending, is closed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:18093", "address to listen on (IPv4 host:port; port 0 picks one)")
	flag.IntVar(&cfg.loops, "loops", runtime.NumCPU(), "epoll loops (threads), each with its own listener")
	flag.IntVar(&cfg.maxPending, "max-pending", 1<<20, "bytes a subscriber may have waiting beyond its socket before it is closed (caddy-sse's default queue_size)")
	flag.DurationVar(&cfg.stall, "stall", 10*time.Second, "how long a subscriber may stay behind, holding publishers back, before it is closed (caddy-sse's default write_timeout)")
	flag.DurationVar(&cfg.coalesce, "coalesce", 10*time.Millisecond, "a loop that wrote out events less than this ago gathers the next ones until then, and writes them together; 0: every batch at once, the latency floor (caddy-sse's default coalesce)")
	flag.DurationVar(&cfg.heartbeat, "heartbeat", 15*time.Second, "comment line sent to every subscriber this often; 0: never (caddy-sse's default)")
	flag.BoolVar(&cfg.chunked, "chunked", false, "frame the stream with chunked encoding, one chunk per write, as caddy-sse's HTTP/1.1 streams are (what framing costs)")
	flag.Parse()

	srv, err := start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "reference: listening on %s with %d loops\n", srv.addr, len(srv.loops))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.close()
}
