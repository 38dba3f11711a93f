package specs

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Farm defaults.
const (
	DefaultListen         = ":8080"
	DefaultDataDir        = "/var/lib/hilfarm"
	DefaultMaxUploadBytes = 64 << 20
	DefaultFlashTimeout   = 5 * time.Minute
	DefaultToolTimeout    = time.Minute
	DefaultOffFor         = time.Second
	DefaultCommandTimeout = 30 * time.Second // power commands
	DefaultBaud           = 115200
	DefaultQEMUBinary     = "qemu-system-arm"
)

// WebhookEvents are the job outcomes a webhook can subscribe to; a webhook
// without events gets all of them.
var WebhookEvents = []string{"passed", "failed", "error", "rejected", "cancelled"}

var farmFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "farm", LabelNames: []string{"name"}},
		{Type: "board_type", LabelNames: []string{"name"}},
		{Type: "board", LabelNames: []string{"name"}},
		{Type: "webhook", LabelNames: []string{"name"}},
		{Type: "trust"},
		{Type: "rack", LabelNames: []string{"name"}},
		{Type: "hub"},
	},
}

var farmSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listen"}, {Name: "data_dir"}, {Name: "max_upload"}, {Name: "anonymous_read"},
		{Name: "commit_url"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "retention"}},
}

var retentionSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "days"}, {Name: "max_size"}},
}

var boardTypeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "health_check"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "flash", LabelNames: []string{"method"}},
		{Type: "tool", LabelNames: []string{"name"}},
	},
}

var flashCommandSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "run", Required: true}, {Name: "timeout"}},
}

var toolSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "run", Required: true}, {Name: "timeout"}, {Name: "params"}},
}

var boardSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type", Required: true}, {Name: "tags"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "power", LabelNames: []string{"kind"}},
		{Type: "console", LabelNames: []string{"kind"}},
		{Type: "gpio", LabelNames: []string{"name"}},
		{Type: "emulator", LabelNames: []string{"kind"}},
	},
}

var gpioPowerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "chip"}, {Name: "line", Required: true}, {Name: "active_low"}, {Name: "off_for"}},
}

var commandPowerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "on", Required: true}, {Name: "off", Required: true}, {Name: "cycle"}, {Name: "timeout"}, {Name: "off_for"}},
}

var serialSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "port", Required: true}, {Name: "baud"}, {Name: "data_bits"}, {Name: "parity"}, {Name: "stop_bits"},
		{Name: "modem_lines"}, {Name: "dtr"}, {Name: "rts"},
	},
}

var lineSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "chip"}, {Name: "line"}, {Name: "output"}, {Name: "active_low"}, {Name: "initial"}, {Name: "bias"}, {Name: "drive"},
	},
}

var simSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "firmware"}, {Name: "baud"}},
}

var qemuSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "binary"}, {Name: "machine", Required: true}, {Name: "cpu"}, {Name: "memory"}, {Name: "load"}, {Name: "args"}, {Name: "firmware"},
	},
}

var rackSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "hub", Required: true}, {Name: "credentials", Required: true}},
}

var hubSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "listen"}, {Name: "dir", Required: true}},
}

var webhookSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "secret"}, {Name: "events"}},
}

// LoadFarm reads and decodes a farm.hcl (or farm.hcl.json) file.
func LoadFarm(path string) (*Farm, Diagnostics) {
	src, diags := readSource(path)
	if diags.HasErrors() {
		diags[0].Detail = path + ": " + diags[0].Detail
		return nil, newDiagnostics(diags, nil)
	}
	return ParseFarm(src, path)
}

// ParseFarm decodes and validates a farm file's source. filename names it
// in diagnostics and picks the syntax (a name ending in .json is JSON). The
// farm is nil when there are errors.
func ParseFarm(src []byte, filename string) (*Farm, Diagnostics) {
	f, files, diags := parse(src, filename)
	if diags.HasErrors() {
		return nil, newDiagnostics(diags, files)
	}
	d := &decoder{diags: diags, src: src, ctx: &hcl.EvalContext{Functions: newFunctions()}}
	farm := d.farm(f.Body, filename)
	if d.diags.HasErrors() {
		return nil, newDiagnostics(d.diags, files)
	}
	return farm, newDiagnostics(d.diags, files)
}

