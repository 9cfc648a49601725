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

// Refusal reasons are throttled by their fixed words: two tokens refused
// for their audience share a key whatever the audiences, and the map of
// keys stays bounded.
func TestReasonKind(t *testing.T) {
	a := reasonKind(`aud does not contain the resource identifier "https://a.example/.well-known/mercure" (token from the header)`)
	b := reasonKind(`aud does not contain the resource identifier "https://b.example/.well-known/mercure" (token from the cookie)`)
	if a != b || a != "aud does not contain the resource identifier " {
		t.Fatalf("kinds %q and %q", a, b)
	}
	if reasonKind("more than 100 topics") == reasonKind("bad signature (token from the header)") {
		t.Fatal("different reasons share a kind")
	}
	l := logThrottle{every: time.Hour}
	for i := range 5000 {
		l.allow(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(l.keys) > 1024 {
		t.Fatalf("%d keys kept", len(l.keys))
	}
}
