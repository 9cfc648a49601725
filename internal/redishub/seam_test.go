package redishub

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// The seam sse_mercure builds on (metadata, publisher-chosen ids, resume by
// either id or earliest, filters, the predecessor), tested once for both
// engines: the memory hub (a and b are the same hub) and Redis (a and b
// are two instances on one redis-server: what a publishes, b serves).

type seamEngines struct {
	a, b  hub.Engine
	srv   *redistest.Server // nil for memory
	base  string            // Redis key prefix + hub name
	epoch func() string
}

func seamMemory(t *testing.T) seamEngines {
	h := hub.NewHub()
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

// TestSeamMetaAndPublicIDOnTheWire: Meta travels with the event (through
// Redis to another instance) and never reaches the wire; a PublicID is the
// wire id, HashID writes "#<hub id>"; replays carry the same.
func TestSeamMetaAndPublicIDOnTheWire(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := hubtest.Topic("m", 100)
		live, _ := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{})
		r1 := hubtest.MustPub(t, e.a, ref, hub.Message{Data: "one", Meta: "secret-meta", PublicID: "urn:uuid:1"})
		r2 := hubtest.MustPub(t, e.a, ref, hub.Message{Data: "two", Meta: "m2", HashID: true})
		r3 := hubtest.MustPub(t, e.a, ref, hub.Message{Data: "three"})
		got := hubtest.TakeN(t, live, 3)
		want := []struct{ line, meta, pid string }{
			{"id: urn:uuid:1", "secret-meta", "urn:uuid:1"},
			{"id: #" + r2.ID, "m2", ""},
			{"id: " + r3.ID, "", ""},
		}
		for i, w := range want {
			if hubtest.IDLine(got[i]) != w.line || got[i].Meta != w.meta || got[i].PublicID != w.pid {
				t.Fatalf("event %d: %q meta %q pid %q, want %+v", i, hubtest.IDLine(got[i]), got[i].Meta, got[i].PublicID, w)
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
		_, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: "urn:uuid:1"})
		if rp.Reset != nil || len(rp.Events) != 2 || rp.Events[0].Meta != "m2" || hubtest.IDLine(rp.Events[0]) != "id: #"+r2.ID {
			t.Fatalf("resume by public id: reset %+v events %q", rp.Reset, hubtest.Wires(rp.Events))
		}
		_, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: "#" + r2.ID})
		if rp.Reset != nil || len(hubtest.Datas(rp.Events)) != 1 || hubtest.DataOf(rp.Events[0]) != "three" {
			t.Fatalf("resume by #id: reset %+v events %q", rp.Reset, hubtest.Wires(rp.Events))
		}
		_, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: r1.ID})
		if rp.Reset != nil || len(rp.Events) != 2 || rp.Events[0].PublicID != "" || hubtest.DataOf(rp.Events[0]) != "two" {
			t.Fatalf("resume by the hub id of a public-id event: %+v %q", rp.Reset, hubtest.Wires(rp.Events))
		}
		// A PublicID no subscribed topic retains is unknown, as is "#"
		// before something that is no hub id.
		other := hubtest.Topic("other", 100)
		hubtest.MustPub(t, e.a, other, hub.Message{Data: "x", PublicID: "elsewhere"})
		for _, resume := range []string{"elsewhere", "never-published", "#urn:uuid:1"} {
			_, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: resume})
			if rp.Reset == nil || rp.Reset.Reason != "unknown" || len(rp.Events) != 0 {
				t.Fatalf("resume %q: reset %+v events %q, want unknown", resume, rp.Reset, hubtest.Wires(rp.Events))
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
		x, y := hubtest.Topic("x", 5), hubtest.Topic("y", 100)
		hubtest.MustPub(t, e.a, x, hub.Message{Data: "1", PublicID: "dup"})
		hubtest.MustPub(t, e.a, x, hub.Message{Data: "2"})
		hubtest.MustPub(t, e.b, x, hub.Message{Data: "3", PublicID: "dup"})
		last := hubtest.MustPub(t, e.b, y, hub.Message{Data: "4", PublicID: "dup"})
		e.caughtUp(t, last.ID)
		for _, c := range []struct {
			refs   []hub.TopicRef
			events string
		}{
			{[]hub.TopicRef{x}, "2,3"},
			{[]hub.TopicRef{y}, ""},
			{[]hub.TopicRef{x, y}, "2,3,4"},
			{[]hub.TopicRef{y, x}, "2,3,4"},
		} {
			_, rp := hubtest.SubWith(t, e.b, c.refs, hub.SubscribeOptions{Resume: "dup", Predecessor: 1})
			if got := strings.Join(hubtest.Datas(rp.Events), ","); rp.Reset != nil || got != c.events || rp.Predecessor != "dup" {
				t.Fatalf("resume dup on %d topics: reset %+v events %q predecessor %q, want %q", len(c.refs), rp.Reset, got, rp.Predecessor, c.events)
			}
		}
		// A batch naming an id twice publishes both.
		var pubs []hub.Publication
		for _, d := range []string{"b1", "b2"} {
			pubs = append(pubs, hub.Publication{Message: &hub.Message{Topics: []string{"y"}, Data: d, PublicID: "batch"}, Topics: []hub.TopicRef{y}})
		}
		res, err := hubtest.Publish(e.b, pubs)
		if err != nil || len(res) != 2 {
			t.Fatalf("a batch naming one id twice: %v %v", res, err)
		}
		// In the hub's own id space: ambiguous as a resume point.
		if _, err := hubtest.Pub(e.a, y, hub.Message{Data: "z", PublicID: e.epoch() + "-999"}); !errors.Is(err, hub.ErrReservedID) {
			t.Fatalf("a public id reading as a hub id: %v", err)
		}
		for _, bad := range []string{"#x", "a\nb", "a\rb", "a\x00b", "\xff"} {
			var fe *hub.FieldError
			if _, err := hubtest.Pub(e.a, y, hub.Message{Data: "z", PublicID: bad}); !errors.As(err, &fe) || fe.Field != "id" {
				t.Fatalf("public id %q: %v, want a FieldError on id", hub.Truncate(bad, 20), err)
			}
		}
		// Nothing was published by the refusals: the next id follows.
		next := hubtest.MustPub(t, e.a, y, hub.Message{Data: "next"})
		if idSeq(t, next.ID) != idSeq(t, res[1].ID)+1 {
			t.Fatalf("ids %s then %s: a refused publish consumed ids", res[1].ID, next.ID)
		}
		// The earliest "dup" leaves x's ring: the next one is the earliest.
		for _, d := range []string{"5", "6", "7"} {
			last = hubtest.MustPub(t, e.a, x, hub.Message{Data: d})
		}
		e.caughtUp(t, last.ID)
		_, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{x}, hub.SubscribeOptions{Resume: "dup", Predecessor: 1})
		if got := strings.Join(hubtest.Datas(rp.Events), ","); rp.Reset != nil || got != "5,6,7" || rp.Predecessor != "dup" {
			t.Fatalf("after the earliest left: reset %+v events %q predecessor %q", rp.Reset, got, rp.Predecessor)
		}
		// A long id is no error: the caller bounds it.
		long := strings.Repeat("i", 4096)
		hubtest.MustPub(t, e.a, y, hub.Message{Data: "long", PublicID: long})
	})
}

