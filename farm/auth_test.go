package farm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"go.uber.org/goleak"
)

// apiLeakCheck checks for leaked goroutines after every cleanup of t has run.
func apiLeakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func apiTestStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hilfarm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestTokensAndRoles(t *testing.T) {
	apiLeakCheck(t)
	ctx := context.Background()
	db := apiTestStore(t)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tok, rec, err := CreateToken(ctx, db, "ci", RoleSubmitter, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "hf_"+rec.ID+"_") {
		t.Fatalf("token %q does not start with hf_%s_", tok, rec.ID)
	}
	stored, err := db.TokenByID(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.Hash), tok[len("hf_"+rec.ID+"_"):]) {
		t.Fatal("the secret is stored in clear")
	}
	if _, _, err := CreateToken(ctx, db, "x", "root", now); err == nil {
		t.Error("CreateToken with role root succeeded")
	}

	a := NewAuth(db, false, func() time.Time { return now })
	p, err := a.Verify(ctx, tok)
	if err != nil || p.Role != RoleSubmitter || p.Name != "ci" {
		t.Fatalf("Verify(good) = %+v, %v", p, err)
	}
	if !p.Can(RoleViewer) || !p.Can(RoleSubmitter) || p.Can(RoleOperator) || p.Can(RoleAdmin) {
		t.Errorf("submitter's Can is wrong")
	}
	bad := []string{"", "hf_", "hf_" + rec.ID, "hf_" + rec.ID + "_00", tok + "0", "hf_ffffffffffff_" + tok[len("hf_"+rec.ID+"_"):], "Bearer " + tok}
	for _, b := range bad {
		if _, err := a.Verify(ctx, b); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Verify(%q) = %v, want ErrUnauthenticated", b, err)
		}
	}
	if err := db.RevokeToken(ctx, rec.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Verify(revoked) = %v, want ErrUnauthenticated", err)
	}
}

func TestAuthenticateRequest(t *testing.T) {
	apiLeakCheck(t)
	ctx := context.Background()
	db := apiTestStore(t)
	tok, _, err := CreateToken(ctx, db, "op", RoleOperator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, anon := range []bool{false, true} {
		a := NewAuth(db, anon, nil)
		req := func(mod func(*http.Request)) *http.Request {
			r := httptest.NewRequest("GET", "/api/v1/jobs", nil)
			mod(r)
			return r
		}
		p, err := a.Authenticate(req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }))
		if err != nil || p.Role != RoleOperator || p.Cookie {
			t.Errorf("anon=%v bearer: %+v, %v", anon, p, err)
		}
		p, err = a.Authenticate(req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: tok}) }))
		if err != nil || p.Role != RoleOperator || !p.Cookie {
			t.Errorf("anon=%v cookie: %+v, %v", anon, p, err)
		}
		if _, err := a.Authenticate(req(func(r *http.Request) { r.Header.Set("Authorization", "Bearer hf_nope_nope") })); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("anon=%v bad bearer: %v, want ErrUnauthenticated even with anonymous read", anon, err)
		}
		if _, err := a.Authenticate(req(func(r *http.Request) { r.Header.Set("Authorization", "Basic eDp5") })); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("anon=%v basic auth: %v, want ErrUnauthenticated", anon, err)
		}
		p, err = a.Authenticate(req(func(*http.Request) {}))
		if anon && (err != nil || p.Role != RoleViewer) {
			t.Errorf("anonymous read: %+v, %v", p, err)
		}
		if !anon && !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("no credentials without anonymous read: %v", err)
		}
	}
}

func TestCSRFSafe(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		hdr  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{CSRFHeader: "1"}, true},
		{map[string]string{"Origin": "http://farm.lab:8080"}, true},
		{map[string]string{"Origin": "http://evil.example"}, false},
		{map[string]string{"Origin": "null"}, false},
	} {
		r := httptest.NewRequest("POST", "http://farm.lab:8080/api/v1/jobs/x/cancel", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if got := csrfSafe(r); got != tc.want {
			t.Errorf("csrfSafe(%v) = %v, want %v", tc.hdr, got, tc.want)
		}
	}
}
