package mercure

import (
	"context"
	"sync"
)

// memorySubsRegistry is the memory engine's registry: the active
// subscriptions of this process, each with the number of connections
// holding it (one, as the subscriber id is drawn per connection; counted
// all the same, so that a leave never ends what another join holds). Its
// size is bounded by the open connections times their matchers
// (themselves capped).
type memorySubsRegistry struct {
	mu   sync.Mutex
	subs map[string]*countedSub
}

type countedSub struct {
	sub mercureSub
	n   int
}

func newMemorySubsRegistry() *memorySubsRegistry {
	return &memorySubsRegistry{subs: make(map[string]*countedSub)}
}

func (r *memorySubsRegistry) join(_ context.Context, subs []mercureSub) []mercureSub {
	r.mu.Lock()
	defer r.mu.Unlock()
	var activated []mercureSub
	for _, s := range subs {
		k := s.key()
		c := r.subs[k]
		if c == nil {
			c = &countedSub{sub: s}
			r.subs[k] = c
			activated = append(activated, s)
		}
		c.n++
	}
	return activated
}

func (r *memorySubsRegistry) leave(_ context.Context, subs []mercureSub) []mercureSub {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ended []mercureSub
	for _, s := range subs {
		k := s.key()
		c := r.subs[k]
		if c == nil {
			continue
		}
		if c.n--; c.n <= 0 {
			delete(r.subs, k)
			ended = append(ended, c.sub)
		}
	}
	return ended
}

func (r *memorySubsRegistry) list(context.Context) ([]mercureSub, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]mercureSub, 0, len(r.subs))
	for _, c := range r.subs {
		out = append(out, c.sub)
	}
	return out, nil
}

// setNotify does nothing: in one process nothing changes behind the
// handlers' back.
func (r *memorySubsRegistry) setNotify(func([]mercureSub, bool)) {}

// Destruct keeps nothing to stop.
func (r *memorySubsRegistry) Destruct() error { return nil }

var _ mercureSubsRegistry = (*memorySubsRegistry)(nil)
