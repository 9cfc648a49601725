package mercure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// What a verified Mercure token allows, read from its claims.
//
// Modern mode (Mercure 1.0), RFC 9396 authorization details:
//
//	{"authorization_details": [{"type": "https://mercure.rocks/authorization-detail",
//	  "actions": ["publish", "subscribe"],
//	  "topics": [{"match": "<matcher>", "match_type": "exact" | "urlpattern"}],
//	  "payload": <any JSON>}]}
//
// Compatibility mode also reads, when the token has no
// authorization_details, the 0.x claim (Mercure 0.24.2):
//
//	{"mercure": {"publish": ["<selector>", ...], "subscribe": [...], "payload": <any JSON>}}
//
// under "mercure" or "https://mercure.rocks/", as an object or as a string
// holding that object's JSON.
//
// A token without a claim of its shape grants nothing. A Mercure detail
// that is malformed or over a limit refuses the whole token (the spec
// forbids acting on the well-formed rest: that would silently change what
// the issuer granted). Entries of authorization_details with another type
// are for other resource servers and are skipped; unknown actions grant
// nothing and are not an error; members the spec does not define are
// ignored.

// MercureGrantTopic is one topic matcher of a grant (its matcher type and
// text, compiled by MercureSelectors) with the payload of the grant entry it
// came from.
type MercureGrantTopic struct {
	MercureSelector
	// Payload is the payload of the subscribe authorization detail this
	// matcher comes from (nil if it has none, and for 0.x tokens, whose
	// payload is MercureGrant.Payload).
	Payload json.RawMessage
}

// MercureGrant is what a verified token allows.
type MercureGrant struct {
	// AccessToken is true for an access token (typ at+jwt). False for a
	// 0.x token (compatibility mode only).
	AccessToken bool
	// Legacy is true when the rights come from the 0.x claim (the
	// matchers are then 0.x topic selectors: *, exact or URI template).
	Legacy bool
	// Publish and Subscribe are the matchers of each action, in the
	// token's order. Empty: no right for that action.
	Publish   []MercureGrantTopic
	Subscribe []MercureGrantTopic
	// Payload is the 0.x mercure.payload (any JSON value), which goes with
	// every subscription of the token. Nil for authorization details (see
	// MercureGrantTopic.Payload) and when absent.
	Payload json.RawMessage
	// Subject is the sub claim ("" if absent); Issuer the iss claim.
	Subject string
	Issuer  string
	// Expires is the exp claim; zero when the token has none
	// (compatibility mode only). A subscriber's stream must end by then.
	Expires time.Time
	// Shape says, for the logs, what the token carried when that explains
	// a refusal: "no authorization_details", "authorization_details has no
	// entry of type https://mercure.rocks/authorization-detail (types seen:
	// mercure)", "the 0.x mercure claim is read only in compatibility
	// mode"... Empty when the token had Mercure rights.
	Shape string
}

