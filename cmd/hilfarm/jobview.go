package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// fieldWriter prints "key  value" rows with the values aligned in one
// column; a multi-line value continues under its first line, so a failure
// reason with its console tail keeps the rows aligned.
type fieldWriter struct {
	rows [][2]string
}

func (f *fieldWriter) add(key, format string, a ...any) {
	f.rows = append(f.rows, [2]string{key, fmt.Sprintf(format, a...)})
}

func (f *fieldWriter) flush(w io.Writer) error {
	width := 0
	for _, r := range f.rows {
		width = max(width, utf8.RuneCountInString(r[0]))
	}
	pad := strings.Repeat(" ", width+2)
	var b strings.Builder
	for _, r := range f.rows {
		lines := strings.Split(strings.TrimRight(r[1], "\n"), "\n")
		b.WriteString(r[0])
		b.WriteString(pad[utf8.RuneCountInString(r[0]):])
		b.WriteString(strings.ReplaceAll(lines[0], "\t", " "))
		b.WriteByte('\n')
		for _, l := range lines[1:] {
			b.WriteString(pad)
			b.WriteString(strings.ReplaceAll(l, "\t", " "))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var attemptPrefix = regexp.MustCompile(`^attempt [0-9]+ on (\S+): `)

// cleanReason shortens a reason for display: a leading "attempt N on
// BOARD: " is dropped when the board is shown beside it, and a run of
// ": "-separated parts repeated right after itself ("board b: flash: board
// b: flash: ...", as nested errors wrap the same context twice) is kept once.
// Only the first line is touched; the console tail after it is kept as is.
func cleanReason(reason, board string) string {
	head, tail, multi := strings.Cut(reason, "\n")
	if board != "" {
		if m := attemptPrefix.FindStringSubmatch(head); m != nil && m[1] == board {
			head = head[len(m[0]):]
		}
	}
	parts := strings.Split(head, ": ")
	for n := 1; n <= 3; n++ {
		for i := 0; i+2*n <= len(parts); {
			if strings.Join(parts[i:i+n], ": ") == strings.Join(parts[i+n:i+2*n], ": ") {
				parts = append(parts[:i+n], parts[i+2*n:]...)
				continue
			}
			i++
		}
	}
	head = strings.Join(parts, ": ")
	if multi {
		return head + "\n" + tail
	}
	return head
}
