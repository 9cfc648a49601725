package hub

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Idempotency-Key: a publisher that did not get an answer (a timeout, a
// 504) retries with the same key, and the hub answers the original result
// instead of publishing again. The memory hub keeps the keys it has seen in
// an idempotencyStore; the Redis engine keeps them in Redis, recorded by the
// same script that publishes (internal/redishub/redis_scripts.go), so any instance recognises
// them.

// Defaults of the key window.
const (
	DefaultIdempotencyWindow = 10 * time.Minute
	DefaultIdempotencyKeys   = 100000
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLen = 128

// ErrIdempotencyConflict is returned when a key is used again with another
// body: the publisher reuses keys by mistake, and neither publishing nor
// answering the other body's result would be right.
var ErrIdempotencyConflict = errors.New("this Idempotency-Key was used with another body within the key window; use a new key for a new publish")

// ErrIdempotencyInProgress is returned when a publish with the same key is
// still running and the duplicate's context ended while it waited.
var ErrIdempotencyInProgress = errors.New("a publish with this Idempotency-Key is still in progress; retry shortly")

// ValidIdempotencyKey accepts 1-128 printable ASCII bytes (space to '~').
func ValidIdempotencyKey(key string) bool {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// PublishFingerprint identifies a publish's content: its events (as they
// go on the wire, id aside) and their topics, in order.
func PublishFingerprint(pubs []Publication) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range pubs {
		body := EncodeBody(p.Message)
		binary.BigEndian.PutUint64(n[:], uint64(len(body)))
		h.Write(n[:])
		h.Write(body)
		binary.BigEndian.PutUint64(n[:], uint64(len(p.Topics)))
		h.Write(n[:])
		for _, ref := range p.Topics {
			h.Write([]byte(ref.Name))
			h.Write([]byte{0})
		}
		// What a retry must also repeat, written only when set so that
		// the fingerprints of plain publishes do not change.
		if m := p.Message; m.Meta != "" || m.PublicID != "" || m.HashID {
			for _, f := range []string{"\x01", m.Meta, m.PublicID, strconv.FormatBool(m.HashID)} {
				binary.BigEndian.PutUint64(n[:], uint64(len(f)))
				h.Write(n[:])
				h.Write([]byte(f))
			}
		}
	}
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil)[:18])
}

// IdempotencySetter is an engine whose key window can be set: a reload
// applies its settings to the pooled hub through it.
type IdempotencySetter interface {
	// SetIdempotency sets the key window and the most keys kept per hub;
	// zero keeps a setting.
	SetIdempotency(window time.Duration, keys int)
}

// SetIdempotency sets the key window and the most keys kept.
func (h *Hub) SetIdempotency(window time.Duration, keys int) {
	h.idem.configure(window, keys)
}

// Interface guards
var _ IdempotencySetter = (*Hub)(nil)

// idempotencyStore remembers the result of each keyed publish for the key
// window, at most max of them: a map for lookups and a list in completion
// order for expiry and eviction, both O(1) per operation. Its zero value is
// ready to use with the defaults.
type idempotencyStore struct {
	mu      sync.Mutex
	window  time.Duration
	max     int
	entries map[string]*idemEntry
	order   list.List // completed entries, oldest first (of *idemEntry)
}

// idemEntry is one key: running (done open) or completed with its result.
// A completed result is kept compactly: the ids of a batch are consecutive.
type idemEntry struct {
	key, fp   string
	done      chan struct{}
	completed bool
	expires   time.Time
	epoch     string
	first     uint64
	delivered []int32
	results   []PublishResult // only when the ids are not consecutive
	elem      *list.Element   // in order, once completed
}

func (s *idempotencyStore) configure(window time.Duration, keys int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if window > 0 {
		s.window = window
	}
	if keys > 0 {
		s.max = keys
		s.trimLocked()
	}
}

