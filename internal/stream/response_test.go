package stream

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// flushCounter counts the Flushes that reach a real ResponseWriter.
type flushCounter struct {
	http.ResponseWriter
	flushes int
}

func (f *flushCounter) FlushError() error {
	f.flushes++
	return http.NewResponseController(f.ResponseWriter).Flush()
}

func (f *flushCounter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// Over a real HTTP/2 connection, a flush of up to one piece (16 KiB) costs
// one Flush, as it did before pieces, and a larger one a Flush per piece,
// whether the bytes come as many small events or one large one; the client
// reads every byte in order.
func TestResponseSinkFlushesOncePerPiece(t *testing.T) {
	cases := []struct {
		name    string
		adds    []int // sizes added before the flush
		flushes int
	}{
		{"one event", []int{200}, 1},
		{"a few events", []int{300, 500, 1200}, 1},
		{"16 KiB of 1 KiB events", repeatInt(1<<10, 16), 1},
		{"64 KiB of 1 KiB events", repeatInt(1<<10, 64), 4},
		{"one 200 KiB event", []int{200 << 10}, 13},
	}
	type result struct {
		flushes int
		err     error
	}
	results := make(chan result, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscan(r.URL.Query().Get("case"), &i); err != nil || i >= len(cases) {
			http.Error(w, "no such case", http.StatusNotFound)
			return
		}
		adds := cases[i].adds
		fc := &flushCounter{ResponseWriter: w}
		s := newResponseSink(fc, 0)
		for i, n := range adds {
			s.add(bytes.Repeat([]byte{byte('a' + i%26)}, n))
		}
		err := s.flush()
		results <- result{fc.flushes, err}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(fmt.Sprintf("%s/?case=%d", srv.URL, i))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
				t.Fatalf("%s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			for i, n := range tc.adds {
				want.Write(bytes.Repeat([]byte{byte('a' + i%26)}, n))
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("read %d bytes, want the %d added", len(got), want.Len())
			}
			res := <-results
			if res.err != nil || res.flushes != tc.flushes {
				t.Fatalf("flushed %d times (%v), want %d", res.flushes, res.err, tc.flushes)
			}
		})
	}
}

func repeatInt(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
