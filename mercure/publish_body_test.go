package mercure

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// readBody returns the body whole whatever Content-Length claims (exact,
// short, long, absent), and the MaxBytesReader's error past the limit.
func TestReadBody(t *testing.T) {
	big := strings.Repeat("t", 200<<10) // past the 64KiB pre-allocation
	for _, c := range []struct {
		name string
		body string
		cl   int64
	}{
		{"exact", "topic=a&data=b", 14},
		{"absent", "topic=a&data=b", -1},
		{"claims less", "topic=a&data=b", 3},
		{"claims more", "topic=a&data=b", 1 << 30},
		{"large", big, int64(len(big))},
		{"empty", "", 0},
	} {
		got, err := readBody(strings.NewReader(c.body), c.cl)
		if err != nil || string(got) != c.body {
			t.Errorf("%s: %d bytes, %v; want %d bytes", c.name, len(got), err, len(c.body))
		}
	}
	w := httptest.NewRecorder()
	_, err := readBody(http.MaxBytesReader(w, io.NopCloser(bytes.NewReader([]byte(big))), 1000), int64(len(big)))
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Fatalf("past max_body: %v, want a MaxBytesError", err)
	}
}
