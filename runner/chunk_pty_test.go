package runner_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/fixtures/fake"
	"github.com/hilfarm/hilfarm/fixtures/serial"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// TestSplitReadsOnPty: the reported cases through a real pty and the
// serial console. The board writes its line in two pieces, the second
// after the engine has the first: "OK" then "AY\r\n". OK$, (?m)OK$, OK\b
// and OK\r?$ must not match the OK of OKAY (they did when the first piece
// was searched alone), and fail_on_regex FAIL$ must not fail on FAILSAFE.
// The settle time is set long, so the second piece always comes first; with
// the default settle time, "OK" alone then silence matches.
func TestSplitReadsOnPty(t *testing.T) {
	type tc struct {
		name    string
		regex   string // expect regex; "" : expect text "ok"
		failOn  string // fail_on_regex
		pieces  []string
		settle  time.Duration
		outcome runner.Outcome
	}
	var cases []tc
	for _, p := range []string{`OK$`, `(?m)OK$`, `OK\b`, `OK\r?$`} {
		cases = append(cases,
			tc{p + " on OK|AY", p, "", []string{"OK", "AY\r\n"}, time.Hour, runner.Failed},
			tc{p + " on OK then silence", p, "", []string{"OK"}, 0, runner.Passed})
	}
	cases = append(cases,
		tc{"FAIL$ on FAIL|SAFE", "", `FAIL$`, []string{"FAIL", "SAFE ok\r\n"}, time.Hour, runner.Passed},
		tc{"FAIL$ on FAIL then silence", "", `FAIL$`, []string{"FAIL"}, 0, runner.Failed},
		tc{`capture x=(\d+) on x=1|2`, `x=(\d+)`, "", []string{"x=1", "2\r\n"}, time.Hour, runner.Passed},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			master, slave := benchPtyFiles(t)
			con, err := serial.Open(context.Background(), specs.Console{Port: slave.Name(), Baud: 115200}, serial.Options{Name: "split"})
			if err != nil {
				t.Fatal(err)
			}
			defer con.Close()
			step := expectText(t, "ok", 2*time.Second)
			if c.regex != "" {
				step = expectRegex(t, c.regex, time.Second, "v") // the second piece comes well before
			}
			steps := []specs.Step{step}
			if strings.HasPrefix(c.regex, "x=") {
				steps = append(steps, assertStep(t, `capture.v == "12"`, "captured ${capture.v}"))
			}
			spec := &specs.Spec{Name: "split", Tests: []specs.Test{{Name: "a", Steps: steps}}}
			if c.failOn != "" {
				spec.FailOn = []specs.Pattern{{Regex: tmpl(t, c.failOn)}}
			}
			// The first piece when the step starts; each next one 30 ms
			// after the engine has read the one before, as a 300-baud board
			// sends its next byte (the outcome does not depend on the pause:
			// the settle time is longer; it makes sure the engine searched
			// the first piece alone, as it did when the bug showed).
			var wg sync.WaitGroup
			defer wg.Wait()
			next := 0
			write := func(pause time.Duration) {
				if next >= len(c.pieces) {
					return
				}
				p := c.pieces[next]
				next++
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(pause)
					if _, err := master.WriteString(p); err != nil {
						t.Errorf("write: %v", err)
					}
				}()
			}
			opts := runner.Options{Settle: c.settle, Events: func(ev runner.Event) {
				switch ev.(type) {
				case runner.StepStarted:
					write(0)
				case runner.ConsoleOutput:
					write(30 * time.Millisecond)
				}
			}}
			res, err := runner.Run(context.Background(), runner.Job{Spec: spec, Board: runner.Board{Power: fake.NewPower(nil), Console: con}}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != c.outcome {
				t.Errorf("outcome %s (%s), want %s", res.Outcome, res.Message, c.outcome)
			}
		})
	}
}
