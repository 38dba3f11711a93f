package runner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A campaign in the reports: JUnit properties and failure text, and the
// human summary of `hilfarm run`.

// campaignProperties are a campaign testcase's JUnit properties.
func campaignProperties(c *Campaign) []junitProperty {
	var ps []junitProperty
	add := func(k, v string) { ps = append(ps, junitProperty{k, v}) }
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	rate := func(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }
	add("campaign", "true")
	add("planned", strconv.Itoa(c.Planned))
	add("iterations", strconv.Itoa(c.Run))
	add("passed", strconv.Itoa(c.Passed))
	add("failed", strconv.Itoa(c.Failed))
	add("errors", strconv.Itoa(c.Errors))
	if c.Cancelled > 0 {
		add("cancelled", strconv.Itoa(c.Cancelled))
	}
	add("pass_rate", rate(c.PassRate))
	add("pass_rate_low", rate(c.PassRateLow))
	add("pass_rate_high", rate(c.PassRateHigh))
	add("min_pass_rate", num(c.MinPassRate))
	add("stopped_by", c.StoppedBy)
	add("seed", strconv.FormatInt(c.Seed, 10))
	stats := func(prefix string, s Stats) {
		if s.N == 0 {
			return
		}
		add(prefix+".min", num(round3(s.Min)))
		add(prefix+".median", num(round3(s.Median)))
		add(prefix+".p95", num(round3(s.P95)))
		add(prefix+".max", num(round3(s.Max)))
		add(prefix+".mean", num(round3(s.Mean)))
	}
	stats("iteration_ms", c.IterationTime)
	if c.CutDelay != nil {
		stats("cut_delay_ms", *c.CutDelay)
	}
	names := make([]string, 0, len(c.Measures))
	for n := range c.Measures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		stats("measure."+n, c.Measures[n])
	}
	if len(c.Boards) > 0 {
		var bs []string
		for _, b := range c.Boards {
			bs = append(bs, fmt.Sprintf("%s:%d/%d", b.Board, b.Passed, b.Iterations))
		}
		add("boards", strings.Join(bs, " "))
	}
	if c.Elided > 0 {
		add("elided", strconv.Itoa(c.Elided))
	}
	return ps
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}

// campaignFailures lists the iterations that did not pass, with their cut
// delays (at most 50 lines).
func campaignFailures(c *Campaign) string {
	var b strings.Builder
	n := 0
	for _, it := range c.Iterations {
		if it.Outcome == Passed {
			continue
		}
		if n == 0 {
			b.WriteString("\n\nIterations that did not pass:")
		}
		if n == 50 {
			fmt.Fprintf(&b, "\n  ... and more (%d failed, %d errors in all)", c.Failed, c.Errors)
			break
		}
		n++
		fmt.Fprintf(&b, "\n  iteration %d: %s", it.Number, it.Outcome)
		if it.Board != "" {
			fmt.Fprintf(&b, " on %s", it.Board)
		}
		if len(it.CutDelays) > 0 {
			fmt.Fprintf(&b, ", cut at %s", delayList(it.CutDelays))
		}
		if it.Message != "" {
			fmt.Fprintf(&b, ": %s", headline(it.Message))
		}
	}
	return b.String()
}

// CampaignSummary is the human summary of a campaign that `hilfarm run`
// prints: the pass rate with its interval, why it stopped, the iteration
// time and cut delay distributions, the measurements, and the iterations
// that did not pass with their cut delays and the command line that
// replays each (replay is that command without its delay, e.g.
// "hilfarm run --farm F --board B --firmware FW SPEC"; empty: no line).
func CampaignSummary(name string, c *Campaign, replay string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "campaign %q: %d iterations, %d passed, %d failed, %d errors; pass rate %s (95%% CI %s–%s, min %s); stopped by %s; seed %d\n",
		name, c.Run, c.Passed, c.Failed, c.Errors, pct(c.PassRate), pct(c.PassRateLow), pct(c.PassRateHigh), pct(c.MinPassRate), c.StoppedBy, c.Seed)
	dist := func(label string, s Stats) {
		if s.N == 0 {
			return
		}
		fmt.Fprintf(&b, "  %-14s min %s  median %s  p95 %s  max %s  mean %s %s\n", label,
			fmtNum(round3(s.Min)), fmtNum(round3(s.Median)), fmtNum(round3(s.P95)), fmtNum(round3(s.Max)), fmtNum(round3(s.Mean)), s.Unit)
		if len(s.Histogram) > 1 {
			peak := 0
			for _, h := range s.Histogram {
				peak = max(peak, h.Count)
			}
			bars := []rune(" ▁▂▃▄▅▆▇█")
			var line strings.Builder
			for _, h := range s.Histogram {
				i := 0
				if peak > 0 && h.Count > 0 {
					i = 1 + h.Count*(len(bars)-2)/peak
				}
				line.WriteRune(bars[min(i, len(bars)-1)])
			}
			fmt.Fprintf(&b, "  %-14s |%s| %s..%s\n", "", line.String(), fmtNum(round3(s.Min)), fmtNum(round3(s.Max)))
		}
	}
	dist("iteration time", c.IterationTime)
	if c.CutDelay != nil {
		dist("cut delay", *c.CutDelay)
	}
	names := make([]string, 0, len(c.Measures))
	for n := range c.Measures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dist(n, c.Measures[n])
	}
	shown := 0
	for _, it := range c.Iterations {
		if it.Outcome == Passed {
			continue
		}
		if shown == 20 {
			fmt.Fprintf(&b, "  ... (%d failed, %d errors in all; the JSON report has them)\n", c.Failed, c.Errors)
			break
		}
		shown++
		fmt.Fprintf(&b, "  ✗ iteration %d %s", it.Number, it.Outcome)
		if len(it.CutDelays) > 0 {
			fmt.Fprintf(&b, " (cut at %s)", delayList(it.CutDelays))
		}
		if it.Message != "" {
			fmt.Fprintf(&b, ": %s", headline(it.Message))
		}
		b.WriteByte('\n')
		if replay != "" && len(it.CutDelays) > 0 {
			fmt.Fprintf(&b, "      replay: %s\n", strings.Replace(replay, " run ", " run --replay-cut "+it.CutDelays[0].Std().String()+" ", 1))
		}
	}
	if replay != "" && c.Failed > 0 {
		fmt.Fprintf(&b, "  replay the whole campaign: %s\n", strings.Replace(replay, " run ", fmt.Sprintf(" run --seed %d ", c.Seed), 1))
	}
	return b.String()
}

// headline is a one-line form of a failure message for summaries: its first
// line without a dangling "; last console lines:" label, followed by the
// last console line when the message carries them.
func headline(msg string) string {
	first, rest, _ := strings.Cut(msg, "\n")
	const label = "; last console lines:"
	if !strings.HasSuffix(first, label) {
		return first
	}
	first = strings.TrimSuffix(first, label)
	lines := strings.Split(strings.TrimRight(rest, "\n"), "\n")
	last := strings.TrimSpace(strings.TrimPrefix(lines[len(lines)-1], "  | "))
	if last == "" || last == "(nothing)" {
		return first + "; console empty"
	}
	return fmt.Sprintf("%s; last console line %q", first, last)
}
