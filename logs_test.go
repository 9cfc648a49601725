package caddysse

import (
	"testing"
	"time"
)

// One line per key per interval passes, and the next one says how many
// were held back; keys are independent.
func TestLogThrottle(t *testing.T) {
	l := logThrottle{every: time.Hour}
	if ok, n := l.allow("503"); !ok || n != 0 {
		t.Fatalf("first line: %v, %d", ok, n)
	}
	for range 3 {
		if ok, _ := l.allow("503"); ok {
			t.Fatal("a second line within the interval passed")
		}
	}
	if ok, _ := l.allow("401"); !ok {
		t.Fatal("another reason was held back")
	}
	l.keys["503"].last = time.Now().Add(-2 * time.Hour)
	if ok, n := l.allow("503"); !ok || n != 3 {
		t.Fatalf("after the interval: %v, %d suppressed, want true, 3", ok, n)
	}
}
