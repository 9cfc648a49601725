package hub

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func topicLRUTestNames(l *topicList) []string {
	var names []string
	for t := l.front; t != nil; t = t.next {
		names = append(names, t.name)
	}
	// Walked backwards, the list must say the same.
	var back []string
	for t := l.back; t != nil; t = t.prev {
		back = append(back, t.name)
	}
	slices.Reverse(back)
	if !slices.Equal(names, back) {
		return append(names, "<prev links disagree>")
	}
	return names
}

func TestTopicList(t *testing.T) {
	var l topicList
	a, b, c := &topic{name: "a"}, &topic{name: "b"}, &topic{name: "c"}
	l.pushBack(a)
	l.pushBack(b)
	l.pushFront(c)
	if got := topicLRUTestNames(&l); !slices.Equal(got, []string{"c", "a", "b"}) || l.n != 3 {
		t.Fatalf("list %v (n %d), want [c a b]", got, l.n)
	}
	l.remove(a) // middle
	l.remove(c) // front
	if got := topicLRUTestNames(&l); !slices.Equal(got, []string{"b"}) || l.n != 1 || a.list != nil || c.list != nil {
		t.Fatalf("list %v (n %d) after removing a and c, want [b]", got, l.n)
	}
	l.remove(b) // the last one
	if l.front != nil || l.back != nil || l.n != 0 {
		t.Fatalf("emptied list: front %v back %v n %d", l.front, l.back, l.n)
	}
}

// The list against a slice model, under random pushes and removals.
func TestTopicListRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l topicList
	var model []string
	pool := make([]*topic, 20)
	for i := range pool {
		pool[i] = &topic{name: string(rune('a' + i))}
	}
	for step := 0; step < 5000; step++ {
		tp := pool[rng.IntN(len(pool))]
		switch {
		case tp.list != nil:
			l.remove(tp)
			model = slices.DeleteFunc(model, func(n string) bool { return n == tp.name })
		case rng.IntN(2) == 0:
			l.pushBack(tp)
			model = append(model, tp.name)
		default:
			l.pushFront(tp)
			model = append([]string{tp.name}, model...)
		}
		if got := topicLRUTestNames(&l); !slices.Equal(got, model) || l.n != len(model) {
			t.Fatalf("step %d: list %v (n %d), model %v", step, got, l.n, model)
		}
	}
}
