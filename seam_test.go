package caddysse

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// The seam sse_mercure builds on (metadata, publisher-chosen ids, resume by
// either id or earliest, filters, the predecessor), tested once for both
// engines: the memory hub (a and b are the same hub) and Redis (a and b
// are two instances on one redis-server: what a publishes, b serves).

type seamEngines struct {
	a, b  Engine
	srv   *redistest.Server // nil for memory
	base  string            // Redis key prefix + hub name
	epoch func() string
}

func seamMemory(t *testing.T) seamEngines {
	h := NewHub()
	t.Cleanup(func() { _ = h.Close() })
	return seamEngines{a: h, b: h, epoch: h.Epoch}
}

func seamRedis(t *testing.T) seamEngines {
	srv := redistest.Start(t, false)
	a, b := newRedisHub(t, srv, "seam:"), newRedisHub(t, srv, "seam:")
	return seamEngines{a: a, b: b, srv: srv, base: "seam:default", epoch: func() string { return a.local.Position().Epoch }}
}

// caughtUp waits until b has delivered the event with hub id id: a replay
// read from Redis goes up to where b's bus reader is, later events come
// live, and a test that asserts on a replay alone waits for it first.
func (e seamEngines) caughtUp(t *testing.T, id string) {
	t.Helper()
	rb, ok := e.b.(*RedisHub)
	if !ok {
		return
	}
	seq := idSeq(t, id)
	awaitCond(t, "instance b reaching "+id, func() bool { return rb.local.Position().Seq >= seq })
}

// forEachEngine runs a test on both engines.
func forEachEngine(t *testing.T, test func(t *testing.T, e seamEngines)) {
	t.Run("memory", func(t *testing.T) { test(t, seamMemory(t)) })
	t.Run("redis", func(t *testing.T) { test(t, seamRedis(t)) })
}

func seamTopic(name string, replay int) TopicRef {
	return TopicRef{Name: name, Ring: RingConfig{Replay: replay, ReplaySize: 1 << 30}}
}

// pubMsg publishes one message (its Data, Meta, PublicID, HashID) to ref.
func pubMsg(e Engine, ref TopicRef, m Message) (PublishResult, error) {
	m.Topics = []string{ref.Name}
	res, err := publishTo(e, []Publication{{Message: &m, Topics: []TopicRef{ref}}})
	if err != nil {
		return PublishResult{}, err
	}
	return res[0], nil
}

func mustPub(t *testing.T, e Engine, ref TopicRef, m Message) PublishResult {
	t.Helper()
	res, err := pubMsg(e, ref, m)
	if err != nil {
		t.Fatalf("publish %+v: %v", m, err)
	}
	return res
}

// settled waits for a replay the Redis engine had to defer.
func settled(t *testing.T, rp Replay) Replay {
	t.Helper()
	if rp.Later == nil {
		return rp
	}
	select {
	case r := <-rp.Later:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("the replay never came")
	}
	return rp
}

func subWith(t *testing.T, e Engine, refs []TopicRef, opts SubscribeOptions) (*Subscription, Replay) {
	t.Helper()
	if opts.QueueLen == 0 {
		opts.QueueLen = 1 << 16
	}
	s, rp, err := e.SubscribeWith(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, settled(t, rp)
}

func idLine(e *Event) string {
	line, _, _ := strings.Cut(string(e.Wire), "\n")
	return line
}

func datas(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = dataOf(e)
	}
	return out
}

func keepFilter(ev *Event) bool { return ev.Meta != "drop" }

