package hub

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// replayTestT0 is the fixed start of the fake clock.
var replayTestT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// replayTestClock replaces the package clock for the duration of the test
// and returns a function that moves it.
func replayTestClock(t *testing.T) (set func(time.Time)) {
	t.Helper()
	saved := now
	cur := replayTestT0
	now = func() time.Time { return cur }
	t.Cleanup(func() { now = saved })
	return func(tm time.Time) { cur = tm }
}

// replayTestEvent builds an event whose Size() is exactly size (at least 65).
func replayTestEvent(seq uint64, size int64, tm time.Time) *Event {
	id := ID{Epoch: "e", Seq: seq}
	return &Event{ID: id, Time: tm, Wire: make([]byte, size-int64(len(id.Epoch))-64)}
}

func replayTestSeqs(evs []*Event) []uint64 {
	out := make([]uint64, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.ID.Seq)
	}
	return out
}

func replayTestRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// replayTestCheckBytes checks that the byte count follows what is retained.
func replayTestCheckBytes(t *testing.T, r *ring) {
	t.Helper()
	var sum int64
	for _, e := range r.events[r.start:] {
		sum += e.Size()
	}
	if sum != r.bytes {
		t.Fatalf("ring.bytes = %d, but the retained events cost %d", r.bytes, sum)
	}
	for i, e := range r.events[:r.start] {
		if e != nil {
			t.Fatalf("evicted slot %d still references event %d", i, e.ID.Seq)
		}
	}
}

func TestRingEviction(t *testing.T) {
	const big = 1 << 40
	tests := []struct {
		name        string
		cfg         RingConfig
		sizes       []int64 // one event per entry, seqs 1..n
		wantSeqs    []uint64
		wantEvicted uint64
	}{
		{"under every limit", RingConfig{Replay: 5, ReplaySize: big}, []int64{100, 100, 100}, []uint64{1, 2, 3}, 0},
		{"exactly the count", RingConfig{Replay: 3, ReplaySize: big}, []int64{100, 100, 100}, []uint64{1, 2, 3}, 0},
		{"by count", RingConfig{Replay: 3, ReplaySize: big}, []int64{100, 100, 100, 100, 100}, []uint64{3, 4, 5}, 2},
		{"count of one", RingConfig{Replay: 1, ReplaySize: big}, []int64{100, 100, 100}, []uint64{3}, 2},
		{"exactly the bytes", RingConfig{Replay: 100, ReplaySize: 300}, []int64{100, 100, 100}, []uint64{1, 2, 3}, 0},
		{"by bytes", RingConfig{Replay: 100, ReplaySize: 300}, []int64{100, 100, 100, 100}, []uint64{2, 3, 4}, 1},
		{"a big event pushes out several", RingConfig{Replay: 100, ReplaySize: 300}, []int64{100, 100, 100, 250}, []uint64{4}, 3},
		{"an event over the budget is not kept", RingConfig{Replay: 100, ReplaySize: 300}, []int64{100, 301}, []uint64{}, 2},
		{"small events after a big one", RingConfig{Replay: 100, ReplaySize: 300}, []int64{301, 100, 100}, []uint64{2, 3}, 1},
		{"replay 0 keeps nothing", RingConfig{Replay: 0, ReplaySize: big}, []int64{100, 100, 100}, []uint64{}, 3},
		{"replay_size 0 keeps nothing", RingConfig{Replay: 10, ReplaySize: 0}, []int64{100}, []uint64{}, 1},
		{"count and bytes, bytes bind", RingConfig{Replay: 3, ReplaySize: 150}, []int64{100, 100, 100}, []uint64{3}, 2},
		{"count and bytes, count binds", RingConfig{Replay: 2, ReplaySize: 1000}, []int64{100, 100, 100}, []uint64{2, 3}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			replayTestClock(t)
			r := newRing(tc.cfg)
			for i, sz := range tc.sizes {
				r.append(replayTestEvent(uint64(i+1), sz, replayTestT0))
				replayTestCheckBytes(t, r)
			}
			if got := replayTestSeqs(r.after(0)); !reflect.DeepEqual(got, tc.wantSeqs) {
				t.Fatalf("retained %v, want %v", got, tc.wantSeqs)
			}
			if r.len() != len(tc.wantSeqs) {
				t.Fatalf("len() = %d, want %d", r.len(), len(tc.wantSeqs))
			}
			if r.evictedSeq != tc.wantEvicted {
				t.Fatalf("evictedSeq = %d, want %d", r.evictedSeq, tc.wantEvicted)
			}
			if r.bytes > tc.cfg.ReplaySize || r.len() > tc.cfg.Replay {
				t.Fatalf("ring over budget: %d events, %d bytes for %+v", r.len(), r.bytes, tc.cfg)
			}
		})
	}
}

