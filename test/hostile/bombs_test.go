package hostile

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// These cases need the bounded spec parser and the sim out of process
// (branch i10a) and cancellable matching (branch i11a).

// specSubmit submits a spec with a spec file name (which picks the syntax).
func specSubmit(t testing.TB, s *server, spec, specName string, model string) answer {
	t.Helper()
	ctype, body := multipartBody(part{"options", "", []byte(`{}`)}, part{"spec", specName, []byte(spec)}, part{"firmware", "fw.hcl", []byte(model)})
	return s.do(t, "POST", "/api/v1/jobs", s.tokens["submitter"], ctype, strings.NewReader(string(body)))
}

func assertSpec(that string) string {
	return `spec "bomb" {
  board { type = "sim" }
  test "t" {
    assert { that = ` + that + ` }
  }
}
`
}

// wantRejected: the bomb is refused with a 4xx, or (where noted) runs to a
// bounded end.
func wantRejected(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status < 400 || a.status >= 500 {
		t.Errorf("%s: %s; want it rejected with 4xx", what, a)
	}
}

func testSpecBombs(t *testing.T, s *server) {
	t.Run("100,000 nested parentheses", func(t *testing.T) {
		s.revive(t)
		wantRejected(t, "deep parens", specSubmit(t, s, assertSpec(strings.Repeat("(", 100000)+"true"+strings.Repeat(")", 100000)), "spec.hcl", goodModel))
		s.healthy(t)
	})
	t.Run("300,000 nested lists", func(t *testing.T) {
		s.revive(t)
		wantRejected(t, "deep list", specSubmit(t, s, assertSpec("length("+strings.Repeat("[", 300000)+strings.Repeat("]", 300000)+") > 0"), "spec.hcl", goodModel))
		s.healthy(t)
	})
	t.Run("50,000 nested parentheses", func(t *testing.T) {
		s.revive(t)
		wantRejected(t, "deep parens", specSubmit(t, s, assertSpec(strings.Repeat("(", 50000)+"true"+strings.Repeat(")", 50000)), "spec.hcl", goodModel))
		s.healthy(t)
	})
	t.Run("for with a JSON escape", func(t *testing.T) {
		s.revive(t)
		spec := `{"spec":{"bomb":{"board":{"type":"sim"},"test":{"t":{"assert":{"that":"${length([for\na in range(1000): [for b in range(1000): [for c in range(1000): c]]]) > 0}"}}}}}}`
		wantRejected(t, "JSON for", specSubmit(t, s, spec, "spec.hcl.json", goodModel))
		s.healthy(t)
	})
	t.Run("template concatenation", func(t *testing.T) {
		s.revive(t)
		text := strings.Repeat(`${join("",formatlist("%1000s",range(60)))}`, 23804)
		spec := `spec "bomb" {
  board { type = "sim" }
  test "t" {
    expect { text = "` + text + `" }
  }
}
`
		wantRejected(t, "template concatenation", specSubmit(t, s, spec, "spec.hcl", goodModel))
		s.healthy(t)
	})
	t.Run("deeply nested JSON", func(t *testing.T) {
		s.revive(t)
		n := (1 << 20) / 2
		wantRejected(t, "nested JSON", specSubmit(t, s, strings.Repeat("[", n)+strings.Repeat("]", n), "spec.hcl.json", goodModel))
		s.healthy(t)
	})
	t.Run("40,000 steps", func(t *testing.T) {
		s.revive(t)
		var b strings.Builder
		b.WriteString("spec \"many\" {\n  board { type = \"sim\" }\n  setup {\n    flash {}\n    power \"cycle\" {}\n    expect { text = \"sim> \" }\n  }\n  test \"t\" {\n")
		for range 40000 {
			b.WriteString("    send { line = \"v\" }\n")
		}
		b.WriteString("  }\n}\n")
		a := specSubmit(t, s, b.String(), "spec.hcl", goodModel)
		if a.status == 201 {
			// Accepted (no steps-per-spec limit): the stored result keeps
			// within its budget and says what was cut.
			j := s.waitFinal(t, jobOf(t, a).ID, 4*time.Minute)
			if len(j.Result) > 256<<10+1024 {
				t.Errorf("40,000-step result is %d bytes, over the 256 KiB budget", len(j.Result))
			}
			var r struct {
				Cut *struct {
					StepsDropped int `json:"steps_dropped"`
				} `json:"cut"`
			}
			json.Unmarshal(j.Result, &r)
			if r.Cut == nil {
				t.Errorf("40,000-step result of %d bytes is not marked cut", len(j.Result))
			}
			return
		}
		wantRejected(t, "40,000 steps", a)
	})
	t.Run("big matches", func(t *testing.T) {
		// Within the spec limits: 150 tests that each see a 60,000-byte
		// flood on the console make a result of several MB before its
		// budget.
		s.revive(t)
		var b strings.Builder
		b.WriteString("spec \"big\" {\n  board { type = \"sim\" }\n  timeout = \"5m\"\n  setup {\n    flash {}\n    power \"cycle\" {}\n    expect { text = \"sim> \" }\n  }\n")
		for i := range 150 {
			fmt.Fprintf(&b, "  test \"t%d\" {\n    send { line = \"flood 60000\" }\n    expect { text = \"flood done 60000\" }\n  }\n", i)
		}
		b.WriteString("}\n")
		a := specSubmit(t, s, b.String(), "spec.hcl", goodModel)
		if a.status != 201 {
			t.Fatalf("submit: %s", a)
		}
		j := s.waitFinal(t, jobOf(t, a).ID, 4*time.Minute)
		var r struct {
			Tests []json.RawMessage `json:"tests"`
			Cut   *struct {
				OriginalBytes  int `json:"original_bytes"`
				TextsShortened int `json:"texts_shortened"`
				TestsDropped   int `json:"tests_dropped"`
			} `json:"cut"`
		}
		json.Unmarshal(j.Result, &r)
		t.Logf("job %s (%.300s); stored result %d bytes; cut %+v", j.State, j.Reason, len(j.Result), r.Cut)
		if len(j.Result) > 256<<10 {
			t.Errorf("result is %d bytes, over the 256 KiB budget", len(j.Result))
		}
		if r.Cut == nil || r.Cut.OriginalBytes <= 256<<10 {
			t.Errorf("result of a job with 150 big consoles is not marked cut: %.500s", j.Result)
		} else if len(r.Tests)+r.Cut.TestsDropped != 150 || len(r.Tests) < 100 {
			t.Errorf("cut result keeps %d tests and says %d were dropped; want most of the 150 kept", len(r.Tests), r.Cut.TestsDropped)
		}
	})
}

