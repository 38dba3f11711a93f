// Command thirdparty writes THIRD_PARTY_LICENSES.md: the licence of every
// Go module linked into the hilfarm binary (for each platform `make dist`
// builds) with its licence text, the Go standard library's, and the npm
// packages bundled into ui/dist (from ui/package-lock.json). It reads only
// `go list` and the module cache, so it works offline once the modules are
// downloaded. With -check it compares instead of writing and fails when the
// file is stale (`make check` runs it so).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// platforms are the GOOS/GOARCH pairs `make dist` ships.
var platforms = [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "arm"}}

const mainModule = "github.com/hilfarm/hilfarm"

type module struct {
	Path, Version, Dir string
	License, File      string
	Text               string
}

func main() {
	check := flag.Bool("check", false, "compare with the file instead of writing it; exit 1 if it differs")
	out := flag.String("o", "THIRD_PARTY_LICENSES.md", "output `file`")
	lock := flag.String("lock", "ui/package-lock.json", "npm lockfile of the bundled UI")
	sbom := flag.String("sbom", "", "instead, write a CycloneDX 1.5 JSON SBOM of hilfarm to `file`")
	version := flag.String("version", "dev", "hilfarm's version, for -sbom")
	flag.Parse()
	if *sbom != "" {
		if err := writeSBOM(*sbom, *lock, *version); err != nil {
			fmt.Fprintln(os.Stderr, "thirdparty:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*out, *lock, *check); err != nil {
		fmt.Fprintln(os.Stderr, "thirdparty:", err)
		os.Exit(1)
	}
}

func run(out, lock string, check bool) error {
	mods, err := goModules()
	if err != nil {
		return err
	}
	npm, err := npmPackages(lock)
	if err != nil {
		return err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	stdText, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "LICENSE"))
	if err != nil {
		return fmt.Errorf("licence of the Go standard library: %w", err)
	}
	// esbuild writes the bundled packages' licence comments next to the
	// bundle (ui/dist/assets/*.LEGAL.txt, names hashed: sorted by content).
	legalFiles, err := filepath.Glob(filepath.Join(filepath.Dir(lock), "dist", "assets", "*.LEGAL.txt"))
	if err != nil {
		return err
	}
	var legal []string
	for _, f := range legalFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		legal = append(legal, strings.TrimRight(string(b), "\n"))
	}
	sort.Strings(legal)
	doc := render(mods, npm, string(stdText), legal)
	if !check {
		return os.WriteFile(out, doc, 0o644)
	}
	have, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("%w (run: go run ./scripts/thirdparty)", err)
	}
	if !bytes.Equal(have, doc) {
		return fmt.Errorf("%s is stale: the module graph or %s changed; run: go run ./scripts/thirdparty", out, lock)
	}
	return nil
}

// goModules lists the modules whose packages the hilfarm binary links on
// any shipped platform, with their licence files from the module cache.
func goModules() ([]module, error) {
	seen := map[string]*module{}
	for _, p := range platforms {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}", "./cmd/hilfarm")
		cmd.Env = append(os.Environ(), "GOOS="+p[0], "GOARCH="+p[1], "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list (%s/%s): %w: %s", p[0], p[1], err, stderr.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) != 3 || f[0] == mainModule || seen[f[0]] != nil {
				continue
			}
			seen[f[0]] = &module{Path: f[0], Version: f[1], Dir: f[2]}
		}
	}
	var mods []module
	for _, m := range seen {
		if m.Dir == "" {
			return nil, fmt.Errorf("module %s %s is not in the module cache (go mod download)", m.Path, m.Version)
		}
		file, text, err := licenseFile(m.Dir)
		if err != nil {
			return nil, fmt.Errorf("module %s %s: %w", m.Path, m.Version, err)
		}
		m.File, m.Text, m.License = file, text, classify(text)
		mods = append(mods, *m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

var licenseName = regexp.MustCompile(`(?i)^(LICEN[CS]E|COPYING)(\.md|\.txt)?$`)

// licenseFile finds the licence at the root of a module.
func licenseFile(dir string) (string, string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", "", err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && licenseName.MatchString(e.Name()) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return "", "", err
			}
			return e.Name(), string(b), nil
		}
	}
	return "", "", fmt.Errorf("no LICENSE file in %s: %w", dir, fs.ErrNotExist)
}

// classify names a licence text by its SPDX identifier, from phrases each
// licence has; "unknown" makes the reviewer look.
func classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	has := func(s string) bool { return strings.Contains(t, s) }
	switch {
	case has("Apache License") && has("Version 2.0"):
		return "Apache-2.0"
	case has("Mozilla Public License Version 2.0") || has("Mozilla Public License, version 2.0"):
		return "MPL-2.0"
	case has("Permission is hereby granted, free of charge"):
		return "MIT"
	case has("Permission to use, copy, modify, and/or distribute") || has("Permission to use, copy, modify, and distribute this software for any purpose with or without fee"):
		return "ISC"
	case has("Redistribution and use in source and binary forms"):
		if has("Neither the name") || has("names of its contributors") || has("name of the copyright holder") {
			return "BSD-3-Clause"
		}
		return "BSD-2-Clause"
	}
	return "unknown"
}

type npmPackage struct {
	Name, Version, License, Resolved string
}