func TestRingEvictionByAge(t *testing.T) {
	set := replayTestClock(t)
	r := newRing(RingConfig{Replay: 100, ReplaySize: 1 << 30, ReplayAge: 10 * time.Second})
	// events at t0, t0+2s, ..., t0+8s (seqs 1..5)
	for i := 0; i < 5; i++ {
		tm := replayTestT0.Add(time.Duration(2*i) * time.Second)
		set(tm)
		r.append(replayTestEvent(uint64(i+1), 100, tm))
	}
	steps := []struct {
		name        string
		at          time.Duration // since t0
		wantSeqs    []uint64
		wantEvicted uint64
	}{
		{"all young", 9 * time.Second, []uint64{1, 2, 3, 4, 5}, 0},
		{"oldest exactly at the age limit is kept", 10 * time.Second, []uint64{1, 2, 3, 4, 5}, 0},
		{"oldest just past the limit", 10*time.Second + time.Nanosecond, []uint64{2, 3, 4, 5}, 1},
		{"three expired", 14*time.Second + 1, []uint64{4, 5}, 3},
		{"clock going back revives nothing", 0, []uint64{4, 5}, 3},
		{"all expired", time.Hour, []uint64{}, 5},
	}
	for _, st := range steps {
		set(replayTestT0.Add(st.at))
		if got := replayTestSeqs(r.after(0)); !reflect.DeepEqual(got, st.wantSeqs) {
			t.Fatalf("%s: retained %v, want %v", st.name, got, st.wantSeqs)
		}
		if r.evictedSeq != st.wantEvicted {
			t.Fatalf("%s: evictedSeq = %d, want %d", st.name, r.evictedSeq, st.wantEvicted)
		}
		replayTestCheckBytes(t, r)
	}
}

func TestRingAgeExpiresOnEveryAccess(t *testing.T) {
	tests := []struct {
		name  string
		check func(r *ring) bool // reports whether seq 1 was seen as expired
	}{
		{"gapAfter", func(r *ring) bool { return r.gapAfter(0) }},
		{"after", func(r *ring) bool { return len(r.after(0)) == 0 && r.evictedSeq == 1 }},
		{"append", func(r *ring) bool {
			r.append(replayTestEvent(2, 100, now()))
			return r.evictedSeq == 1
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := replayTestClock(t)
			r := newRing(RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: time.Minute})
			r.append(replayTestEvent(1, 100, replayTestT0))
			if r.gapAfter(0) {
				t.Fatal("gap reported before anything expired")
			}
			set(replayTestT0.Add(2 * time.Minute))
			if !tc.check(r) {
				t.Fatalf("%s did not expire the old event", tc.name)
			}
		})
	}
}

func TestRingNoAgeLimit(t *testing.T) {
	set := replayTestClock(t)
	r := newRing(RingConfig{Replay: 10, ReplaySize: 1 << 20})
	r.append(replayTestEvent(1, 100, replayTestT0))
	set(replayTestT0.Add(100 * 365 * 24 * time.Hour))
	if got := replayTestSeqs(r.after(0)); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("with no replay_age an event expired: retained %v", got)
	}
}

func TestRingReplayZero(t *testing.T) {
	replayTestClock(t)
	r := newRing(RingConfig{Replay: 0, ReplaySize: DefaultReplaySize})
	for seq := uint64(1); seq <= 3; seq++ {
		r.append(replayTestEvent(seq, 100, replayTestT0))
		if r.len() != 0 || len(r.after(0)) != 0 {
			t.Fatalf("replay 0 kept %d events", r.len())
		}
		if r.evictedSeq != seq {
			t.Fatalf("evictedSeq = %d after appending %d, want %d", r.evictedSeq, seq, seq)
		}
		if r.bytes != 0 {
			t.Fatalf("bytes = %d, want 0", r.bytes)
		}
	}
	if !r.gapAfter(2) || r.gapAfter(3) {
		t.Fatalf("gapAfter(2) = %v, gapAfter(3) = %v; want true, false", r.gapAfter(2), r.gapAfter(3))
	}
}

func TestRingAfter(t *testing.T) {
	replayTestClock(t)
	// retained seqs 10, 20, 30 (not contiguous: other topics got the rest)
	r := newRing(RingConfig{Replay: 3, ReplaySize: 1 << 20})
	for _, seq := range []uint64{5, 10, 20, 30} {
		r.append(replayTestEvent(seq, 100, replayTestT0))
	}
	tests := []struct {
		name string
		seq  uint64
		want []uint64
	}{
		{"zero", 0, []uint64{10, 20, 30}},
		{"before the first", 9, []uint64{10, 20, 30}},
		{"the evicted one", 5, []uint64{10, 20, 30}},
		{"at the first", 10, []uint64{20, 30}},
		{"between first and middle", 11, []uint64{20, 30}},
		{"at the middle", 20, []uint64{30}},
		{"before the last", 29, []uint64{30}},
		{"at the last", 30, []uint64{}},
		{"after the last", 31, []uint64{}},
		{"far after", 1 << 62, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := replayTestSeqs(r.after(tc.seq)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after(%d) = %v, want %v", tc.seq, got, tc.want)
			}
		})
	}
	empty := newRing(RingConfig{Replay: 3, ReplaySize: 1 << 20})
	if got := empty.after(0); len(got) != 0 {
		t.Fatalf("after(0) on an empty ring = %v", replayTestSeqs(got))
	}
}

