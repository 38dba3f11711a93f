package consolebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// serveFarm is farmFor's board in a farm that `hilfarm serve` runs.
func serveFarm(b *testing.B, dir, port, addr string) string {
	p := farmFor(b, dir, port)
	src, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	src = bytes.Replace(src, []byte(`farm "bench" {}`), fmt.Appendf(nil, "farm \"bench\" {\n  listen   = %q\n  data_dir = %q\n}", addr, filepath.Join(dir, "data")), 1)
	if err := os.WriteFile(p, src, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// serveProc is a running `hilfarm serve`.
type serveProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	addr string
}

func startServe(b *testing.B, dir, farm, addr string) *serveProc {
	s := &serveProc{addr: addr}
	s.cmd = wrapped(hilfarm(b), "serve", "--farm", farm)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("hilfarm serve not ready after 60 s:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond) // waiting for another process to listen
	}
}

// stop ends serve with SIGTERM and returns its CPU time.
func (s *serveProc) stop(b *testing.B) time.Duration {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		b.Fatalf("hilfarm serve: %v\n%s", err, s.out.String())
	}
	return cpu(s.cmd.ProcessState)
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type jobView struct {
	State    string          `json:"state"`
	Reason   string          `json:"reason"`
	Attempts []store.Attempt `json:"attempts"`
}

// waitJob polls the job until it has finished (a benchmark may poll; a
// test may not); after submit --wait it reads the record once.
func waitJob(b *testing.B, addr, token, id string) jobView {
	for deadline := time.Now().Add(3 * time.Minute); ; {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/jobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var j jobView
		if err := json.Unmarshal(body, &j); err != nil {
			b.Fatalf("job %s: %v: %s", id, err, body)
		}
		switch j.State {
		case "passed", "failed", "error", "cancelled":
			return j
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s still %s after 3 min", id, j.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkServeFlood: the same 50 MiB flood as BenchmarkRunFlood, as a
// job of `hilfarm serve`, whose recorder stores every byte in the board's
// log (segment files indexed in SQLite), against the bare Go read loop on the same pty, interleaved,
// 3 rounds; medians. Target: ≥ 0.8× the loop's MB/s, and the recording
// byte-identical: after each job, serve is stopped and the board's stored
// log (the data records, in stream order) must be exactly the bytes
// written. The time is from the power-on to the end of the job's expect
// step (from the job's result), as in BenchmarkRunFlood.
func BenchmarkServeFlood(b *testing.B) {
	const rounds = 3
	for range b.N {
		master, slave := newPty(b)
		load0 := loadavg()
		var bareMB, serveMB, serveCPU []float64
		identical := true
		for range rounds {
			mb, _ := bareFlood(b, master, slave.Name(), floodBlocks)
			bareMB = append(bareMB, mb)

			dir := b.TempDir()
			addr := freeAddr(b)
			farm := serveFarm(b, dir, slave.Name(), addr)
			if err := os.WriteFile(filepath.Join(dir, "spec.hcl"), []byte(floodSpec), 0o644); err != nil {
				b.Fatal(err)
			}
			s := startServe(b, dir, farm, addr)
			tc := exec.Command(hilfarm(b), "token", "create", "--farm", farm, "--name", "bench", "--role", "submitter")
			tc.Dir = dir
			var terr bytes.Buffer
			tc.Stderr = &terr
			tok, err := tc.Output()
			if err != nil {
				b.Fatalf("token create: %v\n%s", err, terr.Bytes())
			}
			token := strings.TrimSpace(string(tok))
			powered := make(chan error, 1)
			var t0 time.Time
			go func() {
				f, err := os.Open(filepath.Join(dir, "on")) // blocks until "on" writes
				if err != nil {
					powered <- err
					return
				}
				_, _ = io.ReadAll(io.LimitReader(f, 3))
				f.Close()
				t0 = time.Now()
				powered <- writeFlood(master, floodBlocks)
			}()
			// As a CI job waits: submit --wait (--quiet: the progress, not
			// the console), then the job's record once.
			jsonOut := filepath.Join(dir, "job.json")
			out, err := exec.Command(hilfarm(b), "submit", "--server", "http://"+addr, "--token", token, "--wait", "--quiet",
				"--json", jsonOut, "--firmware", filepath.Join(dir, "fw.bin"), "--spec", filepath.Join(dir, "spec.hcl")).CombinedOutput()
			if err != nil {
				b.Fatalf("submit --wait: %v\n%s", err, out)
			}
			var jf struct {
				ID string `json:"id"`
			}
			if raw, err := os.ReadFile(jsonOut); err != nil || json.Unmarshal(raw, &jf) != nil || jf.ID == "" {
				b.Fatalf("submit --json: %v\n%s", err, raw)
			}
			id := jf.ID
			j := waitJob(b, addr, token, id)
			if err := <-powered; err != nil {
				b.Fatal(err)
			}
			if j.State != "passed" || len(j.Attempts) == 0 {
				b.Fatalf("job %s: %s %s\n%s", id, j.State, j.Reason, s.out.String())
			}
			var r report
			if err := json.Unmarshal(j.Attempts[len(j.Attempts)-1].Result, &r); err != nil {
				b.Fatalf("job %s result: %v", id, err)
			}
			var end time.Time
			for _, st := range r.Tests[0].Attempts[0].Steps {
				if st.Kind == "expect" {
					end = st.Started.Add(time.Duration(st.Duration * float64(time.Millisecond)))
				}
			}
			if end.IsZero() {
				b.Fatalf("job %s: no expect step in %s", id, j.Attempts[0].Result)
			}
			serveMB = append(serveMB, float64(floodBytes)/1e6/end.Sub(t0).Seconds())
			serveCPU = append(serveCPU, ms(s.stop(b)))
			if err := checkRecording(filepath.Join(dir, "data", "hilfarm.db")); err != nil {
				identical = false
				fmt.Printf("  recording of round %d: %v\n", len(serveMB), err)
			}
		}
		mb, ms := median(bareMB), median(serveMB)
		b.ReportMetric(ms/mb, "x-bare-MB/s")
		fmt.Printf("console flood as a serve job, 50 MiB, every byte recorded, %d rounds (load before %s, after %s)\n", rounds, load0, loadavg())
		fmt.Printf("  bare Go read loop:  %7.1f MB/s   (runs %v MB/s)\n", mb, fmtAll(bareMB))
		fmt.Printf("  hilfarm serve job:  %7.1f MB/s   (runs %v MB/s; serve's whole-process CPU %v ms)\n", ms, fmtAll(serveMB), fmtAll(serveCPU))
		fmt.Printf("  target serve flood >= 0.8x bare: %.2fx %s\n", ms/mb, verdict(ms/mb >= 0.8))
		fmt.Printf("  target recording byte-identical in the store (%d rounds): %s\n", rounds, verdict(identical))
	}
}

// checkRecording reads the pty board's stored log and compares its data
// with the flood that was written.
func checkRecording(db string) error {
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	recs, err := st.Log(ctx, "pty", 0, -1, 0)
	if err != nil {
		return err
	}
	var got bytes.Buffer
	got.Grow(floodBytes)
	next := int64(-1)
	for _, r := range recs {
		if r.Kind != "data" {
			continue
		}
		if next >= 0 && r.Offset != next {
			return fmt.Errorf("a gap in the stored log at offset %d (next record at %d)", next, r.Offset)
		}
		next = r.Offset + int64(len(r.Data))
		got.Write(r.Data)
	}
	var want bytes.Buffer
	for i := range floodBlocks {
		want.Write(floodData(i, floodBlocks))
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		n := 0
		for n < min(got.Len(), want.Len()) && got.Bytes()[n] == want.Bytes()[n] {
			n++
		}
		return fmt.Errorf("NOT byte-identical: stored %d bytes, written %d, first difference at byte %d", got.Len(), want.Len(), n)
	}
	return nil
}
