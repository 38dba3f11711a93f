package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	register(command{name: "completion", summary: "print a shell completion script (bash, zsh or fish)", run: runCompletion})
}

// captureFlags, when set, is given the flag set of the command that
// parses next, which then stops with errHelp before doing anything. Only
// completion sets it, from one goroutine, around one command at a time.
var captureFlags func(*flag.FlagSet)

type flagInfo struct {
	name, usage string
	takesValue  bool
}

type cmdInfo struct {
	name, summary string
	flags         []flagInfo
}

// commandInfos lists every command with its flags, read from the flag set
// each command builds (so completion cannot drift from the commands).
func commandInfos() []cmdInfo {
	var out []cmdInfo
	for _, name := range sortedCommandNames() {
		c := commands[name]
		var fs *flag.FlagSet
		captureFlags = func(f *flag.FlagSet) { fs = f }
		args := []string{"--help"}
		if name == "token" {
			args = []string{"list"} // the subcommands share their flags
		}
		_ = c.run(context.Background(), args, io.Discard, io.Discard)
		captureFlags = nil
		ci := cmdInfo{name: name, summary: c.summary}
		if fs != nil {
			fs.VisitAll(func(f *flag.Flag) {
				usage := strings.Join(strings.Fields(strings.ReplaceAll(f.Usage, "`", "")), " ")
				bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
				ci.flags = append(ci.flags, flagInfo{name: f.Name, usage: usage, takesValue: !(isBool && bf.IsBoolFlag())})
			})
		}
		out = append(out, ci)
	}
	return out
}

func sortedCommandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("completion", "hilfarm completion bash|zsh|fish",
		"Print a completion script for the shell. Install it with, for example:\n"+
			"  bash: hilfarm completion bash > /etc/bash_completion.d/hilfarm\n"+
			"  zsh:  hilfarm completion zsh > \"${fpath[1]}/_hilfarm\"\n"+
			"  fish: hilfarm completion fish > ~/.config/fish/completions/hilfarm.fish", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("completion takes one shell: bash, zsh or fish")
	}
	infos := commandInfos()
	switch fs.Arg(0) {
	case "bash":
		return writeBash(stdout, infos)
	case "zsh":
		return writeZsh(stdout, infos)
	case "fish":
		return writeFish(stdout, infos)
	}
	return usageError("completion: unknown shell %q: want bash, zsh or fish", fs.Arg(0))
}

func writeBash(w io.Writer, infos []cmdInfo) error {
	var b strings.Builder
	b.WriteString("# bash completion for hilfarm (hilfarm completion bash)\n_hilfarm() {\n")
	b.WriteString("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" flags=\"\"\n")
	b.WriteString("  if [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	var names []string
	for _, c := range infos {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W \"%s --help --version\" -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
	b.WriteString("  case \"${COMP_WORDS[1]}\" in\n")
	for _, c := range infos {
		var fl []string
		for _, f := range c.flags {
			fl = append(fl, "--"+f.name)
		}
		fmt.Fprintf(&b, "    %s) flags=\"%s\" ;;\n", c.name, strings.TrimSpace(strings.Join(fl, " ")+" --help"))
	}
	b.WriteString("  esac\n")
	b.WriteString("  if [[ \"$cur\" == -* ]]; then\n    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	b.WriteString("  else\n    COMPREPLY=($(compgen -f -- \"$cur\"))\n  fi\n}\n")
	b.WriteString("complete -o filenames -F _hilfarm hilfarm\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote makes s safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", "", "[", "(", "]", ")", ":", " ", "\\", "")
	return r.Replace(s)
}

func writeZsh(w io.Writer, infos []cmdInfo) error {
	var b strings.Builder
	b.WriteString("#compdef hilfarm\n# zsh completion for hilfarm (hilfarm completion zsh)\n_hilfarm() {\n  local -a cmds\n  cmds=(\n")
	for _, c := range infos {
		fmt.Fprintf(&b, "    '%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' cmds\n    return\n  fi\n  case $words[2] in\n")
	for _, c := range infos {
		fmt.Fprintf(&b, "    %s)\n      _arguments", c.name)
		for _, f := range c.flags {
			if f.takesValue {
				fmt.Fprintf(&b, " \\\n        '*--%s[%s]:value:_files'", f.name, zshQuote(f.usage))
			} else {
				fmt.Fprintf(&b, " \\\n        '--%s[%s]'", f.name, zshQuote(f.usage))
			}
		}
		b.WriteString(" \\\n        '*:file:_files'\n      ;;\n")
	}
	b.WriteString("  esac\n}\n_hilfarm \"$@\"\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote makes s safe inside a single-quoted fish string.
func fishQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func writeFish(w io.Writer, infos []cmdInfo) error {
	var b strings.Builder
	b.WriteString("# fish completion for hilfarm (hilfarm completion fish)\n")
	b.WriteString("complete -c hilfarm -n '__fish_use_subcommand' -l version -d 'print the version'\n")
	for _, c := range infos {
		fmt.Fprintf(&b, "complete -c hilfarm -f -n '__fish_use_subcommand' -a %s -d '%s'\n", c.name, fishQuote(c.summary))
	}
	for _, c := range infos {
		for _, f := range c.flags {
			r := ""
			if f.takesValue {
				r = " -r"
			}
			fmt.Fprintf(&b, "complete -c hilfarm -n '__fish_seen_subcommand_from %s' -l %s%s -d '%s'\n", c.name, f.name, r, fishQuote(f.usage))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