// TestSeamMetaAndPublicIDOnTheWire: Meta travels with the event (through
// Redis to another instance) and never reaches the wire; a PublicID is the
// wire id, HashID writes "#<hub id>"; replays carry the same.
func TestSeamMetaAndPublicIDOnTheWire(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := seamTopic("m", 100)
		live, _ := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{})
		r1 := mustPub(t, e.a, ref, Message{Data: "one", Meta: "secret-meta", PublicID: "urn:uuid:1"})
		r2 := mustPub(t, e.a, ref, Message{Data: "two", Meta: "m2", HashID: true})
		r3 := mustPub(t, e.a, ref, Message{Data: "three"})
		got := takeN(t, live, 3)
		want := []struct{ line, meta, pid string }{
			{"id: urn:uuid:1", "secret-meta", "urn:uuid:1"},
			{"id: #" + r2.ID, "m2", ""},
			{"id: " + r3.ID, "", ""},
		}
		for i, w := range want {
			if idLine(got[i]) != w.line || got[i].Meta != w.meta || got[i].PublicID != w.pid {
				t.Fatalf("event %d: %q meta %q pid %q, want %+v", i, idLine(got[i]), got[i].Meta, got[i].PublicID, w)
			}
			if strings.Contains(string(got[i].Wire), "meta") {
				t.Fatalf("meta on the wire: %q", got[i].Wire)
			}
		}
		if got[0].WireID() != "urn:uuid:1" || got[1].WireID() != "#"+r2.ID || got[2].WireID() != r3.ID {
			t.Fatalf("wire ids %q %q %q", got[0].WireID(), got[1].WireID(), got[2].WireID())
		}
		if r1.ID == "" || strings.HasPrefix(r1.ID, "urn") {
			t.Fatalf("the publish result's id is the hub id, got %q", r1.ID)
		}
		// Resume by PublicID and by "#id": exactly after that event, with
		// the metadata and wire ids of the replayed events.
		_, rp := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: "urn:uuid:1"})
		if rp.Reset != nil || len(rp.Events) != 2 || rp.Events[0].Meta != "m2" || idLine(rp.Events[0]) != "id: #"+r2.ID {
			t.Fatalf("resume by public id: reset %+v events %q", rp.Reset, wires(rp.Events))
		}
		_, rp = subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: "#" + r2.ID})
		if rp.Reset != nil || len(datas(rp.Events)) != 1 || dataOf(rp.Events[0]) != "three" {
			t.Fatalf("resume by #id: reset %+v events %q", rp.Reset, wires(rp.Events))
		}
		_, rp = subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: r1.ID})
		if rp.Reset != nil || len(rp.Events) != 2 || rp.Events[0].PublicID != "" || dataOf(rp.Events[0]) != "two" {
			t.Fatalf("resume by the hub id of a public-id event: %+v %q", rp.Reset, wires(rp.Events))
		}
		// A PublicID no subscribed topic retains is unknown, as is "#"
		// before something that is no hub id.
		other := seamTopic("other", 100)
		mustPub(t, e.a, other, Message{Data: "x", PublicID: "elsewhere"})
		for _, resume := range []string{"elsewhere", "never-published", "#urn:uuid:1"} {
			_, rp = subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: resume})
			if rp.Reset == nil || rp.Reset.Reason != "unknown" || len(rp.Events) != 0 {
				t.Fatalf("resume %q: reset %+v events %q, want unknown", resume, rp.Reset, wires(rp.Events))
			}
		}
	})
}

