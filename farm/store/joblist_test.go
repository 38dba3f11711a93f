package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func listIDs(t *testing.T, db *DB, f ListFilter) ([]string, string) {
	t.Helper()
	js, next, err := db.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids, next
}

func TestListFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	for _, fw := range []string{"aa", "bb"} {
		if err := db.PutFirmware(ctx, Firmware{SHA256: fw, Name: fw + ".bin"}, t0); err != nil {
			t.Fatal(err)
		}
	}
	// 30 jobs; several share a creation time so the cursor's tie-break on the id matters.
	for i := range 30 {
		j := newJob(fmt.Sprintf("j%02d", i), 0, t0.Add(time.Duration(i/3)*time.Second))
		j.Labels = map[string]string{"commit": fmt.Sprintf("c%d", i%5), "branch": "main"}
		if i%2 == 1 {
			j.Firmware = Firmware{SHA256: "bb", Name: "bb.bin", Version: "2.0"}
			j.SpecName = "other"
			j.Submitter = "alice"
		}
		if err := db.InsertJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if i < 20 {
			if _, err := db.StartAttempt(ctx, j.ID, fmt.Sprintf("sim-%d", i%2), 0, t0); err != nil {
				t.Fatal(err)
			}
			st := StatePassed
			if i%4 == 0 {
				st = StateFailed
			}
			res := `{"tests":[{"name":"a","outcome":"passed"},{"name":"b","outcome":"` + st + `"},{"name":"c","outcome":"passed"}]}`
			if err := db.FinishAttempt(ctx, j.ID, 1, AttemptEnd{State: st, Reason: "r", Result: json.RawMessage(res), At: t0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Pages of 7 walk all 30 newest first, none twice, none lost.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		ids, next := listIDs(t, db, ListFilter{Limit: 7, Cursor: cursor})
		all = append(all, ids...)
		if next == "" {
			if pages != 4 {
				t.Errorf("%d pages; want 5", pages+1)
			}
			break
		}
		cursor = next
	}
	want := make([]string, 30)
	for i := range 30 {
		want[i] = fmt.Sprintf("j%02d", 29-i)
	}
	if !slices.Equal(all, want) {
		t.Errorf("paged = %v\nwant %v", all, want)
	}

	cases := []struct {
		name string
		f    ListFilter
		want int
	}{
		{"state", ListFilter{States: []string{StateFailed}}, 5},
		{"states", ListFilter{States: []string{StateQueued, StateFailed}}, 15},
		{"spec", ListFilter{Spec: "other"}, 15},
		{"board", ListFilter{Boards: []string{"sim-1"}}, 10},
		{"no boards", ListFilter{NoBoards: true}, 0},
		{"submitter", ListFilter{Submitter: "alice"}, 15},
		{"not submitter", ListFilter{NotSubmitter: "alice"}, 15},
		{"label", ListFilter{Labels: map[string]string{"commit": "c3"}}, 6},
		{"label and state", ListFilter{Labels: map[string]string{"commit": "c3"}, States: []string{StateQueued}}, 2},
		{"two labels", ListFilter{Labels: map[string]string{"commit": "c3", "branch": "main"}}, 6},
		{"label key", ListFilter{LabelKeys: []string{"branch"}}, 30},
		{"unknown label", ListFilter{LabelKeys: []string{"nope"}}, 0},
		{"firmware sha", ListFilter{Firmware: "bb"}, 0}, // too short for a prefix: a name or version
		{"firmware name", ListFilter{Firmware: "bb.bin"}, 15},
		{"firmware version", ListFilter{Firmware: "2.0"}, 15},
	}
	for _, c := range cases {
		ids, _ := listIDs(t, db, c.f)
		if len(ids) != c.want {
			t.Errorf("%s: %d jobs %v; want %d", c.name, len(ids), ids, c.want)
		}
	}
	// A label filter pages through the label index too.
	ids, next := listIDs(t, db, ListFilter{Labels: map[string]string{"commit": "c3"}, Limit: 4})
	more, last := listIDs(t, db, ListFilter{Labels: map[string]string{"commit": "c3"}, Limit: 4, Cursor: next})
	if got := append(ids, more...); !slices.Equal(got, []string{"j28", "j23", "j18", "j13", "j08", "j03"}) || last != "" {
		t.Errorf("label pages = %v (next %q)", got, last)
	}

	js, _, err := db.List(ctx, ListFilter{Spec: "boot-smoke", States: []string{StateFailed}, Limit: 1})
	if err != nil || len(js) != 1 {
		t.Fatalf("List = %v, %v", js, err)
	}
	if js[0].Tests["passed"] != 2 || js[0].Tests["failed"] != 1 || js[0].Labels["branch"] != "main" || js[0].Firmware.Name != "fw.bin" {
		t.Errorf("summary = %+v", js[0])
	}
	if _, _, err := db.List(ctx, ListFilter{Cursor: "not-a-cursor!"}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	atts, err := db.AttemptSummaries(ctx, []string{"j00", "j25"})
	if err != nil || len(atts["j00"]) != 1 || atts["j00"][0].Board != "sim-0" || len(atts["j25"]) != 0 {
		t.Errorf("AttemptSummaries = %+v, %v", atts, err)
	}
	// Pruned jobs take their labels with them.
	if _, err := db.Prune(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM job_labels").Scan(&n); err != nil || n != 20 {
		t.Errorf("labels after prune = %d, %v; want 20 (the 10 queued jobs' two each)", n, err)
	}
}

// A store of schema 1 gets the labels table and tests summaries of its
// existing jobs when it is migrated.
func TestListMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], "PRAGMA user_version = 1",
		`INSERT INTO firmware VALUES ('aa', 1, 'fw.bin', 0)`,
		`INSERT INTO jobs(id, spec_name, spec_src, spec_filename, firmware_sha256, firmware_name, firmware_version,
		   selector, vars, labels, priority, submitter, state, created_ms, result)
		 VALUES ('old', 's', x'', 's.hcl', 'aa', 'fw.bin', '', '{}', '{}', '{"commit":"abc"}', 0, 'ci', 'passed', 5,
		   '{"tests":[{"outcome":"passed"},{"outcome":"skipped"}]}'),
		        ('broken', 's', x'', 's.hcl', 'aa', 'fw.bin', '', '{}', '{}', '{}', 0, 'ci', 'error', 6, 'not json')`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	js, _, err := db.List(ctx, ListFilter{Labels: map[string]string{"commit": "abc"}})
	if err != nil || len(js) != 1 || js[0].Tests["passed"] != 1 || js[0].Tests["skipped"] != 1 {
		t.Fatalf("migrated = %+v, %v", js, err)
	}
}
