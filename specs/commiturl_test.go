package specs

import (
	"strings"
	"testing"
)

// farm.hcl's commit_url: an http(s) URL with {commit}, else a diagnostic at the value.
func TestFarmCommitURL(t *testing.T) {
	for _, c := range []struct {
		val, want, diag string
	}{
		{`"https://git.example.com/fw/commit/{commit}"`, "https://git.example.com/fw/commit/{commit}", ""},
		{`"https://git.example.com/fw/commit/"`, "", "farm.hcl:1:25: Invalid commit_url"},
		{`"javascript:alert({commit})"`, "", "Invalid commit_url"},
	} {
		f, diags := ParseFarm([]byte(`farm "f" { commit_url = `+c.val+" }\n"), "farm.hcl")
		if c.diag == "" {
			if diags.HasErrors() || f.CommitURL != c.want {
				t.Errorf("%s: CommitURL = %q, %v", c.val, f.CommitURL, diags.Err())
			}
			continue
		}
		if !diags.HasErrors() || !strings.Contains(diags.Err().Error(), c.diag) {
			t.Errorf("%s: diagnostics %v; want %q", c.val, diags.Err(), c.diag)
		}
	}
}
