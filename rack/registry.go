package rack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Record is the hub's view of one rack credential. Records live as JSON
// files, one per rack, in the hub's racks directory.
type Record struct {
	Name     string   `json:"name"`
	Types    []string `json:"types"`     // board types the rack may pull work for
	PassHash string   `json:"pass_hash"` // bcrypt of the rack's password
	Revoked  bool     `json:"revoked,omitempty"`
}

// Bounds on names: they become NATS subject tokens and file names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ErrBadName is returned for a rack or board-type name that cannot be a
// subject token.
var ErrBadName = errors.New("name must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")

// CheckName validates a rack or board-type name.
func CheckName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s %q: %w", kind, name, ErrBadName)
	}
	return nil
}

// passwordCost is the bcrypt cost of rack passwords. The hub pays it on
// every leaf connect (~50-100 ms at the default cost); tests under -race
// lower it, since the race detector makes bcrypt many times slower and
// slow CONNECT processing makes the rack's pings go stale.
var passwordCost = bcrypt.DefaultCost

// NewPassword returns a random rack password and its bcrypt hash.
func NewPassword() (password, hash string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("rack password: %w", err)
	}
	password = hex.EncodeToString(b[:])
	h, err := bcrypt.GenerateFromPassword([]byte(password), passwordCost)
	if err != nil {
		return "", "", fmt.Errorf("rack password: %w", err)
	}
	return password, string(h), nil
}

// SaveRecord writes r into dir as <name>.json.
func SaveRecord(dir string, r Record) error {
	if err := CheckName("rack", r.Name); err != nil {
		return err
	}
	for _, t := range r.Types {
		if err := CheckName("board type", t); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("rack %s: %w", r.Name, err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("rack %s: %w", r.Name, err)
	}
	return writeFile(filepath.Join(dir, r.Name+".json"), append(data, '\n'), 0o600)
}

// LoadRecords reads every <name>.json in dir, sorted by name. A missing
// dir holds no racks.
func LoadRecords(dir string) ([]Record, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("racks directory: %w", err)
	}
	var out []Record
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("rack record %s: %w", e.Name(), err)
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("rack record %s: %w", e.Name(), err)
		}
		if r.Name+".json" != e.Name() {
			return nil, fmt.Errorf("rack record %s: names rack %q", e.Name(), r.Name)
		}
		if err := CheckName("rack", r.Name); err != nil {
			return nil, fmt.Errorf("rack record %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// inboxPrefix is the reply-subject prefix a rack's connections use; its
// user may receive replies only there, so one rack cannot read another's.
func inboxPrefix(rack string) string { return "_INBOX." + rack }

// rackPermissions is the allow-list of one rack's user at the hub. On a leaf
// connection the hub checks "publish" for what the rack sends into the hub
// and, for literal subscriptions, also for the interest the rack registers;
// "subscribe" bounds what the hub delivers to it.
func rackPermissions(r Record) *server.Permissions {
	name := r.Name
	pub := []string{
		"farm.evt." + name + ".>",
		"farm.claim." + name,
		"farm.hb." + name,
		"console." + name + ".>",
		inboxPrefix(name) + ".>",
		"$JS.hub.API.INFO",
		// Firmware: read-only access to the object store's stream.
		"$JS.hub.API.STREAM.INFO.OBJ_" + FirmwareBucket,
		"$JS.hub.API.CONSUMER.CREATE.OBJ_" + FirmwareBucket,
		"$JS.hub.API.CONSUMER.CREATE.OBJ_" + FirmwareBucket + ".>",
		"$JS.hub.API.CONSUMER.DELETE.OBJ_" + FirmwareBucket + ".>",
		"$JS.hub.API.DIRECT.GET.OBJ_" + FirmwareBucket + ".>",
		"$JS.hub.API.STREAM.MSG.GET.OBJ_" + FirmwareBucket,
		"$JS.FC.OBJ_" + FirmwareBucket + ".>",
	}
	for _, t := range r.Types {
		c := consumerName(t)
		pub = append(pub,
			"$JS.hub.API.CONSUMER.INFO."+JobsStream+"."+c,
			"$JS.hub.API.CONSUMER.MSG.NEXT."+JobsStream+"."+c,
			"$JS.ACK."+JobsStream+"."+c+".>", // InProgress heartbeats
		)
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{
			inboxPrefix(name) + ".>",
			"farm.cmd." + name + ".>",
		}},
	}
}
