//go:build linux

package stream

import (
	"math/bits"
	"runtime"
	"sync"
	"time"
)

// A timer wheel keeps every loop-served stream's next service time: its
// heartbeat, the end of its coalesce window, its write timeout. A runtime
// timer per stream cost 110 bytes of an idle stream's memory; here a stream
// costs its two links and a tick, and each wheel one runtime timer, armed
// for its earliest non-empty slot.
//
// A stream due at time t sits in the slot of tick floor(t / wheelTick) and
// is serviced once that tick is over: never early, at most a tick late.
// Slots wrap every wheelSlots ticks; a stream due later than that (a 15 s
// heartbeat) waits in its slot through the rounds before its own.

const (
	wheelTick  = time.Millisecond
	wheelSlots = 4096 // a power of two: 4 s around
)

// wheelEpoch anchors ticks on the monotonic clock.
var wheelEpoch = time.Now()

type wheel struct {
	mu      sync.Mutex
	heads   [wheelSlots]*loopStream
	used    [wheelSlots / 64]uint64 // slots with a stream in them
	cursor  int64                   // every tick before it has been serviced
	timer   *time.Timer
	timerAt int64 // the tick the timer ends; 0: not armed
}

// wheelLinks is what a stream keeps of its place in a wheel, under the
// wheel's lock.
type wheelLinks struct {
	next, prev *loopStream
	tick       int64 // the tick it is due in; 0: not in the wheel
}

var (
	wheelsOnce sync.Once
	wheels     []*wheel
)

// wheelFor returns the wheel for a stream on descriptor fd: one per core,
// so that streams armed from both cores do not share one lock.
func wheelFor(fd int) *wheel {
	wheelsOnce.Do(func() {
		wheels = make([]*wheel, runtime.GOMAXPROCS(0))
		for i := range wheels {
			wheels[i] = &wheel{cursor: tickOf(time.Now())}
		}
	})
	return wheels[fd%len(wheels)]
}

func tickOf(t time.Time) int64 { return int64(t.Sub(wheelEpoch) / wheelTick) }

// arm has ls serviced at at, unless it already is earlier.
func (w *wheel) arm(ls *loopStream, at time.Time) {
	tick := tickOf(at)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ls.w.tick != 0 && ls.w.tick <= tick {
		return
	}
	w.unlinkLocked(ls)
	tick = max(tick, w.cursor) // due already: the next turn takes it
	w.linkLocked(ls, tick)
	if w.timerAt == 0 || tick < w.timerAt {
		w.setTimerLocked(tick)
	}
}

// disarm takes ls out of the wheel.
func (w *wheel) disarm(ls *loopStream) {
	w.mu.Lock()
	w.unlinkLocked(ls)
	w.mu.Unlock()
}

func (w *wheel) linkLocked(ls *loopStream, tick int64) {
	slot := tick & (wheelSlots - 1)
	ls.w.tick, ls.w.prev, ls.w.next = tick, nil, w.heads[slot]
	if ls.w.next != nil {
		ls.w.next.w.prev = ls
	}
	w.heads[slot] = ls
	w.used[slot/64] |= 1 << (slot % 64)
}

func (w *wheel) unlinkLocked(ls *loopStream) {
	if ls.w.tick == 0 {
		return
	}
	slot := ls.w.tick & (wheelSlots - 1)
	if ls.w.prev != nil {
		ls.w.prev.w.next = ls.w.next
	} else {
		w.heads[slot] = ls.w.next
	}
	if ls.w.next != nil {
		ls.w.next.w.prev = ls.w.prev
	}
	if w.heads[slot] == nil {
		w.used[slot/64] &^= 1 << (slot % 64)
	}
	ls.w = wheelLinks{}
}

// setTimerLocked has the wheel turn once tick is over.
func (w *wheel) setTimerLocked(tick int64) {
	w.timerAt = tick
	d := time.Until(wheelEpoch.Add(time.Duration(tick+1) * wheelTick))
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.turn)
	} else {
		w.timer.Reset(d)
	}
}

// turn services every stream due in a tick that is over, and sets the
// timer for the next slot with a stream in it.
func (w *wheel) turn() {
	w.mu.Lock()
	due := w.collectLocked(time.Now())
	w.timerAt = 0
	if next, ok := w.nextUsedLocked(); ok {
		w.setTimerLocked(next)
	}
	w.mu.Unlock()
	for _, ls := range due {
		// A servicer's stack has grown once; servicing in this timer's
		// fresh goroutine grew one on every turn (bench/NOTES.md).
		select {
		case servicers() <- ls:
		default:
			ls.service()
		}
	}
}

// collectLocked takes out of the wheel every stream due in a tick over by
// now, and moves the cursor past them.
func (w *wheel) collectLocked(now time.Time) []*loopStream {
	var due []*loopStream
	last := tickOf(now) - 1 // the last tick that is over
	if last < w.cursor {
		return nil
	}
	// Each slot is looked at once, however long the wheel slept; a stream
	// in it is due if its tick is over, whatever its round.
	for t := w.cursor; t <= last && t < w.cursor+wheelSlots; t++ {
		slot := t & (wheelSlots - 1)
		if w.used[slot/64]&(1<<(slot%64)) == 0 {
			continue
		}
		for ls := w.heads[slot]; ls != nil; {
			next := ls.w.next
			if ls.w.tick <= last {
				w.unlinkLocked(ls)
				due = append(due, ls)
			}
			ls = next
		}
	}
	w.cursor = last + 1
	return due
}

// nextUsedLocked is the first tick from the cursor whose slot holds a
// stream (which may be due in a later round: the turn then finds nothing
// due there and goes on).
func (w *wheel) nextUsedLocked() (int64, bool) {
	start := w.cursor & (wheelSlots - 1)
	for i := 0; i <= wheelSlots/64; i++ {
		word := (start/64 + int64(i)) % (wheelSlots / 64)
		bitsLeft := w.used[word]
		if i == 0 {
			bitsLeft &^= (1 << (start % 64)) - 1 // slots before the cursor's, in its word
		}
		if bitsLeft == 0 {
			continue
		}
		slot := word*64 + int64(bits.TrailingZeros64(bitsLeft))
		return w.cursor + (slot-start+wheelSlots)&(wheelSlots-1), true
	}
	return 0, false
}
