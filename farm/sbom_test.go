package farm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hilfarm/hilfarm/internal/verdict"
)

const goodSBOM = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
 "metadata":{"component":{"type":"firmware","name":"fw","version":"2.0"}},
 "components":[{"type":"library","name":"a"},{"type":"library","name":"b","components":[{"type":"file","name":"c"}]}]}`

func TestParseSBOM(t *testing.T) {
	s, err := parseSBOM([]byte(goodSBOM))
	if err != nil {
		t.Fatal(err)
	}
	if s.Components != 3 || s.SpecVersion != "1.6" || s.Subject != "fw@2.0" || s.Format != "CycloneDX" || len(s.SHA256) != 64 {
		t.Errorf("parseSBOM = %+v", s)
	}
	for name, c := range map[string]struct{ in, want string }{
		"not json":        {`{"bomFormat":`, "not a CycloneDX JSON document"},
		"array":           {`[1,2]`, "not a CycloneDX JSON document"},
		"spdx":            {`{"spdxVersion":"SPDX-2.3"}`, "no bomFormat"},
		"other format":    {`{"bomFormat":"SPDX","specVersion":"1.5"}`, `bomFormat "SPDX"`},
		"no version":      {`{"bomFormat":"CycloneDX"}`, "no specVersion"},
		"future version":  {`{"bomFormat":"CycloneDX","specVersion":"9.9"}`, `specVersion "9.9"`},
		"numeric version": {`{"bomFormat":"CycloneDX","specVersion":1.5}`, "not a CycloneDX JSON document"},
		"bad component":   {`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[42]}`, "component 1: not an object"},
		"nameless":        {`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library"}]}`, "needs a type and a name"},
		"trailing data":   {goodSBOM + `{}`, "data after the top-level object"},
		"deep":            {strings.Repeat("[", 100000), "nested deeper than"},
		"empty":           {"  ", "empty"},
		"huge":            {strings.Repeat(" ", MaxSBOMBytes+1), "larger than"},
	} {
		if _, err := parseSBOM([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSBOM(%s) = %v, want an error with %q", name, err, c.want)
		}
	}
}

func TestAPISBOMAndVerdict(t *testing.T) {
	leakCheck(t)
	e := startAPI(t, testFarm, nil)
	fw := []byte(goodModel)
	for _, c := range []struct {
		name   string
		sbom   []byte
		status int
	}{
		{"malformed", []byte(`{"bomFormat":"CycloneDX","specVersion":`), 422},
		{"wrong format", []byte(`{"bomFormat":"SPDX","specVersion":"2.3"}`), 422},
		{"huge", bytes.Repeat([]byte(" "), MaxSBOMBytes+10), 413},
		{"deep", bytes.Repeat([]byte("{\"a\":"), 5000), 422},
	} {
		a := e.submitParts(t, fw, nil, c.sbom)
		if a.status != c.status {
			t.Errorf("%s SBOM = %d %s, want %d", c.name, a.status, a.body, c.status)
		}
		errorBody(t, a)
	}
	storedNothing(t, e, 0)

	a := e.submitParts(t, fw, nil, []byte(goodSBOM))
	if a.status != 201 {
		t.Fatalf("good SBOM = %d %s", a.status, a.body)
	}
	v := decodeJob(t, a)
	if v.Firmware.SBOM == nil || v.Firmware.SBOM.Components != 3 || v.Firmware.SignatureStatus != "unsigned" || v.Firmware.Size != int64(len(fw)) {
		t.Fatalf("job firmware = %+v", v.Firmware)
	}
	if a := e.do(t, "GET", "/api/v1/jobs/"+v.ID+"/sbom", e.tokens[RoleViewer], "", nil); a.status != 200 || string(a.body) != goodSBOM {
		t.Errorf("GET sbom = %d %q", a.status, a.body)
	}
	fin := e.tc.wait(t, v.ID)
	a = e.do(t, "GET", "/api/v1/jobs/"+v.ID+"/verdict", e.tokens[RoleViewer], "", nil)
	key := e.do(t, "GET", "/api/v1/verdict-key", e.tokens[RoleViewer], "", nil)
	pub, _, err := verdict.ParsePublicKey(key.body)
	if a.status != 200 || err != nil {
		t.Fatalf("verdict %d %s, key %s %v", a.status, a.body, key.body, err)
	}
	st, err := verdict.Verify(a.body, pub)
	if err != nil {
		t.Fatalf("Verify(served verdict) = %v", err)
	}
	if st.Outcome != fin.State || st.Firmware.SHA256 != v.Firmware.SHA256 || st.Firmware.Size != int64(len(fw)) || st.BoardType != "sim" ||
		st.SBOM == nil || st.SBOM.Components != 3 || st.Candidate.SignatureStatus != "unsigned" || len(st.Spec.SHA256) != 64 || st.Ended.IsZero() {
		t.Errorf("statement = %+v", st)
	}
	trust := e.do(t, "GET", "/api/v1/trust", e.tokens[RoleViewer], "", nil)
	if trust.status != 200 || !strings.Contains(string(trust.body), `"mode":"off"`) {
		t.Errorf("GET trust = %d %s", trust.status, trust.body)
	}
	if a := e.do(t, "GET", "/api/v1/jobs/nope/verdict", e.tokens[RoleViewer], "", nil); a.status != 404 {
		t.Errorf("verdict of no job = %d", a.status)
	}
}
