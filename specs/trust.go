package specs

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"golang.org/x/crypto/ssh"
)

// Trust modes: whether a firmware candidate must carry a signature by one
// of the trusted keys.
const (
	TrustRequired = "required" // unsigned or badly signed candidates are rejected at submit
	TrustOptional = "optional" // a signature is verified when one is given
	TrustOff      = "off"      // signatures are neither asked for nor checked
)

// DefaultTrustNamespace is the SSH signature namespace candidates are signed
// in (ssh-keygen -Y sign -n hilfarm).
const DefaultTrustNamespace = "hilfarm"

// maxTrustKeys bounds the keys one trust block lists.
const maxTrustKeys = 256

// Trust is the farm's trust policy for firmware candidates: the SSH public
// keys allowed to sign them, farm-wide and optionally per board type.
type Trust struct {
	Mode      string         `json:"mode"`
	Namespace string         `json:"namespace"`
	Keys      []TrustedKey   `json:"keys"`
	Types     []TypeTrust    `json:"board_types,omitempty"`
	Range     Range          `json:"range"`
	byType    map[string]int // index into Types
}

// TypeTrust overrides the farm's trust policy for one board type. An empty
// Mode keeps the farm's mode; nil Keys keep the farm's keys.
type TypeTrust struct {
	BoardType string       `json:"board_type"`
	Mode      string       `json:"mode,omitempty"`
	Keys      []TrustedKey `json:"keys,omitempty"`
}

// TrustedKey is one public key: an SSH key in authorized_keys form
// ("ssh-ed25519 AAAA… comment", key id its SHA256 fingerprint) or a minisign
// key ("RW…", optionally after its "untrusted comment:" line; key id the
// 16 hex digits minisign prints).
type TrustedKey struct {
	Line    string `json:"key"`     // the key as written
	KeyID   string `json:"key_id"`  // SHA256:… (SSH) or minisign's key id
	Comment string `json:"comment"` // the line's comment (often user@host)
	Type    string `json:"type"`    // ssh-ed25519, ecdsa-sha2-nistp256, ..., or minisign
}

// TrustKeyMinisign is the Type of a minisign key.
const TrustKeyMinisign = "minisign"

// TrustPolicy is the effective policy for one board type.
type TrustPolicy struct {
	Mode      string       `json:"mode"`
	Namespace string       `json:"namespace"`
	Keys      []TrustedKey `json:"keys"`
}

// For returns the effective policy for boards of type boardType. A farm
// without a trust block has mode off.
func (t *Trust) For(boardType string) TrustPolicy {
	if t == nil {
		return TrustPolicy{Mode: TrustOff, Namespace: DefaultTrustNamespace}
	}
	p := TrustPolicy{Mode: t.Mode, Namespace: t.Namespace, Keys: t.Keys}
	i, ok := t.byType[boardType]
	if !ok {
		for j, tt := range t.Types { // a Trust built by hand or decoded from JSON
			if tt.BoardType == boardType {
				i, ok = j, true
			}
		}
	}
	if ok {
		if m := t.Types[i].Mode; m != "" {
			p.Mode = m
		}
		if t.Types[i].Keys != nil {
			p.Keys = t.Types[i].Keys
		}
	}
	return p
}

var trustSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "mode"}, {Name: "namespace"}, {Name: "keys"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "board_type", LabelNames: []string{"name"}}},
}

var typeTrustSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "mode"}, {Name: "keys"}},
}

// trust decodes the farm's trust block. It runs after the board types are
// known, so an override for an undeclared type is an error.
func (d *decoder) trust(b *hcl.Block, farm *Farm) *Trust {
	t := &Trust{Range: rangeOf(b.DefRange), byType: map[string]int{}}
	c := d.content(b.Body, trustSchema)
	t.Mode = d.trustMode(c.Attributes["mode"], TrustRequired)
	t.Namespace = d.str(c.Attributes["namespace"], DefaultTrustNamespace)
	if a := c.Attributes["namespace"]; a != nil && (t.Namespace == "" || strings.ContainsAny(t.Namespace, " \t\r\n")) {
		d.errorf(a.Expr.Range(), "Invalid signature namespace", "The namespace is the word given to ssh-keygen -Y sign -n; it cannot be empty or contain spaces.")
	}
	t.Keys = d.trustKeys(c.Attributes["keys"])
	if t.Mode == TrustRequired && len(t.Keys) == 0 && c.Attributes["keys"] == nil {
		d.errorf(b.DefRange, "Missing trusted keys", `A trust block with mode "required" needs keys = ["ssh-ed25519 AAAA… name", ...] (or mode = "off").`)
	}
	for _, x := range c.Blocks {
		name := x.Labels[0]
		if farm.BoardType(name) == nil {
			var names []string
			for _, bt := range farm.BoardTypes {
				names = append(names, bt.Name)
			}
			d.errorf(x.LabelRanges[0], "Unknown board type", "No board_type %q is declared.%s Declared types: %s.", name, didYouMean(name, names), quoteAll(names))
			continue
		}
		if i, dup := t.byType[name]; dup {
			d.errorf(x.DefRange, "Duplicate trust override", "Board type %q already has a trust override (number %d in this block).", name, i+1)
			continue
		}
		tc := d.content(x.Body, typeTrustSchema)
		tt := TypeTrust{BoardType: name}
		if a := tc.Attributes["mode"]; a != nil {
			tt.Mode = d.trustMode(a, "")
		}
		if a := tc.Attributes["keys"]; a != nil {
			tt.Keys = d.trustKeys(a)
			if tt.Keys == nil {
				tt.Keys = []TrustedKey{}
			}
		}
		t.byType[name] = len(t.Types)
		t.Types = append(t.Types, tt)
	}
	if d.diags.HasErrors() {
		return t // a key that did not parse already said why keys are missing
	}
	for _, bt := range farm.BoardTypes {
		if p := t.For(bt.Name); p.Mode == TrustRequired && len(p.Keys) == 0 {
			d.errorf(b.DefRange, "No key can sign for a board type", "Board type %q requires signed candidates but its trust policy lists no keys.", bt.Name)
		}
	}
	return t
}

