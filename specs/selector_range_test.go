package specs

import (
	"os"
	"path/filepath"
	"testing"
)

// "No board matches the selector" points at the board block's type and
// tags, not at the spec's first line.
func TestNoMatchingBoardAtSelector(t *testing.T) {
	dir := t.TempDir()
	farmPath := filepath.Join(dir, "farm.hcl")
	specPath := filepath.Join(dir, "spec.hcl")
	if err := os.WriteFile(farmPath, []byte("farm \"f\" {}\nboard_type \"sim\" {}\nboard \"s\" {\n  type = \"sim\"\n  emulator \"sim\" {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "spec \"x\" {\n  board {\n    type = \"sim\"\n    tags = { rack = \"z\" }\n  }\n  test \"t\" {\n    power \"on\" {}\n  }\n}\n"
	if err := os.WriteFile(specPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	farm, d := LoadFarm(farmPath)
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	_, d = LoadSpec(specPath, SpecOptions{Farm: farm})
	var found bool
	for _, x := range d.List() {
		if x.Summary != "No board matches the selector" {
			continue
		}
		found = true
		if x.Range == nil || x.Range.Start.Line != 3 || x.Range.End.Line != 4 {
			t.Errorf("reported at %+v, want lines 3-4 (type and tags)", x.Range)
		}
	}
	if !found {
		t.Fatalf("no diagnostic: %v", d.List())
	}
}
