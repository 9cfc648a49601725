package integration

import "strings"

// The rows of the differential test where sse_mercure answers otherwise
// than Mercure. Two lists per mode:
//
//   - deliberate: a difference this project keeps, with its reason (the
//     README's compatibility table says the same);
//   - known, to fix: a difference the issue 16 work removes. An entry holds
//     the digest of the difference (diffSummary: step, status ours and
//     Mercure's, which headers, body, events). The test fails when a listed
//     row matches (remove the entry) or differs otherwise (update it, or
//     fix the regression), so the list always says where the work stands.
//     notes/oracle.md has every mismatch in full, ours against theirs;
//     MERCURE_ORACLE_REPORT=<file> writes a fresh one with these entries.

// oracleDeliberateModern: differences from Mercure 1.0 kept on purpose.
var oracleDeliberateModern = map[string]string{}

// oracleToFixModern: differences from Mercure 1.0 still to remove.
var oracleToFixModern = map[string]string{
	"publish/plain":                       "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/given-id":                    "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/type-mercure":                "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/type-custom":                 "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/id-earliest":                 "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/id-hash":                     "s0 WWW-Authenticate",
	"publish/id-inner-hash":               "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/topic-star":                  "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/id-control":                  "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/id-newline":                  "s0 WWW-Authenticate",
	"publish/id-cf":                       "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/type-control":                "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/type-cf":                     "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/topic-cf":                    "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/topic-control":               "s0 WWW-Authenticate",
	"publish/data-cf":                     "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/reserved-absolute":           "s0 status 403, Mercure 400",
	"publish/reserved-relative":           "s0 status 403, Mercure 400",
	"publish/reserved-subscriptions":      "s0 status 403, Mercure 400",
	"publish/reserved-backslash":          "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"publish/reserved-encoded":            "s0 status 403, Mercure 400",
	"publish/reserved-dotdot":             "s0 status 403, Mercure 400",
	"publish/reserved-other-host":         "s0 status 403, Mercure 400",
	"publish/duplicate-id":                "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"publish/1000-topics":                 "s0 status 400, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/1001-topics":                 "s0 WWW-Authenticate",
	"publish/long-topic":                  "s0 status 413, Mercure 200; s0 body",
	"publish/missing-topic":               "s0 WWW-Authenticate",
	"publish/empty-topic":                 "s0 WWW-Authenticate",
	"publish/retry-digits":                "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/retry-not-digits":            "s0 WWW-Authenticate",
	"publish/retry-negative":              "s0 WWW-Authenticate",
	"publish/private":                     "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/no-token":                    "s0 WWW-Authenticate",
	"publish/json-body":                   "s0 status 415, Mercure 400",
	"publish/alternate-topics":            "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"publish/wrong-method":                "s0 Content-Type",
	"token/modern":                        "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/urlpattern":                    "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/scoped-out":                    "s0 WWW-Authenticate",
	"token/scoped-in":                     "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/relative-pattern":              "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/no-typ":                        "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/wrong-aud":                     "s0 WWW-Authenticate",
	"token/no-aud":                        "s0 WWW-Authenticate",
	"token/no-exp":                        "s0 WWW-Authenticate",
	"token/expired":                       "s0 WWW-Authenticate",
	"token/no-iss":                        "s0 WWW-Authenticate",
	"token/wrong-iss":                     "s0 WWW-Authenticate",
	"token/future-iat":                    "s0 status 401, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/wrong-key":                     "s0 WWW-Authenticate",
	"token/unknown-match-type":            "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/upper-match-type":              "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/default-match-type":            "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/star-urlpattern":               "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/unknown-action":                "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/only-unknown-action":           "s0 WWW-Authenticate",
	"token/bare-string-topic":             "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/other-detail-type":             "s0 status 200, Mercure 403; s0 WWW-Authenticate",
	"token/100-topics":                    "s0 status 401, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/legacy-claim":                  "s0 WWW-Authenticate",
	"token/legacy-claim-at":               "s0 WWW-Authenticate",
	"token/query-access-token":            "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/query-authorization":           "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/two-bearer":                    "s0 WWW-Authenticate",
	"token/basic":                         "s0 status 401, Mercure 400; s0 WWW-Authenticate",
	"token/bearer-empty":                  "s0 WWW-Authenticate",
	"token/garbage":                       "s0 status 401, Mercure 400; s0 WWW-Authenticate",
	"token/cookie-same-origin":            "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"token/cookie-listed-origin":          "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 Access-Control-Expose-Headers; s0 body",
	"token/cookie-cross-origin":           "s0 status 403, Mercure 400; s0 WWW-Authenticate",
	"token/cookie-secure-name":            "s0 WWW-Authenticate",
	"token/cookie-0x-name":                "s0 WWW-Authenticate",
	"token/header-and-cookie":             "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body",
	"token/subscriber-token-publish":      "s0 WWW-Authenticate",
	"subscribe/match":                     "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"subscribe/match-exact":               "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"subscribe/match-urlpattern":          "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"subscribe/matchURLPattern":           "s0 status 200, Mercure 400; s0 Content-Type; s0 Cache-Control",
	"subscribe/Match":                     "s0 WWW-Authenticate",
	"subscribe/match-other":               "s0 WWW-Authenticate",
	"subscribe/topic":                     "s0 status 200, Mercure 400; s0 Content-Type; s0 Cache-Control",
	"subscribe/none":                      "s0 WWW-Authenticate",
	"subscribe/cf":                        "s0 status 200, Mercure 400; s0 Content-Type; s0 Cache-Control",
	"subscribe/control":                   "s0 WWW-Authenticate",
	"subscribe/100-matchers":              "s0 status 400, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control; s0 body",
	"subscribe/101-matchers":              "s0 WWW-Authenticate",
	"subscribe/4096-matcher":              "s0 status 400, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control; s0 body",
	"subscribe/4097-matcher":              "s0 WWW-Authenticate",
	"subscribe/bad-urlpattern":            "s0 WWW-Authenticate",
	"subscribe/query-method":              "s0 status 405, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body; s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"subscribe/query-method-json":         "s0 status 405, Mercure 400",
	"subscribe/query-method-and-query":    "s0 status 405, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
	"subscribe/last-event-id-found":       "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 status 403, Mercure 200; s2 WWW-Authenticate; s2 body; s3 Mercure-Last-Event-ID; s3 Last-Event-ID; s3 0 events, Mercure 2",
	"subscribe/last-event-id-query":       "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 Mercure-Last-Event-ID; s2 Last-Event-ID; s2 0 events, Mercure 1",
	"subscribe/last-event-id-camel":       "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 Mercure-Last-Event-ID; s2 Last-Event-ID",
	"subscribe/last-event-id-not-found":   "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 Last-Event-ID",
	"subscribe/last-event-id-earliest":    "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 Last-Event-ID; s2 0 events, Mercure 2",
	"subscribe/last-event-id-other-topic": "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 body; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 status 403, Mercure 200; s2 WWW-Authenticate; s2 body; s3 Mercure-Last-Event-ID; s3 Last-Event-ID; s3 0 events, Mercure 1",
	"subscribe/private-anonymous":         "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body; s2 status 403, Mercure 200; s2 WWW-Authenticate; s2 body",
	"subscribe/private-token":             "s0 0 events, Mercure 1; s1 status 403, Mercure 200; s1 WWW-Authenticate; s1 body",
	"subscribe/token-cookie-cross-origin": "s0 status 403, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
	"subscribe/token-legacy":              "s0 WWW-Authenticate",
	"subscribe/token-no-typ":              "s0 status 200, Mercure 401; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control",
	"subscribe/token-expired":             "s0 WWW-Authenticate",
	"subscribe/publisher-token":           "s0 WWW-Authenticate",
	"subscribe/basic":                     "s0 status 200, Mercure 400; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control",
	"subscriptions/event":                 "s0 0 events, Mercure 1",
	"subscriptions/event-anonymous":       "s2 status 403, Mercure 200; s2 WWW-Authenticate; s2 body",
	"cors/preflight-query":                "s0 Access-Control-Allow-Origin; s0 Access-Control-Allow-Credentials; s0 Access-Control-Allow-Methods; s0 Access-Control-Allow-Headers",
	"cors/preflight-query-auth":           "s0 Access-Control-Allow-Methods",
	"cors/preflight-post":                 "s0 Access-Control-Allow-Methods",
	"cors/preflight-unlisted":             "s0 status 403, Mercure 204; s0 Content-Type; s0 body",
	"cors/get-listed":                     "s0 Access-Control-Expose-Headers",
	"cors/get-unlisted":                   "s0 status 403, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
	"cors/get-null":                       "s0 status 403, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
	"discovery/metadata":                  "s0 status 400, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 body",
	"discovery/subscribe-challenge":       "s0 WWW-Authenticate",
	"api/collection":                      "s1 status 403, Mercure 200; s1 Content-Type; s1 WWW-Authenticate; s1 Link; s1 ETag; s1 body",
	"api/per-matcher":                     "s1 status 403, Mercure 200; s1 Content-Type; s1 WWW-Authenticate; s1 Link; s1 ETag; s1 body",
	"api/single":                          "s1 status 403, Mercure 200; s1 Content-Type; s1 WWW-Authenticate; s1 Link; s1 ETag; s1 body; s2 status 403, Mercure 200; s2 Content-Type; s2 WWW-Authenticate; s2 Link; s2 ETag; s2 body",
	"api/404":                             "s0 status 403, Mercure 404; s0 WWW-Authenticate; s0 Link; s0 ETag",
	"api/anonymous":                       "s0 WWW-Authenticate",
	"api/etag":                            "s0 status 403, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 Link; s0 ETag; s0 body; s1 status 403, Mercure 304; s1 Content-Type; s1 WWW-Authenticate; s1 ETag; s1 body; s2 status 403, Mercure 200; s2 Content-Type; s2 WWW-Authenticate; s2 Link; s2 ETag; s2 body",
	"api/old-shape":                       "s0 status 403, Mercure 404; s0 WWW-Authenticate",
	"cors/star-get":                       "s0 Access-Control-Allow-Origin; s0 Access-Control-Allow-Credentials; s0 Access-Control-Expose-Headers",
	"cors/star-null":                      "s0 status 403, Mercure 200; s0 Content-Type; s0 Access-Control-Allow-Origin; s0 Access-Control-Expose-Headers; s0 Cache-Control; s0 body",
	"cors/star-preflight":                 "s0 Access-Control-Allow-Origin; s0 Access-Control-Allow-Credentials; s0 Access-Control-Allow-Methods",
	"cors/star-publish":                   "s0 status 403, Mercure 200; s0 WWW-Authenticate; s0 Access-Control-Allow-Origin; s0 Access-Control-Allow-Credentials; s0 Access-Control-Expose-Headers; s0 body",
}

