package integration

import "strings"

// The rows of the differential test where sse_mercure answers otherwise
// than Mercure. Two lists per mode:
//
//   - deliberate: a difference this project keeps, with its reason (the
//     docs/mercure.md's compatibility table says the same);
//   - known, to fix: a difference the issue 16 work removes. An entry holds
//     the digest of the difference (diffSummary: step, status ours and
//     Mercure's, which headers, body, events). The test fails when a listed
//     row matches (remove the entry) or differs otherwise (update it, or
//     fix the regression), so the list always says where the work stands.
//     oracle/README.md says how to run it;
//     MERCURE_ORACLE_REPORT=<file> writes a fresh one with these entries.

// oracleDeliberateModern: differences from Mercure 1.0 kept on purpose,
// with the digest each must keep (a deliberate row that starts to differ
// otherwise fails) and the reason. docs/mercure.md's compatibility table
// says the same.
var oracleDeliberateModern = map[string]oracleDeliberate{
	"publish/1001-topics":         {"s0 status 413, Mercure 400", "the spec: a request over a limit MUST be rejected with 413 (Mercure 1.0 answers 400)"},
	"publish/json-body":           {"s0 status 415, Mercure 400", "415 is HTTP's answer to a body of another type (RFC 9110 15.5.16); Mercure answers 400"},
	"publish/wrong-method":        {"s0 Content-Type", "the 405 says in plain text which methods the hub takes; Mercure's has no body"},
	"token/garbage":               {"s0 status 401, Mercure 400; s0 WWW-Authenticate", "the spec's Error Responses: a presented token that fails validation is 401 invalid_token; invalid_request is kept for a malformed presentation (Mercure 1.0 answers 400)"},
	"token/cookie-listed-origin":  {"s0 Access-Control-Expose-Headers", "Mercure-Last-Event-ID is exposed as well as Link, for fetch-based EventSource polyfills that read the resume answer"},
	"subscribe/query-method-json": {"s0 status 415, Mercure 400", "415 is HTTP's answer to a body of another type (RFC 9110 15.5.16); Mercure answers 400"},
	"cors/preflight-query":        {"s0 Access-Control-Allow-Origin; s0 Access-Control-Allow-Credentials; s0 Access-Control-Allow-Methods; s0 Access-Control-Allow-Headers", "a listed origin may subscribe with QUERY and a form body (its Content-Type is asked for in the preflight); Mercure 1.0 refuses any preflight that asks for Content-Type"},
	"cors/preflight-query-auth":   {"s0 Access-Control-Allow-Methods", "preflights list every method the hub takes; Mercure echoes the one asked for (a browser proceeds either way)"},
	"cors/preflight-post":         {"s0 Access-Control-Allow-Methods", "preflights list every method the hub takes; Mercure echoes the one asked for (a browser proceeds either way)"},
	"cors/get-listed":             {"s0 Access-Control-Expose-Headers", "Mercure-Last-Event-ID is exposed as well as Link, for fetch-based EventSource polyfills that read the resume answer"},
	"discovery/metadata":          {"s0 Access-Control-Allow-Origin; s0 Cache-Control", "the metadata is public: readable from any origin, cached 5 minutes"},
	"api/collection":              {"s1 Cache-Control", "Cache-Control: private, must-revalidate: the answer depends on the token, and the spec asks clients to revalidate"},
	"api/per-matcher":             {"s1 Cache-Control", "Cache-Control: private, must-revalidate: the answer depends on the token, and the spec asks clients to revalidate"},
	"api/single":                  {"s1 Cache-Control; s2 Cache-Control", "Cache-Control: private, must-revalidate: the answer depends on the token, and the spec asks clients to revalidate"},
	"api/404":                     {"s0 ETag", "the ETag validates an answer with a body; a 404 has none to revalidate"},
	"api/etag":                    {"s0 Cache-Control; s1 Link; s1 Cache-Control; s2 status 304, Mercure 200; s2 Content-Type; s2 Cache-Control; s2 body", "ETag with If-None-Match answers 304 (issue 16; the spec asks clients to revalidate cached answers); Mercure 1.0 always answers 200"},
	"cors/star-get":               {"s0 Access-Control-Expose-Headers", "Mercure-Last-Event-ID is exposed as well as Link, for fetch-based EventSource polyfills that read the resume answer"},
	"cors/star-null":              {"s0 Access-Control-Expose-Headers", "Mercure-Last-Event-ID is exposed as well as Link, for fetch-based EventSource polyfills that read the resume answer"},
	"cors/star-preflight":         {"s0 Access-Control-Allow-Methods", "preflights list every method the hub takes; Mercure echoes the one asked for (a browser proceeds either way)"},
	"cors/star-publish":           {"s0 Access-Control-Expose-Headers", "Mercure-Last-Event-ID is exposed as well as Link, for fetch-based EventSource polyfills that read the resume answer"},
}

