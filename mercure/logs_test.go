package mercure

import "testing"

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
}
