//go:build linux

package stream

import (
	"slices"
	"testing"
	"time"
)

// testWheel is a wheel whose ticks start an hour from now, so that its
// runtime timer never fires during the test: the test turns it by hand
// (collectLocked) at times of its choosing.
func testWheel(t *testing.T) (*wheel, time.Time) {
	base := time.Now().Add(time.Hour)
	w := &wheel{cursor: tickOf(base)}
	t.Cleanup(func() {
		if w.timer != nil {
			w.timer.Stop()
		}
	})
	return w, base
}

func collect(w *wheel, now time.Time) []*loopStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.collectLocked(now)
}

func TestWheelServicesNeverEarlyAndAtMostATickLate(t *testing.T) {
	w, base := testWheel(t)
	soon, round, tworounds := &loopStream{}, &loopStream{}, &loopStream{}
	// round and tworounds share soon's slot, a round and two later.
	w.arm(soon, base.Add(5*time.Millisecond))
	w.arm(round, base.Add(5*time.Millisecond+wheelSlots*wheelTick))
	w.arm(tworounds, base.Add(5*time.Millisecond+2*wheelSlots*wheelTick))

	if got := collect(w, base.Add(5*time.Millisecond)); len(got) != 0 {
		t.Fatalf("due before its tick was over: %d streams", len(got))
	}
	if got := collect(w, base.Add(6*time.Millisecond)); !slices.Equal(got, []*loopStream{soon}) {
		t.Fatalf("once its tick is over: got %v, want only the first stream", got)
	}
	if got := collect(w, base.Add(5*time.Millisecond+wheelSlots*wheelTick)); len(got) != 0 {
		t.Fatalf("a stream a round away was serviced a round early: %d", len(got))
	}
	if got := collect(w, base.Add(6*time.Millisecond+wheelSlots*wheelTick)); !slices.Equal(got, []*loopStream{round}) {
		t.Fatalf("a round later: got %v, want the second stream", got)
	}
	if tworounds.w.tick == 0 {
		t.Fatal("the stream two rounds away left the wheel early")
	}
}

func TestWheelAfterALongSleepServicesEverythingDue(t *testing.T) {
	w, base := testWheel(t)
	var streams []*loopStream
	for i := range 50 {
		ls := &loopStream{}
		streams = append(streams, ls)
		w.arm(ls, base.Add(time.Duration(i)*97*time.Millisecond)) // over about 5 s: more than a round
	}
	later := &loopStream{}
	w.arm(later, base.Add(time.Minute))
	got := collect(w, base.Add(30*time.Second))
	if len(got) != len(streams) {
		t.Fatalf("after sleeping past several rounds: %d of %d due streams serviced", len(got), len(streams))
	}
	for _, ls := range streams {
		if !slices.Contains(got, ls) || ls.w.tick != 0 {
			t.Fatal("a due stream was not taken out of the wheel")
		}
	}
	if later.w.tick == 0 || slices.Contains(got, later) {
		t.Fatal("a stream due a minute on was serviced with the rest")
	}
}

func TestWheelKeepsTheEarliestTime(t *testing.T) {
	w, base := testWheel(t)
	ls := &loopStream{}
	w.arm(ls, base.Add(50*time.Millisecond))
	w.arm(ls, base.Add(80*time.Millisecond)) // later: ignored
	if want := tickOf(base.Add(50 * time.Millisecond)); ls.w.tick != want {
		t.Fatalf("a later arm moved the stream: tick %d, want %d", ls.w.tick, want)
	}
	w.arm(ls, base.Add(20*time.Millisecond)) // earlier: moved
	if got := collect(w, base.Add(21*time.Millisecond)); !slices.Equal(got, []*loopStream{ls}) {
		t.Fatalf("an earlier arm did not move the stream: got %v", got)
	}
	if got := collect(w, base.Add(time.Second)); len(got) != 0 {
		t.Fatal("the stream was serviced twice: it stayed in its old slot")
	}

	w.arm(ls, base.Add(2*time.Second))
	w.disarm(ls)
	if got := collect(w, base.Add(3*time.Second)); len(got) != 0 || ls.w.tick != 0 {
		t.Fatal("a disarmed stream was serviced")
	}
}

func TestWheelTimerGoesToTheNextUsedSlot(t *testing.T) {
	w, base := testWheel(t)
	a, b := &loopStream{}, &loopStream{}
	w.arm(a, base.Add(3*time.Second))
	w.arm(b, base.Add(700*time.Millisecond))
	if want := tickOf(base.Add(700 * time.Millisecond)); w.timerAt != want {
		t.Fatalf("timer at tick %d, want the earliest stream's %d", w.timerAt, want)
	}
	w.mu.Lock()
	w.collectLocked(base.Add(701 * time.Millisecond))
	next, ok := w.nextUsedLocked()
	w.mu.Unlock()
	if want := tickOf(base.Add(3 * time.Second)); !ok || next != want {
		t.Fatalf("next used tick %d (%v), want %d", next, ok, want)
	}
	// Past in the wheel: a stream due before the cursor is due at once.
	w.arm(b, base)
	if b.w.tick != w.cursor {
		t.Fatalf("a stream due in a tick already over sits at %d, want the cursor %d", b.w.tick, w.cursor)
	}
}
