package hub

import "testing"

// TestPublicIDsReused: one id on several events and rings. The earliest
// entry a subscriber's rings retain wins; releasing from the middle or the
// head keeps the order; the count follows what the rings retain.
func TestPublicIDsReused(t *testing.T) {
	var p publicIDs
	a, b := newRing(RingConfig{Replay: 10, ReplaySize: 1 << 20}), newRing(RingConfig{Replay: 10, ReplaySize: 1 << 20})
	ev := func(seq uint64) *Event { return &Event{ID: ID{Epoch: "e", Seq: seq}, PublicID: "dup"} }
	e1, e2, e3 := ev(1), ev(2), ev(3)
	p.hold(a, e1)
	p.hold(b, e1) // one event, two rings: one entry
	p.hold(b, e2)
	p.hold(a, e3)
	only := func(rs ...*ring) func(func(*ring) bool) {
		return func(yield func(*ring) bool) {
			for _, r := range rs {
				if !yield(r) {
					return
				}
			}
		}
	}
	check := func(what string, rings func(func(*ring) bool), want *Event, n int) {
		t.Helper()
		if got := p.earliest("dup", rings); got != want {
			t.Fatalf("%s: earliest %v, want %v", what, got, want)
		}
		if p.len() != n {
			t.Fatalf("%s: %d entries, want %d", what, p.len(), n)
		}
	}
	check("all held", only(a, b), e1, 3)
	check("ring b alone", only(b), e1, 3)
	p.release(b, e2) // the middle entry
	check("e2 released", only(b), e1, 2)
	p.release(a, e1) // b still retains e1
	check("e1 left a", only(a), e3, 2)
	check("e1 still in b", only(b), e1, 2)
	p.release(b, e1)
	check("e1 gone", only(a, b), e3, 1)
	p.release(a, e3)
	check("none", only(a, b), nil, 0)
	if len(p.m) != 0 {
		t.Fatalf("the map keeps %d ids", len(p.m))
	}
	p.release(a, e3) // twice: nothing
	if p.earliest("never", only(a)) != nil {
		t.Fatal("an unknown id resolved")
	}
}
