package mercure

import (
	"encoding/json"
	"strings"
	"sync/atomic"
)

// An update's metadata (mercureMeta) is JSON, written once per publish and
// read once per event by the subscribers' filters (Event.Decoded); it is
// also what the Redis engine stores, so its format does not change. In the
// publish benchmark, encoding/json's reflection on the two sides was about
// 3% of the server's CPU. Topics are almost always plain ASCII URLs, so
// both sides handle that case by hand and leave everything else to
// encoding/json: the bytes written and the values read are exactly what
// json.Marshal and json.Unmarshal give (TestMercureMetaMatchesJSON).

// encodeMercureMeta is json.Marshal(m).
func encodeMercureMeta(m mercureMeta) string {
	n := len(`{"t":[],"p":true}`)
	for _, t := range m.Topics {
		if !plainJSONString(t) {
			n = -1
			break
		}
		n += len(t) + 3
	}
	if n < 0 || m.Topics == nil { // escapes to write, or null
		b, _ := json.Marshal(m)
		return string(b)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(`{"t":[`)
	for i, t := range m.Topics {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(t)
		b.WriteByte('"')
	}
	b.WriteByte(']')
	if m.Private {
		b.WriteString(`,"p":true`)
	}
	b.WriteByte('}')
	return b.String()
}

// plainJSONString reports whether json.Marshal writes s as is between
// quotes: printable ASCII without '"', '\\' or the characters it escapes
// for HTML ('<', '>', '&').
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeMercureMetaPlain reads what encodeMercureMeta writes without
// encoding/json: `{"t":["…",…]}` or `{"t":[…],"p":true}` with plain
// strings (plainJSONString). ok is false for anything else, which the
// caller decodes with json.Unmarshal.
func decodeMercureMetaPlain(meta string) (m mercureMeta, ok bool) {
	rest, found := strings.CutPrefix(meta, `{"t":[`)
	if !found {
		return m, false
	}
	switch {
	case strings.HasSuffix(rest, `],"p":true}`):
		m.Private = true
		rest = rest[:len(rest)-len(`],"p":true}`)]
	case strings.HasSuffix(rest, `]}`):
		rest = rest[:len(rest)-len(`]}`)]
	default:
		return m, false
	}
	if rest == "" {
		return mercureMeta{}, false
	}
	n := strings.Count(rest, `","`) + 1
	m.Topics = make([]string, 0, n)
	for {
		if len(rest) < 2 || rest[0] != '"' {
			return mercureMeta{}, false
		}
		end := strings.IndexByte(rest[1:], '"') + 1
		if end == 0 {
			return mercureMeta{}, false
		}
		t := rest[1:end]
		if !plainJSONString(t) {
			return mercureMeta{}, false
		}
		m.Topics = append(m.Topics, t)
		rest = rest[end+1:]
		if rest == "" {
			return m, true
		}
		if rest[0] != ',' {
			return mercureMeta{}, false
		}
		rest = rest[1:]
	}
}

// mercureMetaMemo remembers, on one event, the decisions of a few
// deciders. Every subscriber of the Mercure topic is asked about every
// update, and subscribers with the same selectors and token share one
// decider (MercureSelectors.Decider): the first subscriber of each decider
// decides, the others read the answer. Each decider has a slot; the first
// decider to fill a slot keeps it for this event, and the others decide
// for themselves as before (no eviction, no allocation beyond one per
// slot filled).
type mercureMetaMemo [4]atomic.Pointer[mercureDecision]

type mercureDecision struct {
	d     *MercureDecider
	allow bool
}

// mercureMemoSlots hands out the deciders' slots, in turn.
var mercureMemoSlots atomic.Uint32

// allows is d.Allows(m.Topics, m.Private), remembered on the event. A
// decider's answer about one update never changes: it depends only on
// the update and the decider's selector sets (its decision cache only
// saves work).
func (m *mercureMeta) allows(d *MercureDecider) bool {
	if m.memo == nil {
		return d.Allows(m.Topics, m.Private)
	}
	slot := &m.memo[d.memoSlot]
	if p := slot.Load(); p != nil && p.d == d {
		return p.allow
	}
	allow := d.Allows(m.Topics, m.Private)
	if slot.Load() == nil {
		slot.CompareAndSwap(nil, &mercureDecision{d: d, allow: allow})
	}
	return allow
}
