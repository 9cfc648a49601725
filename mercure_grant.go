package caddysse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// What a verified Mercure token allows, read from its claims in either of
// the protocol's two shapes:
//
// 0.x, any token without typ at+jwt:
//
//	{"mercure": {"publish": ["<selector>", ...], "subscribe": [...], "payload": <any JSON>}}
//
// 1.0, access tokens (typ at+jwt), RFC 9396 authorization details:
//
//	{"authorization_details": [{"type": "mercure", "actions": ["publish", "subscribe"],
//	  "topics": [{"match": "<matcher>", "matchType": "Exact" | "URLPattern"}], "payload": {...}}]}
//
// A token without the claim of its shape grants nothing. A claim that is
// present but malformed refuses the whole token (the protocol forbids
// acting on the well-formed rest: that would silently change what the
// issuer granted). Entries of authorization_details with another type are
// for other resource servers and are skipped; members this protocol does
// not define (RFC 9396 locations, datatypes...) are ignored.

// MercureGrantTopic is one topic selector of a grant (its matcher type and
// text, compiled by MercureSelectors) with the payload of the grant entry it
// came from.
type MercureGrantTopic struct {
	MercureSelector
	// Payload is the payload of the 1.0 subscribe authorization detail
	// this selector comes from (nil if it has none, and for 0.x tokens,
	// whose payload is MercureGrant.Payload).
	Payload json.RawMessage
}

// MercureGrant is what a verified token allows.
type MercureGrant struct {
	// AccessToken is true for a 1.0 access token (typ at+jwt): the
	// selectors come from authorization_details. False for a 0.x token:
	// they come from the mercure claim.
	AccessToken bool
	// Publish and Subscribe are the selectors of each action, in the
	// token's order. Empty: no right for that action.
	Publish   []MercureGrantTopic
	Subscribe []MercureGrantTopic
	// Payload is the 0.x mercure.payload (any JSON value), which goes with
	// every subscription of the token. Nil for 1.0 tokens (see
	// MercureGrantTopic.Payload) and when absent.
	Payload json.RawMessage
	// Subject is the sub claim ("" if absent): the protocol derives the
	// subscriber's identifier in subscription events from it.
	Subject string
	// Expires is the exp claim; zero when the token has none (0.x only).
	// A subscriber's stream must end by then.
	Expires time.Time
}

// SubscriptionPayload is the payload to show for one subscription of this
// token. For a 1.0 token it is the payload of the first subscribe selector
// that matches the subscription's own matcher, treated as a topic (matches
// decides that; it is given each selector in order); nil when none matches
// or the first match has no payload. For a 0.x token it is Payload.
func (g *MercureGrant) SubscriptionPayload(matches func(MercureGrantTopic) bool) json.RawMessage {
	if !g.AccessToken {
		return g.Payload
	}
	for _, s := range g.Subscribe {
		if matches(s) {
			return s.Payload
		}
	}
	return nil
}

// mercureClaimLimits bound what one token may carry.
type mercureClaimLimits struct {
	maxSelectors int
	maxLength    int
}

// add appends a selector after checking the limits.
func (l mercureClaimLimits) add(list *[]MercureGrantTopic, total *int, s MercureGrantTopic) error {
	if len(s.Value) > l.maxLength {
		return tokenErr(fmt.Sprintf("a topic selector is longer than %d bytes", l.maxLength), nil)
	}
	if *total++; *total > l.maxSelectors {
		return tokenErr(fmt.Sprintf("more than %d topic selectors", l.maxSelectors), nil)
	}
	*list = append(*list, s)
	return nil
}

// isJSONNull reports an absent claim or an explicit null: both grant
// nothing.
func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// jsonObject decodes raw as a JSON object with exact (case-sensitive) member
// names; encoding/json's struct decoding would also accept "Publish" for
// "publish".
func jsonObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if isJSONNull(raw) || json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

