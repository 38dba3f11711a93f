package main

import (
	"strings"
	"testing"
)

func TestCleanReason(t *testing.T) {
	for _, c := range []struct{ in, board, want string }{
		{"attempt 1 on sim-01: setup: board sim-01: flash: board sim-01: flash: exit status 1", "sim-01",
			"setup: board sim-01: flash: exit status 1"},
		{"attempt 2 on other: setup: x", "sim-01", "attempt 2 on other: setup: x"},
		{"test \"boot\": expected \"ok\" within 1s; last console lines:\nline a\nline a", "b",
			"test \"boot\": expected \"ok\" within 1s; last console lines:\nline a\nline a"},
		{"a: a: a: b", "", "a: b"},
		{"", "x", ""},
	} {
		if got := cleanReason(c.in, c.board); got != c.want {
			t.Errorf("cleanReason(%q, %q) = %q, want %q", c.in, c.board, got, c.want)
		}
	}
}

func TestFieldWriterAlignsMultiline(t *testing.T) {
	var f fieldWriter
	f.add("job", "j1")
	f.add("state", "failed: x; last console lines:\nboot\npanic")
	f.add("attempt 1", "failed on b")
	var b strings.Builder
	if err := f.flush(&b); err != nil {
		t.Fatal(err)
	}
	want := "job        j1\n" +
		"state      failed: x; last console lines:\n" +
		"           boot\n" +
		"           panic\n" +
		"attempt 1  failed on b\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