func (d *decoder) farm(body hcl.Body, filename string) *Farm {
	c := d.content(body, farmFileSchema)
	farm := &Farm{Listen: DefaultListen, DataDir: DefaultDataDir, MaxUploadBytes: DefaultMaxUploadBytes, Filename: filename}
	var farmBlocks []*hcl.Block
	for _, b := range c.Blocks {
		if b.Type == "farm" {
			farmBlocks = append(farmBlocks, b)
		}
	}
	switch {
	case len(farmBlocks) == 0:
		d.errorf(body.MissingItemRange(), "Missing farm block", `A farm file needs one farm "NAME" { ... } block.`)
	case len(farmBlocks) > 1:
		d.errorf(farmBlocks[1].DefRange, "Duplicate farm block", "A farm file has one farm block; the first is at %s.", shortPos(farmBlocks[0].DefRange))
	}
	if len(farmBlocks) > 0 {
		d.farmSettings(farmBlocks[0], farm)
	}

	typeNames := newNameCheck("board type")
	for _, b := range c.Blocks {
		if b.Type == "board_type" {
			typeNames.check(d, b.Labels[0], b.LabelRanges[0])
			farm.BoardTypes = append(farm.BoardTypes, d.boardType(b))
		}
	}
	boardNames := newNameCheck("board")
	for _, b := range c.Blocks {
		if b.Type == "board" {
			boardNames.check(d, b.Labels[0], b.LabelRanges[0])
			if bd := d.board(b, farm); bd != nil {
				farm.Boards = append(farm.Boards, *bd)
			}
		}
	}
	for _, b := range c.Blocks {
		if b.Type == "trust" {
			if farm.Trust != nil {
				d.errorf(b.DefRange, "Duplicate trust block", "A farm file has at most one trust block; per-type policies go in board_type blocks inside it.")
				continue
			}
			farm.Trust = d.trust(b, farm)
		}
	}
	hookNames := newNameCheck("webhook")
	for _, b := range c.Blocks {
		if b.Type == "webhook" {
			hookNames.check(d, b.Labels[0], b.LabelRanges[0])
			farm.Webhooks = append(farm.Webhooks, d.webhook(b))
		}
	}
	var rackBlock *hcl.Block
	for _, b := range c.Blocks {
		if b.Type == "rack" {
			if rackBlock != nil {
				d.errorf(b.DefRange, "Duplicate rack block", "A farm is at most one rack; the first rack block is at %s.", shortPos(rackBlock.DefRange))
				continue
			}
			rackBlock = b
			farm.Rack = d.rack(b, farm)
		}
	}
	var hubBlock *hcl.Block
	for _, b := range c.Blocks {
		if b.Type != "hub" {
			continue
		}
		switch {
		case hubBlock != nil:
			d.errorf(b.DefRange, "Duplicate hub block", "A farm has at most one hub block; the first is at %s.", shortPos(hubBlock.DefRange))
			continue
		case rackBlock != nil:
			// One process is either the front door or one of the racks
			// behind it: a rack that is its own hub would pull its own
			// jobs through a leaf link to itself.
			d.errorf(b.DefRange, "Both hub and rack",
				"A farm file is a hub or a rack, not both: this hub block conflicts with the rack block at %s. Run the hub and each rack as separate hilfarm serve processes, each with its own farm file.", shortPos(rackBlock.DefRange))
			continue
		}
		hubBlock = b
		farm.Hub = d.hub(b)
	}
	return farm
}

// DefaultHubListen is the hub's leaf listener address when its hub block
// gives none (7422 is nats-server's leaf node port).
const DefaultHubListen = ":7422"

// hub decodes a hub block.
func (d *decoder) hub(b *hcl.Block) *Hub {
	h := &Hub{Listen: DefaultHubListen, Range: rangeOf(b.DefRange)}
	c := d.content(b.Body, hubSchema)
	if a := c.Attributes["listen"]; a != nil {
		h.Listen = d.str(a, DefaultHubListen)
		if msg := checkListen(h.Listen); msg != "" {
			d.errorf(a.Expr.Range(), "Invalid hub listen address",
				"listen is the [HOST]:PORT the hub's leaf listener binds, where racks dial in, e.g. \":7422\" or \"10.0.0.5:7422\"; %q %s.", h.Listen, msg)
		}
	}
	if a := c.Attributes["dir"]; a != nil {
		h.Dir = d.str(a, "")
		if h.Dir == "" {
			d.errorf(a.Expr.Range(), "Empty hub dir",
				"dir is the directory hilfarm ca init and hilfarm rack add wrote (ca.pem, hub.pem, hub-key.pem, racks/NAME.json).")
		}
	}
	return h
}