// jsonString decodes raw as a JSON string; absent and null are not strings.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if isJSONNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// fromMercureClaim reads the 0.x claim.
func (g *MercureGrant) fromMercureClaim(raw json.RawMessage, l mercureClaimLimits) error {
	if isJSONNull(raw) {
		return nil
	}
	claim, ok := jsonObject(raw)
	if !ok {
		return tokenErr("the mercure claim is not an object", nil)
	}
	total := 0
	for _, action := range []struct {
		name string
		list *[]MercureGrantTopic
	}{{"publish", &g.Publish}, {"subscribe", &g.Subscribe}} {
		v, present := claim[action.name]
		if !present || isJSONNull(v) {
			continue
		}
		var sels []string
		if err := json.Unmarshal(v, &sels); err != nil {
			return tokenErr("mercure."+action.name+" is not an array of strings", nil)
		}
		for _, s := range sels {
			if err := l.add(action.list, &total, MercureGrantTopic{MercureSelector: MercureSelector{Type: MercureTopicSelector, Value: s}}); err != nil {
				return err
			}
		}
	}
	if p := claim["payload"]; !isJSONNull(p) {
		g.Payload = append(json.RawMessage(nil), bytes.TrimSpace(p)...)
	}
	return nil
}

// fromAuthorizationDetails reads the 1.0 claim.
func (g *MercureGrant) fromAuthorizationDetails(raw json.RawMessage, l mercureClaimLimits) error {
	if isJSONNull(raw) {
		return nil
	}
	var details []json.RawMessage
	if err := json.Unmarshal(raw, &details); err != nil {
		return tokenErr("authorization_details is not an array", nil)
	}
	total := 0
	for i, d := range details {
		detail, ok := jsonObject(d)
		if !ok {
			return tokenErr(fmt.Sprintf("authorization_details[%d] is not an object", i), nil)
		}
		typ, ok := jsonString(detail["type"])
		if !ok {
			return tokenErr(fmt.Sprintf("authorization_details[%d] has no string type", i), nil)
		}
		if typ != "mercure" {
			continue
		}
		if err := g.addMercureDetail(i, detail, l, &total); err != nil {
			return err
		}
	}
	return nil
}

// addMercureDetail validates one detail of type mercure and adds its
// selectors to the actions it lists.
func (g *MercureGrant) addMercureDetail(i int, detail map[string]json.RawMessage, l mercureClaimLimits, total *int) error {
	bad := func(what string) error {
		return tokenErr(fmt.Sprintf("authorization_details[%d]: %s", i, what), nil)
	}
	var actions []string
	if json.Unmarshal(detail["actions"], &actions) != nil || len(actions) == 0 {
		return bad("actions is not a non-empty array of strings")
	}
	var publish, subscribe bool
	for _, a := range actions {
		switch a {
		case "publish":
			publish = true
		case "subscribe":
			subscribe = true
		default:
			return bad(fmt.Sprintf("unknown action %q", truncate(a, 32)))
		}
	}
	var payload json.RawMessage
	if p := detail["payload"]; !isJSONNull(p) {
		if _, ok := jsonObject(p); !ok {
			return bad("payload is not an object")
		}
		payload = append(json.RawMessage(nil), bytes.TrimSpace(p)...)
	}
	var topics []json.RawMessage
	if json.Unmarshal(detail["topics"], &topics) != nil || len(topics) == 0 {
		return bad("topics is not a non-empty array")
	}
	for j, t := range topics {
		m, ok := jsonObject(t)
		if !ok {
			return bad(fmt.Sprintf("topics[%d] is not an object", j))
		}
		var sel MercureGrantTopic
		if sel.Value, ok = jsonString(m["match"]); !ok {
			return bad(fmt.Sprintf("topics[%d] has no string match", j))
		}
		sel.Type = MercureExact
		if mt, present := m["matchType"]; present {
			s, ok := jsonString(mt)
			if !ok || s == "" {
				return bad(fmt.Sprintf("topics[%d].matchType is not Exact or URLPattern", j))
			}
			t, err := ParseMercureMatchType(s)
			if err != nil {
				return bad(fmt.Sprintf("topics[%d].matchType is not Exact or URLPattern", j))
			}
			sel.Type = t
		}
		if publish {
			if err := l.add(&g.Publish, total, sel); err != nil {
				return err
			}
		}
		if subscribe {
			sel.Payload = payload
			if err := l.add(&g.Subscribe, total, sel); err != nil {
				return err
			}
		}
	}
	return nil
}
