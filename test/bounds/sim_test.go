package bounds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runRSS bounds `hilfarm run` with its sim child: the controller side
// holds the console and the runner; the child at most its Go memory limit.
const runRSS = 256 << 20

// The sim's hostile inputs of issue 10, through `hilfarm run` on the
// example farm: a spec that types `garbage 20000000000`, and models whose
// garbage_bytes or banner once took gigabytes. The first passes (the
// garbage is cut to 1 MiB, the board answers after it); the models are the
// candidate's failure (exit 1), with the limit named.
func TestRunHostileSim(t *testing.T) {
	dir := t.TempDir()
	farm, err := filepath.Abs(filepath.Join("..", "..", "examples", "farm.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Abs(filepath.Join("..", "..", "examples", "firmware", "sim-good.hcl"))
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spec := write("garbage.hcl", `spec "garbage" {
  board { type = "sim" }
  timeout = "2m"
  setup {
    flash {}
    power "cycle" {}
    expect {
      text   = "sim> "
      within = "20s"
    }
  }
  test "garbage" {
    send { line = "garbage 20000000000" }
    send { line = "version" }
    expect {
      regex  = "1\\.[0-9]+\\.[0-9]+"
      within = "60s"
    }
  }
}
`)
	boot := write("boot.hcl", `spec "boot" {
  board { type = "sim" }
  setup {
    flash {}
    power "cycle" {}
  }
  test "boots" {
    expect {
      text   = "sim> "
      within = "20s"
    }
  }
}
`)
	for _, tc := range []struct {
		name, firmware, spec string
		code                 int
		want                 string
	}{
		{"send garbage 20000000000", good, spec, 0, "passed"},
		{"garbage_bytes 20000000000", write("garbage-model.hcl", "version = \"6.6.6\"\nfaults {\n  garbage_bytes = 20000000000\n}\n"), boot, 1, "garbage_bytes"},
		{"banner of 999999999 bytes", write("banner-model.hcl", "version = \"6.6.6\"\nbanner = format(\"%999999999s\", \"x\")\n"), boot, 1, "width or precision above 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := runBinary(t, dir, "run", "--farm", farm, "--board", "sim-01", "--firmware", tc.firmware, "--quiet", tc.spec)
			t.Logf("exit %d, max RSS %.1f MB, CPU %s", u.code, float64(u.maxRSS)/1e6, u.cpu.Round(time.Millisecond))
			if u.code != tc.code || !strings.Contains(u.out, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%.3000s", u.code, tc.code, tc.want, u.out)
			}
			if u.maxRSS > runRSS {
				t.Errorf("max RSS %d bytes, over %d", u.maxRSS, runRSS)
			}
		})
	}
}
