package runner_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hilfarm/hilfarm/fixtures/fake"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// ExampleRun runs a small spec on a board made of fakes: power on, wait for
// the prompt, ask for the version.
func ExampleRun() {
	power, console := fake.NewPower(nil), fake.NewConsole(nil, 0)
	power.OnChange(func(on bool) {
		if on {
			console.Print("Booting v1.2.3\r\n=> ")
		}
	})
	console.Respond("version\n", "1.2.3\r\n=> ")

	src := []byte(`spec "smoke" {
  board { type = "demo" }
  setup {
    power "on" {}
    expect { text = "=> " }
  }
  test "version" {
    send { line = "version" }
    expect {
      text   = firmware.version
      within = "2s"
    }
  }
}`)
	spec, diags := specs.ParseSpec(src, "smoke.hcl", specs.SpecOptions{})
	if diags.HasErrors() {
		fmt.Println(diags.Err())
		return
	}
	res, err := runner.Run(context.Background(), runner.Job{
		Spec:     spec,
		Board:    runner.Board{Info: specs.BoardInfo{Name: "demo-01", Type: "demo"}, Power: power, Console: console},
		Firmware: specs.Firmware{Name: "fw.bin", Version: "1.2.3"},
	}, runner.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Outcome, res.Tests[0].Name, res.Tests[0].Outcome, "power on:", power.IsOn())
	// Output: passed version passed power on: false
}

// ExampleWriteJUnit writes the JUnit report of a result.
func ExampleWriteJUnit() {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := &runner.Result{Spec: "smoke", Outcome: runner.Failed, Started: t0,
		Board:    specs.BoardInfo{Name: "sim-01", Type: "sim"},
		Firmware: specs.Firmware{Name: "fw.bin", Version: "1.0", SHA256: "00ff"},
		Tests:    []runner.TestResult{{Name: "version", Outcome: runner.Failed, Kind: runner.KindExpect, Message: `expected text "2.0" within 2s`}}}
	_ = runner.WriteJUnit(os.Stdout, res)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <testsuites name="smoke" tests="1" failures="1" errors="0" skipped="0" time="0.000">
	//   <testsuite name="smoke" tests="1" failures="1" errors="0" skipped="0" time="0.000" timestamp="2026-01-01T00:00:00" hostname="sim-01">
	//     <properties>
	//       <property name="spec" value="smoke"></property>
	//       <property name="outcome" value="failed"></property>
	//       <property name="firmware.name" value="fw.bin"></property>
	//       <property name="firmware.version" value="1.0"></property>
	//       <property name="firmware.sha256" value="00ff"></property>
	//       <property name="board.name" value="sim-01"></property>
	//       <property name="board.type" value="sim"></property>
	//     </properties>
	//     <testcase name="version" classname="smoke" time="0.000">
	//       <failure message="expected text &#34;2.0&#34; within 2s" type="expect">expected text "2.0" within 2s</failure>
	//     </testcase>
	//   </testsuite>
	// </testsuites>
}
