package specs

import (
	"strings"
	"testing"
)

// Keys made by ssh-keygen -t ed25519 / -t ecdsa, kept as text: parsing needs no tool.
const (
	edKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDx+z+cGskmOOekI34dWWlyI/wOq++sg30aeUdpIFf1+ ci@build"
	ecdsaKey = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBICgRzRemSG2uSZ8PzEG7iUWql4dYp5wwFdI535ozx9FPsYYEdOe0ISd4xYXz5LWLjqogGwZWP3M9iouz7rwU2o= release@build"
)

// A minisign public key (minisign -G), as its .pub file and as its key line.
const miniPub = "untrusted comment: minisign public key 8F67ED0747B93AD\nRWStk3t00H72CAnc1v2ESc+DrnpK85p4h1rew5K4C5CyyBzA18J83OYs"

const trustBase = `
farm "f" {}
board_type "sim" {}
board_type "nucleo" {}
board "s" {
  type = "sim"
  emulator "sim" {}
}
`

func TestTrustBlock(t *testing.T) {
	f, diags := ParseFarm([]byte(trustBase+`
trust {
  mode = "optional"
  keys = ["`+edKey+`"]
  board_type "nucleo" {
    mode = "required"
    keys = ["`+ecdsaKey+`"]
  }
}
`), "farm.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	sim, nucleo := f.Trust.For("sim"), f.Trust.For("nucleo")
	if sim.Mode != TrustOptional || len(sim.Keys) != 1 || sim.Keys[0].Comment != "ci@build" || sim.Keys[0].Type != "ssh-ed25519" || !strings.HasPrefix(sim.Keys[0].KeyID, "SHA256:") {
		t.Errorf("For(sim) = %+v", sim)
	}
	if nucleo.Mode != TrustRequired || len(nucleo.Keys) != 1 || nucleo.Keys[0].Comment != "release@build" || nucleo.Namespace != DefaultTrustNamespace {
		t.Errorf("For(nucleo) = %+v", nucleo)
	}
	for _, text := range []string{miniPub, strings.Split(miniPub, "\n")[1]} {
		k, err := ParseTrustedKey(text)
		if err != nil || k.KeyID != "8F67ED0747B93AD" || k.Type != TrustKeyMinisign {
			t.Errorf("ParseTrustedKey(minisign %.20q) = %+v, %v; want key id 8F67ED0747B93AD as minisign prints it", text, k, err)
		}
	}
	var none *Trust
	if p := none.For("sim"); p.Mode != TrustOff {
		t.Errorf("no trust block: mode %s, want off", p.Mode)
	}
}

func TestTrustDiagnostics(t *testing.T) {
	for _, c := range []struct{ name, block, want string }{
		{"key that does not parse", `trust {
  keys = [
    "` + edKey + `",
    "ssh-ed25519 AAAAnotbase64!! x@y",
  ]
}`, "farm.hcl:12:5: Key does not parse"},
		{"not an ssh key", `trust {
  keys = ["-----BEGIN PUBLIC KEY-----"]
}`, "farm.hcl:10:11: Key does not parse"},
		{"broken minisign key", `trust {
  keys = ["untrusted comment: minisign public key\nRWStk3t00H72CAnc1v2ESc"]
}`, "farm.hcl:10:11: Key does not parse: not a minisign public key"},
		{"options refused", `trust {
  keys = ["command=\"x\" ` + edKey + `"]
}`, "authorized_keys options are not allowed"},
		{"unknown mode", `trust {
  mode = "sometimes"
  keys = ["` + edKey + `"]
}`, `farm.hcl:10:10: Unknown trust mode`},
		{"required without keys", `trust {
  mode = "required"
}`, "Missing trusted keys"},
		{"unknown board type", `trust {
  keys = ["` + edKey + `"]
  board_type "nucleoo" {}
}`, `farm.hcl:11:14: Unknown board type: No board_type "nucleoo" is declared. Did you mean "nucleo"?`},
		{"type requires but lists no key", `trust {
  mode = "optional"
  board_type "nucleo" { mode = "required" }
}`, `Board type "nucleo" requires signed candidates`},
		{"duplicate key", `trust {
  keys = ["` + edKey + `", "` + edKey + `"]
}`, "Duplicate key"},
		{"two trust blocks", `trust {
  mode = "off"
}
trust {
  mode = "off"
}`, "Duplicate trust block"},
		{"unknown attribute", `trust {
  mode = "off"
  key  = "x"
}`, "farm.hcl:11:3: Unsupported argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := ParseFarm([]byte(trustBase+c.block+"\n"), "farm.hcl")
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			if got := diags.Err().Error(); !strings.Contains(got, c.want) {
				t.Errorf("diagnostics = %s\nwant %s", got, c.want)
			}
		})
	}
}
