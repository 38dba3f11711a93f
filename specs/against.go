package specs

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// againstFarm checks that the spec can run on the farm: some board matches
// the selector, and on every matching board each flash step has a flash
// method, each named gpio line exists (outputs for gpio steps) and each
// tool exists with the arguments its params name.
func (d *decoder) againstFarm(spec *Spec, farm *Farm) {
	boards := farm.Match(spec.Board)
	if len(boards) == 0 {
		sel := []string{}
		if spec.Board.Type != "" {
			sel = append(sel, fmt.Sprintf("type %q", spec.Board.Type))
		}
		if len(spec.Board.Tags) > 0 {
			sel = append(sel, "tags "+sortedTags(spec.Board.Tags))
		}
		at := spec.Range
		if spec.Board.Range.Filename != "" {
			at = spec.Board.Range // the board block's type and tags lines
		}
		d.errorf(hclRange(at), "No board matches the selector",
			"No board in farm %q has %s. %s", farm.Name, strings.Join(sel, " and "), farm.describe())
		return
	}
	names := func(bs []*Board) string {
		s := make([]string, len(bs))
		for i, b := range bs {
			s[i] = b.Name
		}
		return quoteAll(s)
	}
	for _, st := range spec.AllSteps() {
		r := hclRange(st.Range)
		switch st.Kind {
		case StepFlash:
			var missing []*Board
			for _, b := range boards {
				if !farm.CanFlash(b) {
					missing = append(missing, b)
				}
			}
			if len(missing) > 0 {
				d.errorf(r, "No flash method", "Board(s) %s match the selector but cannot be flashed: their board type has no flash block. Add one, or narrow the selector.", names(missing))
			}
		case StepGPIO, StepWait:
			name := ""
			if st.GPIO != nil {
				name = st.GPIO.Line
			} else if st.Wait != nil {
				name = st.Wait.GPIO
			}
			if name == "" {
				continue
			}
			var missing, inputs []*Board
			known := map[string]bool{}
			for _, b := range boards {
				for _, l := range b.Lines {
					known[l.Name] = true
				}
				l := b.Line(name)
				switch {
				case l == nil:
					missing = append(missing, b)
				case st.Kind == StepGPIO && !l.Output:
					inputs = append(inputs, b)
				}
			}
			if len(missing) > 0 {
				there := "They have no gpio lines."
				if len(known) > 0 {
					there = "Lines there: " + quoteAll(keys(known)) + "."
				}
				d.errorf(r, "Unknown GPIO line", "Board(s) %s match the selector but have no gpio line %q.%s %s",
					names(missing), name, didYouMean(name, keys(known)), there)
			}
			if len(inputs) > 0 {
				d.errorf(r, "GPIO line is an input", "The gpio line %q of board(s) %s is an input; a gpio step sets outputs (output = true in farm.hcl).", name, names(inputs))
			}
		case StepTool:
			d.toolAgainst(st, r, boards, farm, names)
		}
	}
}

func (d *decoder) toolAgainst(st *Step, r hcl.Range, boards []*Board, farm *Farm, names func([]*Board) string) {
	t := st.Tool
	var missing []*Board
	known := map[string]bool{}
	checked := map[string]bool{}
	for _, b := range boards {
		bt := farm.BoardType(b.Type)
		var tool *Tool
		if bt != nil {
			for _, x := range bt.Tools {
				known[x.Name] = true
			}
			tool = bt.Tool(t.Name)
		}
		if tool == nil {
			missing = append(missing, b)
			continue
		}
		if checked[b.Type] {
			continue
		}
		checked[b.Type] = true
		for _, p := range tool.Params {
			if _, ok := t.Args[p]; !ok {
				d.errorf(r, "Missing tool argument", "The tool %q of board type %q needs the argument %q: add it to args.", t.Name, b.Type, p)
			}
		}
		for _, k := range keys(t.Args) {
			if !contains(tool.Params, k) {
				d.errorf(hclRange(t.Args[k].Range), "Unknown tool argument", "The tool %q of board type %q takes no argument %q; its params are %s.", t.Name, b.Type, k, quoteList(tool.Params))
			}
		}
	}
	if len(missing) > 0 {
		there := "Their board types have no tools."
		if len(known) > 0 {
			there = "Tools there: " + quoteAll(keys(known)) + "."
		}
		d.errorf(r, "Unknown tool", "Board(s) %s match the selector but their board type has no tool %q.%s %s",
			names(missing), t.Name, didYouMean(t.Name, keys(known)), there)
	}
}