// oracleToFixModern: differences from Mercure 1.0 still to remove.
var oracleToFixModern = map[string]string{}

// oracleDeliberateCompat: differences from Mercure 0.24.2 kept on
// purpose. Compatibility mode is 1.0 plus what 0.x clients need
// (UPGRADE.md), so 1.0's safety rules and answers hold in it too.
var oracleDeliberateCompat = map[string]oracleDeliberate{
	"publish/type-mercure":              {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/no-token":                  {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"token/narrow":                      {"s0 status 403, Mercure 401; s0 WWW-Authenticate", "RFC 6750 in both modes: a valid token without the grant is 403 insufficient_scope with a Bearer challenge (0.24.2: 401 without one)"},
	"token/string-claim":                {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"token/expired":                     {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"token/wrong-key":                   {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"token/cookie-0x":                   {"s0 status 400, Mercure 401; s0 WWW-Authenticate", "RFC 6750 in both modes: a malformed presentation or a cookie failing the CSRF check is 400 invalid_request (0.24.2: 401)"},
	"token/cookie-cross-origin":         {"s0 status 400, Mercure 401; s0 WWW-Authenticate", "RFC 6750 in both modes: a malformed presentation or a cookie failing the CSRF check is 400 invalid_request (0.24.2: 401)"},
	"token/basic":                       {"s0 status 400, Mercure 401; s0 WWW-Authenticate", "RFC 6750 in both modes: a malformed presentation or a cookie failing the CSRF check is 400 invalid_request (0.24.2: 401)"},
	"subscribe/last-event-id-found":     {"s2 Mercure-Last-Event-ID", "the 1.0 resume answer: Mercure-Last-Event-ID is sent too, and an unknown resume point is answered earliest (0.24.2 echoes any id, found or not, which hides a loss)"},
	"subscribe/last-event-id-query":     {"s2 Mercure-Last-Event-ID", "the 1.0 resume answer: Mercure-Last-Event-ID is sent too, and an unknown resume point is answered earliest (0.24.2 echoes any id, found or not, which hides a loss)"},
	"subscribe/last-event-id-earliest":  {"s2 Mercure-Last-Event-ID", "the 1.0 resume answer: Mercure-Last-Event-ID is sent too, and an unknown resume point is answered earliest (0.24.2 echoes any id, found or not, which hides a loss)"},
	"api/anonymous":                     {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"cors/preflight":                    {"s0 Access-Control-Allow-Methods", "preflights list every method the hub takes; Mercure echoes the one asked for (a browser proceeds either way)"},
	"cors/preflight-post":               {"s0 Access-Control-Allow-Methods", "preflights list every method the hub takes; Mercure echoes the one asked for (a browser proceeds either way)"},
	"publish/id-earliest":               {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/id-hash":                   {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/id-control":                {"s0 status 400, Mercure 200; s0 Content-Type; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/id-cf":                     {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/type-control":              {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/type-cf":                   {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/topic-star":                {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/topic-cf":                  {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/reserved-relative":         {"s0 status 400, Mercure 403", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/reserved-backslash":        {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/1001-topics":               {"s0 status 413, Mercure 400", "the spec: a request over a limit MUST be rejected with 413 (Mercure 1.0 answers 400)"},
	"publish/empty-topic":               {"s0 status 400, Mercure 200; s0 body", "1.0's publish rules hold in compatibility mode too: they stop forged hub events, injected fields and invisible spoofing, which no 0.x publisher relies on"},
	"publish/json-body":                 {"s0 status 415, Mercure 400", "415 is HTTP's answer to a body of another type (RFC 9110 15.5.16); Mercure answers 400"},
	"token/modern":                      {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"token/two-bearer":                  {"s0 status 400, Mercure 401; s0 WWW-Authenticate", "RFC 6750 in both modes: a malformed presentation or a cookie failing the CSRF check is 400 invalid_request (0.24.2: 401)"},
	"token/garbage":                     {"s0 WWW-Authenticate", "RFC 6750 in both modes: 401 and 403 carry a Bearer challenge with resource_metadata (0.24.2 sends none; 0.x clients ignore it)"},
	"subscribe/match":                   {"s0 status 200, Mercure 400; s0 Content-Type; s0 Cache-Control; s0 1 events, Mercure 0", "compatibility mode serves 1.0 clients too (UPGRADE.md: it keeps 0.x apps running while 1.0 clients move over); 0.24.2 knows only topic="},
	"subscribe/cf":                      {"s0 status 400, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body", "1.0's matcher rules and limits hold in compatibility mode too (Cf characters, 100 matchers of 4 KiB)"},
	"subscribe/101-topics":              {"s0 status 400, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body", "1.0's matcher rules and limits hold in compatibility mode too (Cf characters, 100 matchers of 4 KiB)"},
	"subscribe/4097-topic":              {"s0 status 400, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body", "1.0's matcher rules and limits hold in compatibility mode too (Cf characters, 100 matchers of 4 KiB)"},
	"subscribe/query-method":            {"s0 status 200, Mercure 405; s0 Content-Type; s0 Cache-Control", "QUERY (1.0) is served in compatibility mode too"},
	"subscribe/last-event-id-not-found": {"s1 Mercure-Last-Event-ID; s1 Last-Event-ID", "the 1.0 resume answer: Mercure-Last-Event-ID is sent too, and an unknown resume point is answered earliest (0.24.2 echoes any id, found or not, which hides a loss)"},
	"cors/get-listed":                   {"s0 Access-Control-Expose-Headers", "Link and Mercure-Last-Event-ID are exposed to listed origins (the 1.0 subscriptions API's cursor; fetch-based polyfills); 0.24.2 exposes nothing"},
	"api/per-topic":                     {"s1 Cache-Control", "Cache-Control: private, must-revalidate: the answer depends on the token, and the spec asks clients to revalidate (as in modern mode)"},
}

// oracleToFixCompat: differences from Mercure 0.24.2 still to remove.
var oracleToFixCompat = map[string]string{}

// oracleDeliberate is a deliberate difference: its digest (diffSummary)
// and why it is kept.
type oracleDeliberate struct {
	Digest string
	Why    string
}

// equivalentHeader says whether two values of a compared header mean the
// same to a client although they are spelled otherwise. Each rule is a
// deliberate difference, with its reason.
func equivalentHeader(name, ours, theirs string) bool {
	switch name {
	case "Cache-Control":
		// Ours says no-store on answers that Mercure leaves without
		// Cache-Control (publish answers, errors): stricter, and what RFC
		// 6750 §5.1 asks of answers about tokens; a client sees no change.
		if theirs == "" && ours == "no-store" {
			return true
		}
		// On a stream both forbid caching; Mercure spells out the HTTP/1.0
		// forms too. no-transform (ours) keeps proxies from compressing or
		// buffering the stream.
		if strings.Contains(ours, "no-cache") && strings.Contains(theirs, "no-cache") {
			return true
		}
	}
	return false
}
