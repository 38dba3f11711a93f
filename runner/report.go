package runner

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WriteJSON writes res as indented JSON. The form is stable (fields are only
// ever added):
//
//	{
//	  "spec": "boot-smoke", "board": {name, type, tags}, "firmware": {name, version, sha256, path},
//	  "outcome": "passed|failed|error|skipped|cancelled", "message": "why, if not passed",
//	  "started": RFC 3339, "finished": RFC 3339, "duration_ms": 12.5,
//	  "setup": TestResult, "tests": [TestResult], "teardown": TestResult,
//	  "safe_state_error": "...", "captures": {name: text}, "measures": {name: number}
//	}
//
// A TestResult is {name, outcome, kind, message, started, duration_ms,
// attempts, console, console_bytes}; an attempt is {number, outcome, kind,
// message, started, duration_ms, steps, measurements}; a step is {index,
// kind, summary, outcome, fail_kind, message, started, duration_ms, match, output,
// range}; a measurement is {name, value, unit, min, max, marginal_min,
// marginal_max, verdict, at}. kind and fail_kind are the Kind constants.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// The JUnit XML shape accepted by GitLab, Jenkins and GitHub test reporters:
// one testsuite per job, one testcase per test, plus "(setup)" and
// "(teardown)" testcases when those phases did not pass.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Time      string `xml:"time,attr"`
	// Properties carry a campaign's statistics (campaign_report.go).
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMsg       `xml:"failure,omitempty"`
	Error      *junitMsg       `xml:"error,omitempty"`
	Skipped    *junitMsg       `xml:"skipped,omitempty"`
	SystemOut  *xmlText        `xml:"system-out,omitempty"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",innerxml"`
}

// xmlText is element text escaped by escapeXML, which keeps newlines
// readable (encoding/xml writes them as &#xA;).
type xmlText struct {
	Text string `xml:",innerxml"`
}

// escapeXML escapes s for XML character data: &, < and > as entities, a
// carriage return as &#xD; (so it survives parsing), and characters XML 1.0
// cannot carry (most control characters, invalid UTF-8) as U+FFFD.
func escapeXML(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// WriteJUnit writes res as JUnit XML: a testsuite named after the spec with
// properties for the firmware (name, version, sha256) and the board (name,
// type, tags); a testcase per test whose failure (firmware at fault),
// error (infrastructure, or cancelled) or skipped element carries the
// message and its kind as type; system-out holds the measurements, the
// attempts and the test's console slice. Characters XML cannot carry are
// replaced by U+FFFD.
func WriteJUnit(w io.Writer, res *Result) error { return WriteJUnitWith(w, res, nil) }

// Property is an extra suite property a caller adds to the JUnit XML (the
// farm adds the candidate's provenance).
type Property struct{ Name, Value string }

// WriteJUnitWith is WriteJUnit with extra suite properties after the
// built-in ones.
func WriteJUnitWith(w io.Writer, res *Result, extra []Property) error {
	s := junitSuite{
		Name:      res.Spec,
		Time:      secs(res.Duration),
		Timestamp: res.Started.UTC().Format("2006-01-02T15:04:05"),
		Hostname:  res.Board.Name,
	}
	prop := func(k, v string) { s.Properties = append(s.Properties, junitProperty{k, v}) }
	prop("spec", res.Spec)
	prop("outcome", string(res.Outcome))
	prop("firmware.name", res.Firmware.Name)
	prop("firmware.version", res.Firmware.Version)
	prop("firmware.sha256", res.Firmware.SHA256)
	prop("board.name", res.Board.Name)
	prop("board.type", res.Board.Type)
	tags := make([]string, 0, len(res.Board.Tags))
	for k := range res.Board.Tags {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	for _, k := range tags {
		prop("board.tag."+k, res.Board.Tags[k])
	}
	if res.SafeStateError != "" {
		prop("safe_state_error", res.SafeStateError)
	}
	for _, p := range extra {
		prop(p.Name, p.Value)
	}
	add := func(name string, t *TestResult) {
		c := junitCase{Name: name, Classname: res.Spec, Time: secs(t.Duration)}
		if out := systemOut(t); out != "" {
			c.SystemOut = &xmlText{escapeXML(out)}
		}
		msg := &junitMsg{Message: attrMessage(t.Message), Type: t.Kind, Text: escapeXML(t.Message)}
		if t.Campaign != nil {
			c.Properties = campaignProperties(t.Campaign)
			msg.Text = escapeXML(t.Message + campaignFailures(t.Campaign))
		}
		switch t.Outcome {
		case Failed:
			c.Failure = msg
			s.Failures++
		case Error:
			c.Error = msg
			s.Errors++
		case Cancelled:
			msg.Type = KindCancel
			c.Error = msg
			s.Errors++
		case Skipped:
			msg.Text = ""
			c.Skipped = msg
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	if res.Setup != nil && res.Setup.Outcome != Passed {
		add("(setup)", res.Setup)
	}
	for i := range res.Tests {
		add(res.Tests[i].Name, &res.Tests[i])
	}
	if res.Teardown != nil && res.Teardown.Outcome != Passed {
		add("(teardown)", res.Teardown)
	}
	// A job that ended in error or was cancelled with no testcase saying so
	// (the board's safe state failed afterwards, a panic outside a step)
	// gets a "(job)" testcase, so CI does not count it as green.
	if res.Outcome == Error || res.Outcome == Cancelled {
		said := false
		for _, c := range s.Cases {
			said = said || c.Error != nil
		}
		if !said {
			msg, kind := res.Message, KindJob
			if res.SafeStateError != "" {
				msg, kind = "the board's safe state failed: "+res.SafeStateError, KindSafeState
			}
			add("(job)", &TestResult{Name: "(job)", Outcome: res.Outcome, Kind: kind, Message: msg})
		}
	}
	doc := junitSuites{Name: res.Spec, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors,
		Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d Duration) string {
	return strconv.FormatFloat(time.Duration(d).Seconds(), 'f', 3, 64)
}

// attrMessage is the first line of a message, bounded, for an attribute.
func attrMessage(m string) string {
	m = firstLine(m)
	if len(m) > 300 {
		m = m[:300] + "…"
	}
	return m
}

func systemOut(t *TestResult) string {
	var b strings.Builder
	if len(t.Attempts) > 1 {
		for _, a := range t.Attempts {
			fmt.Fprintf(&b, "[hilfarm] attempt %d: %s", a.Number, a.Outcome)
			if a.Message != "" {
				fmt.Fprintf(&b, ": %s", firstLine(a.Message))
			}
			b.WriteByte('\n')
		}
	}
	for _, a := range t.Attempts {
		for _, m := range a.Measurements {
			fmt.Fprintf(&b, "[hilfarm] measure %s = %s%s (%s", m.Name, fmtNum(m.Value), unitSuffix(m.Unit), m.Verdict)
			if m.Min != nil {
				fmt.Fprintf(&b, ", min %s", fmtNum(*m.Min))
			}
			if m.Max != nil {
				fmt.Fprintf(&b, ", max %s", fmtNum(*m.Max))
			}
			fmt.Fprintf(&b, ")\n")
		}
	}
	if t.Console != "" {
		if b.Len() > 0 {
			b.WriteString("[hilfarm] console:\n")
		}
		b.WriteString(t.Console)
	}
	return b.String()
}
