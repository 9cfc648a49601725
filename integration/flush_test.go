package integration

import (
	"fmt"
	"net/http"
	"testing"
)

// awaitEachEvent publishes n events one at a time and requires each to
// arrive before the next is sent: buffering anywhere on the way (a
// compressor, a proxy, a framing layer) would stall it.
func awaitEachEvent(t *testing.T, s *subscriber, c *http.Client, pub string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		status, body := post(t, c, pub, "text/plain", stringsReader(seqData(i)), "Accept-Encoding: gzip, zstd")
		mustStatus(t, "publish", status, 200, body)
		if ev := s.next(); ev.Data != seqData(i) {
			t.Fatalf("event %d: got %+v", i, ev)
		}
	}
}

// encode placed before sse in a route, over HTTP/2 with TLS: every event is
// flushed on its own and the stream is not compressed.
func TestFlushingThroughEncodeOverHTTP2(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
https://127.0.0.1:{PORT} {
	tls {CERT} {KEY}
	route {
		encode gzip zstd
		sse /events {
			topic news
			heartbeat off
		}
		sse_publish /publish
	}
}
`)
	base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
	s := subscribe(t, h2Client, base+"/events", "Accept-Encoding: gzip, zstd").ready()
	if s.resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", s.resp.Proto)
	}
	if ce := s.resp.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("the stream was encoded with %q; no-transform must keep encode off it", ce)
	}
	awaitEachEvent(t, s, h2Client, base+"/publish?topic=news", 20)
}

// Over plain HTTP/1.1 with encode in the site (ordered after sse by the
// directive order) and behind another Caddy reverse_proxy.
func TestFlushingBehindReverseProxy(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	encode gzip zstd
	sse /events {
		topic news
		heartbeat off
	}
	sse_publish /publish
}
http://127.0.0.1:{PORT2} {
	encode gzip
	reverse_proxy 127.0.0.1:{PORT}
}
`)
	proxied := fmt.Sprintf("http://127.0.0.1:%d", c.port2)
	s := subscribe(t, client, proxied+"/events", "Accept-Encoding: gzip").ready()
	if ce := s.resp.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("the proxied stream was encoded with %q", ce)
	}
	awaitEachEvent(t, s, client, c.base+"/publish?topic=news", 20)
}