// checkListen returns why s is not a [host]:port listen address, or "".
func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "is not HOST:PORT"
	}
	if strings.ContainsAny(host, "/ ") {
		return "has a host that is not a name or an IP address"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "has a port outside 1-65535"
	}
	return ""
}

// rackNameRE is what a rack's name and the board types and board names of
// a rack farm must match: they become NATS subject tokens and file names.
// It is rack.CheckName's rule (specs imports nothing of ours; a test in
// package farm keeps the two equal).
var rackNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidRackName reports whether name can name a rack, or a board type or
// board of a farm that is a rack.
func ValidRackName(name string) bool { return rackNameRE.MatchString(name) }

const rackNameRule = "1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"

// rack decodes a rack block. Board types and board names of a rack travel
// as NATS subject tokens, so they must follow the rack name rule too.
func (d *decoder) rack(b *hcl.Block, farm *Farm) *RackLink {
	r := &RackLink{Name: b.Labels[0], Range: rangeOf(b.DefRange)}
	if !ValidRackName(r.Name) {
		d.errorf(b.LabelRanges[0], "Invalid rack name", "The rack name %q must be %s (the name given to hilfarm rack add).", r.Name, rackNameRule)
	}
	c := d.content(b.Body, rackSchema)
	if a := c.Attributes["hub"]; a != nil {
		r.Hub = d.str(a, "")
		if msg := checkHubURL(r.Hub); msg != "" {
			d.errorf(a.Expr.Range(), "Invalid hub URL", "The hub is the tls://HOST:PORT address of the hub's leaf listener, e.g. \"tls://hub.lab.example:7422\"; %q %s.", r.Hub, msg)
		}
	}
	if a := c.Attributes["credentials"]; a != nil {
		r.Credentials = d.str(a, "")
		if r.Credentials == "" {
			d.errorf(a.Expr.Range(), "Empty credentials", "credentials is the directory hilfarm rack add wrote for this rack (bundles/NAME: ca.pem, rack.pem, rack-key.pem, password).")
		}
	}
	for _, bt := range farm.BoardTypes {
		if !ValidRackName(bt.Name) {
			d.errorf(hclRange(bt.Range), "Board type not usable by a rack",
				"This farm is rack %q, so its board types are the rack's types at the hub and must be %s; rename %q.", r.Name, rackNameRule, bt.Name)
		}
	}
	for _, bd := range farm.Boards {
		if !ValidRackName(bd.Name) {
			d.errorf(hclRange(bd.Range), "Board name not usable by a rack",
				"This farm is rack %q, so its board names travel in subjects at the hub and must be %s; rename %q.", r.Name, rackNameRule, bd.Name)
		}
	}
	return r
}

// checkHubURL returns why u is not a tls://host:port URL, or "".
func checkHubURL(u string) string {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "does not parse"
	case p.Scheme != "tls":
		return "has no tls:// scheme (rack links are always TLS)"
	case p.User != nil:
		return "carries a user (the password comes from the credentials)"
	case p.Hostname() == "" || p.Port() == "":
		return "lacks a host or a port"
	case (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "":
		return "has a path, query or fragment"
	}
	if n, err := strconv.Atoi(p.Port()); err != nil || n < 1 || n > 65535 {
		return "has a port outside 1-65535"
	}
	return ""
}

func (d *decoder) farmSettings(b *hcl.Block, farm *Farm) {
	farm.Name = b.Labels[0]
	c := d.content(b.Body, farmSchema)
	farm.Listen = d.str(c.Attributes["listen"], DefaultListen)
	farm.DataDir = d.str(c.Attributes["data_dir"], DefaultDataDir)
	farm.MaxUploadBytes = d.size(c.Attributes["max_upload"], DefaultMaxUploadBytes)
	farm.AnonymousRead = d.boolean(c.Attributes["anonymous_read"], false)
	if a := c.Attributes["commit_url"]; a != nil {
		u := d.str(a, "")
		if (!strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://")) || !strings.Contains(u, "{commit}") || len(u) > 1024 {
			d.errorf(a.Expr.Range(), "Invalid commit_url",
				`commit_url is an http(s) URL of at most 1024 bytes with {commit} where the "commit" label's value goes, e.g. "https://git.example.com/fw/commit/{commit}".`)
		} else {
			farm.CommitURL = u
		}
	}
	seen := false
	for _, rb := range c.Blocks {
		if seen {
			d.errorf(rb.DefRange, "Duplicate retention block", "A farm block has at most one retention block.")
			continue
		}
		seen = true
		rc := d.content(rb.Body, retentionSchema)
		farm.Retention.Days = d.integer(rc.Attributes["days"], 0, 1, 100000)
		farm.Retention.MaxBytes = d.size(rc.Attributes["max_size"], 0)
	}
}

