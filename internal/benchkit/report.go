package benchkit

// The report: each measuring command owns one "## " section of docs/benchmarks.md and replaces
// only that one, so the commands can run in any order.

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
	start, end := findSection(lines, title)
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

// Section is the body of doc's "## title" section, without its heading; false when doc has none.
func Section(doc, title string) (string, bool) {
	lines := strings.SplitAfter(doc, "\n")
	start, end := findSection(lines, title)
	if start < 0 {
		return "", false
	}
	return strings.Join(lines[start+1:end], ""), true
}

// findSection is the line of the "## title" heading and the line after its section's last, or
// -1 when there is no such heading. Headings inside code fences do not count.
func findSection(lines []string, title string) (start, end int) {
	heading := "## " + title
	start, end = -1, len(lines)
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
			return start, i
		}
	}
	return start, end
}

// CommandLine is the command that reproduces a run of a truthboard-tools subcommand with args,
// for the report, quoted for a POSIX shell.
func CommandLine(subcommand string, args []string) string {
	parts := []string{"go", "run", "./cmd/truthboard-tools", subcommand}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Thousands writes an integer with thousands separators: 1,000,000.
func Thousands[T ~int | ~int64 | ~uint64](n T) string {
	s := fmt.Sprint(n)
	sign := ""
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		sign, s = "-", rest
	}
	var b strings.Builder
	b.WriteString(sign)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