// simRun submits a spec on a model and waits for its final state; a
// bomb refused at submit (4xx) is fine too.
func simRun(t *testing.T, s *server, spec, model string) {
	t.Helper()
	s.revive(t)
	a := specSubmit(t, s, spec, "spec.hcl", model)
	if a.status >= 400 && a.status < 500 {
		t.Logf("refused at submit: %s", a)
		return
	}
	if a.status != 201 {
		t.Fatalf("submit: %s", a)
	}
	j := s.waitFinal(t, jobOf(t, a).ID, 2*time.Minute)
	if j.State != "failed" {
		t.Errorf("job ended %s (%s); want failed: the candidate's input broke its emulator", j.State, j.Reason)
	}
	t.Logf("job %s: %s", j.State, j.Reason)
}

func testSimBombs(t *testing.T, s *server) {
	t.Run("send garbage 20000000000", func(t *testing.T) {
		simRun(t, s, `spec "bomb" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "t" {
    send { line = "garbage 20000000000" }
    expect {
      text   = "never"
      within = "3s"
    }
  }
}
`, goodModel)
		s.healthy(t)
	})
	t.Run("garbage_bytes fault", func(t *testing.T) {
		simRun(t, s, quickSpec, goodModel+"faults {\n  garbage_bytes = 20000000000\n}\n")
		s.healthy(t)
	})
	t.Run("banner of 1 GB", func(t *testing.T) {
		simRun(t, s, quickSpec, "version = \"2.0.0\"\nbanner = format(\"%999999999s\", \"x\")\n")
		s.healthy(t)
	})
}

// catastrophicRegex is an alternation of n random 15-letter words that
// never matches the sim's flood: 22,000 words make the 360 KB.
func catastrophicRegex(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 0, n)
	for range cap(words) {
		var w [15]byte
		for i := range w {
			w[i] = byte('a' + r.IntN(26))
		}
		words = append(words, string(w[:]))
	}
	return "(?:" + strings.Join(words, "|") + ")x$"
}

// regexSpec floods the console with 64 KiB and waits for re.
func regexSpec(re string) string {
	return fmt.Sprintf(`spec "regex" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }
  test "t" {
    send { line = "flood 65536" }
    expect {
      regex  = "%s"
      within = "5m"
    }
  }
}
`, re)
}

// testCatastrophicRegex: the 360 KB regex is refused at submit
// (program size limit), or, if accepted, cancelled at once like the worst
// case that fits the limits (250 words, under 4 KiB).
func testCatastrophicRegex(t *testing.T, s *server) {
	for _, n := range []int{22000, 250} {
		t.Run(fmt.Sprint(n, " words"), func(t *testing.T) {
			regexCancel(t, s, catastrophicRegex(n))
		})
	}
}

func regexCancel(t *testing.T, s *server, re string) {
	s.revive(t)
	a := specSubmit(t, s, regexSpec(re), "spec.hcl", goodModel)
	if a.status >= 400 && a.status < 500 {
		t.Logf("refused at submit: %.300s", a)
		return
	}
	if a.status != 201 {
		t.Fatalf("submit: %s", a)
	}
	id := jobOf(t, a).ID
	s.waitState(t, id, time.Minute, "running")
	time.Sleep(time.Second) // the attack's pace: let the flood arrive and the match get going
	start := time.Now()
	c := s.do(t, "POST", "/api/v1/jobs/"+id+"/cancel", s.tokens["submitter"], "", nil)
	took := time.Since(start)
	wantStatus(t, "cancel", c, 200)
	t.Logf("cancel of a job in a worst-case match took %s", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("cancel of a job in a worst-case match took %s", took)
	}
	if j := s.job(t, id); j.State != "cancelled" {
		t.Errorf("job after cancel: %s (%s)", j.State, j.Reason)
	}
}
