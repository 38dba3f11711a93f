package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/specs"
)

func init() {
	register(command{name: "demo", summary: "serve the example farm's emulated boards and submit example jobs", run: runDemo})
}

// demoJob is one example submission.
type demoJob struct {
	firmware, version, spec string
	vars                    map[string]string
	want                    string // the verdict the demo expects
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "hilfarm demo [--farm examples/farm.hcl] [--listen ADDR] [--keep]",
		"Serve the emulated boards of the example farm (sim boards always; QEMU boards\n"+
			"when qemu-system-arm is installed) on a temporary data dir, create an admin\n"+
			"token, submit example jobs for a good and a regressed firmware candidate,\n"+
			"print the URL and the token, and run until interrupted (Ctrl-C).\n"+
			"Real-hardware boards of the farm file are left out.", stderr)
	farmPath := fs.String("farm", "examples/farm.hcl", "example farm `file`")
	listen := fs.String("listen", "127.0.0.1:8080", "listen `address`; if it is taken, a free port is used")
	keep := fs.Bool("keep", false, "keep the temporary data dir")
	noJobs := fs.Bool("no-jobs", false, "do not submit the example jobs")
	noQEMU := fs.Bool("no-qemu", false, "leave out the QEMU boards even when QEMU is installed")
	logf := addLogFlags(fs, "warn")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("demo takes no arguments")
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	f, err := loadFarm(*farmPath, stderr)
	if err != nil {
		return err
	}
	_, qemuErr := exec.LookPath("qemu-system-arm")
	qemu := qemuErr == nil && !*noQEMU
	demoFarm(f, qemu)
	if len(f.Boards) == 0 {
		return fmt.Errorf("%s has no emulated boards", *farmPath)
	}
	dataDir, err := os.MkdirTemp("", "hilfarm-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stderr, "data dir %s is kept\n", dataDir)
	} else {
		defer os.RemoveAll(dataDir)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
	}
	exampleDir := filepath.Dir(filepath.Dir(f.Filename)) // the repository root for examples/farm.hcl
	jobs := demoJobs(exampleDir, qemu)
	return serve(ctx, serveConfig{
		farm: f, dataDir: dataDir, ln: ln, log: log, stdout: stdout,
		ready: func(ctx context.Context, url string, db *store.DB) error {
			return demoReady(ctx, url, db, f, jobs, !*noJobs, stdout, dataDir, *keep)
		},
	})
}

// demoFarm keeps the farm's emulated boards (QEMU ones only when QEMU is
// installed) and drops its webhooks, which point at example URLs.
func demoFarm(f *specs.Farm, qemu bool) {
	var boards []specs.Board
	for _, b := range f.Boards {
		if b.Emulator == nil {
			continue // real hardware
		}
		if b.Emulator.Kind == specs.EmulatorQEMU && !qemu {
			continue
		}
		boards = append(boards, b)
	}
	f.Boards = boards
	f.Webhooks = nil
	f.AnonymousRead = true
}

// demoJobs are the example submissions: both sim candidates against every
// sim example spec, and the QEMU examples when their firmware exists.
func demoJobs(root string, qemu bool) []demoJob {
	fw := func(name string) string { return filepath.Join(root, "examples", "firmware", name) }
	spec := func(name string) string { return filepath.Join(root, "examples", "specs", name) }
	jobs := []demoJob{
		{fw("sim-good.hcl"), "1.1.0", spec("boot-smoke.hcl"), nil, store.StatePassed},
		{fw("sim-good.hcl"), "1.1.0", spec("measure.hcl"), nil, store.StatePassed},
		{fw("sim-good.hcl"), "1.1.0", spec("shell.hcl"), nil, store.StatePassed},
		{fw("sim-good.hcl"), "1.1.0", spec("button-led.hcl"), nil, store.StatePassed},
		{fw("sim-regressed.hcl"), "1.2.0-rc1", spec("boot-smoke.hcl"), nil, store.StatePassed},
		{fw("sim-regressed.hcl"), "1.2.0-rc1", spec("measure.hcl"), nil, store.StateFailed},
		{fw("sim-regressed.hcl"), "1.2.0-rc1", spec("shell.hcl"), nil, store.StateFailed},
		{fw("sim-regressed.hcl"), "1.2.0-rc1", spec("button-led.hcl"), nil, store.StatePassed},
	}
	if !qemu {
		return jobs
	}
	if uboot := "/usr/lib/u-boot/qemu_arm/u-boot.bin"; fileExists(uboot) {
		jobs = append(jobs, demoJob{uboot, "2023.01", spec("uboot-version.hcl"), nil, store.StatePassed})
	}
	good := filepath.Join(root, "build", "firmware", "hilfw-1.2.3.elf")
	bad := filepath.Join(root, "build", "firmware", "hilfw-1.3.0.elf")
	if fileExists(good) && fileExists(bad) {
		jobs = append(jobs,
			demoJob{good, "1.2.3", spec("cm3-version.hcl"), nil, store.StatePassed},
			demoJob{bad, "1.3.0", spec("cm3-version.hcl"), nil, store.StateFailed})
	}
	return jobs
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// demoReady creates the admin token, prints how to reach the farm, submits
// the example jobs through the API and reports their verdicts as they come.
func demoReady(ctx context.Context, url string, db *store.DB, f *specs.Farm, jobs []demoJob, submit bool, stdout io.Writer, dataDir string, keep bool) error {
	tok, _, err := farm.CreateToken(ctx, db, "demo-admin", farm.RoleAdmin, time.Now())
	if err != nil {
		return err
	}
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	say("hilfarm demo: farm %q with %d emulated boards", f.Name, len(f.Boards))
	for _, b := range f.Boards {
		say("  %-10s type %s (%s)", b.Name, b.Type, b.Emulator.Kind)
	}
	say("")
	say("  URL:    %s", url)
	say("  token:  %s   (role admin)", tok)
	if keep {
		say("  data:   %s   (kept at exit)", dataDir)
	} else {
		say("  data:   %s   (removed at exit; --keep keeps it)", dataDir)
	}
	say("")
	say("  export HILFARM_SERVER=%s HILFARM_TOKEN=%s", url, tok)
	say("  hilfarm boards")
	say("  hilfarm submit --firmware examples/firmware/sim-regressed.hcl --fw-version 1.2.0-rc1 --spec examples/specs/measure.hcl --wait")
	say("")
	if !submit {
		say("Press Ctrl-C to stop.")
		<-ctx.Done()
		return nil
	}
	c, err := newClient(url, tok)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, j := range jobs {
		view, err := c.submit(ctx, j.firmware, j.spec, submitOptions{FirmwareVersion: j.version, Vars: j.vars,
			Labels: map[string]string{"demo": "true"}}, "")
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("demo: submit %s with %s: %w", filepath.Base(j.spec), filepath.Base(j.firmware), err)
		}
		say("submitted %-18s %-22s job %s", filepath.Base(j.spec), filepath.Base(j.firmware), c.url("/api/v1/jobs/"+view.ID))
		wg.Go(func() {
			state, err := c.follow(ctx, view.ID, 0, false, func(store.Event) error { return nil })
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					say("job %s: %v", view.ID, err)
				}
				return
			}
			note := "as expected"
			if state != j.want {
				note = "UNEXPECTED: wanted " + j.want
			}
			say("verdict   %-18s %-22s %-9s (%s)", filepath.Base(j.spec), filepath.Base(j.firmware), state, note)
		})
	}
	say("")
	say("Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
