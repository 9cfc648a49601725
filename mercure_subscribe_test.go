package caddysse

import (
	"net/http"
	"net/url"
	"testing"
)

func TestParseMercureSubscribe(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		header    string // Last-Event-ID
		status    int
		selectors int
		resume    string
		earliest  bool
	}{
		{name: "0.x topics", query: "topic=a&topic=https://example.com/{id}", selectors: 2},
		{name: "1.0 matchers", query: "match=a&matchURLPattern=/books/:id&match_urlpattern=/x/*&matchExact=b", selectors: 4},
		{name: "mixed with other parameters", query: "topic=a&access_token=x&foo=bar", selectors: 1},
		{name: "no selector", query: "foo=bar", status: http.StatusBadRequest},
		{name: "misspelt matcher", query: "match=a&matchRegexp=x", status: http.StatusBadRequest},
		{name: "matcher in another case", query: "topic=a&MatchExact=x", status: http.StatusBadRequest},
		{name: "lastEventID", query: "topic=a&lastEventID=e1", selectors: 1, resume: "e1"},
		{name: "last_event_id", query: "topic=a&last_event_id=e2", selectors: 1, resume: "e2"},
		{name: "lastEventID before last_event_id", query: "topic=a&last_event_id=e2&lastEventID=e1", selectors: 1, resume: "e1"},
		{name: "header before the query", query: "topic=a&lastEventID=e1", header: "h1", selectors: 1, resume: "h1"},
		{name: "earliest", query: "topic=a&lastEventID=earliest", selectors: 1, earliest: true},
		{name: "earliest in the header", query: "topic=a", header: "earliest", selectors: 1, earliest: true},
		{name: "lastEventID twice", query: "topic=a&lastEventID=1&lastEventID=2", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			if tt.header != "" {
				h.Set("Last-Event-ID", tt.header)
			}
			req, refusal := parseMercureSubscribe(q, h)
			if tt.status != 0 {
				if refusal == nil || refusal.Status != tt.status || refusal.Code != "invalid_request" {
					t.Fatalf("got %+v %+v, want %d invalid_request", req, refusal, tt.status)
				}
				return
			}
			if refusal != nil {
				t.Fatalf("refused: %s", refusal.Msg)
			}
			if len(req.Selectors) != tt.selectors || req.Resume != tt.resume || req.Earliest != tt.earliest {
				t.Errorf("got %+v", req)
			}
		})
	}
}