func (d *decoder) trustMode(a *hcl.Attribute, def string) string {
	if a == nil {
		return def
	}
	m := d.str(a, def)
	switch m {
	case TrustRequired, TrustOptional, TrustOff:
		return m
	}
	d.errorf(a.Expr.Range(), "Unknown trust mode", `The mode %q is not known; use "required", "optional" or "off".`, m)
	return def
}

// trustKeys decodes a list of authorized_keys lines, each checked where it
// is written so a key that does not parse is reported at its own position.
func (d *decoder) trustKeys(a *hcl.Attribute) []TrustedKey {
	if a == nil {
		return nil
	}
	elems, diags := hcl.ExprList(a.Expr)
	d.add(diags...)
	if diags.HasErrors() {
		return nil
	}
	if len(elems) > maxTrustKeys {
		d.errorf(a.Expr.Range(), "Too many keys", "A trust policy lists at most %d keys.", maxTrustKeys)
		return nil
	}
	var out []TrustedKey
	seen := map[string]bool{}
	for _, e := range elems {
		v, vd := e.Value(d.ctx)
		d.add(vd...)
		if vd.HasErrors() {
			continue
		}
		sv, err := convert.Convert(v, cty.String)
		if err != nil || sv.IsNull() || !sv.IsKnown() {
			d.errorf(e.Range(), "Invalid key", "A trusted key is a string: one authorized_keys line such as \"ssh-ed25519 AAAA… ci@build\".")
			continue
		}
		k, err := ParseTrustedKey(sv.AsString())
		if err != nil {
			d.errorf(e.Range(), "Key does not parse", "%v. A trusted key is one line of an authorized_keys or .pub file (ssh-keygen -t ed25519) or a minisign public key (RW…, from minisign -G).", err)
			continue
		}
		if seen[k.KeyID] {
			d.errorf(e.Range(), "Duplicate key", "The key %s is listed twice.", k.KeyID)
			continue
		}
		seen[k.KeyID] = true
		out = append(out, k)
	}
	return out
}

// ParseTrustedKey parses one authorized_keys line (options are refused) or
// one minisign public key.
func ParseTrustedKey(line string) (TrustedKey, error) {
	line = strings.TrimSpace(line)
	if len(line) > 16<<10 {
		return TrustedKey{}, errString("the key is longer than 16 KiB")
	}
	if strings.HasPrefix(line, "untrusted comment:") || strings.HasPrefix(line, "RW") {
		return parseMinisignKey(line)
	}
	pub, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return TrustedKey{}, errString("not an SSH public key: " + err.Error())
	}
	if len(opts) > 0 {
		return TrustedKey{}, errString("authorized_keys options are not allowed here")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return TrustedKey{}, errString("one key per string")
	}
	return TrustedKey{Line: line, KeyID: ssh.FingerprintSHA256(pub), Comment: comment, Type: pub.Type()}, nil
}

// parseMinisignKey reads a minisign public key: the base64 line, or the
// .pub file's two lines. (internal/minisig verifies with it; specs imports
// nothing of ours, so the few lines of format live here too.)
func parseMinisignKey(text string) (TrustedKey, error) {
	lines := strings.Split(text, "\n")
	k := TrustedKey{Line: text, Type: TrustKeyMinisign}
	switch len(lines) {
	case 1:
	case 2:
		c, ok := strings.CutPrefix(strings.TrimSpace(lines[0]), "untrusted comment:")
		if !ok {
			return k, errString(`the first of two lines must be "untrusted comment: …"`)
		}
		k.Comment = strings.TrimSpace(c)
	default:
		return k, errString("a minisign public key is at most two lines")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[len(lines)-1]))
	if err != nil || len(raw) != 2+8+32 || string(raw[:2]) != "Ed" {
		return k, errString("not a minisign public key (want the base64 line RW… from minisign -G)")
	}
	k.KeyID = fmt.Sprintf("%X", binary.LittleEndian.Uint64(raw[2:10]))
	return k, nil
}

type errString string

func (e errString) Error() string { return string(e) }
