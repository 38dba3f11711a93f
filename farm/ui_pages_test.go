package farm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/hilfarm/hilfarm/farm/store"
)

// axeSource is axe-core's browser bundle from ui/node_modules (make test
// runs npm ci first: ui-deps). Without it the accessibility check is
// skipped, which is a failure under CI=true.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ui", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("axe-core: %v (run `make ui-deps`)", err)
		}
		t.Logf("axe-core not installed (%v): run `make ui-deps`; skipping the accessibility check", err)
		return ""
	}
	return string(b)
}

// axeViolation is one axe-core finding, cut to what a failure message needs.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe injects axe-core into the page (through DevTools, so the page's
// Content-Security-Policy does not apply) and returns its violations.
func (b *browser) axe(src string) []axeViolation {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe !== "undefined" || (function(){`+src+`
;return true})()`)); err != nil {
		b.t.Fatalf("inject axe-core: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + (n.failureSummary ? " — " + n.failureSummary.split("\n").slice(1, 2).join("") : ""))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe.run: %v", err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.t.Fatal(err)
	}
	return vs
}

// theme emulates prefers-color-scheme.
func (b *browser) theme(scheme string) {
	b.do("colour scheme "+scheme, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
}

// tabReaches presses Tab until the focus comes round and reports the
// visible controls of main and the header that it never reached.
func (b *browser) tabReaches() []string {
	b.t.Helper()
	b.eval(`(document.activeElement && document.activeElement.blur(), window.__reached = new Set(), window.__wrapped = false, "")`)
	b.eval(`(document.addEventListener("focusin", (e) => { if (window.__reached.has(e.target)) window.__wrapped = true; window.__reached.add(e.target); }, true), "")`)
	// Tab until the focus comes back to a control it has been on.
	for range 150 {
		b.do("press Tab", chromedp.KeyEvent("\t"))
		if b.eval(`String(window.__wrapped)`) == "true" {
			break
		}
	}
	out := b.eval(`JSON.stringify([...document.querySelectorAll("header a[href], header button, main a[href], main button, main input, main select, main summary")]
		.filter(el => el.checkVisibility({visibilityProperty: true}) && !el.disabled && !el.closest(".u-legend"))
		.filter(el => !window.__reached.has(el))
		.map(el => el.tagName + " " + (el.id || el.textContent.trim().slice(0, 30))))`)
	var missed []string
	if err := json.Unmarshal([]byte(out), &missed); err != nil {
		b.t.Fatal(err)
	}
	return missed
}

// TestUIPagesInBrowser checks the pages of issue 15 in Chromium, in one
// browser: labels and firmware on job lists and pages, the jobs filter's
// URL round trip and paging, attempts as separate sections, live times
// and their absolute toggle, compare's landing, trends grouped by
// candidate, the held state with its countdown, a power-on in the board's
// history without a reload, anonymous read mode, the keyboard, and
// axe-core on every page in light and dark themes, with screenshots at
// desktop (1400×900) and phone (390×844) size.
func TestUIPagesInBrowser(t *testing.T) {
	leakCheck(t)
	e := startUI(t, strings.Replace(testFarm, `max_upload = "4KiB"`, "max_upload = \"4KiB\"\n  commit_url = \"https://git.example.com/c/{commit}\"", 1), nil)
	ctx := context.Background()
	spec := string(readExample(t, "specs/measure.hcl"))
	good, bad := readExample(t, "firmware/sim-good.hcl"), readExample(t, "firmware/sim-regressed.hcl")
	op, sub := e.tokens[RoleOperator], e.tokens[RoleSubmitter]
	var ids []string
	for _, c := range []struct {
		fw     []byte
		labels map[string]string
	}{
		{good, map[string]string{"commit": "aaa111", "branch": "main"}},
		{bad, map[string]string{"commit": "bbb222", "branch": "main"}},
		{good, map[string]string{"commit": "ccc333", "branch": "dev"}},
	} {
		j := e.submitHTTP(t, sub, spec, c.fw, SubmitOptions{Labels: c.labels, FirmwareVersion: "1.1.0"})
		waitJob(t, e.tc.Controller, j.ID)
		ids = append(ids, j.ID)
	}
	// A job with two attempts: made in the store for a board type no board
	// has, so that the scheduler leaves it alone.
	multi := &store.Job{ID: "multi-attempt", SpecName: "measure", SpecSrc: []byte(spec), SpecFilename: "measure.hcl",
		Firmware: store.Firmware{SHA256: sha(good), Name: "fw.hcl", Version: "1.1.0"}, Selector: json.RawMessage(`{"type":"none"}`),
		Labels: map[string]string{"commit": "ddd444"}, Submitter: "ci", Created: time.Now()}
	if err := e.tc.db.InsertJob(ctx, multi); err != nil {
		t.Fatal(err)
	}
	reason1 := "board sim-a: console lost: read /dev/pts/9: input/output error"
	reason2 := "board sim-b: flash tool exited with status 1: " + strings.Repeat("a long reason that is not cut ", 12) + "END-OF-REASON"
	for _, at := range []struct {
		board, reason string
		requeue       bool
	}{{"sim-a", reason1, true}, {"sim-b", reason2, false}} {
		n, err := e.tc.db.StartAttempt(ctx, multi.ID, at.board, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.tc.db.FinishAttempt(ctx, multi.ID, n, store.AttemptEnd{State: store.StateError, Reason: at.reason, At: time.Now(), Requeue: at.requeue}); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t)
	b.do("open the login page", chromedp.Navigate(e.srv.URL+"/login"))
	b.waitFor("the login form shows", `!!document.querySelector("#login-form")`)
	b.do("log in", chromedp.SetValue(chromedp.CSS("#token"), op), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("the farm page", `document.querySelectorAll("#boards tr").length === 2`)
	// The trust policy with no trust block (mode off): no stray "null" where
	// a part is absent.
	b.waitFor("the trust policy shows", `!!document.querySelector("#trust-mode")`)
	if got := b.eval(`document.querySelector("#trust").innerText`); strings.Contains(got, "null") || !strings.Contains(got, "Signed candidates: off") {
		t.Errorf("trust box = %q, want mode off and no \"null\"", got)
	}

	// Jobs list: labels, firmware and submitter on each row; a label links to its jobs.
	b.do("open the jobs", chromedp.Navigate(e.srv.URL+"/jobs"))
	b.waitFor("four jobs are listed", `document.querySelectorAll("#jobs tr[data-job]").length === 4`)
	row := b.eval(fmt.Sprintf(`document.querySelector("#jobs tr[data-job='%s']").innerText`, ids[0]))
	for _, want := range []string{"commit=aaa111", "branch=main", "fw.hcl 1.1.0", sha(good)[:8], "submitter-token", "passed"} {
		if !strings.Contains(row, want) {
			t.Errorf("job row %q lacks %q", row, want)
		}
	}
	b.do("click a label", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#jobs tr[data-job='%s'] a.label[href*="branch"]`, ids[0]))))
	b.waitFor("the label filters the list", `location.search === "?label=branch%3Dmain" && document.querySelectorAll("#jobs tr[data-job]").length === 2`)

	// The filter round-trips through the URL: the form shows it, applying it keeps it.
	filter := "?state=passed&spec=measure&label=branch%3Dmain"
	b.do("open a filtered list", chromedp.Navigate(e.srv.URL+"/jobs"+filter))
	b.waitFor("one job matches", `document.querySelectorAll("#jobs tr[data-job]").length === 1`)
	if got := b.eval(`["state", "spec", "label"].map(k => document.querySelector("#f-" + k).value).join("|")`); got != "passed|measure|branch=main" {
		t.Errorf("filter form = %q", got)
	}
	b.do("apply the filter", chromedp.Click(chromedp.CSS("#filter-apply")))
	b.waitFor("the list reloads", `document.querySelectorAll("#jobs tr[data-job]").length === 1`)
	want, _ := url.ParseQuery(strings.TrimPrefix(filter, "?"))
	got, _ := url.ParseQuery(strings.TrimPrefix(b.eval(`location.search`), "?"))
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("after applying, the query is %v; want %v", got, want)
	}
	// Server-side pages by cursor.
	b.do("open a page of two", chromedp.Navigate(e.srv.URL+"/jobs?limit=2"))
	b.waitFor("two jobs and a next page", `document.querySelectorAll("#jobs tr[data-job]").length === 2 && !!document.querySelector("#next-page")`)
	first := b.eval(`[...document.querySelectorAll("#jobs tr[data-job]")].map(r => r.dataset.job).join(",")`)
	b.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
	b.waitFor("the second page", `location.search.includes("cursor=") && document.querySelectorAll("#jobs tr[data-job]").length === 2 && !document.querySelector("#next-page")`)
	second := b.eval(`[...document.querySelectorAll("#jobs tr[data-job]")].map(r => r.dataset.job).join(",")`)
	all := strings.Split(first+","+second, ",")
	slices.Sort(all)
	if len(slices.Compact(all)) != 4 {
		t.Errorf("pages %s and %s: want the four jobs once each", first, second)
	}

	// The job page: labels, firmware, durations; times live, absolute on demand.
	b.do("open a job", chromedp.Navigate(e.srv.URL+"/jobs/"+ids[0]))
	b.waitFor("the job's labels", textOf("#job-labels", "commit=aaa111")+" && "+textOf("#job-labels", "branch=main"))
	if href := b.eval(`document.querySelector("#job-labels a.commit-link")?.href || ""`); href != "https://git.example.com/c/aaa111" {
		t.Errorf("commit link = %q; want farm.hcl's commit_url with the commit label", href)
	}
	info := b.eval(`document.querySelector("#job-info").innerText`)
	for _, want := range []string{"fw.hcl 1.1.0", "sha256:" + sha(good), "submitter-token", "Took", "Started", "Ended"} {
		if !strings.Contains(info, want) {
			t.Errorf("job info %q lacks %q", info, want)
		}
	}
	b.waitFor("the attempt's console tail box", `!!document.querySelector("#attempts details.tail-box")`)
	b.eval(`(document.querySelector("#attempts details.tail-box").open = true, "")`)
	b.waitFor("the console tail", textOf("#attempts pre.tail", "temp=23.5C"))
	for _, c := range []struct {
		path string
		want int
	}{
		{"/attempts/1/console?tail=100", 200}, {"/attempts/0/console", 400}, {"/attempts/x/console", 400},
		{"/attempts/9/console", 404}, {"/attempts/1/console?tail=999999", 400},
	} {
		if st := e.call(t, "GET", "/api/v1/jobs/"+ids[0]+c.path, op, nil, nil); st != c.want {
			t.Errorf("GET %s: %d; want %d", c.path, st, c.want)
		}
	}
	created := b.eval(`document.querySelector("#job-info time").textContent`)
	b.waitFor("relative times stay live", fmt.Sprintf(`document.querySelector("#job-info time").textContent !== %s`, strconv.Quote(created)))
	b.do("absolute times", chromedp.Click(chromedp.CSS("#time-toggle")))
	b.waitFor("times are absolute", `/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(document.querySelector("#job-info time").textContent)`)
	b.do("relative times", chromedp.Click(chromedp.CSS("#time-toggle")))
	b.waitFor("times are relative again", `/ago|just now/.test(document.querySelector("#job-info time").textContent)`)

	// Attempts are separate sections, each with its board, outcome and reason once.
	b.do("open the job with two attempts", chromedp.Navigate(e.srv.URL+"/jobs/multi-attempt"))
	b.waitFor("two attempt sections", `document.querySelectorAll("#attempts details.attempt").length === 2`)
	heads := b.eval(`[...document.querySelectorAll("#attempts details.attempt > summary")].map(s => s.innerText).join("|")`)
	if !strings.Contains(heads, "Attempt 1 on sim-a error") || !strings.Contains(heads, "Attempt 2 on sim-b error") {
		t.Errorf("attempt heads = %q", heads)
	}
	text := b.eval(`document.querySelector("main").textContent`)
	if n := strings.Count(text, "END-OF-REASON"); n != 1 {
		t.Errorf("the job's reason shows %d times; want once, whole", n)
	}
	if n := strings.Count(text, reason1); n != 1 {
		t.Errorf("attempt 1's reason shows %d times; want once", n)
	}
	if open := b.eval(`[...document.querySelectorAll("#attempts details.attempt")].map(d => d.open).join(",")`); open != "false,true" {
		t.Errorf("attempt sections open = %s; want the earlier one collapsed", open)
	}

	// Compare opens on the most recent candidate against its baseline; counts link to jobs.
	b.do("open compare", chromedp.Navigate(e.srv.URL+"/compare"))
	b.waitFor("a comparison without a choice", `!!document.querySelector("#compare-verdict") && !!document.querySelector("#compare-default")`)
	if v := b.eval(`document.querySelector("#compare-verdict").innerText`); !strings.Contains(v, "1 fixed") {
		t.Errorf("verdict = %q; want the good candidate fixing the regressed one", v)
	}
	sides := b.eval(`[...document.querySelectorAll(".side")].map(s => s.innerText).join("|")`)
	if strings.Contains(sides, "1 jobs") || !strings.Contains(sides, "1 job") {
		t.Errorf("sides = %q; want \"1 job\"", sides)
	}
	if n := b.eval(`String(document.querySelectorAll(".side a[href^='/jobs?spec=measure&firmware=']").length)`); n == "0" {
		t.Error("compare's counts do not link to their jobs")
	}

	// Trends: one group per candidate, in submission order.
	b.do("open trends", chromedp.Navigate(e.srv.URL+"/trends?spec=measure&measure=temp_c"))
	b.waitFor("the chart", `!!document.querySelector("#chart canvas")`)
	if groups := b.eval(`[...document.querySelectorAll("#trend-candidates .cand")].map(c => c.dataset.from + "-" + c.dataset.to + " " + c.innerText.trim()).join("|")`); groups != "1-2 fw.hcl 1.1.0 "+sha(good)[:8]+"|3-3 fw.hcl 1.1.0 "+sha(bad)[:8] {
		t.Errorf("trend groups = %q", groups)
	}

	// Held is its own state, with its holder and a live countdown; the rows keep their layout.
	if st := e.call(t, "POST", "/api/v1/boards/sim-b/hold", op, map[string]string{"duration": "10m", "reason": "bring-up"}, nil); st != 200 {
		t.Fatal(st)
	}
	b.do("open the farm", chromedp.Navigate(e.srv.URL+"/"))
	b.waitFor("sim-b is held", `(document.querySelector("#boards tr[data-board='sim-b'] td.state")?.innerText || "").includes("held")`)
	b.waitFor("sim-a's last result and firmware", `!!document.querySelector("#boards tr[data-board='sim-a'] td.last a")`)
	if got := b.eval(`document.querySelector("#boards tr[data-board='sim-a']").innerText`); !strings.Contains(got, "passed") || !strings.Contains(got, "fw.hcl 1.1.0") {
		t.Errorf("sim-a row = %q; want its last result and firmware", got)
	}
	left := b.eval(`document.querySelector("#boards tr[data-board='sim-b'] .countdown").textContent`)
	if !strings.HasSuffix(left, "left") {
		t.Errorf("countdown = %q", left)
	}
	b.waitFor("the countdown runs", fmt.Sprintf(`document.querySelector("#boards tr[data-board='sim-b'] .countdown").textContent !== %s`, strconv.Quote(left)))
	if wrapped := b.eval(`String([...document.querySelectorAll("#boards td.controls .actions")].filter(a => a.children.length && a.offsetHeight > 1.6 * a.children[0].offsetHeight).length)`); wrapped != "0" {
		t.Errorf("%s rows' buttons wrap next to a held board", wrapped)
	}

	// The holder powers the board on from its page: power and history update live.
	b.do("open the held board", chromedp.Navigate(e.srv.URL+"/boards/sim-b"))
	b.waitFor("the board's holder and countdown", textOf("#board-holder", "left")+` && document.querySelectorAll("#board-controls button.power").length === 3`)
	b.waitFor("the last result", `!!document.querySelector("#board-last a")`)
	// The controls are redrawn on every snapshot: click through the page, not a node id.
	b.eval(`(document.querySelector("#board-controls button.power").click(), "")`)
	b.waitFor("the history shows the power-on", textOf("#board-history", "power-on"))
	b.waitFor("the power state is on", textOf("#board-power", "on"))

	// Every page, light and dark, desktop and phone: axe-core, keyboard, width, screenshots.
	src := axeSource(t)
	pages := []struct{ name, path, ready string }{
		{"farm", "/", `document.querySelectorAll("#boards tr").length === 2`},
		{"queue", "/queue", `document.querySelectorAll("#recent tr").length > 0 && document.querySelectorAll("#queue tr").length > 0`},
		{"jobs", "/jobs", `document.querySelectorAll("#jobs tr[data-job]").length === 4`},
		{"job", "/jobs/" + ids[0], textOf("#attempts", "passed") + ` && document.querySelectorAll("#measurements tr").length > 0`},
		{"job-attempts", "/jobs/multi-attempt", `document.querySelectorAll("#attempts details.attempt").length === 2`},
		{"board", "/boards/sim-a", `!!document.querySelector("#board-last a") && !!document.querySelector("#board-history tr")`},
		{"board-held", "/boards/sim-b", `!!document.querySelector("#board-last a") && !!document.querySelector("#board-history tr")`},
		{"compare", "/compare", `!!document.querySelector("#compare-verdict")`},
		{"trends", "/trends?spec=measure&measure=temp_c", `!!document.querySelector("#chart canvas")`},
		{"jobs-empty", "/jobs?spec=nothing-here", `!!document.querySelector("#jobs tr.empty")`},
	}
	// Screenshots of every page only when asked for (make ui-shots): they are slow.
	keepShots := os.Getenv("HILFARM_SCREENSHOTS") != ""
	serious, minor, views := 0, 0, 0
	var report []string
	for _, theme := range []string{"light", "dark"} {
		b.theme(theme)
		for _, size := range []struct {
			name string
			w, h int64
		}{{"desktop", 1400, 900}, {"phone", 390, 844}} {
			if theme == "dark" && size.name == "phone" {
				continue
			}
			b.do("viewport", chromedp.EmulateViewport(size.w, size.h))
			for _, p := range pages {
				b.do("open "+p.name, chromedp.Navigate(e.srv.URL+p.path))
				b.waitFor(p.name+" is ready", p.ready)
				if size.name == "phone" {
					if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
						t.Errorf("%s (%s): page width on a 390 px screen = %s px", p.name, theme, w)
					}
				}
				if keepShots {
					b.shot(fmt.Sprintf("page-%s-%s-%dx%d", p.name, theme, size.w, size.h))
				}
				if src == "" || size.name == "phone" {
					continue
				}
				views++
				for _, v := range b.axe(src) {
					if v.Impact == "serious" || v.Impact == "critical" {
						serious++
						report = append(report, fmt.Sprintf("%s (%s): %s %s: %s %v", p.name, theme, v.Impact, v.ID, v.Help, v.Nodes))
					} else {
						minor++
					}
				}
				// The holder's Tab goes to the board (board-held: we hold it).
				if theme == "light" && p.name != "board-held" {
					if missed := b.tabReaches(); len(missed) > 0 {
						t.Errorf("%s: the keyboard does not reach %v", p.name, missed)
					}
				}
			}
		}
	}
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	if src != "" {
		t.Logf("axe-core: %d page views (%d pages × light, dark): %d serious or critical violations, %d minor or moderate", views, len(pages), serious, minor)
		if serious > 0 {
			t.Errorf("axe-core found serious or critical violations:\n%s", strings.Join(report, "\n"))
		}
	}

	// Anonymous read mode: the header offers "Log in", not "Log out".
	b.do("log out", chromedp.Navigate(e.srv.URL+"/"), chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("the login page", `location.pathname === "/login"`)
	anon := startUI(t, strings.Replace(testFarm, `max_upload = "4KiB"`, "max_upload = \"4KiB\"\n  anonymous_read = true", 1), nil)
	b.do("open the anonymous farm", chromedp.Navigate(anon.srv.URL+"/"))
	b.waitFor("the farm is readable anonymously", `document.querySelectorAll("#boards tr").length === 2`)
	b.waitFor("the header offers Log in", textOf("#who", "Log in")+` && !document.querySelector("#logout")`)
	if keepShots {
		b.shot("page-anonymous-farm-light-1280x900")
	}

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