// TestSeamReusedPublicID: a PublicID retained events already bear is
// published again, from any instance, to any topic, and in one batch
// twice (Mercure's duplicate-id rules). A resume by it starts after the
// earliest event bearing it that the subscribed topics retain, and
// delivers the later ones bearing it too; once that event leaves the
// ring, the next one is the earliest. Only ids in the hub's own id space
// are refused, having published nothing.
func TestSeamReusedPublicID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		x, y := seamTopic("x", 5), seamTopic("y", 100)
		mustPub(t, e.a, x, Message{Data: "1", PublicID: "dup"})
		mustPub(t, e.a, x, Message{Data: "2"})
		mustPub(t, e.b, x, Message{Data: "3", PublicID: "dup"})
		last := mustPub(t, e.b, y, Message{Data: "4", PublicID: "dup"})
		e.caughtUp(t, last.ID)
		for _, c := range []struct {
			refs   []TopicRef
			events string
		}{
			{[]TopicRef{x}, "2,3"},
			{[]TopicRef{y}, ""},
			{[]TopicRef{x, y}, "2,3,4"},
			{[]TopicRef{y, x}, "2,3,4"},
		} {
			_, rp := subWith(t, e.b, c.refs, SubscribeOptions{Resume: "dup", Predecessor: 1})
			if got := strings.Join(datas(rp.Events), ","); rp.Reset != nil || got != c.events || rp.Predecessor != "dup" {
				t.Fatalf("resume dup on %d topics: reset %+v events %q predecessor %q, want %q", len(c.refs), rp.Reset, got, rp.Predecessor, c.events)
			}
		}
		// A batch naming an id twice publishes both.
		var pubs []Publication
		for _, d := range []string{"b1", "b2"} {
			pubs = append(pubs, Publication{Message: &Message{Topics: []string{"y"}, Data: d, PublicID: "batch"}, Topics: []TopicRef{y}})
		}
		res, err := publishTo(e.b, pubs)
		if err != nil || len(res) != 2 {
			t.Fatalf("a batch naming one id twice: %v %v", res, err)
		}
		// In the hub's own id space: ambiguous as a resume point.
		if _, err := pubMsg(e.a, y, Message{Data: "z", PublicID: e.epoch() + "-999"}); !errors.Is(err, ErrReservedID) {
			t.Fatalf("a public id reading as a hub id: %v", err)
		}
		for _, bad := range []string{"#x", "a\nb", "a\rb", "a\x00b", "\xff"} {
			var fe *FieldError
			if _, err := pubMsg(e.a, y, Message{Data: "z", PublicID: bad}); !errors.As(err, &fe) || fe.Field != "id" {
				t.Fatalf("public id %q: %v, want a FieldError on id", Truncate(bad, 20), err)
			}
		}
		// Nothing was published by the refusals: the next id follows.
		next := mustPub(t, e.a, y, Message{Data: "next"})
		if idSeq(t, next.ID) != idSeq(t, res[1].ID)+1 {
			t.Fatalf("ids %s then %s: a refused publish consumed ids", res[1].ID, next.ID)
		}
		// The earliest "dup" leaves x's ring: the next one is the earliest.
		for _, d := range []string{"5", "6", "7"} {
			last = mustPub(t, e.a, x, Message{Data: d})
		}
		e.caughtUp(t, last.ID)
		_, rp := subWith(t, e.b, []TopicRef{x}, SubscribeOptions{Resume: "dup", Predecessor: 1})
		if got := strings.Join(datas(rp.Events), ","); rp.Reset != nil || got != "5,6,7" || rp.Predecessor != "dup" {
			t.Fatalf("after the earliest left: reset %+v events %q predecessor %q", rp.Reset, got, rp.Predecessor)
		}
		// A long id is no error: the caller bounds it.
		long := strings.Repeat("i", 4096)
		mustPub(t, e.a, y, Message{Data: "long", PublicID: long})
	})
}

func idSeq(t *testing.T, s string) uint64 {
	t.Helper()
	id, ok := ParseID(s)
	if !ok {
		t.Fatalf("bad id %q", s)
	}
	return id.Seq
}

// TestSeamEarliest: every retained event, however much was evicted, and
// no reset.
func TestSeamEarliest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := seamTopic("e", 3)
		var last PublishResult
		for i := range 5 {
			last = mustPub(t, e.a, ref, Message{Data: strconv.Itoa(i)})
		}
		e.caughtUp(t, last.ID)
		_, rp := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Earliest: true, Resume: "ignored", Predecessor: 5})
		if rp.Reset != nil || strings.Join(datas(rp.Events), ",") != "2,3,4" || rp.Predecessor != "" {
			t.Fatalf("earliest: reset %+v events %v predecessor %q", rp.Reset, datas(rp.Events), rp.Predecessor)
		}
		_, rp = subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Earliest: true, Filter: func(ev *Event) bool { return dataOf(ev) != "3" }})
		if rp.Reset != nil || strings.Join(datas(rp.Events), ",") != "2,4" {
			t.Fatalf("earliest, filtered: reset %+v events %v", rp.Reset, datas(rp.Events))
		}
		_, rp = subWith(t, e.b, []TopicRef{seamTopic("empty", 3)}, SubscribeOptions{Earliest: true})
		if rp.Reset != nil || len(rp.Events) != 0 {
			t.Fatalf("earliest of an empty topic: %+v %v", rp.Reset, datas(rp.Events))
		}
	})
}

