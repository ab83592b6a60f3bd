// Package benchdoc writes the benchmark tools' results into docs/benchmarks.md: each tool owns
// one "## " section and replaces only that one, so the tools can run in any order.
package benchdoc

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Intro starts a benchmarks file that does not exist yet.
const Intro = `# Benchmarks

Each section is written by one of the benchmark commands (` + "`make bench`" + ` runs them all; a run replaces
only its own section) and names the command, machine and date of its figures. Figures are compared with a
baseline measured in the same run, because the machines are small and shared: absolute numbers move from
run to run.
`

// WriteSection replaces the "## title" section of the Markdown file at path with section
// (which starts with that heading), or appends it; the rest of the file is kept. The file is read
// right before it is written, since other tools own its other sections, and replaced atomically.
func WriteSection(path, title, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc := string(old)
	if strings.TrimSpace(doc) == "" {
		doc = Intro
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, []byte(ReplaceSection(doc, title, section)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// ReplaceSection returns doc with its "## title" section (up to the next "## " heading outside a
// code fence) replaced by section, or with section appended when doc has none.
func ReplaceSection(doc, title, section string) string {
	lines := strings.SplitAfter(doc, "\n")
	heading := "## " + title
	start, end := -1, len(lines)
	fenced := false
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(t), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(t, "## ") {
			continue
		}
		if start < 0 && strings.TrimSpace(t) == heading {
			start = i
		} else if start >= 0 {
			end = i
			break
		}
	}
	section = strings.TrimRight(section, "\n") + "\n"
	if start < 0 {
		doc = strings.TrimRight(doc, "\n")
		if doc == "" {
			return section
		}
		return doc + "\n\n" + section
	}
	after := strings.Join(lines[end:], "")
	if after != "" {
		section += "\n"
	}
	return strings.Join(lines[:start], "") + section + after
}
