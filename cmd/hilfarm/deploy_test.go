package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/farm"
	"github.com/hilfarm/hilfarm/internal/testrig"
	"go.uber.org/goleak"
)

const (
	alertRules = "../../deploy/prometheus/hilfarm-alerts.yml"
	dashboard  = "../../deploy/grafana/hilfarm-dashboard.json"
)

var metricName = regexp.MustCompile(`\bhilfarm_[a-z_]+[a-z]\b`)

// TestDeployAssets: the alert rules pass promtool, the dashboard is JSON,
// and every hilfarm metric either names exists in a running farm's /metrics.
func TestDeployAssets(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	if promtool, err := exec.LookPath("promtool"); err != nil {
		if testrig.InCI() {
			t.Fatal("promtool is not installed (Debian package prometheus, in DEB_PACKAGES)")
		}
		t.Log("promtool is not installed: the rules are not checked by it")
	} else if out, err := exec.Command(promtool, "check", "rules", alertRules).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	dash, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			exprs = append(exprs, line)
		}
	}
	named := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			named[m] = true
		}
	}

	s := startCLIServer(t)
	// One finished job, so that the job histograms have their series.
	if code, _, errs := runCLI("submit", "--server", s.url, "--token", s.tokens[farm.RoleSubmitter], "--wait", "--quiet",
		"--firmware", examples+"/firmware/sim-good.hcl", "--spec", examples+"/specs/boot-smoke.hcl"); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errs)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens[farm.RoleViewer])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	exported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
			if f[3] == "histogram" {
				for _, sfx := range []string{"_bucket", "_sum", "_count"} {
					exported[f[2]+sfx] = true
				}
			}
		}
	}
	var missing []string
	for m := range named {
		if !exported[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("deploy/ names metrics that /metrics does not export: %v", missing)
	}
	if len(named) < 8 {
		t.Errorf("only %d hilfarm metrics named in deploy/: %v", len(named), named)
	}
}