// npmPackages lists the packages of the lockfile that are bundled into
// ui/dist (not dev dependencies).
func npmPackages(lock string) ([]npmPackage, error) {
	b, err := os.ReadFile(lock)
	if err != nil {
		return nil, err
	}
	var l struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version  string `json:"version"`
			License  string `json:"license"`
			Resolved string `json:"resolved"`
			Dev      bool   `json:"dev"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", lock, err)
	}
	if l.LockfileVersion < 2 {
		return nil, errors.New(lock + ": want lockfileVersion 2 or 3")
	}
	var out []npmPackage
	for key, p := range l.Packages {
		if key == "" || p.Dev {
			continue
		}
		name := key[strings.LastIndex(key, "node_modules/")+len("node_modules/"):]
		lic := p.License
		if lic == "" {
			lic = "unknown"
		}
		out = append(out, npmPackage{Name: name, Version: p.Version, License: lic, Resolved: p.Resolved})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func render(mods []module, npm []npmPackage, stdText string, legal []string) []byte {
	var b bytes.Buffer
	b.WriteString("# Third-party licences\n\n")
	b.WriteString("hilfarm is licensed under the Apache License 2.0 (LICENSE). The `hilfarm` binary\n")
	b.WriteString("also contains the software below. This file is generated by `go run ./scripts/thirdparty`\n")
	b.WriteString("from the Go module graph and ui/package-lock.json; `make check` fails when it is stale.\n\n")
	b.WriteString("## Summary\n\n| component | version | licence |\n| --- | --- | --- |\n")
	b.WriteString("| Go standard library | (the Go toolchain) | BSD-3-Clause |\n")
	for _, m := range mods {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.Path, m.Version, m.License)
	}
	for _, p := range npm {
		fmt.Fprintf(&b, "| %s (npm, in ui/dist) | %s | %s |\n", p.Name, p.Version, p.License)
	}
	b.WriteString("\nThe npm packages' full licence texts are in their packages (`npm ci` in ui/ puts them\n")
	b.WriteString("under ui/node_modules/); the licence comments esbuild bundled are below.\n\n## Licence texts\n")
	for _, l := range legal {
		fmt.Fprintf(&b, "\n### npm packages bundled into ui/dist\n\n```text\n%s\n```\n", strings.ReplaceAll(l, "```", "'''"))
	}
	fmt.Fprintf(&b, "\n### Go standard library\n\n```text\n%s\n```\n", strings.TrimRight(stdText, "\n"))
	for _, m := range mods {
		fmt.Fprintf(&b, "\n### %s %s (%s, %s)\n\n```text\n%s\n```\n", m.Path, m.Version, m.License, m.File,
			strings.ReplaceAll(strings.TrimRight(m.Text, "\n"), "```", "'''"))
	}
	return b.Bytes()
}

// writeSBOM writes a CycloneDX 1.5 SBOM of the hilfarm binary: the Go
// modules it links and the npm packages bundled into its UI, with
// package URLs and licences.
func writeSBOM(path, lock, version string) error {
	mods, err := goModules()
	if err != nil {
		return err
	}
	npm, err := npmPackages(lock)
	if err != nil {
		return err
	}
	type license struct {
		License struct {
			ID   string `json:"id,omitempty"`
			Name string `json:"name,omitempty"`
		} `json:"license"`
	}
	lic := func(id string) []license {
		var l license
		if id == "unknown" || id == "" {
			l.License.Name = "unknown"
		} else {
			l.License.ID = id
		}
		return []license{l}
	}
	type component struct {
		Type     string    `json:"type"`
		BOMRef   string    `json:"bom-ref"`
		Name     string    `json:"name"`
		Version  string    `json:"version,omitempty"`
		PURL     string    `json:"purl,omitempty"`
		Licenses []license `json:"licenses,omitempty"`
	}
	main := component{Type: "application", BOMRef: "pkg:golang/" + mainModule + "@" + version, Name: "hilfarm",
		Version: version, PURL: "pkg:golang/" + mainModule + "@" + version, Licenses: lic("Apache-2.0")}
	var comps []component
	var deps []string
	for _, m := range mods {
		purl := "pkg:golang/" + m.Path + "@" + m.Version
		comps = append(comps, component{Type: "library", BOMRef: purl, Name: m.Path, Version: m.Version, PURL: purl, Licenses: lic(m.License)})
		deps = append(deps, purl)
	}
	for _, p := range npm {
		name := p.Name
		if strings.HasPrefix(name, "@") {
			name = "%40" + name[1:]
		}
		purl := "pkg:npm/" + name + "@" + p.Version
		comps = append(comps, component{Type: "library", BOMRef: purl, Name: p.Name, Version: p.Version, PURL: purl, Licenses: lic(p.License)})
		deps = append(deps, purl)
	}
	doc := map[string]any{
		"bomFormat":   "CycloneDX",
		"specVersion": "1.5",
		"version":     1,
		"metadata": map[string]any{
			"component": main,
			"tools":     map[string]any{"components": []map[string]string{{"type": "application", "name": "hilfarm scripts/thirdparty"}}},
		},
		"components":   comps,
		"dependencies": []map[string]any{{"ref": main.BOMRef, "dependsOn": deps}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