// TestSeamFilterAndPredecessor: the filter applies to live events and to
// the replay; the predecessor (Mercure-Last-Event-ID) is the resume point
// as sent when it was found and honoured whole, whether or not the filter
// lets the subscriber read that event (a cursor it sent; it learns no other
// id), and "" when it is unknown or events after it were discarded.
func TestSeamFilterAndPredecessor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := seamTopic("f", 100)
		r := make([]PublishResult, 6)
		msgs := []Message{
			{Data: "1", PublicID: "p1"},
			{Data: "2", Meta: "drop"},
			{Data: "3", Meta: "drop"},
			{Data: "4", HashID: true},
			{Data: "5", Meta: "drop", PublicID: "p5"},
			{Data: "6"},
		}
		for i, m := range msgs {
			r[i] = mustPub(t, e.a, ref, m)
		}
		e.caughtUp(t, r[5].ID)
		cases := []struct {
			resume string
			events string
			pred   string
		}{
			{r[2].ID, "4,6", r[2].ID}, // a refused event: still the cursor sent
			{"#" + r[2].ID, "4,6", "#" + r[2].ID},
			{"#" + r[3].ID, "6", "#" + r[3].ID},
			{"p5", "6", "p5"},
			{"p1", "4,6", "p1"},
			{r[5].ID, "", r[5].ID},
			{"nope", "", ""},
			{"#nope", "", ""},
		}
		for _, c := range cases {
			s, rp := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: c.resume, Filter: keepFilter, Predecessor: 1})
			s.Close()
			if got := strings.Join(datas(rp.Events), ","); got != c.events || rp.Predecessor != c.pred {
				t.Fatalf("resume %q: events %q predecessor %q, want %q %q", c.resume, got, rp.Predecessor, c.events, c.pred)
			}
		}
		// Without Predecessor none is given.
		s, rp := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: r[2].ID})
		s.Close()
		if rp.Predecessor != "" || len(rp.Events) != 3 {
			t.Fatalf("no predecessor asked: %q %v", rp.Predecessor, datas(rp.Events))
		}
		// Discarded after the resume point (a reset): none.
		small := seamTopic("small", 2)
		first := mustPub(t, e.a, small, Message{Data: "a"})
		var last PublishResult
		for _, d := range []string{"b", "c", "d"} {
			last = mustPub(t, e.a, small, Message{Data: d})
		}
		e.caughtUp(t, last.ID)
		s, rp = subWith(t, e.b, []TopicRef{small}, SubscribeOptions{Resume: first.ID, Predecessor: 1})
		s.Close()
		if rp.Reset == nil || rp.Predecessor != "" {
			t.Fatalf("resume from a discarded point: reset %+v predecessor %q", rp.Reset, rp.Predecessor)
		}

		// Live: refused events are neither queued nor counted, and do not
		// fill a queue of one.
		live, _ := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Filter: keepFilter, QueueLen: 1})
		all, _ := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{})
		before := e.b.Counters().Topic("f").delivered.Load()
		for i := range 5 {
			mustPub(t, e.a, ref, Message{Data: "d" + strconv.Itoa(i), Meta: "drop"})
		}
		mustPub(t, e.a, ref, Message{Data: "kept"})
		takeN(t, all, 6)
		got := takeN(t, live, 1)
		if dataOf(got[0]) != "kept" {
			t.Fatalf("filtered subscriber got %q", wires(got))
		}
		if n := e.b.Counters().Topic("f").delivered.Load() - before; n != 7 {
			t.Fatalf("delivered counted %d, want 7 (6 to one subscriber, 1 to the filtered one)", n)
		}
		select {
		case <-live.Done():
			t.Fatal("the filtered subscriber was dropped")
		default:
		}
	})
}

