// Package logthrottle keeps warnings about floods (refused publishes,
// dropped subscribers, a failing Redis) to a line per reason per interval,
// with a count of those held back. It imports only the standard library.
package logthrottle

import (
	"sync"
	"time"
)

// Throttle lets one line per key through per interval and counts the
// ones it holds back, so a flood of refusals (a misconfigured publisher,
// an attack) costs a line a second, not a line a request. Keys are reasons
// from closed sets (statuses, drop reasons), so the map stays small.
type Throttle struct {
	// Every is the interval per key. Default: a second.
	Every time.Duration

	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

// Allow reports whether a line for key may be written now, and how many
// were held back since the last one.
func (l *Throttle) Allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*throttled)
	}
	every := l.Every
	if every == 0 {
		every = time.Second
	}
	k := l.keys[key]
	if k == nil && len(l.keys) >= 1024 {
		// Keys come from closed sets; this only bounds a mistake.
		clear(l.keys)
	}
	if k == nil {
		k = new(throttled)
		l.keys[key] = k
	}
	t := time.Now()
	if !k.last.IsZero() && t.Sub(k.last) < every {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = t, 0
	return true, n
}
