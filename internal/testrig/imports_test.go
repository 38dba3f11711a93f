package testrig

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirections keeps the package map of DESIGN.md: specs imports
// nothing of ours; runner only specs (and its own subpackages); fixtures
// never farm, ui or cmd; farm never ui or cmd.
func TestImportDirections(t *testing.T) {
	const mod = "github.com/hilfarm/hilfarm/"
	forbidden := map[string][]string{
		"specs":    {"runner", "fixtures", "farm", "ui", "cmd", "internal"},
		"runner":   {"fixtures", "farm", "ui", "cmd"},
		"fixtures": {"farm", "ui", "cmd"},
		"farm":     {"ui", "cmd"},
	}
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, mod)
		top, _, _ := strings.Cut(rel, "/")
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			itop, _, _ := strings.Cut(strings.TrimPrefix(imp, mod), "/")
			for _, f := range forbidden[top] {
				if itop == f {
					t.Errorf("%s imports %s: %s must not import %s (see DESIGN.md, package map)", p.ImportPath, imp, top, f)
				}
			}
		}
	}
}
