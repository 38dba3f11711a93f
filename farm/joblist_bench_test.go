package farm

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fillJobs writes n finished jobs (each with an attempt and a result of
// about 2 KB, a tenth of them health checks, labels commit and branch)
// straight into the controller's store file, in one transaction.
func fillJobs(tb testing.TB, c *Controller, n int) {
	tb.Helper()
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+c.db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	sha := strings.Repeat("ab", 32)
	for _, q := range []string{
		`INSERT OR IGNORE INTO firmware VALUES ('` + sha + `', 1, 'fw.bin', 0)`,
		`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
		 INSERT INTO jobs(id, spec_name, spec_src, spec_filename, firmware_sha256, firmware_name, firmware_version,
		   selector, vars, labels, priority, submitter, state, board, attempts, created_ms, started_ms, ended_ms)
		 SELECT printf('bench-%07d', i), 'spec-' || (i % 10), x'', 'spec.hcl', '` + sha + `', 'fw.bin', '1.' || (i / 1000),
		   '{"type":"sim"}', '{}', json_object('commit', printf('c%05d', i / 3), 'branch', 'main'), 0,
		   CASE WHEN i % 10 = 0 THEN 'hilfarm:health' ELSE 'ci-' || (i % 7) END,
		   CASE WHEN i % 13 = 0 THEN 'failed' WHEN i % 101 = 0 THEN 'error' ELSE 'passed' END,
		   'sim-0' || (i % 2), 1, 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 10, 1700000000000 + i * 1000 + 900
		 FROM k`,
		`INSERT INTO attempts(job_id, n, board, state, reason, started_ms, ended_ms, log_start, log_end)
		 SELECT id, 1, board, state, '', started_ms, ended_ms, 0, 0 FROM jobs WHERE id LIKE 'bench-%'`,
		`UPDATE jobs SET result = json_object('tests', json_array(json_object('name', 'boot', 'outcome', 'passed'),
		   json_object('name', 'ping', 'outcome', state)), 'pad', hex(randomblob(900))) WHERE id LIKE 'bench-%'`,
	} {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, n)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			tb.Fatalf("fill: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, "ANALYZE"); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkJobList100k measures GET /api/v1/jobs through HTTP on a store of
// 100,000 jobs: the newest page, filtered pages and a page deep in the
// listing reached by its cursor (issue 15: at most 50 ms a page).
func BenchmarkJobList100k(b *testing.B) {
	c := startBench(b, 2)
	t0 := time.Now()
	fillJobs(b, c, 100_000)
	b.Logf("filled 100,000 jobs in %s", time.Since(t0).Round(time.Millisecond))
	tok, _, err := CreateToken(context.Background(), c.db, "bench", RoleViewer, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(NewAPI(c, APIOptions{Auth: NewAuth(c.db, false, nil)}).Handler())
	defer srv.Close()
	get := func(b *testing.B, q string) (int, string, int) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/jobs?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d %s", q, resp.StatusCode, body)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			b.Fatal(err)
		}
		return len(items), resp.Header.Get("X-Next-Cursor"), len(body)
	}
	// A cursor half-way down the listing: page through with big pages once.
	deep := ""
	for range 50 {
		_, deep, _ = get(b, "kind=all&limit=1000&cursor="+url.QueryEscape(deep))
	}
	for _, bc := range []struct{ name, q string }{
		{"newest", "limit=50"},
		{"state", "state=failed&limit=50"},
		{"spec+board", "spec=spec-3&board=sim-01&limit=50"},
		{"label", "label=commit%3Dc01234&limit=50"},
		{"submitter", "submitter=ci-3&limit=50"},
		{"firmware", "firmware=1.42&limit=50"},
		{"deep", "kind=all&limit=50&cursor=" + url.QueryEscape(deep)},
		{"page100", "limit=100"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n, size int
			for b.Loop() {
				n, _, size = get(b, bc.q)
			}
			if n == 0 {
				b.Fatalf("%s: no jobs", bc.q)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			b.ReportMetric(float64(size)/float64(n), "bytes/job")
		})
	}
}