// do runs publish once per key: a key completed within the window answers
// its result again, a key running makes the duplicate wait for it. A
// publish that fails forgets its key, so a retry publishes.
func (s *idempotencyStore) do(ctx context.Context, key, fp string, publish func() ([]PublishResult, error)) (PublishOutcome, error) {
	for {
		s.mu.Lock()
		if s.entries == nil {
			s.entries = make(map[string]*idemEntry)
		}
		t := now()
		s.expireLocked(t)
		e := s.entries[key]
		if e != nil && e.completed && !t.Before(e.expires) {
			s.removeLocked(e)
			e = nil
		}
		if e == nil {
			e = &idemEntry{key: key, fp: fp, done: make(chan struct{})}
			s.entries[key] = e
			s.mu.Unlock()
			return s.run(e, publish)
		}
		if e.fp != fp {
			s.mu.Unlock()
			return PublishOutcome{}, ErrIdempotencyConflict
		}
		if e.completed {
			out := PublishOutcome{Results: e.result(), Replayed: true}
			s.mu.Unlock()
			return out, nil
		}
		done := e.done
		s.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return PublishOutcome{}, ErrIdempotencyInProgress
		}
	}
}

func (s *idempotencyStore) run(e *idemEntry, publish func() ([]PublishResult, error)) (PublishOutcome, error) {
	results, err := publish()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Waiters hold the channel; the entry need not keep it once closed.
	defer func() { close(e.done); e.done = nil }()
	if err != nil {
		if s.entries[e.key] == e {
			delete(s.entries, e.key)
		}
		return PublishOutcome{}, err
	}
	e.store(results)
	e.completed = true
	window := s.window
	if window <= 0 {
		window = DefaultIdempotencyWindow
	}
	e.expires = now().Add(window)
	if s.entries[e.key] == e { // not evicted meanwhile
		e.elem = s.order.PushBack(e)
		s.trimLocked()
	}
	return PublishOutcome{Results: results}, nil
}

// expireLocked forgets entries past their window, oldest first. With one
// window for all, completion order is expiry order; after a reload that
// shortened the window, later entries are still checked on lookup.
func (s *idempotencyStore) expireLocked(t time.Time) {
	for f := s.order.Front(); f != nil && !t.Before(f.Value.(*idemEntry).expires); f = s.order.Front() {
		s.removeLocked(f.Value.(*idemEntry))
	}
}

// trimLocked forgets the oldest entries beyond the most kept.
func (s *idempotencyStore) trimLocked() {
	max := s.max
	if max <= 0 {
		max = DefaultIdempotencyKeys
	}
	for s.order.Len() > max {
		s.removeLocked(s.order.Front().Value.(*idemEntry))
	}
}

func (s *idempotencyStore) removeLocked(e *idemEntry) {
	if s.entries[e.key] == e {
		delete(s.entries, e.key)
	}
	if e.elem != nil {
		s.order.Remove(e.elem)
		e.elem = nil
	}
}

func (e *idemEntry) store(results []PublishResult) {
	e.delivered = make([]int32, len(results))
	for i, r := range results {
		e.delivered[i] = int32(r.Delivered)
	}
	if len(results) == 0 {
		return
	}
	first, ok := ParseID(results[0].ID)
	for i := 1; ok && i < len(results); i++ {
		id, _ := ParseID(results[i].ID)
		ok = id.Epoch == first.Epoch && id.Seq == first.Seq+uint64(i)
	}
	if !ok {
		e.results = results
		e.delivered = nil
		return
	}
	e.epoch, e.first = first.Epoch, first.Seq
}

func (e *idemEntry) result() []PublishResult {
	if e.results != nil {
		return e.results
	}
	out := make([]PublishResult, len(e.delivered))
	for i, d := range e.delivered {
		out[i] = PublishResult{ID: ID{Epoch: e.epoch, Seq: e.first + uint64(i)}.String(), Delivered: int(d)}
	}
	return out
}
