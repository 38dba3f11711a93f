package specs

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestRepeatScopeAtRunTime(t *testing.T) {
	s, d := LoadSpec("testdata/good/campaign.hcl", SpecOptions{})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	tt := s.Tests[0]
	if tt.Repeat == nil || tt.Repeat.Count != 200 || tt.Repeat.Seed != 42 || tt.Repeat.Spread != 2 || tt.Repeat.MinPassRate != 0.99 {
		t.Fatalf("repeat = %+v", tt.Repeat)
	}
	send := tt.Steps[2].Send
	sc := &Scope{Vars: s.Vars, Repeat: &RepeatScope{Iteration: 7, Count: 200}}
	b, err := send.Bytes(sc, "\n")
	if err != nil || string(b) != "update 7 of 200\n" {
		t.Fatalf("send = %q, %v", b, err)
	}
	cut := tt.Steps[6].Power.Cut
	if got, err := cut.DelayOf(sc); err != nil || got != 107*time.Millisecond {
		t.Errorf("delay = %v, %v; want 107ms", got, err)
	}
	// Without a repeat scope, repeat.* does not exist.
	if _, err := send.Bytes(&Scope{Vars: s.Vars}, "\n"); err == nil {
		t.Error("repeat.iteration evaluated outside a campaign")
	}
	if s.Tests[2].Repeat != nil || s.Tests[1].Repeat.Count != 0 || s.Tests[1].Repeat.Duration != 10*time.Minute {
		t.Errorf("tests 2 and 3: %+v %+v", s.Tests[1].Repeat, s.Tests[2].Repeat)
	}
}

func TestCutDelayOutOfBoundsAtRunTime(t *testing.T) {
	src := []byte(`variable "d" { type = string }
spec "x" {
  board { type = "sim" }
  test "t" {
    power "cut" { delay = var.d }
  }
}`)
	// A value known when parsing is checked then.
	if _, d := ParseSpec(src, "x.hcl", SpecOptions{Vars: map[string]string{"d": "2h"}}); !d.HasErrors() {
		t.Error("a 2h cut delay given at submit was accepted")
	}
	s, d := ParseSpec(src, "x.hcl", SpecOptions{})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	cut := s.Tests[0].Steps[0].Power.Cut
	if _, err := cut.DelayOf(&Scope{Vars: map[string]any{"d": "2h"}}); err == nil {
		t.Error("a 2h cut delay was accepted at run time")
	}
	if got, err := cut.DelayOf(&Scope{Vars: map[string]any{"d": "5ms"}}); err != nil || got != 5*time.Millisecond {
		t.Errorf("delay = %v, %v", got, err)
	}
}

func TestSweepDelay(t *testing.T) {
	c := CutPlan{Sweep: []time.Duration{100 * time.Millisecond, 500 * time.Millisecond}}
	var got []time.Duration
	for i := 1; i <= 6; i++ {
		got = append(got, c.SweepDelay(i, 5))
	}
	want := []time.Duration{100, 200, 300, 400, 500, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("sweep delays %v, want %v ms", got, want)
		}
	}
	if c.SweepDelay(3, 1) != 100*time.Millisecond {
		t.Error("a one-step sweep is not its low bound")
	}
	// Uneven steps stay within the range and end on hi.
	c = CutPlan{Sweep: []time.Duration{0, time.Hour}}
	if c.SweepDelay(7, 7) != time.Hour || c.SweepDelay(2, 7) != time.Hour/6 {
		t.Errorf("uneven sweep: %v %v", c.SweepDelay(7, 7), c.SweepDelay(2, 7))
	}
}

// TestFormatCampaign: hilfarm fmt keeps a campaign spec as it is (it is
// canonical already) and a scrambled one formats back to a spec that
// decodes the same.
func TestFormatCampaign(t *testing.T) {
	src, err := os.ReadFile("testdata/good/campaign.hcl")
	if err != nil {
		t.Fatal(err)
	}
	out, d := Format(src, "campaign.hcl")
	if d.HasErrors() || !bytes.Equal(out, src) {
		t.Fatalf("Format changed a canonical campaign spec:\n%s", out)
	}
	messy := bytes.ReplaceAll(src, []byte("count               = 200"), []byte("count = 200"))
	out, d = Format(messy, "campaign.hcl")
	if d.HasErrors() || !bytes.Equal(out, src) {
		t.Fatalf("Format did not restore the layout:\n%s", out)
	}
	if _, d := ParseSpec(out, "campaign.hcl", SpecOptions{}); d.HasErrors() {
		t.Fatal(d.Err())
	}
}