func (d *decoder) boardType(b *hcl.Block) BoardType {
	bt := BoardType{Name: d.ident(b, "board type"), Range: rangeOf(b.DefRange)}
	c := d.content(b.Body, boardTypeSchema)
	bt.HealthCheck = d.str(c.Attributes["health_check"], "")
	tools := newNameCheck("tool")
	for _, x := range c.Blocks {
		switch x.Type {
		case "flash":
			if bt.Flash != nil {
				d.errorf(x.DefRange, "Duplicate flash block", "A board type has at most one flash method.")
				continue
			}
			if x.Labels[0] != "command" {
				d.errorf(x.LabelRanges[0], "Unknown flash method", `The flash method %q is not known; the only method is "command" (emulated boards are flashed by their emulator).`, x.Labels[0])
				continue
			}
			fc := d.content(x.Body, flashCommandSchema)
			scope := &exprScope{where: "a flash command", firmware: true, board: true}
			bt.Flash = &CommandFlash{
				Run:     d.argv(fc.Attributes["run"], scope, x.DefRange),
				Timeout: d.duration(fc.Attributes["timeout"], DefaultFlashTimeout),
			}
		case "tool":
			tools.check(d, x.Labels[0], x.LabelRanges[0])
			bt.Tools = append(bt.Tools, d.tool(x))
		}
	}
	return bt
}

func (d *decoder) tool(b *hcl.Block) Tool {
	t := Tool{Name: d.ident(b, "tool")}
	c := d.content(b.Body, toolSchema)
	t.Params = d.strList(c.Attributes["params"])
	params := map[string]bool{}
	for _, p := range t.Params {
		if params[p] {
			d.errorf(c.Attributes["params"].Expr.Range(), "Duplicate tool parameter", "The parameter %q is listed twice.", p)
		}
		params[p] = true
	}
	scope := &exprScope{where: "a tool command", firmware: true, board: true, args: params}
	t.Run = d.argv(c.Attributes["run"], scope, b.DefRange)
	t.Timeout = d.duration(c.Attributes["timeout"], DefaultToolTimeout)
	return t
}

// argv decodes a list of string templates (a command line, no shell).
func (d *decoder) argv(a *hcl.Attribute, s *exprScope, blockRange hcl.Range) []Expr {
	if a == nil {
		return nil
	}
	elems, diags := hcl.ExprList(a.Expr)
	d.add(diags...)
	if diags.HasErrors() {
		return nil
	}
	if len(elems) == 0 {
		d.errorf(a.Expr.Range(), "Empty command", "The attribute %q needs at least the program to run.", a.Name)
		return nil
	}
	out := make([]Expr, 0, len(elems))
	for _, e := range elems {
		if _, ok := d.check(e, s, cty.String, "command argument"); ok {
			out = append(out, NewExpr(e, d.src))
		}
	}
	return out
}