func TestRingGapAfter(t *testing.T) {
	replayTestClock(t)
	r := newRing(RingConfig{Replay: 2, ReplaySize: 1 << 20})
	if r.gapAfter(0) {
		t.Fatal("an empty, never-evicting ring reports a gap")
	}
	for _, seq := range []uint64{3, 7, 9, 12} { // evicts 3 and 7
		r.append(replayTestEvent(seq, 100, replayTestT0))
	}
	tests := []struct {
		seq  uint64
		want bool
	}{
		{0, true},
		{2, true},
		{3, true},  // 7 was evicted after it
		{6, true},  // 7 was evicted after it
		{7, false}, // only 7 and older were evicted: nothing missed
		{8, false},
		{9, false},
		{12, false},
		{100, false},
	}
	for _, tc := range tests {
		if got := r.gapAfter(tc.seq); got != tc.want {
			t.Errorf("gapAfter(%d) = %v, want %v (evictedSeq %d)", tc.seq, got, tc.want, r.evictedSeq)
		}
	}
}

func TestRingSetConfig(t *testing.T) {
	tests := []struct {
		name        string
		cfg         RingConfig
		advance     time.Duration
		wantSeqs    []uint64
		wantEvicted uint64
	}{
		{"unchanged", RingConfig{Replay: 10, ReplaySize: 1 << 20}, 0, replayTestRange(1, 10), 0},
		{"growing keeps all", RingConfig{Replay: 100, ReplaySize: 1 << 30}, 0, replayTestRange(1, 10), 0},
		{"fewer events", RingConfig{Replay: 4, ReplaySize: 1 << 20}, 0, replayTestRange(7, 10), 6},
		{"fewer bytes", RingConfig{Replay: 10, ReplaySize: 350}, 0, replayTestRange(8, 10), 7},
		{"to zero", RingConfig{Replay: 0, ReplaySize: 1 << 20}, 0, []uint64{}, 10},
		// events are 1s apart, at t0 .. t0+9s; the clock is at t0+9s+advance
		{"an age limit", RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: 3 * time.Second}, 0, replayTestRange(7, 10), 6},
		{"an age limit later", RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: 3 * time.Second}, 2 * time.Second, replayTestRange(9, 10), 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := replayTestClock(t)
			r := newRing(RingConfig{Replay: 10, ReplaySize: 1 << 20})
			for i := 0; i < 10; i++ {
				tm := replayTestT0.Add(time.Duration(i) * time.Second)
				set(tm)
				r.append(replayTestEvent(uint64(i+1), 100, tm))
			}
			set(replayTestT0.Add(9*time.Second + tc.advance))
			r.setConfig(tc.cfg)
			if r.cfg != tc.cfg {
				t.Fatalf("cfg = %+v, want %+v", r.cfg, tc.cfg)
			}
			// setConfig must evict at once: look at the raw state before
			// after() or gapAfter() get a chance to.
			if r.len() != len(tc.wantSeqs) {
				t.Fatalf("setConfig left %d events, want %d", r.len(), len(tc.wantSeqs))
			}
			if r.evictedSeq != tc.wantEvicted {
				t.Fatalf("evictedSeq = %d, want %d", r.evictedSeq, tc.wantEvicted)
			}
			if got := replayTestSeqs(r.after(0)); !reflect.DeepEqual(got, tc.wantSeqs) {
				t.Fatalf("retained %v, want %v", got, tc.wantSeqs)
			}
			replayTestCheckBytes(t, r)
		})
	}
}

