package hub

import (
	"context"
	"fmt"
	"testing"
)

// Topics pages through held topics by name; Topic describes one with its
// retained range and counts.
func TestHubInspectTopics(t *testing.T) {
	h := NewHub()
	for i := range 5 {
		hubTestPublish(t, h, "x", hubTestGroupRef(fmt.Sprintf("room/%d", i), "room/*", 100))
	}
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		infos, more := h.Topics(after, 2)
		for _, info := range infos {
			names = append(names, info.Name)
		}
		if !more {
			break
		}
		after = infos[len(infos)-1].Name
	}
	if fmt.Sprint(names) != "[room/0 room/1 room/2 room/3 room/4]" {
		t.Fatalf("paged names %v", names)
	}
	ref := hubTestGroupRef("room/1", "room/*", 100)
	hubTestSubscribe(t, h, []TopicRef{ref}, "", 4)
	last := hubTestPublish(t, h, "yy", ref)
	info, ok := h.Topic(context.Background(), "room/1")
	if !ok {
		t.Fatal("room/1 not held")
	}
	if info.Declared != "room/*" || info.Subscribers != 1 || info.Retained != 2 || info.Published != 2 ||
		info.Delivered != 1 || info.LastID != last.ID || info.FirstID == "" || info.RetainedB <= 0 {
		t.Fatalf("info %+v", info)
	}
	if _, ok := h.Topic(context.Background(), "room/9"); ok {
		t.Fatal("a topic never used is held")
	}
}