func (d *decoder) board(b *hcl.Block, farm *Farm) *Board {
	bd := &Board{Name: d.ident(b, "board"), Range: rangeOf(b.DefRange)}
	c := d.content(b.Body, boardSchema)
	if a := c.Attributes["type"]; a != nil {
		bd.Type = d.str(a, "")
		if bd.Type != "" && farm.BoardType(bd.Type) == nil {
			var names []string
			for _, t := range farm.BoardTypes {
				names = append(names, t.Name)
			}
			d.errorf(a.Expr.Range(), "Unknown board type", "No board_type %q is declared.%s Declared types: %s.",
				bd.Type, didYouMean(bd.Type, names), quoteAll(names))
		}
	}
	bd.Tags = d.strMap(c.Attributes["tags"])
	var powerB, consoleB, emuB *hcl.Block
	once := func(p **hcl.Block, x *hcl.Block) bool {
		if *p != nil {
			d.errorf(x.DefRange, "Duplicate "+x.Type+" block", "A board has at most one %s block; the first is at %s.", x.Type, shortPos((*p).DefRange))
			return false
		}
		*p = x
		return true
	}
	var lineBlocks []*hcl.Block
	for _, x := range c.Blocks {
		switch x.Type {
		case "power":
			if once(&powerB, x) {
				bd.Power = d.power(x)
			}
		case "console":
			if once(&consoleB, x) {
				bd.Console = d.console(x)
			}
		case "emulator":
			if once(&emuB, x) {
				bd.Emulator = d.emulator(x)
			}
		case "gpio":
			lineBlocks = append(lineBlocks, x)
		}
	}
	emulated := emuB != nil
	switch {
	case emulated && powerB != nil:
		d.errorf(powerB.DefRange, "Power block on an emulated board", "Board %q has an emulator, which provides its power: remove the power block.", bd.Name)
	case emulated && consoleB != nil:
		d.errorf(consoleB.DefRange, "Console block on an emulated board", "Board %q has an emulator, which provides its console: remove the console block.", bd.Name)
	case !emulated && powerB == nil:
		d.errorf(b.DefRange, "Missing power block", "Board %q needs a power block (gpio or command) and a console block, or an emulator block.", bd.Name)
	case !emulated && consoleB == nil:
		d.errorf(b.DefRange, "Missing console block", "Board %q needs a console block, or an emulator block.", bd.Name)
	}
	if emulated && bd.Type != "" {
		if bt := farm.BoardType(bd.Type); bt != nil && bt.Flash != nil {
			d.errorf(b.DefRange, "Flash command on an emulated board", "Board %q is emulated, so its emulator flashes it, but its type %q has a flash command: give emulated boards a type of their own.", bd.Name, bd.Type)
		}
	}
	lines := newNameCheck("gpio line")
	for _, x := range lineBlocks {
		lines.check(d, x.Labels[0], x.LabelRanges[0])
		if l, ok := d.line(x, bd); ok {
			bd.Lines = append(bd.Lines, l)
		}
	}
	return bd
}

func (d *decoder) power(b *hcl.Block) *Power {
	switch b.Labels[0] {
	case PowerGPIO:
		c := d.content(b.Body, gpioPowerSchema)
		return &Power{Kind: PowerGPIO, GPIO: &GPIOPower{
			Chip:      d.str(c.Attributes["chip"], ""),
			Line:      d.lineID(c.Attributes["line"]),
			ActiveLow: d.boolean(c.Attributes["active_low"], false),
			OffFor:    d.duration(c.Attributes["off_for"], DefaultOffFor),
		}}
	case PowerCommand:
		c := d.content(b.Body, commandPowerSchema)
		scope := &exprScope{where: "a power command", board: true}
		return &Power{Kind: PowerCommand, Command: &CommandPower{
			On:      d.argv(c.Attributes["on"], scope, b.DefRange),
			Off:     d.argv(c.Attributes["off"], scope, b.DefRange),
			Cycle:   d.argv(c.Attributes["cycle"], scope, b.DefRange),
			Timeout: d.duration(c.Attributes["timeout"], DefaultCommandTimeout),
			OffFor:  d.duration(c.Attributes["off_for"], DefaultOffFor),
		}}
	}
	d.errorf(b.LabelRanges[0], "Unknown power kind", "The power kind %q is not known; use %s (emulated boards take their power from the emulator block).", b.Labels[0], quoteList([]string{PowerGPIO, PowerCommand}))
	return nil
}

// lineID reads a GPIO line given as a name or a decimal offset.
func (d *decoder) lineID(a *hcl.Attribute) string {
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(d.ctx)
	d.add(diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return ""
	}
	bad := func() string {
		d.errorf(a.Expr.Range(), "Invalid GPIO line", "A line is a name (\"GPIO17\") or a decimal offset (17).")
		return ""
	}
	switch {
	case v.IsNull():
		return bad()
	case v.Type() == cty.Number:
		bf := v.AsBigFloat()
		n, _ := bf.Int64()
		if !bf.IsInt() || n < 0 || n > 1<<16 {
			return bad()
		}
		return strconv.FormatInt(n, 10)
	case v.Type() == cty.String:
		s := v.AsString()
		if s == "" || strings.TrimSpace(s) != s || strings.HasPrefix(s, "-") {
			return bad()
		}
		return s
	}
	return bad()
}

