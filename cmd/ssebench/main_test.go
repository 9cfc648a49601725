package main

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// -h shows a command to copy, the exit statuses and every flag.
func TestUsageHasAnExample(t *testing.T) {
	var out bytes.Buffer
	flag.CommandLine.SetOutput(&out)
	defer flag.CommandLine.SetOutput(nil)
	usage()
	for _, want := range []string{"Example:", "ssebench -sub 'http://127.0.0.1:8090/events?topic=bench'", "Exit status", "t=3s subscribers="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

// Only a 200 text/event-stream is a subscription; anything else (a wrong
// path, an HTML page) fails it, saying what came back. Over a real socket,
// on both ways of reading streams.
func TestSubscribeRefusesWhatIsNotAnEventStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/page":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<p>not a stream</p>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, http2 := range []bool{false, true} { // a bare connection, or net/http's client (the -http2 path)
		c := &config{http2: http2}
		h2 := srv.Client() // plain HTTP here: the client only has to read the answer
		cases := []struct{ path, want string }{
			{"/events", ""},
			{"/page", `answered 200 with Content-Type "text/html", want text/event-stream`},
			{"/missing", "answered 404 Not Found, want 200 OK"},
		}
		for _, tc := range cases {
			s, err := dialSubscriber(t.Context(), c, srv.URL+tc.path, "", h2, 1)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("http2=%v %s: %v, want a subscription", http2, tc.path, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL+tc.path)):
				t.Errorf("http2=%v %s: error %v, want one naming the URL and saying %q", http2, tc.path, err, tc.want)
			}
			if s != nil {
				s.closer.Close()
			}
		}
	}
}

// A failing run says why in one line.
func TestVerdictSaysWhatFailed(t *testing.T) {
	cases := []struct {
		r    report
		want []string
	}{
		{report{Subscribers: 10, Requests: 20, Rejected: 20, RejectedByStatus: map[string]int64{"404": 20}},
			[]string{"nothing was delivered", "no event was accepted", "404×20"}},
		{report{Subscribers: 10, Published: 5},
			[]string{"none of 5 accepted events reached the 10 connected subscribers"}},
		{report{Subscribers: 10, FailedSubs: 5, FailedReason: "subscribe x: answered 404 Not Found, want 200 OK", Published: 5, Delivered: 25},
			[]string{"5 of 10 subscriptions failed (first: subscribe x: answered 404 Not Found"}},
		{report{Subscribers: 10, Dropped: 3, DropReasons: map[string]int{"ended": 3}, Published: 5, Delivered: 40, Lost: 10},
			[]string{"3 subscribers dropped (ended 3)", "lost 10"}},
	}
	for _, c := range cases {
		if c.r.exitStatus() == exitOK {
			t.Errorf("%+v: exit status 0, want a failure", c.r)
		}
		got := c.r.verdict()
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("verdict %q lacks %q", got, w)
			}
		}
	}
}