// TestSeamFilterRace: subscribers resume while a publisher publishes;
// each gets every filtered-in event after its resume point exactly once,
// in order, between its replay and its live events.
func TestSeamFilterRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		const n, subscribers = 300, 8
		ref := seamTopic("race", 1<<20)
		start := mustPub(t, e.a, ref, Message{Data: "0", PublicID: "start"})
		meta := func(i int) string {
			if i%3 == 1 {
				return "drop"
			}
			return ""
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				if _, err := pubMsg(e.a, ref, Message{Data: strconv.Itoa(i), Meta: meta(i)}); err != nil {
					t.Errorf("publish %d: %v", i, err)
					return
				}
			}
		}()
		errs := make(chan error, subscribers)
		for k := range subscribers {
			resume := start.ID
			if k%2 == 1 {
				resume = "start"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, rp, err := e.b.SubscribeWith([]TopicRef{ref}, SubscribeOptions{Resume: resume, QueueLen: 1 << 16, Filter: keepFilter})
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				if rp.Later != nil {
					rp = <-rp.Later
				}
				if rp.Reset != nil {
					errs <- fmt.Errorf("reset %+v", rp.Reset)
					return
				}
				got := rp.Events
				deadline := time.After(20 * time.Second)
				for len(got) == 0 || dataOf(got[len(got)-1]) != strconv.Itoa(n) {
					select {
					case <-s.Ready():
						got = s.Take(got)
					case <-deadline:
						errs <- fmt.Errorf("timed out after %d events", len(got))
						return
					}
				}
				want := 1
				for _, ev := range got {
					for meta(want) == "drop" {
						want++
					}
					if dataOf(ev) != strconv.Itoa(want) {
						errs <- fmt.Errorf("got %s where %d was due", dataOf(ev), want)
						return
					}
					want++
				}
				errs <- nil
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSeamPublicIDIndexBounded: a flood of PublicIDs, distinct or one id
// reused, costs what the ring retains, no more; what left the ring is no
// resume point.
func TestSeamPublicIDIndexBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := seamTopic("flood", 20)
		var last PublishResult
		for i := range 500 {
			id := "flood-" + strconv.Itoa(i)
			if i%2 == 1 {
				id = "same"
			}
			last = mustPub(t, e.a, ref, Message{Data: strconv.Itoa(i), PublicID: id})
		}
		e.caughtUp(t, last.ID)
		if h, ok := e.a.(*Hub); ok {
			h.mu.Lock()
			n := h.ids.len()
			h.mu.Unlock()
			if n != 20 {
				t.Fatalf("the index holds %d entries, the ring 20", n)
			}
		} else {
			if n := e.srv.MustDo(t, "ZCARD", e.base+"#pids:flood"); n != int64(20) {
				t.Fatalf("the topic's id set holds %v entries, the ring 20", n)
			}
		}
		for resume, want := range map[string]string{"flood-0": "", "flood-498": "499", "same": "482"} {
			_, rp := subWith(t, e.b, []TopicRef{ref}, SubscribeOptions{Resume: resume})
			got := ""
			if len(rp.Events) > 0 {
				got = dataOf(rp.Events[0])
			}
			if got != want || (want == "") != (rp.Reset != nil) {
				t.Fatalf("resume %s: first event %q reset %+v, want %q", resume, got, rp.Reset, want)
			}
		}
	})
}

