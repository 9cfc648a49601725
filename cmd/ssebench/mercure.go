package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// -mode mercure drives an sse_mercure route the way Mercure apps do:
// updates are form POSTs (topic=, data=) with a publisher's Bearer token,
// subscribers are GETs on the hub URL with match= in the query, and a
// share of them (-mercure-token-share) present a subscriber token, as
// logged-in users of an app do. A token-bearing subscriber makes the hub
// evaluate its grant for every update, which is the cost this mode
// measures against plain sse.
//
// The tool mints the tokens itself from the hub's HS256 key
// (-mercure-key), in Mercure 1.0's shape (typ at+jwt, iss, aud, exp,
// authorization_details), so a run needs nothing but the key the hub's
// Caddyfile names.

// mercureDetailType is the authorization detail type of Mercure 1.0.
const mercureDetailType = "https://mercure.rocks/authorization-detail"

type mercureConfig struct {
	key        string  // HS256 key shared with the hub
	issuer     string  // the token's iss: an issuer the hub trusts
	audience   string  // the token's aud: the hub's resource identifier
	topic      string  // the topic every update names
	tokenShare float64 // share of subscribers that present a subscriber token
	private    bool    // publish updates as private (only token holders get them)

	pubToken, subToken string // minted in prepare

	formPrefix, auth string // the POST's fixed parts, made in prepare
}

// prepare checks the Mercure flags and mints the two tokens.
func (m *mercureConfig) prepare() error {
	switch {
	case m.key == "":
		return fmt.Errorf("-mode mercure needs -mercure-key (the hub's HS256 key)")
	case m.topic == "":
		return fmt.Errorf("-mode mercure needs -mercure-topic")
	case m.tokenShare < 0 || m.tokenShare > 1:
		return fmt.Errorf("-mercure-token-share must be between 0 and 1")
	case m.private && m.tokenShare != 1:
		return fmt.Errorf("-mercure-private needs -mercure-token-share 1: subscribers without a token never receive private updates, and the run would count them as lost")
	}
	var err error
	if m.pubToken, err = m.mint("publish", "ssebench-publisher"); err != nil {
		return err
	}
	m.subToken, err = m.mint("subscribe", "ssebench-subscriber")
	m.formPrefix = "topic=" + url.QueryEscape(m.topic)
	if m.private {
		m.formPrefix += "&private=on"
	}
	m.formPrefix += "&data="
	m.auth = "Bearer " + m.pubToken
	return err
}

// mint makes a token granting action on every topic, valid for an hour.
func (m *mercureConfig) mint(action, sub string) (string, error) {
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":       m.issuer,
		"aud":       m.audience,
		"sub":       sub,
		"client_id": "ssebench",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       hex.EncodeToString(jti),
		"authorization_details": []any{map[string]any{
			"type":    mercureDetailType,
			"actions": []string{action},
			"topics":  []any{map[string]string{"match": "*"}},
		}},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["typ"] = "at+jwt"
	return tok.SignedString([]byte(m.key))
}

// subscriberToken is the token subscriber i presents, or "": the share is
// spread evenly (0.5: every other subscriber).
func (m *mercureConfig) subscriberToken(i int) string {
	if m.subToken == "" || m.tokenShare == 0 {
		return ""
	}
	if int(float64(i+1)*m.tokenShare) > int(float64(i)*m.tokenShare) {
		return m.subToken
	}
	return ""
}

// request builds one update's POST, its form body in body's array (reused
// once the POST is answered). The fixed fields are escaped once: the tool
// must spend no more per Mercure POST than per plain one, or on a shared
// machine its own CPU would be counted against sse_mercure.
func (m *mercureConfig) request(ctx context.Context, pubURL string, data []byte, body *[]byte) *http.Request {
	b := append((*body)[:0], m.formPrefix...)
	b = appendQueryEscaped(b, data)
	*body = b
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pubURL, bytes.NewReader(b))
	req.Header["Content-Type"] = formContentType
	req.Header["Authorization"] = []string{m.auth}
	return req
}

var formContentType = []string{"application/x-www-form-urlencoded"}

// appendQueryEscaped is url.QueryEscape into dst: unreserved bytes as they
// are, space as '+', everything else %XX.
func appendQueryEscaped(dst, s []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}
