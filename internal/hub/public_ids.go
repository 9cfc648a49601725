package hub

// publicIDs is the memory hub's index of publisher-chosen ids: for each
// PublicID, the retained events bearing it, oldest first, each with the
// rings that retain it. Ids need not be unique (a reused id is published,
// and resolves to the earliest event bearing it), so an
// id maps to a list. An event published to several topics stays in the
// index until the last of its rings lets it go, so the index never holds
// more entries than the rings hold events: a flood of ids, distinct or
// not, costs what the rings already bound. The hub's lock guards it.
type publicIDs struct {
	m map[string][]*publicHold // oldest first (the hub appends in id order)
	n int                      // entries, all ids together
}

type publicHold struct {
	ev    *Event
	rings []*ring // the rings retaining ev; almost always one
}

// hold records that r retains e (r.append). The hub appends an event to
// each of its rings in turn, before any newer event, so e is the newest
// entry of its id or a new one.
func (p *publicIDs) hold(r *ring, e *Event) {
	if p.m == nil {
		p.m = make(map[string][]*publicHold)
	}
	l := p.m[e.PublicID]
	if n := len(l); n > 0 && l[n-1].ev == e {
		l[n-1].rings = append(l[n-1].rings, r)
		return
	}
	p.m[e.PublicID] = append(l, &publicHold{ev: e, rings: []*ring{r}})
	p.n++
}

// release records that r no longer retains e (evicted, or its topic
// forgotten); the entry goes once no ring retains e. Rings evict oldest
// first, so e is almost always the first entry of its id: that case costs
// no copy.
func (p *publicIDs) release(r *ring, e *Event) {
	l := p.m[e.PublicID]
	i := 0
	for i < len(l) && l[i].ev != e {
		i++
	}
	if i == len(l) {
		return
	}
	h := l[i]
	for j, x := range h.rings {
		if x == r {
			h.rings[j] = h.rings[len(h.rings)-1]
			h.rings = h.rings[:len(h.rings)-1]
			break
		}
	}
	if len(h.rings) > 0 {
		return
	}
	p.n--
	switch {
	case len(l) == 1:
		delete(p.m, e.PublicID)
	case i == 0:
		l[0] = nil // let the event be collected
		p.m[e.PublicID] = l[1:]
	default:
		p.m[e.PublicID] = append(l[:i], l[i+1:]...)
		l[len(l)-1] = nil
	}
}

// earliest returns the oldest event bearing id that one of rings retains,
// or nil: the spec's "a Last-Event-ID bearing that value MUST resolve to
// the earliest such update in the hub's history". Rings expire events by
// age lazily; rings are expired first, so an event past its replay_age
// does not serve as a resume point.
func (p *publicIDs) earliest(id string, rings func(yield func(*ring) bool)) *Event {
	if p.m[id] == nil {
		return nil
	}
	for r := range rings {
		r.expire()
	}
	for _, h := range p.m[id] {
		for r := range rings {
			for _, x := range h.rings {
				if x == r {
					return h.ev
				}
			}
		}
	}
	return nil
}

// len is how many entries the index holds, all ids together (tests,
// stats): at most the events the rings retain.
func (p *publicIDs) len() int { return p.n }