func TestRingCompaction(t *testing.T) {
	tests := []struct {
		replay int
		n      int
	}{
		{1, 3000},
		{7, 5000},
		{100, 5000},
		{1000, 4000},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("replay %d, %d appends", tc.replay, tc.n), func(t *testing.T) {
			replayTestClock(t)
			r := newRing(RingConfig{Replay: tc.replay, ReplaySize: 1 << 40})
			bound := max(2*tc.replay, tc.replay+32) + 1
			for seq := uint64(1); seq <= uint64(tc.n); seq++ {
				r.append(replayTestEvent(seq, 100, replayTestT0))
				if len(r.events) > bound {
					t.Fatalf("after %d appends the backing slice holds %d entries for %d retained; want at most %d",
						seq, len(r.events), r.len(), bound)
				}
				if seq%97 == 0 || seq == uint64(tc.n) {
					lo := uint64(1)
					if seq > uint64(tc.replay) {
						lo = seq - uint64(tc.replay) + 1
					}
					if got := replayTestSeqs(r.after(0)); !reflect.DeepEqual(got, replayTestRange(lo, seq)) {
						t.Fatalf("after %d appends retained %v, want %d..%d", seq, got, lo, seq)
					}
					if got := replayTestSeqs(r.after(seq - 1)); !reflect.DeepEqual(got, []uint64{seq}) {
						t.Fatalf("after(%d) = %v, want [%d]", seq-1, got, seq)
					}
					replayTestCheckBytes(t, r)
				}
			}
			if want := uint64(tc.n - tc.replay); r.evictedSeq != want {
				t.Fatalf("evictedSeq = %d, want %d", r.evictedSeq, want)
			}
		})
	}
}

func TestMergeEvents(t *testing.T) {
	ev := make(map[uint64]*Event)
	e := func(seqs ...uint64) []*Event {
		var out []*Event
		for _, s := range seqs {
			if ev[s] == nil {
				ev[s] = &Event{ID: ID{Epoch: "e", Seq: s}}
			}
			out = append(out, ev[s])
		}
		return out
	}
	tests := []struct {
		name  string
		lists [][]*Event
		want  []uint64
	}{
		{"none", nil, []uint64{}},
		{"one empty list", [][]*Event{nil}, []uint64{}},
		{"one list", [][]*Event{e(1, 2, 5)}, []uint64{1, 2, 5}},
		{"two disjoint", [][]*Event{e(1, 3, 5), e(2, 4, 6)}, []uint64{1, 2, 3, 4, 5, 6}},
		{"one after the other", [][]*Event{e(4, 5, 6), e(1, 2, 3)}, []uint64{1, 2, 3, 4, 5, 6}},
		{"shared events once", [][]*Event{e(1, 3, 5), e(2, 3, 6), e(3, 7)}, []uint64{1, 2, 3, 5, 6, 7}},
		{"identical lists", [][]*Event{e(1, 2, 3), e(1, 2, 3), e(1, 2, 3)}, []uint64{1, 2, 3}},
		{"with empty lists", [][]*Event{nil, e(2), nil, e(1, 2)}, []uint64{1, 2}},
		{"all empty", [][]*Event{nil, nil}, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MergeEvents(tc.lists)
			if seqs := replayTestSeqs(got); !reflect.DeepEqual(seqs, tc.want) {
				t.Fatalf("mergeEvents = %v, want %v", seqs, tc.want)
			}
			for _, g := range got {
				if g != ev[g.ID.Seq] {
					t.Fatalf("event %d is not the shared *Event", g.ID.Seq)
				}
			}
		})
	}

	// The result must not alias an input: rings keep mutating theirs
	// (eviction nils slots, compaction moves them) after the hub unlocks.
	in := e(1, 2, 3)
	out := MergeEvents([][]*Event{in})
	in[0] = nil
	if out[0] == nil {
		t.Fatal("mergeEvents of one list returned the list itself, not a copy")
	}
	a, b := e(1, 3), e(2, 4)
	out = MergeEvents([][]*Event{a, b})
	a[0], b[0] = nil, nil
	if out[0] == nil || out[1] == nil {
		t.Fatal("mergeEvents of two lists aliases an input")
	}
}

// TestRingLast: the newest n retained events, oldest first, never more
// than the ring holds, never an event past its age.
func TestRingLast(t *testing.T) {
	set := replayTestClock(t)
	r := newRing(RingConfig{Replay: 5, ReplaySize: 1 << 40, ReplayAge: time.Minute})
	for seq := uint64(1); seq <= 7; seq++ { // 1 and 2 are evicted by count
		r.append(replayTestEvent(seq, 100, replayTestT0.Add(time.Duration(seq)*time.Second)))
	}
	for _, tc := range []struct {
		n    int
		want []uint64
	}{
		{0, []uint64{}},
		{1, []uint64{7}},
		{3, []uint64{5, 6, 7}},
		{5, []uint64{3, 4, 5, 6, 7}},
		{50, []uint64{3, 4, 5, 6, 7}}, // more than retained: what is retained
	} {
		if got := replayTestSeqs(r.last(tc.n)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("last(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	// A minute after event 5: 3, 4 and 5 have aged out.
	set(replayTestT0.Add(5*time.Second + time.Minute + time.Nanosecond))
	if got := replayTestSeqs(r.last(5)); !reflect.DeepEqual(got, []uint64{6, 7}) {
		t.Errorf("last(5) after aging = %v, want [6 7]", got)
	}
}
