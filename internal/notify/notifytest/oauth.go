package notifytest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fcmScope is the scope a push token must be minted for.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// jwtBearer is the grant type of a service account's token request
// (RFC 7523).
const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// serviceAccount is a service account the push server mints tokens for.
type serviceAccount struct {
	email    string
	key      *rsa.PublicKey
	lifetime time.Duration
}

// NewServiceAccount creates a service account whose access tokens the
// push server accepts, and returns its key file (the JSON a Google console
// downloads), with token_uri pointing at the server's token endpoint,
// POST {URL}/token. The endpoint takes a JWT-bearer assertion signed with
// the account's key (RS256, iss the account's email, aud the token URL,
// scope firebase.messaging, not expired) and answers an access token
// valid for lifetime. Each call makes a new account with a new key.
func (p *PushServer) NewServiceAccount(lifetime time.Duration) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.accountSeq++
	email := fmt.Sprintf("push-%d@%s.iam.gserviceaccount.com", p.accountSeq, p.projectID)
	p.accounts = append(p.accounts, serviceAccount{email: email, key: &key.PublicKey, lifetime: lifetime})
	p.mu.Unlock()
	return json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     p.projectID,
		"private_key_id": fmt.Sprintf("key-%d", p.accountSeq),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "1",
		"token_uri":      p.URL + "/token",
	})
}

// TokenRequests returns how many access tokens the server has minted.
func (p *PushServer) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.minted
}

// RevokeTokens makes every access token minted so far invalid, as when a
// key is disabled and enabled again: pushes carrying one get 401.
func (p *PushServer) RevokeTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.tokens)
}

// tokenValid reports whether bearer is a live access token.
func (p *PushServer) tokenValid(bearer string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.tokens[bearer]
	return ok && time.Now().Before(exp)
}

// serveToken is the token endpoint: the JWT-bearer grant of RFC 7523 as
// Google's token endpoint answers it.
func (p *PushServer) serveToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		refuse(http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	if r.PostForm.Get("grant_type") != jwtBearer {
		refuse(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type")
		return
	}
	account, err := p.verifyAssertion(r.PostForm.Get("assertion"))
	if err != nil {
		refuse(http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := "ya29.fake-" + hex.EncodeToString(b)
	p.mu.Lock()
	if p.tokens == nil {
		p.tokens = map[string]time.Time{}
	}
	p.tokens[token] = time.Now().Add(account.lifetime)
	p.minted++
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": token, "token_type": "Bearer", "expires_in": int(account.lifetime.Seconds()),
	})
}

// verifyAssertion checks a token request's signed JWT and returns the
// service account it is from.
func (p *PushServer) verifyAssertion(assertion string) (serviceAccount, error) {
	var claims struct {
		jwt.RegisteredClaims
		Scope string `json:"scope"`
	}
	var account serviceAccount
	_, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, a := range p.accounts {
			if a.email == iss {
				account = a
				return a.key, nil
			}
		}
		return nil, errors.New("no such service account")
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(p.URL+"/token"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	switch {
	case err != nil:
		return account, fmt.Errorf("Invalid JWT: %v", err)
	case !slices.Contains(strings.Fields(claims.Scope), fcmScope):
		return account, errors.New("Invalid JWT: the scope is not firebase.messaging")
	}
	return account, nil
}