// SubscriptionPayload is the payload to show for one subscription of this
// token: the payload of the first subscribe matcher that matches the
// subscription's own matcher, treated as a topic (matches decides that; it
// is given each matcher in order); nil when none matches or the first match
// has no payload. For a 0.x claim it is Payload.
func (g *MercureGrant) SubscriptionPayload(matches func(MercureGrantTopic) bool) json.RawMessage {
	if g.Legacy {
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
	maxDetails   int // Mercure authorization details
	maxTopics    int // topic matchers per detail (and per 0.x list)
	maxSelectors int // topic matchers of the whole token
	maxLength    int // bytes per matcher
}

// add appends a matcher after checking the limits.
func (l mercureClaimLimits) add(list *[]MercureGrantTopic, s MercureGrantTopic) error {
	if len(s.Value) > l.maxLength {
		return tokenErr(fmt.Sprintf("a topic matcher is longer than %d bytes (max_selector_length)", l.maxLength), nil)
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

// fromClaims reads the rights of a verified token.
func (g *MercureGrant) fromClaims(c *mercureClaims, compat bool, l mercureClaimLimits) error {
	legacy := c.Mercure
	if isJSONNull(legacy) {
		legacy = c.MercureNamespaced
	}
	switch {
	case !isJSONNull(c.AuthorizationDetails):
		return g.fromAuthorizationDetails(c.AuthorizationDetails, compat, l)
	case compat && !isJSONNull(legacy):
		g.Legacy = true
		return g.fromMercureClaim(legacy, l)
	case !isJSONNull(legacy):
		g.Shape = "the token has no authorization_details but the 0.x mercure claim, which is read only with protocol_version_compatibility 8"
	default:
		g.Shape = "the token has no authorization_details claim"
	}
	return nil
}

// fromMercureClaim reads the 0.x claim.
func (g *MercureGrant) fromMercureClaim(raw json.RawMessage, l mercureClaimLimits) error {
	if s, ok := jsonString(raw); ok {
		// Some 0.x issuers put the claim's JSON in a string.
		raw = json.RawMessage(s)
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
		if total += len(sels); len(sels) > l.maxTopics*l.maxDetails || total > l.maxSelectors {
			return tokenErr(fmt.Sprintf("more than %d topic selectors", min(l.maxTopics*l.maxDetails, l.maxSelectors)), nil)
		}
		for _, s := range sels {
			if err := l.add(action.list, MercureGrantTopic{MercureSelector: MercureSelector{Type: MercureTopicSelector, Value: s}}); err != nil {
				return err
			}
		}
	}
	if p := claim["payload"]; !isJSONNull(p) {
		g.Payload = append(json.RawMessage(nil), bytes.TrimSpace(p)...)
	}
	if len(g.Publish)+len(g.Subscribe) == 0 {
		g.Shape = "the mercure claim lists no publish or subscribe selector"
	}
	return nil
}

// fromAuthorizationDetails reads the 1.0 claim.
// In compatibility mode a topic may also be a bare string, read as a 0.x
// topic selector (*, exact or URI template), as Mercure's compatibility
// mode reads "bare-string JWT matcher claims".
func (g *MercureGrant) fromAuthorizationDetails(raw json.RawMessage, compat bool, l mercureClaimLimits) error {
	var details []json.RawMessage
	if err := json.Unmarshal(raw, &details); err != nil {
		return tokenErr("authorization_details is not an array", nil)
	}
	var others []string // types of the entries for other resource servers
	mercure, total := 0, 0
	for i, d := range details {
		detail, ok := jsonObject(d)
		if !ok {
			return tokenErr(fmt.Sprintf("authorization_details[%d] is not an object", i), nil)
		}
		typ, ok := jsonString(detail["type"])
		if !ok {
			return tokenErr(fmt.Sprintf("authorization_details[%d] has no string type", i), nil)
		}
		if typ != mercureAuthorizationDetailType {
			if len(others) < 4 && !containsString(others, typ) {
				others = append(others, hub.Truncate(typ, 64))
			}
			continue
		}
		if mercure++; mercure > l.maxDetails {
			return tokenErr(fmt.Sprintf("more than %d Mercure authorization details (max_token_details)", l.maxDetails), nil)
		}
		if err := g.addMercureDetail(i, detail, compat, l, &total); err != nil {
			return err
		}
	}
	switch {
	case mercure == 0 && len(others) > 0:
		g.Shape = fmt.Sprintf("authorization_details has no entry of type %s (types seen: %s)", mercureAuthorizationDetailType, strings.Join(others, ", "))
	case mercure == 0:
		g.Shape = "authorization_details has no entry of type " + mercureAuthorizationDetailType
	case len(g.Publish)+len(g.Subscribe) == 0:
		g.Shape = "the Mercure authorization details list no action this hub knows (publish, subscribe)"
	}
	return nil
}

// addMercureDetail validates one Mercure authorization detail and adds its
// matchers to the actions it lists.
func (g *MercureGrant) addMercureDetail(i int, detail map[string]json.RawMessage, compat bool, l mercureClaimLimits, total *int) error {
	bad := func(what string) error {
		return tokenErr(fmt.Sprintf("authorization_details[%d]: %s", i, what), nil)
	}
	var actions []json.RawMessage
	if json.Unmarshal(detail["actions"], &actions) != nil || len(actions) == 0 {
		return bad("actions is not a non-empty array")
	}
	var publish, subscribe bool
	for j, raw := range actions {
		a, ok := jsonString(raw)
		if !ok {
			return bad(fmt.Sprintf("actions[%d] is not a string", j))
		}
		// Unknown actions (defined by later specs) grant nothing and do
		// not invalidate the token.
		switch a {
		case "publish":
			publish = true
		case "subscribe":
			subscribe = true
		}
	}
	var payload json.RawMessage
	if p := detail["payload"]; !isJSONNull(p) {
		// Any JSON value, as Mercure's hub accepts (the spec says an
		// object; nothing here depends on it).
		payload = append(json.RawMessage(nil), bytes.TrimSpace(p)...)
	}
	var topics []json.RawMessage
	if json.Unmarshal(detail["topics"], &topics) != nil || len(topics) == 0 {
		return bad("topics is not a non-empty array")
	}
	if len(topics) > l.maxTopics {
		return bad(fmt.Sprintf("more than %d topics (max_token_topics)", l.maxTopics))
	}
	if *total += len(topics); *total > l.maxSelectors {
		return tokenErr(fmt.Sprintf("more than %d topic matchers in all (max_token_selectors)", l.maxSelectors), nil)
	}
	for j, t := range topics {
		var sel MercureGrantTopic
		m, ok := jsonObject(t)
		if bare, isString := jsonString(t); compat && isString && bare != "" {
			sel.Type, sel.Value = MercureTopicSelector, bare
		} else if !ok {
			return bad(fmt.Sprintf("topics[%d] is not an object {\"match\": ..., \"match_type\": ...}", j))
		} else if sel.Value, ok = jsonString(m["match"]); !ok || sel.Value == "" {
			return bad(fmt.Sprintf("topics[%d] has no non-empty string match", j))
		} else {
			sel.Type = MercureExact
		}
		if mt, present := m["match_type"]; present {
			s, ok := jsonString(mt)
			switch {
			case ok && s == "exact":
			case ok && s == "urlpattern":
				sel.Type = MercureURLPattern
			default:
				// An unknown type cannot be evaluated, and skipping it would
				// change what the issuer granted: the token is refused.
				return bad(fmt.Sprintf("topics[%d].match_type %s is not exact or urlpattern", j, hub.Truncate(string(bytes.TrimSpace(mt)), 32)))
			}
		}
		if publish {
			if err := l.add(&g.Publish, sel); err != nil {
				return err
			}
		}
		if subscribe {
			sel.Payload = payload
			if err := l.add(&g.Subscribe, sel); err != nil {
				return err
			}
		}
	}
	return nil
}
