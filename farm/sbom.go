package farm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hilfarm/hilfarm/farm/store"
)

// CycloneDX spec versions whose JSON form hilfarm accepts.
var cycloneDXVersions = map[string]bool{"1.2": true, "1.3": true, "1.4": true, "1.5": true, "1.6": true}

// maxSBOMDepth bounds the nesting of an SBOM (components within components).
const maxSBOMDepth = 64

// parseSBOM validates a CycloneDX JSON SBOM and summarises it: it must be
// one JSON object with bomFormat "CycloneDX", a known specVersion and, when
// present, a components array of objects (nested components are counted).
func parseSBOM(data []byte) (*store.SBOMSummary, error) {
	if len(data) > MaxSBOMBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxSBOMBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty")
	}
	if err := checkDepth(data, maxSBOMDepth); err != nil {
		return nil, err
	}
	var doc struct {
		BOMFormat   *string           `json:"bomFormat"`
		SpecVersion *string           `json:"specVersion"`
		Components  []json.RawMessage `json:"components"`
		Metadata    *struct {
			Component *struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"component"`
		} `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a CycloneDX JSON document: %v", err)
	}
	if dec.More() {
		return nil, errors.New("not a CycloneDX JSON document: data after the top-level object")
	}
	switch {
	case doc.BOMFormat == nil:
		return nil, errors.New(`no bomFormat: a CycloneDX JSON SBOM has "bomFormat": "CycloneDX"`)
	case *doc.BOMFormat != "CycloneDX":
		return nil, fmt.Errorf(`bomFormat %q is not "CycloneDX" (only CycloneDX JSON SBOMs are accepted)`, *doc.BOMFormat)
	case doc.SpecVersion == nil:
		return nil, errors.New("no specVersion")
	case !cycloneDXVersions[*doc.SpecVersion]:
		return nil, fmt.Errorf("specVersion %q is not one of 1.2 to 1.6", *doc.SpecVersion)
	}
	n, err := countComponents(doc.Components)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	s := &store.SBOMSummary{Format: "CycloneDX", SpecVersion: *doc.SpecVersion, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Components: n}
	if m := doc.Metadata; m != nil && m.Component != nil {
		s.Subject = strings.TrimSuffix(m.Component.Name+"@"+m.Component.Version, "@")
	}
	return s, nil
}

func countComponents(list []json.RawMessage) (int, error) {
	n := 0
	for i, raw := range list {
		var c struct {
			Type       *string           `json:"type"`
			Name       *string           `json:"name"`
			Components []json.RawMessage `json:"components"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return 0, fmt.Errorf("component %d: not an object: %v", i+1, err)
		}
		if c.Type == nil || c.Name == nil {
			return 0, fmt.Errorf("component %d: a component needs a type and a name", i+1)
		}
		sub, err := countComponents(c.Components)
		if err != nil {
			return 0, err
		}
		n += 1 + sub
	}
	return n, nil
}

// checkDepth refuses JSON nested deeper than max, before it is decoded.
func checkDepth(data []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, b := range data {
		switch {
		case esc:
			esc = false
		case inStr && b == '\\':
			esc = true
		case b == '"':
			inStr = !inStr
		case inStr:
		case b == '{' || b == '[':
			depth++
			if depth > max {
				return fmt.Errorf("nested deeper than %d levels", max)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}
