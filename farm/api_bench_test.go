package farm

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAPISubmit measures submissions through HTTP (multipart parse,
// spec validation, firmware stored by sha256, job inserted, audit record)
// from parallel clients, with every board in maintenance so that nothing
// runs: the cost of the API and the queue alone.
func BenchmarkAPISubmit(b *testing.B) {
	c := startBench(b, 2)
	for _, name := range []string{"sim-00", "sim-01"} {
		if err := c.SetMaintenance(context.Background(), name, true, "bench", "bench"); err != nil {
			b.Fatal(err)
		}
	}
	tok, _, err := CreateToken(context.Background(), c.db, "bench", RoleSubmitter, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	api := NewAPI(c, APIOptions{Auth: NewAuth(c.db, false, nil)})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	ct, body := multipartBody(b, streamOrder, `{}`, quickSpec, "fw.hcl", []byte(quickModel))
	raw := body.Bytes()
	var fails atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := srv.Client()
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/jobs", bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", ct)
			resp, err := client.Do(req)
			if err != nil {
				fails.Add(1)
				continue
			}
			if resp.StatusCode != http.StatusCreated {
				fails.Add(1)
			}
			resp.Body.Close()
		}
	})
	b.StopTimer()
	if n := fails.Load(); n > 0 {
		b.Fatalf("%d of %d submissions failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submissions/s")
}
