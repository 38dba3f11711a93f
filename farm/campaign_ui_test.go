package farm

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/runner"
)

// campaignRun describes a finished campaign job made in the store: which
// iterations failed (with their cut delays), over which boards it was
// spread (iteration i on boards[(i-1) % len]).
type campaignRun struct {
	id, fw, version string
	n               int
	fail            map[int]time.Duration // iteration -> its cut delay
	boards          []string
}

// seededSpec is the spec of the seeded campaign jobs.
var seededSpec = strings.Replace(spreadSpec, `test "version soak"`, `test "update survives a power cut"`, 1)

// seedCampaign stores a finished job whose result holds a campaign built
// by the runner's own merge (so its statistics are computed, not made up)
// from per-iteration data. Its selector matches no board: the scheduler
// leaves it alone.
func seedCampaign(t *testing.T, db *store.DB, r campaignRun) {
	t.Helper()
	ctx := context.Background()
	fw := store.Firmware{SHA256: fmt.Sprintf("%064x", len(r.fw)*7919+int(r.fw[0])), Name: r.fw + ".hcl", Version: r.version}
	if err := db.PutFirmware(ctx, fw, time.Now()); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	parts := make([]*runner.Campaign, len(r.boards))
	for k := range parts {
		parts[k] = &runner.Campaign{Planned: r.n, MinPassRate: 0.95, Seed: 42, StoppedBy: runner.StopCount}
	}
	for i := 1; i <= r.n; i++ {
		p := parts[(i-1)%len(r.boards)]
		cut := time.Duration(20*i) * time.Millisecond
		it := runner.Iteration{Number: i, Outcome: runner.Passed, Started: start.Add(time.Duration(i) * time.Second),
			Duration: runner.Duration(time.Duration(900+10*i) * time.Millisecond), Measures: map[string]float64{"boot_ms": float64(400 + i%7*10)}}
		if d, bad := r.fail[i]; bad {
			cut = d
			it.Outcome, it.Kind, it.Message = runner.Failed, runner.KindExpect, `expect regex "sim> " not seen within 10s`
			it.Console = fmt.Sprintf("update: writing slot A\n[hilfarm: power-cut %dms]\nBooting hilfarm-sim\nbrick: no valid image (iteration %d)\n", d.Milliseconds(), i)
			p.Failed++
		} else {
			p.Passed++
		}
		it.CutDelays = []runner.Duration{runner.Duration(cut)}
		p.Run++
		p.Iterations = append(p.Iterations, it)
	}
	camp := runner.MergeCampaigns(parts, r.boards)
	if len(r.boards) == 1 {
		camp.Boards = nil
	}
	outcome := runner.Passed
	if camp.PassRate < camp.MinPassRate {
		outcome = runner.Failed
	}
	res := runner.Result{Spec: "soak", Outcome: outcome, Started: start, Finished: start.Add(30 * time.Second),
		Tests: []runner.TestResult{{Name: "update survives a power cut", Outcome: outcome, Campaign: camp}}}
	if outcome == runner.Failed {
		res.Message = `test "update survives a power cut": pass rate below the minimum`
		res.Tests[0].Message = "pass rate below the minimum"
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	j := &store.Job{ID: r.id, SpecName: "soak", SpecSrc: []byte(seededSpec), SpecFilename: "soak.hcl", Firmware: fw,
		Selector: json.RawMessage(`{"type":"none"}`), Submitter: "ci", Created: time.Now()}
	if err := db.InsertJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	n, err := db.StartAttempt(ctx, j.ID, r.boards[0], 0, start)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishAttempt(ctx, j.ID, n, store.AttemptEnd{State: outcomeState(outcome), Reason: res.Message, At: start.Add(30 * time.Second), Result: data}); err != nil {
		t.Fatal(err)
	}
}

// seedCampaigns stores two runs of a good candidate (every iteration
// passes, spread over two boards) and two of a regressed one.
func seedCampaigns(t *testing.T, db *store.DB) (good, bad string) {
	fails := map[int]time.Duration{4: 412 * time.Millisecond, 8: 118 * time.Millisecond, 11: 655 * time.Millisecond, 14: 290 * time.Millisecond, 17: 731 * time.Millisecond, 19: 505 * time.Millisecond}
	for _, r := range []campaignRun{
		{id: "camp-good-1", fw: "good", version: "2.0.0", n: 20, boards: []string{"sim-a", "sim-b"}},
		{id: "camp-bad-1", fw: "bad", version: "2.0.1", n: 20, fail: fails, boards: []string{"sim-a"}},
		{id: "camp-good-2", fw: "good", version: "2.0.0", n: 20, boards: []string{"sim-a", "sim-b"}},
		{id: "camp-bad-2", fw: "bad", version: "2.0.1", n: 20, fail: fails, boards: []string{"sim-b"}},
	} {
		seedCampaign(t, db, r)
	}
	return fmt.Sprintf("%064x", 4*7919+int('g')), fmt.Sprintf("%064x", 3*7919+int('b'))
}

func TestCampaignCompareAndTrendsAPI(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	good, bad := seedCampaigns(t, e.tc.db)
	viewer := e.tokens[RoleViewer]

	var cmp Comparison
	if st := e.call(t, "GET", "/api/v1/compare?spec=soak&base="+good+"&candidate="+bad, viewer, nil, &cmp); st != 200 {
		t.Fatalf("compare: %d", st)
	}
	if len(cmp.Campaigns) != 1 {
		t.Fatalf("compare campaigns = %+v", cmp.Campaigns)
	}
	c := cmp.Campaigns[0]
	if c.Baseline == nil || c.Candidate == nil || c.Baseline.Jobs != 2 || c.Baseline.Iterations != 40 || c.Baseline.Passed != 40 ||
		c.Candidate.Iterations != 40 || c.Candidate.Passed != 28 {
		t.Fatalf("campaign sides: %+v / %+v", c.Baseline, c.Candidate)
	}
	lo, hi := runner.WilsonInterval(28, 40)
	if c.Candidate.PassRate != 28.0/40 || c.Candidate.PassRateLow != lo || c.Candidate.PassRateHigh != hi {
		t.Errorf("candidate pass rate %v [%v, %v]; want %v [%v, %v]", c.Candidate.PassRate, c.Candidate.PassRateLow, c.Candidate.PassRateHigh, 28.0/40, lo, hi)
	}
	if c.PassRateDelta == nil || math.Abs(*c.PassRateDelta-(28.0/40-1)) > 1e-12 || c.Verdict != CampaignWorse {
		t.Errorf("delta %v verdict %s; want %v worse (intervals apart)", c.PassRateDelta, c.Verdict, 28.0/40-1)
	}
	if got := fmt.Sprint(c.Candidate.FailingCutDelays); got != "[412 118 655 290 731 505 412 118 655 290 731 505]" {
		t.Errorf("failing cut delays = %s", got)
	}
	dists := map[string]DistributionChange{}
	for _, d := range c.Distributions {
		dists[d.Name] = d
	}
	it, cut := dists["iteration time"], dists["cut delay"]
	if it.Baseline == nil || it.Baseline.N != 40 || it.MedianDelta == nil || *it.MedianDelta != 0 || dists["boot_ms"].Candidate == nil {
		t.Errorf("iteration time change = %+v; boot_ms = %+v", it, dists["boot_ms"])
	}
	if cut.Baseline == nil || cut.Candidate == nil || cut.Candidate.Max != 731 || cut.Baseline.Max != 400 || cut.P95Delta == nil {
		t.Errorf("cut delay change = %+v", cut)
	}
	// The other way round: better.
	if e.call(t, "GET", "/api/v1/compare?spec=soak&base="+bad+"&candidate="+good, viewer, nil, &cmp); len(cmp.Campaigns) != 1 || cmp.Campaigns[0].Verdict != CampaignBetter {
		t.Errorf("good against bad: %+v", cmp.Campaigns)
	}

	var camps []CampaignInfo
	if st := e.call(t, "GET", "/api/v1/specs/soak/campaigns", viewer, nil, &camps); st != 200 || len(camps) != 1 ||
		camps[0].Test != "update survives a power cut" || strings.Join(camps[0].Stats, ",") != "iteration_ms,boot_ms,cut_delay_ms" {
		t.Errorf("campaigns of soak (%d) = %+v", st, camps)
	}
	var pts []CampaignPoint
	if st := e.call(t, "GET", "/api/v1/trends/campaign?spec=soak&test=update+survives+a+power+cut&stat=boot_ms", viewer, nil, &pts); st != 200 || len(pts) != 4 {
		t.Fatalf("campaign trend (%d) = %+v", st, pts)
	}
	for i, want := range []struct {
		job  string
		rate float64
	}{{"camp-good-1", 1}, {"camp-bad-1", 14.0 / 20}, {"camp-good-2", 1}, {"camp-bad-2", 14.0 / 20}} {
		p := pts[i]
		if p.Job != want.job || p.PassRate != want.rate || p.Stat == nil || p.Stat.Unit != "" && p.Stat.N != 20 || p.Stat.N != 20 || p.Stat.Histogram != nil {
			t.Errorf("point %d = %+v (stat %+v); want %s at %v", i, p, p.Stat, want.job, want.rate)
		}
	}
	if e.call(t, "GET", "/api/v1/trends/campaign?spec=soak&test=update+survives+a+power+cut", viewer, nil, &pts); len(pts) != 4 || pts[0].Stat == nil || pts[0].Stat.N != 20 {
		t.Errorf("default stat (iteration time): %+v", pts)
	}
	for _, c := range []struct {
		path string
		want int
	}{
		{"/api/v1/trends/campaign?spec=soak", http.StatusBadRequest},
		{"/api/v1/trends/campaign?spec=soak&test=x&limit=0", http.StatusBadRequest},
		{"/api/v1/trends/campaign?spec=soak&test=" + strings.Repeat("x", 2000), http.StatusBadRequest},
		{"/api/v1/trends/campaign?spec=nope&test=x", http.StatusOK},
	} {
		if st := e.call(t, "GET", c.path, viewer, nil, nil); st != c.want {
			t.Errorf("GET %.80s = %d, want %d", c.path, st, c.want)
		}
	}
	if st := e.call(t, "GET", "/api/v1/trends/campaign?spec=soak&test=x", "", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("campaign trends without a token = %d, want 401", st)
	}
}

// TestCampaignPagesInBrowser: the job page of a campaign (pass rate with
// its interval, histograms, failing iterations with cut delays and console
// slices, each board's share), Compare's and Trends' campaign parts, in
// light and dark with axe-core.
func TestCampaignPagesInBrowser(t *testing.T) {
	leakCheck(t)
	e := startUI(t, testFarm, nil)
	good, bad := seedCampaigns(t, e.tc.db)
	b := newBrowser(t)
	b.do("open the login page", chromedp.Navigate(e.srv.URL+"/login"))
	b.waitFor("the login form shows", `!!document.querySelector("#login-form")`)
	b.do("log in", chromedp.SetValue(chromedp.CSS("#token"), e.tokens[RoleViewer]), chromedp.Click(chromedp.CSS("#login-submit")))
	b.waitFor("the farm page", `document.querySelectorAll("#boards tr").length === 2`)

	b.do("open the regressed campaign", chromedp.Navigate(e.srv.URL+"/jobs/camp-bad-1"))
	b.waitFor("the campaign shows", `!!document.querySelector("#campaign-0-rate")`)
	rate := b.eval(`document.querySelector("#campaign-0-rate").innerText`)
	lo, hi := runner.WilsonInterval(14, 20)
	for _, want := range []string{"70%", "14 of 20 passed", fmt.Sprintf("%v%%–%v%%", round2(100*lo), round2(100*hi)), "minimum 95%"} {
		if !strings.Contains(rate, want) {
			t.Errorf("pass rate %q lacks %q", rate, want)
		}
	}
	if n := b.eval(`String(document.querySelectorAll("#campaign-0 figure.hist-fig svg rect.bar").length)`); n != fmt.Sprint(3*runner.HistogramBuckets) {
		t.Errorf("histogram bars = %s; want %d (iteration time, boot_ms, cut delay)", n, 3*runner.HistogramBuckets)
	}
	if got := b.eval(`[...document.querySelectorAll("#campaign-0 figure.hist-fig figcaption b")].map(e => e.textContent).join(",")`); got != "Iteration time,boot_ms,Cut delay" {
		t.Errorf("histograms = %s", got)
	}
	rows := b.eval(`[...document.querySelectorAll("#campaign-0-failing tr.iteration")].map(r => r.dataset.n + ":" + r.cells[3].innerText).join(",")`)
	if rows != "4:412 ms,8:118 ms,11:655 ms,14:290 ms,17:731 ms,19:505 ms" {
		t.Errorf("failing iterations = %s", rows)
	}
	if got := b.eval(`document.querySelector("#campaign-0-failing tr[data-n='17']").innerText`); !strings.Contains(got, "hilfarm run --replay-cut 731ms soak.hcl") {
		t.Errorf("iteration 17 lacks its replay command: %q", got)
	}
	b.eval(`(document.querySelector("#campaign-0-failing tr[data-n='17'] details.slice").open = true, "")`)
	b.waitFor("the console slice shows", textOf("#campaign-0-failing tr[data-n='17'] details.slice pre", "brick: no valid image (iteration 17)"))
	if b.eval(`String(!!document.querySelector("#campaign-0-boards"))`) != "false" {
		t.Error("a campaign on one board shows a per-board share")
	}
	b.shot("campaign-job-regressed")

	b.do("open the spread campaign", chromedp.Navigate(e.srv.URL+"/jobs/camp-good-1"))
	b.waitFor("the board shares show", `document.querySelectorAll("#campaign-0-boards tbody tr").length === 2`)
	if got := b.eval(`[...document.querySelectorAll("#campaign-0-boards tbody tr")].map(r => r.innerText.replace(/\s+/g, " ")).join("|")`); got != "sim-a 10 10 100%|sim-b 10 10 100%" {
		t.Errorf("board shares = %q", got)
	}
	if got := b.eval(`document.querySelector("#campaign-0-failing").innerText`); !strings.Contains(got, "Every listed iteration passed") {
		t.Errorf("failing iterations of a passing campaign: %q", got)
	}

	// A spread job split into two shards (on a board type no board has:
	// they stay queued) lists them, each linking to its page.
	ctx := context.Background()
	sp := &store.Job{ID: "spread-1", SpecName: "soak", SpecSrc: []byte(seededSpec), SpecFilename: "soak.hcl",
		Firmware: store.Firmware{SHA256: good, Name: "good.hcl"}, Selector: json.RawMessage(`{"type":"none"}`),
		Submitter: "ci", Created: time.Now(), Spread: 2}
	if err := e.tc.db.InsertJob(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.tc.db.SplitJob(ctx, sp.ID, 2, time.Now()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	b.do("open the spread job", chromedp.Navigate(e.srv.URL+"/jobs/spread-1"))
	b.waitFor("its shards", `document.querySelectorAll("#shard-list tbody tr").length === 2`)
	if got := b.eval(`[...document.querySelectorAll("#shard-list tbody tr")].map(r => r.cells[0].innerText + " " + r.cells[1].innerText).join("|")`); got != "1/2 queued|2/2 queued" {
		t.Errorf("shards = %q", got)
	}
	if got := b.eval(`document.querySelector("#no-attempts").innerText`); !strings.Contains(got, "runs as its shards") {
		t.Errorf("a split job's attempts say %q", got)
	}
	b.do("open a shard", chromedp.Click(chromedp.CSS(`#shard-list tbody tr:first-child a`)))
	b.waitFor("the shard names its spread job", `location.pathname === "/jobs/spread-1-s1" && !!document.querySelector("#shard-of a[href='/jobs/spread-1']")`)

	cmpPath := "/compare?spec=soak&base=" + good + "&candidate=" + bad
	b.do("open compare", chromedp.Navigate(e.srv.URL+cmpPath))
	b.waitFor("the campaign comparison", `!!document.querySelector("#compare-campaign-rates tbody tr")`)
	if got := b.eval(`document.querySelector("#compare-campaign-rates tbody tr").innerText.replace(/\s+/g, " ")`); !strings.Contains(got, "100%") || !strings.Contains(got, "70%") || !strings.Contains(got, "-30 pts") || !strings.Contains(got, "worse") {
		t.Errorf("campaign comparison row = %q", got)
	}
	if got := b.eval(`document.querySelector("#compare-campaigns").innerText`); !strings.Contains(got, "412 ms, 118 ms, 655 ms") {
		t.Errorf("compare does not name the failing cut delays: %q", got)
	}
	trendPath := "/trends?spec=soak&campaign=" + "update%20survives%20a%20power%20cut"
	b.do("open trends", chromedp.Navigate(e.srv.URL+trendPath))
	b.waitFor("the campaign chart", `!!document.querySelector("#campaign-chart canvas") && document.querySelectorAll("#campaign-points tr").length === 4`)
	b.do("plot boot_ms", chromedp.SetValue(chromedp.CSS("#campaign-stat"), "boot_ms"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#campaign-stat").dispatchEvent(new Event("change"))`))
	b.waitFor("the boot_ms percentiles", `document.querySelector("#campaign-stat")?.value === "boot_ms" && /\d+ ?$/.test(document.querySelector("#campaign-points tr").cells[4].innerText)`)
	b.shot("campaign-trends")

	src := axeSource(t)
	pages := []struct{ name, path, ready string }{
		{"campaign-job", "/jobs/camp-bad-1", `!!document.querySelector("#campaign-0-failing")`},
		{"campaign-spread-job", "/jobs/camp-good-1", `!!document.querySelector("#campaign-0-boards")`},
		{"spread-shards", "/jobs/spread-1", `!!document.querySelector("#shard-list")`},
		{"shard", "/jobs/spread-1-s2", `!!document.querySelector("#shard-of")`},
		{"campaign-compare", cmpPath, `!!document.querySelector("#compare-campaign-rates")`},
		{"campaign-trends", trendPath, `!!document.querySelector("#campaign-chart canvas")`},
	}
	var report []string
	for _, theme := range []string{"light", "dark"} {
		b.theme(theme)
		for _, p := range pages {
			b.do("open "+p.name, chromedp.Navigate(e.srv.URL+p.path))
			b.waitFor(p.name+" is ready", p.ready)
			if os.Getenv("HILFARM_SCREENSHOTS") != "" || p.name == "campaign-job" {
				b.shot(fmt.Sprintf("page-%s-%s", p.name, theme))
			}
			if src == "" {
				continue
			}
			for _, v := range b.axe(src) {
				if v.Impact == "serious" || v.Impact == "critical" {
					report = append(report, fmt.Sprintf("%s (%s): %s %s: %s %v", p.name, theme, v.Impact, v.ID, v.Help, v.Nodes))
				}
			}
		}
	}
	if len(report) > 0 {
		t.Errorf("axe-core found serious or critical violations:\n%s", strings.Join(report, "\n"))
	}
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
