package farm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
)

// leftBehind lists what rejected submissions left: jobs, firmware files
// (spool files included) and submit audit records.
func (e *apiEnv) leftBehind(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	jobs, err := e.tc.db.Jobs(ctx, store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		out = append(out, "job "+j.ID+" "+j.State)
	}
	entries, _ := os.ReadDir(filepath.Join(e.tc.dir, "firmware"))
	for _, en := range entries {
		out = append(out, "file "+en.Name())
	}
	log, _ := e.tc.db.AuditLog(ctx, 100)
	for _, a := range log {
		if a.Action == "submit" {
			out = append(out, "audit submit "+a.Target)
		}
	}
	return out
}

// rawPost sends a POST /api/v1/jobs with the given body bytes over a raw
// connection, announcing contentLength, then half-closes, and returns the
// status line's code.
func (e *apiEnv) rawPost(t *testing.T, token, ctype string, body []byte, contentLength int) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", token, ctype, contentLength)
	conn.Write(body)
	conn.(*net.TCPConn).CloseWrite() // the client drops
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a cut-short submission: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSubmitIsAtomic: a submission that fails after its firmware part was
// read is answered 4xx and leaves nothing behind: no job, no firmware, no
// audit record. A body cut short is 400, not 500.
func TestSubmitIsAtomic(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	e.holdQueue(t)
	tok := e.tokens[RoleSubmitter]
	fw := []byte(goodModel)
	for _, c := range []struct {
		name  string
		extra string // a part after the firmware
	}{
		{"unknown part after the firmware", "junk"},
		{"second options part after the firmware", "options"},
	} {
		var buf bytes.Buffer
		ct, body := multipartBody(t, streamOrder, `{}`, bootSpec, "fw.hcl", fw)
		b := body.String()
		boundary := ct[strings.Index(ct, "boundary=")+len("boundary="):]
		end := "--" + boundary + "--"
		buf.WriteString(strings.TrimSuffix(strings.TrimRight(b, "\r\n"), end))
		fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=%q\r\n\r\n{}\r\n%s\r\n", boundary, c.extra, end)
		a := e.do(t, "POST", "/api/v1/jobs", tok, ct, &buf)
		if a.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, a.status, a.body)
		}
		if left := e.leftBehind(t); len(left) > 0 {
			t.Errorf("%s left behind: %v", c.name, left)
		}
	}
	ct, body := multipartBody(t, streamOrder, `{}`, bootSpec, "fw.hcl", fw)
	full := body.Bytes()
	boundary := ct[strings.Index(ct, "boundary=")+len("boundary="):]
	fwEnd := bytes.Index(full, fw) + len(fw)
	for _, c := range []struct {
		name string
		cut  int
	}{
		{"dropped right after the delimiter that follows the firmware", fwEnd + len("\r\n--"+boundary+"\r\n")},
		{"dropped mid-firmware", fwEnd - 10},
		{"dropped after the closing delimiter's start", fwEnd + len("\r\n--"+boundary)},
	} {
		if got := e.rawPost(t, tok, ct, full[:c.cut], len(full)+100); got != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", c.name, got)
		}
		if left := e.leftBehind(t); len(left) > 0 {
			t.Errorf("%s left behind: %v", c.name, left)
		}
	}
	// The whole body makes a job, with its audit record.
	a := e.do(t, "POST", "/api/v1/jobs", tok, ct, bytes.NewReader(full))
	if a.status != http.StatusCreated {
		t.Fatalf("whole body: %d %s", a.status, a.body)
	}
	if left := e.leftBehind(t); len(left) != 3 {
		t.Errorf("after one good submission: %v, want a job, a firmware file and an audit record", left)
	}
}

// TestSubmitIdempotencyKey: the same Idempotency-Key from the same token
// within 24 h answers the same job (200) and stores nothing new, also when
// the retries race; another token's same key, or the key after 24 h, makes
// a new job.
func TestSubmitIdempotencyKey(t *testing.T) {
	leakCheck(t)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	e := startAPI(t, testFarm, func(c *Config) {
		c.Now = func() time.Time { return time.UnixMilli(clock.Load()).UTC() }
	})
	e.holdQueue(t)
	ctx := context.Background()
	other, _, err := CreateToken(ctx, e.tc.db, "other", RoleSubmitter, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, key string) (int, JobView) {
		ct, body := multipartBody(t, streamOrder, `{}`, bootSpec, "fw.hcl", []byte(goodModel))
		a := e.do(t, "POST", "/api/v1/jobs", token, ct, body, func(r *http.Request) {
			if key != "" {
				r.Header.Set("Idempotency-Key", key)
			}
		})
		var j JobView
		json.Unmarshal(a.body, &j)
		return a.status, j
	}
	tok := e.tokens[RoleSubmitter]
	// Racing retries with one key make one job.
	var wg sync.WaitGroup
	ids := make([]string, 4)
	codes := make([]int, 4)
	for i := range ids {
		wg.Go(func() {
			code, j := post(tok, "ci-run-42")
			codes[i], ids[i] = code, j.ID
		})
	}
	wg.Wait()
	created := 0
	for i := range ids {
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("same key, jobs %v", ids)
		}
		if codes[i] == http.StatusCreated {
			created++
		} else if codes[i] != http.StatusOK {
			t.Errorf("retry answered %d", codes[i])
		}
	}
	if created != 1 {
		t.Errorf("%d of the racing submissions answered 201, want 1 (codes %v)", created, codes)
	}
	clock.Add((23 * time.Hour).Milliseconds())
	if code, j := post(tok, "ci-run-42"); code != http.StatusOK || j.ID != ids[0] {
		t.Errorf("same key after 23h: %d %s, want 200 %s", code, j.ID, ids[0])
	}
	if code, j := post(other, "ci-run-42"); code != http.StatusCreated || j.ID == ids[0] {
		t.Errorf("same key, other token: %d %s, want a new job", code, j.ID)
	}
	clock.Add((2 * time.Hour).Milliseconds())
	if code, j := post(tok, "ci-run-42"); code != http.StatusCreated || j.ID == ids[0] {
		t.Errorf("same key after 25h: %d %s, want a new job", code, j.ID)
	}
	if code, _ := post(tok, strings.Repeat("k", 300)); code != http.StatusBadRequest {
		t.Errorf("a 300-byte key: %d, want 400", code)
	}
	jobs, _ := e.tc.db.Jobs(ctx, store.JobFilter{})
	log, _ := e.tc.db.AuditLog(ctx, 100)
	submits := 0
	for _, a := range log {
		if a.Action == "submit" {
			submits++
		}
	}
	if len(jobs) != 3 || submits != 3 {
		t.Errorf("%d jobs and %d submit audit records, want 3 of each", len(jobs), submits)
	}
}
