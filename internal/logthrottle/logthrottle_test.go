package logthrottle

import (
	"testing"
	"time"
)

// One line per key per interval passes, and the next one says how many
// were held back; keys are independent.
func TestThrottle(t *testing.T) {
	l := Throttle{Every: time.Hour}
	if ok, n := l.Allow("503"); !ok || n != 0 {
		t.Fatalf("first line: %v, %d", ok, n)
	}
	for range 3 {
		if ok, _ := l.Allow("503"); ok {
			t.Fatal("a second line within the interval passed")
		}
	}
	if ok, _ := l.Allow("401"); !ok {
		t.Fatal("another reason was held back")
	}
	l.keys["503"].last = time.Now().Add(-2 * time.Hour)
	if ok, n := l.Allow("503"); !ok || n != 3 {
		t.Fatalf("after the interval: %v, %d suppressed, want true, 3", ok, n)
	}
}

// The map of keys stays bounded whatever keys a caller makes up.
func TestThrottleKeysBounded(t *testing.T) {
	l := Throttle{Every: time.Hour}
	for i := range 5000 {
		l.Allow(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(l.keys) > 1024 {
		t.Fatalf("%d keys kept", len(l.keys))
	}
}
