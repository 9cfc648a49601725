package caddysse

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseMercureUpdate(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int // 0: accepted
		check  func(t *testing.T, up *mercureUpdate)
	}{
		{"all fields", "topic=https://example.com/a&topic=https://example.com/b&topic=https://example.com/a&data=hi%0Athere&private=on&id=urn:x:1&type=change&retry=2500", 0,
			func(t *testing.T, up *mercureUpdate) {
				if strings.Join(up.Topics, " ") != "https://example.com/a https://example.com/b" {
					t.Errorf("topics %q: want the canonical first, duplicates dropped", up.Topics)
				}
				if up.Data != "hi\nthere" || !up.Private || up.ID != "urn:x:1" || up.Type != "change" || up.Retry != 2500*time.Millisecond {
					t.Errorf("got %+v", up)
				}
			}},
		{"no data is an update", "topic=a", 0, func(t *testing.T, up *mercureUpdate) {
			if up.Data != "" || up.Private || up.ID != "" || up.Retry != 0 {
				t.Errorf("got %+v", up)
			}
		}},
		{"private without a value", "topic=a&private", 0, func(t *testing.T, up *mercureUpdate) {
			if !up.Private {
				t.Error("private not set by the bare field")
			}
		}},
		{"private with any value, even false", "topic=a&private=false", 0, func(t *testing.T, up *mercureUpdate) {
			if !up.Private {
				t.Error("the field's presence alone makes an update private")
			}
		}},
		{"empty id is no id", "topic=a&id=", 0, func(t *testing.T, up *mercureUpdate) {
			if up.ID != "" {
				t.Errorf("id %q", up.ID)
			}
		}},
		{"any topic string", "topic=" + url.QueryEscape("urn:isbn:0451450523 ünïcode {x}"), 0, nil},
		{"unknown fields ignored", "topic=a&foo=bar", 0, nil},
		{"no topic", "data=x", http.StatusBadRequest, nil},
		{"empty topic", "topic=", http.StatusBadRequest, nil},
		{"topic with a control character", "topic=a%01b", http.StatusBadRequest, nil},
		{"topic with a C1 control character", "topic=a%C2%85b", http.StatusBadRequest, nil},
		{"topic not UTF-8", "topic=a%FFb", http.StatusBadRequest, nil},
		{"topic too long", "topic=" + strings.Repeat("x", 101), http.StatusRequestEntityTooLarge, nil},
		{"too many topics", "topic=1&topic=2&topic=3&topic=4", http.StatusBadRequest, nil},
		{"malformed form", "topic=%zz", http.StatusBadRequest, nil},
		{"data twice", "topic=a&data=1&data=2", http.StatusBadRequest, nil},
		{"data not UTF-8", "topic=a&data=%FF", http.StatusBadRequest, nil},
		{"id starting with #", "topic=a&id=%23x", http.StatusBadRequest, nil},
		{"id with LF", "topic=a&id=a%0Ab", http.StatusBadRequest, nil},
		{"id with CR", "topic=a&id=a%0Db", http.StatusBadRequest, nil},
		{"id with NUL", "topic=a&id=a%00b", http.StatusBadRequest, nil},
		{"id too long", "topic=a&id=" + strings.Repeat("i", MaxPublicIDLen+1), http.StatusRequestEntityTooLarge, nil},
		{"type with LF", "topic=a&type=a%0Ab", http.StatusBadRequest, nil},
		{"type with CR", "topic=a&type=a%0Db", http.StatusBadRequest, nil},
		{"type too long", "topic=a&type=" + strings.Repeat("t", MaxEventNameLen+1), http.StatusRequestEntityTooLarge, nil},
		{"retry not digits", "topic=a&retry=1s", http.StatusBadRequest, nil},
		{"retry negative", "topic=a&retry=-1", http.StatusBadRequest, nil},
		{"retry with a plus", "topic=a&retry=%2B5", http.StatusBadRequest, nil},
		{"retry empty", "topic=a&retry=", http.StatusBadRequest, nil},
		{"retry huge", "topic=a&retry=99999999999999999999", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, refusal := parseMercureUpdate([]byte(tt.body), 3, 100)
			switch {
			case tt.status == 0 && refusal != nil:
				t.Fatalf("refused with %d: %s", refusal.Status, refusal.Msg)
			case tt.status != 0 && refusal == nil:
				t.Fatalf("accepted %+v, want %d", up, tt.status)
			case tt.status != 0 && refusal.Status != tt.status:
				t.Fatalf("status %d (%s), want %d", refusal.Status, refusal.Msg, tt.status)
			case tt.status == http.StatusBadRequest && refusal.Code != "invalid_request":
				t.Errorf("code %q, want invalid_request", refusal.Code)
			}
			if tt.check != nil {
				tt.check(t, up)
			}
		})
	}
}

func TestMercureReservedTopic(t *testing.T) {
	hub, _ := url.Parse("https://example.com/.well-known/mercure")
	for topic, want := range map[string]bool{
		"https://example.com/books/1":                               false,
		"urn:uuid:1":                                                false,
		"/.well-known/mercure":                                      true,
		"/.well-known/mercure/subscriptions/Exact/a/b":              true,
		"https://other.example/.well-known/mercure/subscriptions/x": true,
		"mercure/subscriptions/x":                                   true, // relative to the hub's URL
		"/books/../.well-known/mercure/x":                           true,
		"/.well-known/mercurey":                                     false,
		"{not a url":                                                false,
	} {
		if got := mercureReservedTopic(topic, hub); got != want {
			t.Errorf("%q: reserved %v, want %v", topic, got, want)
		}
	}
}

func TestDecodeMercureMeta(t *testing.T) {
	m, _ := decodeMercureMeta(`{"t":["a","b"],"p":true}`).(*mercureMeta)
	if m == nil || len(m.Topics) != 2 || !m.Private {
		t.Fatalf("got %+v", m)
	}
	for _, bad := range []string{"", "{", `{"t":[]}`, `{"p":true}`, `[]`} {
		if m, _ := decodeMercureMeta(bad).(*mercureMeta); m != nil {
			t.Errorf("%q decoded to %+v: an event without valid metadata must reach no subscriber", bad, m)
		}
	}
}
