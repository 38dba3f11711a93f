package farm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/rack"
)

// startTestHub runs an in-process hub that knows rack r1 with board type
// sim (no rack needs to be linked for a job to be offered).
func startTestHub(t *testing.T) *rack.Hub {
	t.Helper()
	ca, err := rack.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("hub", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tlsc, err := rack.HubTLS(ca.PEM, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	_, hash, err := rack.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	h, err := rack.NewHub(context.Background(), rack.HubConfig{
		DataDir: t.TempDir(), LeafHost: "127.0.0.1", LeafPort: -1, TLS: tlsc,
		Racks: []rack.Record{{Name: "r1", Types: []string{"sim"}, PassHash: hash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

const hubOnlyFarm = `
farm "front" {}
board_type "local" {}
board "loc-a" {
  type = "local"
  emulator "sim" {}
}
`

// A hub farm routes a job for a type only racks have to the hub, keeps it
// running with its one attempt on "rack", cancels it at the hub, refuses
// what racks cannot take yet, names the racks' types when no one has the
// type, and ends it as error at the next start instead of requeueing it.
func TestHubJobRouting(t *testing.T) {
	hub := startTestHub(t)
	tc := startController(t, hubOnlyFarm, func(c *Config) { c.Hub = hub })
	ctx := context.Background()

	v, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatalf("Submit of a sim job to a hub whose rack r1 has sim: %v", err)
	}
	if v.State != store.StateRunning || v.Board != "rack" || v.Labels[hubJobLabel] != v.ID || len(v.Attempts) != 1 {
		t.Errorf("rack job: state %s board %q labels %v attempts %d; want running on \"rack\", hub-job=its id, one attempt", v.State, v.Board, v.Labels, len(v.Attempts))
	}
	rec, ok := hub.Job(v.ID)
	if !ok || rec.Type != "sim" || rec.Firmware != v.Firmware.SHA256 || !strings.Contains(string(rec.Spec), `spec "boot"`) {
		t.Errorf("hub's record of %s: %+v (found %v); want type sim, firmware %s and the spec text", v.ID, rec, ok, v.Firmware.SHA256)
	}

	// Cancel (of a second one): decided at the hub, the job's final state
	// here.
	v2, err := tc.submit(t, bootSpec, goodModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := tc.Cancel(ctx, v2.ID, "test")
	if err != nil || cv.State != store.StateCancelled || !strings.Contains(cv.Reason, "cancelled by test") {
		t.Fatalf("Cancel of a rack job = %+v, %v; want cancelled by test", cv, err)
	}
	if rec, _ := hub.Job(v2.ID); rec.Verdict != "cancelled" {
		t.Errorf("the hub's verdict after the cancel: %q", rec.Verdict)
	}
	if _, err := tc.Cancel(ctx, v2.ID, "test"); !errors.Is(err, ErrFinished) {
		t.Errorf("second Cancel = %v; want ErrFinished", err)
	}
	var rej *RejectedError

	for _, c := range []struct {
		name, spec, want string
		mod              func(*Submission)
	}{
		{"unknown type", strings.Replace(bootSpec, `type = "sim"`, `type = "stm32"`, 1),
			"the farm has loc-a (type local); racks linked to this hub have board types sim", nil},
		{"vars", "variable \"x\" {\n  type    = string\n  default = \"0\"\n}\n" + bootSpec, "spec variables are not carried to racks yet", func(s *Submission) { s.Vars = map[string]string{"x": "1"} }},
		{"tags", bootSpec, "racks are chosen by board type only", func(s *Submission) { s.Tags = map[string]string{"shield": "x"} }},
		{"pinned", bootSpec, "pinning a job to a board is not available", func(s *Submission) { s.Board = "sim-a" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tc.submit(t, c.spec, goodModel, c.mod)
			if !errors.As(err, &rej) || rej.Status != 422 || !strings.Contains(rej.Message, c.want) {
				t.Errorf("Submit = %v; want 422 with %q", err, c.want)
			}
		})
	}
	if n := len(hub.Jobs()); n != 2 {
		t.Errorf("hub has %d jobs after the refused submissions; want the first two only", n)
	}

	// Restart with the hub: the rack job is followed again, with a new
	// attempt standing for the hub's. Restart without it (no longer a hub):
	// it ends as error, not queued forever.
	tc.stop(t)
	restart := func(h *rack.Hub) *JobView {
		t.Helper()
		c2, err := New(Config{Farm: tc.cfg.Farm, DataDir: tc.dir, Store: tc.db, OpenBoard: tc.cfg.OpenBoard, Hub: h})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c2.Run(rctx) }()
		<-c2.Ready()
		j, err := c2.Job(ctx, v.ID)
		cancel()
		if rerr := <-done; rerr != nil {
			t.Errorf("Run after restart: %v", rerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := restart(hub)
	if j.State != store.StateRunning || len(j.Attempts) != 2 || j.Attempts[0].State != store.StateError ||
		j.Attempts[0].Reason != reasonRestarted || j.Attempts[1].State != store.StateRunning || j.Attempts[1].Board != "rack" {
		t.Errorf("rack job after a restart of the hub: %+v; want running again, attempt 1 error %q, attempt 2 running on \"rack\"", j, reasonRestarted)
	}
	j = restart(nil)
	if j.State != store.StateError || j.Reason != reasonRemoteRestarted {
		t.Errorf("rack job after a restart without the hub: %+v; want error %q", j, reasonRemoteRestarted)
	}
}

// A hub farm whose trust policy requires signed candidates refuses an
// unsigned rack job before anything reaches the hub.
func TestHubJobTrustRequired(t *testing.T) {
	key := newSSHKey(t, t.TempDir(), "ci")
	hub := startTestHub(t)
	tc := startController(t, hubOnlyFarm+fmt.Sprintf("trust {\n  mode = \"required\"\n  keys = [%q]\n}\n", key.line), func(c *Config) { c.Hub = hub })
	_, err := tc.submit(t, bootSpec, goodModel, nil)
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Status != 422 || !strings.Contains(rej.Message, "requires a signed candidate") {
		t.Errorf("unsigned rack job under mode required: %v; want 422 requiring a signature", err)
	}
	if n := len(hub.Jobs()); n != 0 {
		t.Errorf("hub has %d jobs; want none", n)
	}
}