func (d *decoder) console(b *hcl.Block) *Console {
	if b.Labels[0] != "serial" {
		d.errorf(b.LabelRanges[0], "Unknown console kind", `The console kind %q is not known; the only kind is "serial" (emulated boards take their console from the emulator block).`, b.Labels[0])
		return nil
	}
	c := d.content(b.Body, serialSchema)
	con := &Console{
		Port:       d.str(c.Attributes["port"], ""),
		Baud:       d.integer(c.Attributes["baud"], DefaultBaud, 50, 20000000),
		DataBits:   d.integer(c.Attributes["data_bits"], 8, 5, 8),
		Parity:     d.oneOf(c.Attributes["parity"], "none", "none", "odd", "even", "mark", "space"),
		StopBits:   "1",
		ModemLines: d.boolean(c.Attributes["modem_lines"], false),
		DTR:        d.boolean(c.Attributes["dtr"], false),
		RTS:        d.boolean(c.Attributes["rts"], false),
	}
	if a := c.Attributes["stop_bits"]; a != nil {
		if v, ok := d.value(a, cty.String); ok {
			switch s := v.AsString(); s {
			case "1", "2":
				con.StopBits = s
			case "1.5":
				d.errorf(a.Expr.Range(), "Unsupported stop bits", `Linux serial ports cannot use 1.5 stop bits (termios has only 1 and 2): use "1" or "2".`)
			default:
				d.errorf(a.Expr.Range(), "Invalid value", `The attribute "stop_bits" must be "1" or "2"; got %q.`, s)
			}
		}
	}
	if p := c.Attributes["port"]; p != nil && con.Port == "" {
		d.errorf(p.Expr.Range(), "Empty port", "The console needs a serial port path, e.g. /dev/serial/by-id/....")
	}
	for _, n := range []string{"dtr", "rts"} {
		if a := c.Attributes[n]; a != nil && !con.ModemLines {
			d.errorf(a.NameRange, "Modem lines are off", "The attribute %q needs modem_lines = true (ptys and many adapters have no modem lines).", n)
		}
	}
	return con
}

func (d *decoder) line(b *hcl.Block, bd *Board) (Line, bool) {
	l := Line{Name: d.ident(b, "gpio line")}
	c := d.content(b.Body, lineSchema)
	l.Chip = d.str(c.Attributes["chip"], "")
	l.Line = d.lineID(c.Attributes["line"])
	l.Output = d.boolean(c.Attributes["output"], false)
	l.ActiveLow = d.boolean(c.Attributes["active_low"], false)
	l.Initial = d.integer(c.Attributes["initial"], 0, 0, 1)
	l.Bias = d.oneOf(c.Attributes["bias"], "", "pull-up", "pull-down", "disable")
	l.Drive = d.oneOf(c.Attributes["drive"], "", "push-pull", "open-drain", "open-source")
	if !l.Output {
		for _, n := range []string{"initial", "drive"} {
			if a := c.Attributes[n]; a != nil {
				d.errorf(a.NameRange, "Attribute for outputs only", "The gpio line %q is an input; %q applies to outputs (set output = true).", l.Name, n)
			}
		}
	}
	switch {
	case bd.Emulator != nil && bd.Emulator.Kind == EmulatorQEMU:
		d.errorf(b.DefRange, "GPIO line on a QEMU board", "Board %q is a QEMU board, which has no GPIO lines hilfarm can drive.", bd.Name)
		return l, false
	case bd.Emulator != nil:
		for _, n := range []string{"chip", "line"} {
			if a := c.Attributes[n]; a != nil {
				d.errorf(a.NameRange, "Chip or line on an emulated board", "On an emulated board gpio %q is the emulator's simulated line: remove %q.", l.Name, n)
			}
		}
	case c.Attributes["line"] == nil:
		d.errorf(b.DefRange, "Missing required argument", "The gpio line %q needs a line (a name such as \"GPIO22\" or an offset).", l.Name)
	}
	return l, true
}

