package hub

// A pattern declaration ("room/*") spawns concrete topics on demand, up to
// its max_topics. When it is full, making room means forgetting an idle
// topic (one without subscribers), least recently used first. Which idle
// topic may go depends on who asks: a subscriber may forget only a topic
// that retains nothing, a publisher also one that holds history. So each
// group keeps its idle topics in two lists ordered by last use, and every
// step (a topic becomes held, becomes idle, is used, is forgotten) is O(1):
// nothing scans the group under the hub lock.

// topicList is an intrusive doubly linked list of topics, least recently
// used at the front. A topic is in at most one list (topic.list).
type topicList struct {
	front, back *topic
	n           int
}

func (l *topicList) pushBack(t *topic) {
	t.list = l
	t.prev, t.next = l.back, nil
	if l.back != nil {
		l.back.next = t
	} else {
		l.front = t
	}
	l.back = t
	l.n++
}

func (l *topicList) pushFront(t *topic) {
	t.list = l
	t.prev, t.next = nil, l.front
	if l.front != nil {
		l.front.prev = t
	} else {
		l.back = t
	}
	l.front = t
	l.n++
}

func (l *topicList) remove(t *topic) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.front = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		l.back = t.prev
	}
	t.prev, t.next, t.list = nil, nil, nil
	l.n--
}

// topicGroup is what the hub knows about one pattern declaration's
// concrete topics.
type topicGroup struct {
	name string
	size int // concrete topics held in memory, idle or not
	// Idle topics, least recently used first. empty holds those whose
	// ring retains no event: forgetting one loses nothing. retained holds
	// the others; a topic there may have emptied since (its events aged
	// out, a reload shrank its ring), which errs on the safe side.
	empty, retained topicList
}

// unlist takes t out of its group's idle lists: it is about to be used,
// or it is held by a subscriber.
func (t *topic) unlist() {
	if t.list != nil {
		t.list.remove(t)
	}
}

// relist files an idle topic of a group at the back (most recently used)
// of the list its ring says; held topics and literal ones stay unlisted.
func (t *topic) relist() {
	t.unlist()
	if t.grp == nil || len(t.subs) > 0 {
		return
	}
	if t.ring.len() == 0 {
		t.grp.empty.pushBack(t)
	} else {
		t.grp.retained.pushBack(t)
	}
}
