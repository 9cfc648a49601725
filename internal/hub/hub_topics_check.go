package hub

import "fmt"

// CheckTopics checks the topic bookkeeping's invariants (hub_topics.go,
// topic_lru.go): every idle topic of a group is in exactly one of its
// lists, a topic with subscribers in none, a topic that retains events
// never in the "empty" list, and the counts agree. Tests of this package
// and of the engines built on it call it after churn; it takes the lock.
func (h *Hub) CheckTopics() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sizes := map[*topicGroup]int{}
	for name, tp := range h.topics {
		if tp.grp == nil {
			if tp.list != nil {
				return fmt.Errorf("literal topic %s is in a group list", name)
			}
			continue
		}
		sizes[tp.grp]++
		if h.groups[tp.grp.name] != tp.grp {
			return fmt.Errorf("topic %s points at group %q, which the hub does not hold", name, tp.grp.name)
		}
		switch {
		case len(tp.subs) > 0 && tp.list != nil:
			return fmt.Errorf("topic %s has subscribers but is listed as idle", name)
		case len(tp.subs) == 0 && tp.list == nil:
			return fmt.Errorf("idle topic %s is in no list: it can never be forgotten", name)
		case tp.list == &tp.grp.empty && tp.ring.len() > 0:
			return fmt.Errorf("topic %s retains %d events but is listed as empty: a subscriber could forget it", name, tp.ring.len())
		}
	}
	for name, g := range h.groups {
		if g.size != sizes[g] || g.size == 0 {
			return fmt.Errorf("group %s: size %d, holds %d topics", name, g.size, sizes[g])
		}
		for _, l := range []*topicList{&g.empty, &g.retained} {
			n := 0
			for tp := l.front; tp != nil; tp = tp.next {
				if tp.list != l || h.topics[tp.name] != tp {
					return fmt.Errorf("group %s lists %s, which is elsewhere or forgotten", name, tp.name)
				}
				n++
			}
			if n != l.n {
				return fmt.Errorf("group %s: list counts %d, holds %d", name, l.n, n)
			}
		}
	}
	return nil
}
