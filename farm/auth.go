package farm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// Roles, weakest first. Each role may do what the roles before it may.
const (
	RoleViewer    = "viewer"    // read jobs, boards, consoles
	RoleSubmitter = "submitter" // submit jobs, cancel its own jobs
	RoleOperator  = "operator"  // put boards in and out of maintenance, cancel any job
	RoleAdmin     = "admin"     // everything (tokens are managed with the CLI)
)

// Roles lists the roles, weakest first.
var Roles = []string{RoleViewer, RoleSubmitter, RoleOperator, RoleAdmin}

// roleRank orders roles; 0 is no role at all.
func roleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return roleRank(role) > 0 }

// Authentication errors.
var (
	// ErrUnauthenticated: no credentials where some are needed, or bad ones (401).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrForbidden: the credentials are fine but their role is too weak (403).
	ErrForbidden = errors.New("forbidden")
)

// SessionCookie is the cookie the browser holds after POST /api/v1/login.
// Its value is the token itself; it is HttpOnly and SameSite=Strict.
const SessionCookie = "hilfarm_session"

// CSRFHeader must be present on state-changing requests authenticated by
// the session cookie (any value; "1" by convention), unless the request's
// Origin is the server's own. A cross-site form cannot set it, and a
// cross-site script cannot send it without a CORS preflight, which hilfarm
// never grants.
const CSRFHeader = "X-Hilfarm-CSRF"

const tokenPrefix = "hf_"

// Principal is who made a request.
type Principal struct {
	Name    string // the token's name, or "anonymous"
	Role    string
	TokenID string // empty for anonymous
	// Cookie is true when the credentials came from the session cookie
	// (state-changing requests then need the CSRF header).
	Cookie bool
}

// Can reports whether p holds at least role.
func (p Principal) Can(role string) bool { return roleRank(p.Role) >= roleRank(role) }

// Actor is the name recorded in the audit trail and as a job's submitter.
func (p Principal) Actor() string {
	if p.TokenID == "" {
		return p.Name
	}
	return p.Name + " (" + p.TokenID + ")"
}

// anonymous is the principal of a request without credentials when the
// farm allows anonymous reads.
var anonymous = Principal{Name: "anonymous", Role: RoleViewer}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken makes a new token with a random id and secret, stores its
// hash, and returns the token string (hf_<id>_<secret>). The string is
// shown once: it cannot be recovered from the store.
func CreateToken(ctx context.Context, db *store.DB, name, role string, now time.Time) (string, store.Token, error) {
	if !ValidRole(role) {
		return "", store.Token{}, fmt.Errorf("token %q: unknown role %q (roles: %s)", name, role, strings.Join(Roles, ", "))
	}
	if strings.TrimSpace(name) == "" {
		return "", store.Token{}, errors.New("a token needs a name")
	}
	if err := checkName("token name", name); err != nil {
		return "", store.Token{}, fmt.Errorf("token %q: %w", name, err)
	}
	var idb [6]byte
	var sb [24]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", store.Token{}, fmt.Errorf("token %q: %w", name, err)
	}
	if _, err := rand.Read(sb[:]); err != nil {
		return "", store.Token{}, fmt.Errorf("token %q: %w", name, err)
	}
	id, secret := hex.EncodeToString(idb[:]), hex.EncodeToString(sb[:])
	t := store.Token{ID: id, Name: name, Role: role, Hash: hashSecret(secret), Created: now.UTC()}
	if err := db.InsertToken(ctx, t); err != nil {
		return "", store.Token{}, err
	}
	return tokenPrefix + id + "_" + secret, t, nil
}

// parseToken splits hf_<id>_<secret>.
func parseToken(s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" || len(id) > 64 || len(secret) > 256 {
		return "", "", false
	}
	return id, secret, true
}

// Auth authenticates requests against the store's tokens.
type Auth struct {
	db            *store.DB
	anonymousRead bool
	now           func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // token id -> last TouchToken, to write at most once a minute
}

// NewAuth returns an authenticator. anonymousRead lets requests without
// credentials act as a viewer.
func NewAuth(db *store.DB, anonymousRead bool, now func() time.Time) *Auth {
	if now == nil {
		now = time.Now
	}
	return &Auth{db: db, anonymousRead: anonymousRead, now: now, touched: map[string]time.Time{}}
}

// Verify checks a token string and returns its principal. An unknown,
// malformed or revoked token is ErrUnauthenticated.
func (a *Auth) Verify(ctx context.Context, token string) (Principal, error) {
	id, secret, ok := parseToken(token)
	if !ok {
		return Principal{}, fmt.Errorf("malformed token: %w", ErrUnauthenticated)
	}
	t, err := a.db.TokenByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Compare anyway so an unknown id costs what a known one does.
		subtle.ConstantTimeCompare(hashSecret(secret), make([]byte, sha256.Size))
		return Principal{}, fmt.Errorf("unknown token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("token %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), t.Hash) != 1 {
		return Principal{}, fmt.Errorf("token %s: wrong secret: %w", id, ErrUnauthenticated)
	}
	if !t.Revoked.IsZero() {
		return Principal{}, fmt.Errorf("token %s is revoked: %w", id, ErrUnauthenticated)
	}
	a.touch(ctx, id)
	return Principal{Name: t.Name, Role: t.Role, TokenID: t.ID}, nil
}

// touch records a token's use, at most once a minute per token.
func (a *Auth) touch(ctx context.Context, id string) {
	now := a.now()
	a.mu.Lock()
	last, seen := a.touched[id]
	if seen && now.Sub(last) < time.Minute {
		a.mu.Unlock()
		return
	}
	a.touched[id] = now
	a.mu.Unlock()
	_ = a.db.TouchToken(ctx, id, now) // best effort: last-used is informational
}

// Authenticate finds the principal of r: a Bearer token, else the session
// cookie, else anonymous when the farm allows anonymous reads. Bad
// credentials are an error even when anonymous reads are allowed.
func (a *Auth) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, fmt.Errorf("the Authorization header must be \"Bearer <token>\": %w", ErrUnauthenticated)
		}
		return a.Verify(r.Context(), strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		p, err := a.Verify(r.Context(), c.Value)
		p.Cookie = true
		return p, err
	}
	if a.anonymousRead {
		return anonymous, nil
	}
	return Principal{}, fmt.Errorf("no token (send \"Authorization: Bearer <token>\"): %w", ErrUnauthenticated)
}

// csrfSafe reports whether a state-changing request authenticated by
// cookie proves it came from hilfarm's own pages: the CSRF header, or an
// Origin header naming this very host.
func csrfSafe(r *http.Request) bool {
	if r.Header.Get(CSRFHeader) != "" {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// sessionCookie is the cookie set at login (maxAge < 0 deletes it).
func sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}