func (d *decoder) emulator(b *hcl.Block) *Emulator {
	switch b.Labels[0] {
	case EmulatorSim:
		c := d.content(b.Body, simSchema)
		return &Emulator{Kind: EmulatorSim, Sim: &SimConfig{
			Firmware: d.str(c.Attributes["firmware"], ""),
			Baud:     d.integer(c.Attributes["baud"], 0, 0, 20000000),
		}}
	case EmulatorQEMU:
		c := d.content(b.Body, qemuSchema)
		return &Emulator{Kind: EmulatorQEMU, QEMU: &QEMU{
			Binary:   d.str(c.Attributes["binary"], DefaultQEMUBinary),
			Machine:  d.str(c.Attributes["machine"], ""),
			CPU:      d.str(c.Attributes["cpu"], ""),
			Memory:   d.str(c.Attributes["memory"], ""),
			Load:     d.oneOf(c.Attributes["load"], "bios", "bios", "kernel"),
			Args:     d.strList(c.Attributes["args"]),
			Firmware: d.str(c.Attributes["firmware"], ""),
		}}
	}
	d.errorf(b.LabelRanges[0], "Unknown emulator", "The emulator %q is not known; use %s.", b.Labels[0], quoteList([]string{EmulatorSim, EmulatorQEMU}))
	return nil
}

func (d *decoder) webhook(b *hcl.Block) Webhook {
	w := Webhook{Name: d.ident(b, "webhook")}
	c := d.content(b.Body, webhookSchema)
	if a := c.Attributes["url"]; a != nil {
		w.URL = d.str(a, "")
		if u, err := url.Parse(w.URL); w.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			d.errorf(a.Expr.Range(), "Invalid URL", "A webhook URL is an absolute http or https URL; got %q.", w.URL)
		}
	}
	w.Secret = d.str(c.Attributes["secret"], "")
	w.Events = d.strList(c.Attributes["events"])
	if a := c.Attributes["events"]; a != nil {
		for _, e := range w.Events {
			if !contains(WebhookEvents, e) {
				d.errorf(a.Expr.Range(), "Unknown webhook event", "The event %q is not known; events are %s.", e, quoteAll(WebhookEvents))
			}
		}
	}
	if len(w.Events) == 0 {
		w.Events = append([]string(nil), WebhookEvents...)
	}
	return w
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BoardType returns the board type called name, or nil.
func (f *Farm) BoardType(name string) *BoardType {
	for i := range f.BoardTypes {
		if f.BoardTypes[i].Name == name {
			return &f.BoardTypes[i]
		}
	}
	return nil
}

// Board returns the board called name, or nil.
func (f *Farm) Board(name string) *Board {
	for i := range f.Boards {
		if f.Boards[i].Name == name {
			return &f.Boards[i]
		}
	}
	return nil
}

// Matches reports whether board b satisfies the selector: its type (if set) and every tag.
func (s Selector) Matches(b *Board) bool {
	if s.Type != "" && s.Type != b.Type {
		return false
	}
	for k, v := range s.Tags {
		if bv, ok := b.Tags[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Match returns the boards the selector matches, in farm order.
func (f *Farm) Match(s Selector) []*Board {
	var out []*Board
	for i := range f.Boards {
		if s.Matches(&f.Boards[i]) {
			out = append(out, &f.Boards[i])
		}
	}
	return out
}

// Tool returns the board type's tool called name, or nil.
func (t *BoardType) Tool(name string) *Tool {
	for i := range t.Tools {
		if t.Tools[i].Name == name {
			return &t.Tools[i]
		}
	}
	return nil
}

// Line returns the board's gpio line called name, or nil.
func (b *Board) Line(name string) *Line {
	for i := range b.Lines {
		if b.Lines[i].Name == name {
			return &b.Lines[i]
		}
	}
	return nil
}

// CanFlash reports whether a flash step can run on board b: it is emulated
// or its type has a flash command.
func (f *Farm) CanFlash(b *Board) bool {
	if b.Emulator != nil {
		return true
	}
	bt := f.BoardType(b.Type)
	return bt != nil && bt.Flash != nil
}

// describe lists the farm's board types and tags for "nothing matches" messages.
func (f *Farm) describe() string {
	types := map[string]bool{}
	tags := map[string]bool{}
	for _, b := range f.Boards {
		types[b.Type] = true
		for k, v := range b.Tags {
			tags[k+"="+v] = true
		}
	}
	t, g := keys(types), keys(tags)
	s := fmt.Sprintf("The farm has boards of type %s", quoteAll(t))
	if len(g) > 0 {
		s += fmt.Sprintf(" and tags %s", strings.Join(g, ", "))
	} else {
		s += " and no tags"
	}
	return s + "."
}

func sortedTags(m map[string]string) string {
	ks := keys(m)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + "=" + m[k]
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
