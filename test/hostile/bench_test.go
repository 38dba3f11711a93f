package hostile

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkRegexLoad runs four jobs stuck in the worst-case match the spec
// limits allow (an alternation of random words over a 64 KiB console
// flood) on four sim boards, and reports the API's latency meanwhile
// (GET /api/v1/boards, p50 and p99; target p99 <= 100 ms) and how long a
// cancel of each job takes (max; target <= 100 ms).
func BenchmarkRegexLoad(b *testing.B) {
	s := startServerN(b, "", 4)
	spec := regexSpec(catastrophicRegex(250))
	for b.Loop() {
		var ids []string
		for range 4 {
			a := specSubmit(b, s, spec, "spec.hcl", goodModel)
			if a.status != 201 {
				b.Fatalf("submit: %s", a)
			}
			ids = append(ids, jobOf(b, a).ID)
		}
		for _, id := range ids {
			s.waitState(b, id, time.Minute, "running")
		}
		time.Sleep(time.Second) // let the floods arrive and the matches get going
		var lat []time.Duration
		for range 200 {
			start := time.Now()
			a := s.do(b, "GET", "/api/v1/boards", s.tokens["viewer"], "", nil)
			lat = append(lat, time.Since(start))
			if a.status != 200 {
				b.Fatalf("GET /api/v1/boards: %s", a)
			}
		}
		slices.Sort(lat)
		var mu sync.Mutex
		var worst time.Duration
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				a := s.do(b, "POST", "/api/v1/jobs/"+id+"/cancel", s.tokens["admin"], "", nil)
				took := time.Since(start)
				if a.status != 200 {
					b.Errorf("cancel: %s", a)
				}
				mu.Lock()
				worst = max(worst, took)
				mu.Unlock()
			}()
		}
		wg.Wait()
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms-api-p50")
		b.ReportMetric(float64(p99.Microseconds())/1000, "ms-api-p99")
		b.ReportMetric(float64(worst.Microseconds())/1000, "ms-cancel-max")
		fmt.Printf("API under 4 worst-case regex jobs: p50 %s, p99 %s (target <= 100ms); cancel of a worst-case match: max %s of 4 (target <= 100ms)\n",
			p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond))
		hwm, _ := procStatus(b, s.cmd.Process.Pid)
		b.ReportMetric(float64(hwm)/(1<<20), "MB-peak-RSS")
	}
}
