package caddysse

// publicIDs is the memory hub's index of publisher-chosen ids: each
// PublicID of a retained event, with the rings that retain it. An event
// published to several topics stays in the index until the last of its
// rings lets it go, so the index never holds more entries than the rings
// hold events: a flood of distinct ids costs what the rings already bound.
// The hub's lock guards it.
type publicIDs struct {
	m map[string]*publicHold
}

type publicHold struct {
	ev    *Event
	rings []*ring // the rings retaining ev; almost always one
}

// hold records that r retains e (r.append).
func (p *publicIDs) hold(r *ring, e *Event) {
	if p.m == nil {
		p.m = make(map[string]*publicHold)
	}
	h := p.m[e.PublicID]
	if h == nil || h.ev != e {
		h = &publicHold{ev: e}
		p.m[e.PublicID] = h
	}
	h.rings = append(h.rings, r)
}

// release records that r no longer retains e (evicted, or its topic
// forgotten); the id is free once no ring retains it.
func (p *publicIDs) release(r *ring, e *Event) {
	h := p.m[e.PublicID]
	if h == nil || h.ev != e {
		return
	}
	for i, x := range h.rings {
		if x == r {
			h.rings[i] = h.rings[len(h.rings)-1]
			h.rings = h.rings[:len(h.rings)-1]
			break
		}
	}
	if len(h.rings) == 0 {
		delete(p.m, e.PublicID)
	}
}

// lookup returns the retained event bearing id, or nil. Rings expire
// events by age lazily; the holder's rings are expired first, so an event
// past its replay_age neither blocks its id nor serves as a resume point.
func (p *publicIDs) lookup(id string) *Event {
	h := p.m[id]
	if h == nil {
		return nil
	}
	for _, r := range append([]*ring(nil), h.rings...) {
		r.expire()
	}
	if h = p.m[id]; h == nil {
		return nil
	}
	return h.ev
}

// retainedBy reports whether one of rings retains the event bearing id.
func (p *publicIDs) retainedBy(id string, rings func(yield func(*ring) bool)) bool {
	h := p.m[id]
	if h == nil {
		return false
	}
	for r := range rings {
		for _, x := range h.rings {
			if x == r {
				return true
			}
		}
	}
	return false
}

// len is how many ids the index holds (tests, stats).
func (p *publicIDs) len() int { return len(p.m) }
