package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// Campaigns on a real sim board: each iteration runs the test's steps on
// the board; the verdict and statistics come from the iterations.

func campaignSpec(repeat, steps string) string {
	return fmt.Sprintf(`
spec "campaign" {
  board { type = "sim" }
  timeout = "2m"
  setup {
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "c" {
%s
%s
  }
}`, repeat, steps)
}

// Every third iteration fails its assertion; each measures v = 10*i.
const everyThirdFails = `
    send { line = "echo v=${repeat.iteration * 10}" }
    measure "v" {
      regex = "v=([0-9]+)"
      unit  = "mV"
    }
    assert {
      that    = repeat.iteration % 3 != 0
      message = "iteration ${repeat.iteration} of ${repeat.count} fails"
    }`

func runCampaign(t *testing.T, src string, opts runner.Options) (*runner.Result, *runner.Campaign) {
	t.Helper()
	good := examplePath(t, "firmware", "sim-good.hcl")
	b := simBoard(t, good)
	res, err := runner.Run(context.Background(), runner.Job{Spec: parseSpec(t, src), Board: b, Firmware: simFirmware(t, good, "1.1.0")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tests) != 1 || res.Tests[0].Campaign == nil {
		t.Fatalf("no campaign in %+v", res.Tests)
	}
	return res, res.Tests[0].Campaign
}

func medianOf(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func TestCampaignCountAndStats(t *testing.T) {
	res, c := runCampaign(t, campaignSpec(`repeat {
      count = 7
      seed  = 5
    }`, everyThirdFails), runner.Options{})
	tr := res.Tests[0]
	if c.Run != 7 || c.Passed != 5 || c.Failed != 2 || c.Errors != 0 || c.StoppedBy != runner.StopCount || c.Planned != 7 || c.Seed != 5 {
		t.Fatalf("campaign = %+v", c)
	}
	if tr.Outcome != runner.Failed || tr.Kind != runner.KindAssert || res.Outcome != runner.Failed {
		t.Errorf("test %s/%s: %s", tr.Outcome, tr.Kind, tr.Message)
	}
	if !strings.Contains(tr.Message, "#3") || !strings.Contains(tr.Message, "#6") || !strings.Contains(tr.Message, "71.4%") {
		t.Errorf("message does not name the failing iterations: %s", tr.Message)
	}
	if len(c.Iterations) != 7 {
		t.Fatalf("%d iterations listed", len(c.Iterations))
	}
	var times, vs []float64
	for i, it := range c.Iterations {
		want := runner.Passed
		if (i+1)%3 == 0 {
			want = runner.Failed
		}
		if it.Number != i+1 || it.Outcome != want {
			t.Errorf("iteration %d: #%d %s", i, it.Number, it.Outcome)
		}
		if want == runner.Failed && (it.Console == "" || !strings.Contains(it.Message, "fails")) {
			t.Errorf("failing iteration %d has no console or message: %+v", it.Number, it)
		}
		if want == runner.Passed && it.Console != "" {
			t.Errorf("passing iteration %d kept its console", it.Number)
		}
		if it.ConsoleEnd <= it.ConsoleStart {
			t.Errorf("iteration %d console range %d..%d", it.Number, it.ConsoleStart, it.ConsoleEnd)
		}
		if it.Measures["v"] != float64(10*(i+1)) {
			t.Errorf("iteration %d measured %v", it.Number, it.Measures)
		}
		times = append(times, float64(it.Duration)/1e6)
		vs = append(vs, it.Measures["v"])
	}
	// The statistics, computed again here from the iterations.
	lo, hi := runner.WilsonInterval(5, 7)
	if math.Abs(c.PassRate-5.0/7) > 1e-12 || c.PassRateLow != lo || c.PassRateHigh != hi || lo >= c.PassRate || hi <= c.PassRate {
		t.Errorf("pass rate %v [%v, %v]", c.PassRate, c.PassRateLow, c.PassRateHigh)
	}
	sum := 0.0
	for _, x := range times {
		sum += x
	}
	it := c.IterationTime
	if it.N != 7 || math.Abs(it.Median-medianOf(times)) > 1e-9 || math.Abs(it.Mean-sum/7) > 1e-9 || it.Unit != "ms" || len(it.Histogram) == 0 {
		t.Errorf("iteration time %+v, median %v", it, medianOf(times))
	}
	v := c.Measures["v"]
	if v.N != 7 || v.Min != 10 || v.Max != 70 || v.Median != medianOf(vs) || v.Mean != 40 || v.Unit != "mV" {
		t.Errorf("measure v = %+v", v)
	}
	// p95 of 10..70 interpolated: rank 5.7 -> 60 + 0.7*10.
	if math.Abs(v.P95-67) > 1e-9 {
		t.Errorf("p95 = %v", v.P95)
	}
	// Steps are kept for the first iteration and the failing ones only.
	var nums []int
	for _, a := range tr.Attempts {
		nums = append(nums, a.Number)
	}
	if fmt.Sprint(nums) != "[1 3 6]" {
		t.Errorf("attempts kept: %v", nums)
	}

	// JSON: everything is there.
	var buf bytes.Buffer
	if err := runner.WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var back runner.Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if bc := back.Tests[0].Campaign; bc == nil || bc.Run != 7 || len(bc.Iterations) != 7 || bc.Measures["v"].Median != v.Median {
		t.Errorf("campaign after a JSON round trip: %+v", bc)
	}
	// JUnit: one testcase with the statistics as properties and the failing iterations.
	buf.Reset()
	if err := runner.WriteJUnit(&buf, res); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name  string `xml:"name,attr"`
				Props []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"properties>property"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	cases := doc.Suites[0].Cases
	if len(cases) != 1 || cases[0].Failure == nil {
		t.Fatalf("junit cases: %+v", cases)
	}
	props := map[string]string{}
	for _, p := range cases[0].Props {
		props[p.Name] = p.Value
	}
	for k, want := range map[string]string{"iterations": "7", "passed": "5", "failed": "2", "stopped_by": "count", "seed": "5",
		"pass_rate": "0.7143", "measure.v.median": "40", "measure.v.p95": "67"} {
		if props[k] != want {
			t.Errorf("junit property %s = %q, want %q (all: %v)", k, props[k], want, props)
		}
	}
	if !strings.Contains(cases[0].Failure.Text, "iteration 3") || !strings.Contains(cases[0].Failure.Text, "iteration 6") {
		t.Errorf("junit failure text: %s", cases[0].Failure.Text)
	}
}

func TestCampaignMinPassRateAndRepeatOverride(t *testing.T) {
	res, c := runCampaign(t, campaignSpec(`repeat {
      count         = 100
      min_pass_rate = 0.5
    }`, everyThirdFails), runner.Options{Repeat: 4})
	if c.Run != 4 || c.Planned != 4 || c.Failed != 1 || res.Tests[0].Outcome != runner.Passed || c.Seed == 0 {
		t.Errorf("campaign %+v, test %s: %s", c, res.Tests[0].Outcome, res.Tests[0].Message)
	}
}

func TestCampaignStopAfterFailures(t *testing.T) {
	_, c := runCampaign(t, campaignSpec(`repeat {
      count               = 20
      stop_after_failures = 1
    }`, everyThirdFails), runner.Options{})
	if c.Run != 3 || c.Failed != 1 || c.StoppedBy != runner.StopFailures {
		t.Errorf("campaign = %+v", c)
	}
}

func TestCampaignDuration(t *testing.T) {
	_, c := runCampaign(t, campaignSpec(`repeat {
      count    = 20
      duration = "150ms"
    }`, `    wait { for = "60ms" }`), runner.Options{})
	if c.StoppedBy != runner.StopDuration || c.Run < 1 || c.Run >= 20 || c.Passed != c.Run {
		t.Errorf("campaign = %+v", c)
	}
}

func TestCampaignTestTimeout(t *testing.T) {
	res, c := runCampaign(t, campaignSpec(`timeout = "250ms"
    repeat {
      count = 20
    }`, `    wait { for = "60ms" }`), runner.Options{})
	tr := res.Tests[0]
	if c.StoppedBy != runner.StopTimeout || tr.Outcome != runner.Failed || tr.Kind != runner.KindTimeout || c.Run >= 20 || c.Failed != 0 {
		t.Errorf("campaign = %+v; test %s/%s: %s", c, tr.Outcome, tr.Kind, tr.Message)
	}
}

func TestCampaignCancel(t *testing.T) {
	good := examplePath(t, "firmware", "sim-good.hcl")
	b := simBoard(t, good)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := runner.Options{Events: func(ev runner.Event) {
		if f, ok := ev.(runner.TestFinished); ok && f.Iteration == 2 {
			cancel()
		}
	}}
	spec := parseSpec(t, campaignSpec(`repeat {
      count = 20
    }`, `    wait { for = "10ms" }`))
	res, err := runner.Run(ctx, runner.Job{Spec: spec, Board: b, Firmware: simFirmware(t, good, "1.1.0")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Tests[0].Campaign
	if c.StoppedBy != runner.StopCancel || c.Run != 2 || res.Tests[0].Outcome != runner.Cancelled || res.Outcome != runner.Cancelled {
		t.Errorf("campaign = %+v; test %s", c, res.Tests[0].Outcome)
	}
}

func TestCampaignErrorEndsIt(t *testing.T) {
	res, c := runCampaign(t, campaignSpec(`repeat {
      count = 5
    }`, `    tool "nothing" {}`), runner.Options{})
	if c.StoppedBy != runner.StopError || c.Errors != 1 || c.Run != 1 || res.Tests[0].Outcome != runner.Error || res.Outcome != runner.Error {
		t.Errorf("campaign = %+v; test %s: %s", c, res.Tests[0].Outcome, res.Tests[0].Message)
	}
}

const cutSteps = `
    send { line = "echo update: writing" }
    power "cut" {
      after   = "update: writing"
      %s
      off_for = "20ms"
    }
    expect { text = "Booting" }
    expect { text = "sim> " }`

func cutDelays(t *testing.T, c *runner.Campaign) []time.Duration {
	t.Helper()
	var out []time.Duration
	for _, it := range c.Iterations {
		if len(it.CutDelays) != 1 {
			t.Fatalf("iteration %d cut delays %v", it.Number, it.CutDelays)
		}
		out = append(out, it.CutDelays[0].Std())
	}
	return out
}

func TestCampaignRandomCutIsSeeded(t *testing.T) {
	src := campaignSpec(`repeat {
      count = 4
      seed  = 42
    }`, fmt.Sprintf(cutSteps, `random = ["0ms", "50ms"]`))
	_, c := runCampaign(t, src, runner.Options{})
	if c.Passed != 4 {
		t.Fatalf("campaign = %+v", c)
	}
	got := cutDelays(t, c)
	for i, d := range got {
		if want := runner.RandomCutDelay(42, i+1, 0, 0, 50*time.Millisecond); d != want || d < 0 || d > 50*time.Millisecond {
			t.Errorf("iteration %d cut at %v, want %v", i+1, d, want)
		}
	}
	if c.CutDelay == nil || c.CutDelay.N != 4 {
		t.Errorf("cut delay stats %+v", c.CutDelay)
	}
	// The same seed draws the same delays (--seed replays a campaign).
	_, again := runCampaign(t, src, runner.Options{Seed: 42, Repeat: 2})
	if d := cutDelays(t, again); d[0] != got[0] || d[1] != got[1] {
		t.Errorf("replayed delays %v, first run %v", d, got)
	}
	// --replay-cut: every cut takes the given delay, once.
	replay := 17 * time.Millisecond
	_, one := runCampaign(t, src, runner.Options{ReplayCut: &replay})
	if d := cutDelays(t, one); one.Run != 1 || len(d) != 1 || d[0] != replay {
		t.Errorf("replay: %+v", one)
	}
}

func TestCampaignSweepCoversTheRange(t *testing.T) {
	_, c := runCampaign(t, campaignSpec(`repeat {
      count = 5
    }`, fmt.Sprintf(cutSteps, `sweep = ["0ms", "40ms"]`)), runner.Options{})
	got := cutDelays(t, c)
	for i, d := range got {
		if d != time.Duration(i)*10*time.Millisecond {
			t.Fatalf("sweep delays %v", got)
		}
	}
	if c.CutDelay.Min != 0 || c.CutDelay.Max != 40 || c.Passed != 5 {
		t.Errorf("cut delay stats %+v; campaign %+v", c.CutDelay, c)
	}
}

func TestCampaignShardAndMerge(t *testing.T) {
	src := campaignSpec(`repeat {
      count = 7
      seed  = 9
    }`, everyThirdFails)
	_, whole := runCampaign(t, src, runner.Options{})
	_, p0 := runCampaign(t, src, runner.Options{Shard: runner.Shard{Index: 0, Of: 2}})
	_, p1 := runCampaign(t, src, runner.Options{Shard: runner.Shard{Index: 1, Of: 2}})
	if p0.Run != 4 || p1.Run != 3 {
		t.Errorf("shards ran %d and %d iterations", p0.Run, p1.Run)
	}
	m := runner.MergeCampaigns([]*runner.Campaign{p0, p1}, []string{"a", "b"})
	if m.Run != whole.Run || m.Passed != whole.Passed || m.Failed != whole.Failed || m.PassRate != whole.PassRate ||
		m.PassRateLow != whole.PassRateLow || m.Measures["v"].Median != whole.Measures["v"].Median || m.Seed != 9 {
		t.Errorf("merged %+v\nwhole %+v", m, whole)
	}
	for i, it := range m.Iterations {
		if it.Number != i+1 || it.Board != []string{"a", "b"}[i%2] {
			t.Errorf("merged iteration %d: #%d on %s", i, it.Number, it.Board)
		}
	}
}

// A power cut outside a campaign takes a fixed delay.
func TestCutOnce(t *testing.T) {
	good := examplePath(t, "firmware", "sim-good.hcl")
	src := strings.Replace(campaignSpec("", fmt.Sprintf(cutSteps, `delay = "5ms"`)), "\n\n", "\n", 1)
	res := runSim(t, parseSpec(t, src), simFirmware(t, good, "1.1.0"), good)
	tr := res.Tests[0]
	if tr.Outcome != runner.Passed || tr.Campaign != nil {
		t.Fatalf("test %s: %s", tr.Outcome, tr.Message)
	}
	if s := tr.Attempts[0].Steps[1].Summary; s != "power cut at 5ms after the match" {
		t.Errorf("cut step summary %q", s)
	}
	_ = specs.PowerCut
}
