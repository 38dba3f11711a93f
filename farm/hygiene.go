package farm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on the names and texts a client sends (docs/api.md, "Limits").
// Everything stored must be valid UTF-8: the store is read by other tools.
const (
	// MaxNameBytes bounds names: firmware and spec file names, label, tag
	// and variable keys, board types, firmware versions, token names.
	MaxNameBytes = 255
	// MaxTextBytes bounds free texts: maintenance and hold reasons, label
	// and tag values.
	MaxTextBytes = 1024
	// MaxVarBytes bounds one spec variable's value.
	MaxVarBytes = 16 << 10
	// MaxMapEntries bounds labels, tags and vars of one submission.
	MaxMapEntries = 64
)

// Priority ranges by role: a submitter cannot jump ahead of what an
// operator queues, and nobody ahead of health checks (HealthPriority).
const (
	SubmitterPriorityMax = 100
	OperatorPriorityMax  = 999
	HealthPriority       = 1000
)

// priorityRange is the priorities role may give a job.
func priorityRange(role string) (lo, hi int) {
	if roleRank(role) >= roleRank(RoleOperator) {
		return -OperatorPriorityMax, OperatorPriorityMax
	}
	return -SubmitterPriorityMax, SubmitterPriorityMax
}

// checkText refuses invalid UTF-8, control characters other than tab and
// newline, and texts longer than max bytes.
func checkText(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return badRequest("%s is not valid UTF-8", what)
	}
	if len(s) > max {
		return badRequest("%s is %d bytes long; the limit is %d", what, len(s), max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' {
			return badRequest("%s contains the control character %U", what, r)
		}
	}
	return nil
}

// checkName is checkText for names: at most MaxNameBytes, no newlines.
func checkName(what, s string) error {
	if err := checkText(what, s, MaxNameBytes); err != nil {
		return err
	}
	if strings.ContainsAny(s, "\t\n") {
		return badRequest("%s contains a tab or newline", what)
	}
	return nil
}

// checkFileName is checkName for a name that could become a path: no
// separators, not "." or "..".
func checkFileName(what, s string) error {
	if err := checkName(what, s); err != nil {
		return err
	}
	if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
		return badRequest("%s %q must be a plain file name (no / or \\, not . or ..)", what, s)
	}
	return nil
}

// checkMap checks the keys (names) and values of labels, tags or vars.
func checkMap(what string, m map[string]string, maxValue int) error {
	if len(m) > MaxMapEntries {
		return badRequest("%s has %d entries; the limit is %d", what, len(m), MaxMapEntries)
	}
	for k, v := range m {
		if k == "" {
			return badRequest("%s has an empty key", what)
		}
		if err := checkName(what+" key", k); err != nil {
			return err
		}
		if err := checkText(fmt.Sprintf("%s %q", what, k), v, maxValue); err != nil {
			return err
		}
	}
	return nil
}

// checkSubmitOptions applies the bounds to a submission's options for
// the role that submits it.
func checkSubmitOptions(o *SubmitOptions, role string) error {
	if lo, hi := priorityRange(role); o.Priority < lo || o.Priority > hi {
		return badRequest("priority %d is outside the range %d..%d of role %s (docs/api.md)", o.Priority, lo, hi, role)
	}
	if err := checkName("type", o.Type); err != nil {
		return err
	}
	if err := checkName("firmware_version", o.FirmwareVersion); err != nil {
		return err
	}
	if err := checkMap("labels", o.Labels, MaxTextBytes); err != nil {
		return err
	}
	if err := checkMap("tags", o.Tags, MaxTextBytes); err != nil {
		return err
	}
	return checkMap("vars", o.Vars, MaxVarBytes)
}

// partFileName is a multipart part's file name as sent (Part.FileName
// strips directories, which would hide "../x"), checked as a file name.
func partFileName(part *multipart.Part, what string) (string, error) {
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return "", badRequest("%s part: bad Content-Disposition: %v", what, err)
	}
	name := params["filename"]
	if name == "" {
		return "", nil
	}
	if err := checkFileName(what+" file name", name); err != nil {
		return "", err
	}
	return name, nil
}

// errBadUTF8: a JSON body with invalid UTF-8 (encoding/json would quietly
// turn it into U+FFFD).
var errBadUTF8 = errors.New("the body is not valid UTF-8")

// decodeJSON reads a small JSON body whole, refuses invalid UTF-8 and
// decodes it into v, refusing unknown fields when strict.
func decodeJSON(r io.Reader, v any, strict bool) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errBadUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(v)
}