// oracleDeliberateCompat: differences from Mercure 0.24.2 kept on purpose.
var oracleDeliberateCompat = map[string]string{
	// Compatibility mode is 1.0 plus 0.x (UPGRADE.md: a hub in this mode
	// keeps 0.x apps running while 1.0 clients move over), so the 1.0
	// match= is served; 0.24.2 knows only topic=.
	"subscribe/match": "compatibility mode serves 1.0 clients too",
}

// oracleToFixCompat: differences from Mercure 0.24.2 still to remove.
var oracleToFixCompat = map[string]string{
	"publish/duplicate-id":              "s1 status 409, Mercure 200; s1 body",
	"publish/missing-topic":             "s0 WWW-Authenticate",
	"publish/retry-not-digits":          "s0 WWW-Authenticate",
	"publish/no-token":                  "s0 WWW-Authenticate",
	"token/narrow":                      "s0 status 403, Mercure 401; s0 WWW-Authenticate",
	"token/string-claim":                "s0 WWW-Authenticate",
	"token/expired":                     "s0 WWW-Authenticate",
	"token/wrong-key":                   "s0 WWW-Authenticate",
	"token/cookie-0x":                   "s0 status 403, Mercure 401",
	"token/cookie-cross-origin":         "s0 status 403, Mercure 401",
	"token/basic":                       "s0 WWW-Authenticate",
	"subscribe/none":                    "s0 WWW-Authenticate",
	"subscribe/last-event-id-found":     "s2 Mercure-Last-Event-ID",
	"subscribe/last-event-id-query":     "s2 Mercure-Last-Event-ID",
	"subscribe/last-event-id-earliest":  "s2 Mercure-Last-Event-ID",
	"subscriptions/event":               "s0 event fields",
	"api/per-topic":                     "s1 ETag; s1 Cache-Control; s1 body",
	"api/anonymous":                     "s0 WWW-Authenticate",
	"cors/preflight":                    "s0 Access-Control-Allow-Methods",
	"cors/preflight-post":               "s0 Access-Control-Allow-Methods",
	"cors/get-null":                     "s0 status 403, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
	"publish/id-hash":                   "s0 status 400, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/id-control":                "s0 Content-Type",
	"publish/1000-topics":               "s0 status 400, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/1001-topics":               "s0 WWW-Authenticate",
	"publish/long-topic":                "s0 status 413, Mercure 200; s0 body",
	"publish/empty-topic":               "s0 status 400, Mercure 200; s0 WWW-Authenticate; s0 body",
	"publish/json-body":                 "s0 status 415, Mercure 400",
	"token/modern":                      "s0 WWW-Authenticate",
	"token/two-bearer":                  "s0 status 400, Mercure 401; s0 WWW-Authenticate",
	"token/garbage":                     "s0 WWW-Authenticate",
	"subscribe/101-topics":              "s0 status 400, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control; s0 body",
	"subscribe/4097-topic":              "s0 status 400, Mercure 200; s0 Content-Type; s0 WWW-Authenticate; s0 Cache-Control; s0 body",
	"subscribe/query-method":            "s0 Content-Type",
	"subscribe/last-event-id-not-found": "s1 Mercure-Last-Event-ID; s1 Last-Event-ID",
	"cors/get-unlisted":                 "s0 status 403, Mercure 200; s0 Content-Type; s0 Cache-Control; s0 body",
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
