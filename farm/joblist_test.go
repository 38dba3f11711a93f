package farm

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// The job listing through HTTP: filters, kinds, cursor paging with the
// Link header, bounded summaries and clear errors for bad queries.
func TestAPIJobList(t *testing.T) {
	e := startAPI(t, simFarm(2)+"board_type \"other\" {}\nboard \"x-1\" {\n  type = \"other\"\n  emulator \"sim\" {}\n}\n", nil)
	fillJobs(t, e.tc.Controller, 300)
	view := e.tokens[RoleViewer]
	list := func(q string) ([]JobListItem, apiAnswer) {
		t.Helper()
		a := e.do(t, "GET", "/api/v1/jobs?"+q, view, "", nil)
		if a.status != 200 {
			t.Fatalf("GET ?%s: %d %s", q, a.status, a.body)
		}
		var items []JobListItem
		if err := json.Unmarshal(a.body, &items); err != nil {
			t.Fatal(err)
		}
		return items, a
	}
	// Pages of 100 candidates (health checks left out by default) walk all 270.
	seen := map[string]bool{}
	q := "limit=100"
	for pages := 1; ; pages++ {
		items, a := list(q)
		for _, it := range items {
			if seen[it.ID] || it.Kind != KindCandidate || it.Submitter == HealthSubmitter {
				t.Fatalf("job %s twice or a health check in a candidate listing", it.ID)
			}
			seen[it.ID] = true
			if len(it.Attempts) != 1 || it.Tests["passed"] < 1 || it.Labels["branch"] != "main" {
				t.Fatalf("summary = %+v", it)
			}
		}
		if per := len(a.body) / len(items); per > 4096 {
			t.Errorf("%d bytes a job; want a summary of at most 4 KiB", per)
		}
		next := a.hdr.Get("X-Next-Cursor")
		if next == "" {
			if len(seen) != 270 || pages != 3 || a.hdr.Get("Link") != "" {
				t.Errorf("%d jobs in %d pages; want 270 in 3", len(seen), pages)
			}
			break
		}
		if link := a.hdr.Get("Link"); !strings.Contains(link, "cursor="+url.QueryEscape(next)) || !strings.HasSuffix(link, `rel="next"`) {
			t.Errorf("Link = %q", link)
		}
		q = "limit=100&cursor=" + url.QueryEscape(next)
	}
	for _, c := range []struct {
		q    string
		want int
	}{
		{"kind=health_check&limit=1000", 30},
		{"kind=all&limit=1000", 300},
		{"kind=all&state=failed&limit=1000", 23},
		{"kind=all&spec=spec-3&limit=1000", 30},
		{"kind=all&board=sim-01&limit=1000", 150},
		{"kind=all&board_type=sim&limit=1000", 300},
		{"kind=all&board_type=other&limit=1000", 0},
		{"kind=all&board_type=nope&limit=1000", 0},
		{"submitter=ci-3&limit=1000", 38},
		{"label=commit%3Dc00010&kind=all", 3},
		{"label=commit&label=branch%3Dmain&kind=all&limit=1000", 300},
		{"firmware=1.0&kind=all&limit=1000", 300},
		{"firmware=abababab&kind=all&limit=1000", 300},
	} {
		if items, _ := list(c.q); len(items) != c.want {
			t.Errorf("?%s: %d jobs; want %d", c.q, len(items), c.want)
		}
	}
	for _, c := range []struct{ q, want string }{
		{"state=done", "unknown state"},
		{"sort=asc", "unknown parameter"},
		{"limit=0", "limit must be"},
		{"limit=1001", "limit must be"},
		{"kind=robots", "kind"},
		{"cursor=%21%21", "cursor"},
		{"spec=a&spec=b", "given 2 times"},
		{"label=%3Dx", "label filter"},
		{"spec=" + strings.Repeat("s", 256), "255 bytes"},
		{"label=a&label=a&label=a&label=a&label=a&label=a&label=a&label=a&label=a", "at most 8"},
	} {
		a := e.do(t, "GET", "/api/v1/jobs?"+c.q, view, "", nil)
		if a.status != 400 || !strings.Contains(errorBody(t, a).Error, c.want) {
			t.Errorf("?%.40s: %d %s; want 400 with %q", c.q, a.status, a.body, c.want)
		}
	}
}