func idSeq(t *testing.T, s string) uint64 {
	t.Helper()
	id, ok := hub.ParseID(s)
	if !ok {
		t.Fatalf("bad id %q", s)
	}
	return id.Seq
}

// TestSeamEarliest: every retained event, however much was evicted, and
// no reset.
func TestSeamEarliest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e seamEngines) {
		ref := hubtest.Topic("e", 3)
		var last hub.PublishResult
		for i := range 5 {
			last = hubtest.MustPub(t, e.a, ref, hub.Message{Data: strconv.Itoa(i)})
		}
		e.caughtUp(t, last.ID)
		_, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Earliest: true, Resume: "ignored", Predecessor: 5})
		if rp.Reset != nil || strings.Join(hubtest.Datas(rp.Events), ",") != "2,3,4" || rp.Predecessor != "" {
			t.Fatalf("earliest: reset %+v events %v predecessor %q", rp.Reset, hubtest.Datas(rp.Events), rp.Predecessor)
		}
		_, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Earliest: true, Filter: func(ev *hub.Event) bool { return hubtest.DataOf(ev) != "3" }})
		if rp.Reset != nil || strings.Join(hubtest.Datas(rp.Events), ",") != "2,4" {
			t.Fatalf("earliest, filtered: reset %+v events %v", rp.Reset, hubtest.Datas(rp.Events))
		}
		_, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{hubtest.Topic("empty", 3)}, hub.SubscribeOptions{Earliest: true})
		if rp.Reset != nil || len(rp.Events) != 0 {
			t.Fatalf("earliest of an empty topic: %+v %v", rp.Reset, hubtest.Datas(rp.Events))
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
		ref := hubtest.Topic("f", 100)
		r := make([]hub.PublishResult, 6)
		msgs := []hub.Message{
			{Data: "1", PublicID: "p1"},
			{Data: "2", Meta: "drop"},
			{Data: "3", Meta: "drop"},
			{Data: "4", HashID: true},
			{Data: "5", Meta: "drop", PublicID: "p5"},
			{Data: "6"},
		}
		for i, m := range msgs {
			r[i] = hubtest.MustPub(t, e.a, ref, m)
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
			s, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: c.resume, Filter: hubtest.KeepFilter, Predecessor: 1})
			s.Close()
			if got := strings.Join(hubtest.Datas(rp.Events), ","); got != c.events || rp.Predecessor != c.pred {
				t.Fatalf("resume %q: events %q predecessor %q, want %q %q", c.resume, got, rp.Predecessor, c.events, c.pred)
			}
		}
		// Without Predecessor none is given.
		s, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: r[2].ID})
		s.Close()
		if rp.Predecessor != "" || len(rp.Events) != 3 {
			t.Fatalf("no predecessor asked: %q %v", rp.Predecessor, hubtest.Datas(rp.Events))
		}
		// Discarded after the resume point (a reset): none.
		small := hubtest.Topic("small", 2)
		first := hubtest.MustPub(t, e.a, small, hub.Message{Data: "a"})
		var last hub.PublishResult
		for _, d := range []string{"b", "c", "d"} {
			last = hubtest.MustPub(t, e.a, small, hub.Message{Data: d})
		}
		e.caughtUp(t, last.ID)
		s, rp = hubtest.SubWith(t, e.b, []hub.TopicRef{small}, hub.SubscribeOptions{Resume: first.ID, Predecessor: 1})
		s.Close()
		if rp.Reset == nil || rp.Predecessor != "" {
			t.Fatalf("resume from a discarded point: reset %+v predecessor %q", rp.Reset, rp.Predecessor)
		}

		// Live: refused events are neither queued nor counted, and do not
		// fill a queue of one.
		live, _ := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Filter: hubtest.KeepFilter, QueueLen: 1})
		all, _ := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{})
		before := snapshotDelivered(e.b, "f")
		for i := range 5 {
			hubtest.MustPub(t, e.a, ref, hub.Message{Data: "d" + strconv.Itoa(i), Meta: "drop"})
		}
		hubtest.MustPub(t, e.a, ref, hub.Message{Data: "kept"})
		hubtest.TakeN(t, all, 6)
		got := hubtest.TakeN(t, live, 1)
		if hubtest.DataOf(got[0]) != "kept" {
			t.Fatalf("filtered subscriber got %q", hubtest.Wires(got))
		}
		if n := snapshotDelivered(e.b, "f") - before; n != 7 {
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
		ref := hubtest.Topic("race", 1<<20)
		start := hubtest.MustPub(t, e.a, ref, hub.Message{Data: "0", PublicID: "start"})
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
				if _, err := hubtest.Pub(e.a, ref, hub.Message{Data: strconv.Itoa(i), Meta: meta(i)}); err != nil {
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
				s, rp, err := e.b.SubscribeWith([]hub.TopicRef{ref}, hub.SubscribeOptions{Resume: resume, QueueLen: 1 << 16, Filter: hubtest.KeepFilter})
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
				for len(got) == 0 || hubtest.DataOf(got[len(got)-1]) != strconv.Itoa(n) {
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
					if hubtest.DataOf(ev) != strconv.Itoa(want) {
						errs <- fmt.Errorf("got %s where %d was due", hubtest.DataOf(ev), want)
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
		ref := hubtest.Topic("flood", 20)
		var last hub.PublishResult
		for i := range 500 {
			id := "flood-" + strconv.Itoa(i)
			if i%2 == 1 {
				id = "same"
			}
			last = hubtest.MustPub(t, e.a, ref, hub.Message{Data: strconv.Itoa(i), PublicID: id})
		}
		e.caughtUp(t, last.ID)
		if h, ok := e.a.(*hub.Hub); ok {
			if n := h.PublicIDsIndexed(); n != 20 {
				t.Fatalf("the index holds %d entries, the ring 20", n)
			}
		} else {
			if n := e.srv.MustDo(t, "ZCARD", e.base+"#pids:flood"); n != int64(20) {
				t.Fatalf("the topic's id set holds %v entries, the ring 20", n)
			}
		}
		for resume, want := range map[string]string{"flood-0": "", "flood-498": "499", "same": "482"} {
			_, rp := hubtest.SubWith(t, e.b, []hub.TopicRef{ref}, hub.SubscribeOptions{Resume: resume})
			got := ""
			if len(rp.Events) > 0 {
				got = hubtest.DataOf(rp.Events[0])
			}
			if got != want || (want == "") != (rp.Reset != nil) {
				t.Fatalf("resume %s: first event %q reset %+v, want %q", resume, got, rp.Reset, want)
			}
		}
	})
}

// snapshotDelivered is what the engine counted delivered on a declared topic.
func snapshotDelivered(e hub.Engine, declared string) uint64 {
	s, _ := e.Counters().Snapshot(declared)
	return s.Delivered
}