// TestHubPublicIDsFollowTheRings: an event stops being a resume point once
// it ages out (before any publish trims it) or its topic is forgotten, and
// an event of two topics stays one for the subscribers of the topic that
// still retains it.
func TestHubPublicIDsFollowTheRings(t *testing.T) {
	set := replayTestClock(t)
	h := NewHub()
	aged := TopicRef{Name: "aged", Ring: RingConfig{Replay: 100, ReplaySize: 1 << 20, ReplayAge: time.Minute}}
	short, long := seamTopic("short", 1), seamTopic("long", 100)
	mustPub(t, h, aged, Message{Data: "a", PublicID: "old"})
	set(replayTestT0.Add(2 * time.Minute))
	if _, rp := subWith(t, h, []TopicRef{aged}, SubscribeOptions{Resume: "old"}); rp.Reset == nil {
		t.Fatalf("an aged-out event resumed: %v", datas(rp.Events))
	}

	both := []Publication{{Message: &Message{Data: "two", PublicID: "both"}, Topics: []TopicRef{short, long}}}
	if _, err := publishTo(h, both); err != nil {
		t.Fatal(err)
	}
	mustPub(t, h, short, Message{Data: "evicts both from short"})
	if _, rp := subWith(t, h, []TopicRef{short}, SubscribeOptions{Resume: "both"}); rp.Reset == nil || rp.Reset.Reason != "unknown" {
		t.Fatalf("short no longer retains it: %+v %v", rp.Reset, datas(rp.Events))
	}
	s, rp := subWith(t, h, []TopicRef{long}, SubscribeOptions{Resume: "both"})
	if rp.Reset != nil {
		t.Fatalf("long still retains it: %+v", rp.Reset)
	}
	s.Close() // a topic with a subscriber is not forgotten
	h.mu.Lock()
	n := h.ids.len()
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("the index holds %d entries, want 1 (both, held by long; old aged out)", n)
	}
	h.Prune(func(name string) (RingConfig, bool) { return hubTestRing, name != "long" && name != "aged" })
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.ids.len(); n != 0 {
		t.Fatalf("the index holds %d entries after the topics were forgotten, want 0", n)
	}
}

// TestEventDecodedOnce: a filter run for many subscribers decodes an
// event's metadata once, and concurrent callers agree.
func TestEventDecodedOnce(t *testing.T) {
	h := NewHub()
	ref := seamTopic("d", 10)
	var decodes atomic.Int64
	decode := func(meta string) any {
		decodes.Add(1)
		return strings.Split(meta, ",")
	}
	filter := func(ev *Event) bool { return ev.Decoded(decode).([]string)[0] == "keep" }
	for range 100 {
		subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: filter})
	}
	res := mustPub(t, h, ref, Message{Data: "x", Meta: "keep,1"})
	if res.Delivered != 100 || decodes.Load() != 1 {
		t.Fatalf("delivered %d with %d decodes, want 100 with 1", res.Delivered, decodes.Load())
	}
	ev := &Event{Meta: "a,b"}
	var wg sync.WaitGroup
	results := make([]any, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = ev.Decoded(decode)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if fmt.Sprint(r) != "[a b]" || &r.([]string)[0] != &results[0].([]string)[0] {
			t.Fatalf("callers got different decoded values")
		}
	}
}

func TestValidPublicID(t *testing.T) {
	for _, ok := range []string{"a", "urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022", "https://example.com/x#frag", "é", strings.Repeat("i", 1<<16)} {
		if err := ValidPublicID(ok); err != nil {
			t.Errorf("ValidPublicID(%q) = %v", Truncate(ok, 20), err)
		}
	}
	for _, bad := range []string{"", "#1", "a\nb", "a\rb", "a\x00b", "\xff"} {
		if err := ValidPublicID(bad); err == nil {
			t.Errorf("ValidPublicID(%q) accepted", Truncate(bad, 20))
		}
	}
	for id, want := range map[string]bool{"abc-1": true, "abc-": false, "abc-1x": false, "abcd-1": false, "xabc-1": false} {
		if got := inHubIDSpace(id, "abc"); got != want {
			t.Errorf("inHubIDSpace(%q, abc) = %v", id, got)
		}
	}
}
