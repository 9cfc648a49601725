package caddysse

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ssehub/caddy-sse/internal/hub"
)

// TopicConfig declares one or more topics with the same ring settings.
type TopicConfig struct {
	// Topic names: literal ("news"), with "*" segments ("chat/*"), or
	// with placeholders resolved per subscriber ("user/{http.auth.user.id}").
	Names []string `json:"names"`
	// Events kept per topic for resuming subscribers; 0 keeps none.
	// Default: 1000.
	Replay *int `json:"replay,omitempty"`
	// Bytes kept per topic. Default: 4MiB.
	ReplaySize int64 `json:"replay_size,omitempty"`
	// Events older than this are dropped. Default: kept until evicted.
	ReplayAge caddy.Duration `json:"replay_age,omitempty"`
	// How many of the newest retained events a subscriber with no resume
	// point (no Last-Event-ID, no last_event_id) receives first, in id
	// order: the topic's current state. At most replay. Default: 0.
	ReplayOnConnect int `json:"replay_on_connect,omitempty"`
	// For names with "*" or placeholders: how many concrete topics are held
	// at once. Beyond it an idle one (no subscribers) is forgotten, least
	// recently used first; a subscriber's new topic never makes one that
	// holds history go, a publisher's may. When none may go, a subscriber
	// is asked to come back later and a publisher gets 429. Default: 10000.
	MaxTopics int `json:"max_topics,omitempty"`
}

func (tc TopicConfig) decls() ([]hub.TopicDecl, error) {
	if len(tc.Names) == 0 {
		return nil, errors.New("topic: no name given")
	}
	ring, err := hub.NewRingConfig(tc.Replay, tc.ReplaySize, time.Duration(tc.ReplayAge), tc.ReplayOnConnect)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %v", tc.Names[0], err)
	}
	maxTopics := tc.MaxTopics
	if maxTopics < 0 {
		return nil, fmt.Errorf("topic %s: max_topics must not be negative", tc.Names[0])
	}
	if maxTopics == 0 {
		maxTopics = hub.DefaultMaxTopics
	}
	var out []hub.TopicDecl
	literalOnly := true
	for _, n := range tc.Names {
		if err := hub.ValidateDeclName(n); err != nil {
			return nil, err
		}
		d := hub.TopicDecl{Name: n, Ring: ring}
		if !d.IsLiteral() {
			d.MaxTopics = maxTopics
			literalOnly = false
		}
		out = append(out, d)
	}
	if tc.MaxTopics != 0 && literalOnly {
		return nil, fmt.Errorf("topic %s: max_topics applies only to names with * segments or placeholders", tc.Names[0])
	}
	return out, nil
}
