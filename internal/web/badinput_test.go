package web_test

// TestBadInput sends a catalogue of bad input to a running server on a real ClickHouse: bodies
// and headers of POST /v1/events, parameters of GET /v1/metrics and /v1/consistency, messages
// of /v1/live, the screens' pairing, commands and playlists. It writes the answers it got into docs/bad-input.md, one table row per input, and
// fails when the file and the answers differ, so a row cannot drift from the behaviour:
//
//	go test ./internal/web -run TestBadInput -update
//
// rewrites the file, whose diff then shows what changed. It also checks what a row does not
// show: nothing of a refused request is stored, the valid events of a mixed request are, no
// answer is a 5xx, and a hostile filter value counts exactly the events that carry it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/config"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/live"
	"github.com/truthboard/truthboard/internal/store/storetest"
	"github.com/truthboard/truthboard/internal/web"
)

var updateBadInput = flag.Bool("update", false, "rewrite docs/bad-input.md from the answers of the server")

const badInputDoc = "../../docs/bad-input.md"

// badNow is the server's clock, so that every answer naming a time is the same on every run.
var badNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// badAt is when the catalogue's valid events occurred: a minute before badNow.
const badAt = "2026-03-10T11:59:00Z"

func TestBadInput(t *testing.T) {
	var doc strings.Builder
	doc.WriteString(badInputIntro)
	t.Run("events", func(t *testing.T) { doc.WriteString(ingestCatalogue(t)) })
	s := startBadInputViewer(t)
	t.Run("metrics", func(t *testing.T) { doc.WriteString(metricsCatalogue(t, s)) })
	t.Run("live", func(t *testing.T) { doc.WriteString(liveCatalogue(t, s)) })
	t.Run("screens", func(t *testing.T) { doc.WriteString(screensCatalogue(t)) })
	doc.WriteString(badInputOutro)
	if t.Failed() {
		return // a section is missing or wrong: the file is not the catalogue
	}
	got := doc.String()
	if *updateBadInput {
		if err := os.WriteFile(badInputDoc, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(badInputDoc)
	if err != nil {
		t.Fatalf("%v (go test ./internal/web -run TestBadInput -update writes it)", err)
	}
	if got != string(want) {
		w, g := strings.Split(string(want)+"\n", "\n"), strings.Split(got+"\n", "\n")
		i := 0
		for i < len(w)-1 && i < len(g)-1 && w[i] == g[i] {
			i++
		}
		t.Errorf("the answers differ from docs/bad-input.md from line %d (go test ./internal/web -run TestBadInput -update rewrites it; review its diff):\nin the file: %.600s\nanswered:    %.600s",
			i+1, w[i], g[i])
	}
}

var badInputIntro = `# Bad input and the answers it gets

Every row below is a request that was sent to a running Truthboard on ClickHouse, with the answer
it got. ` + "`internal/web/badinput_test.go`" + ` sends them, writes this file from the answers
(` + "`go test ./internal/web -run TestBadInput -update`" + `) and fails when an answer differs from
its row, so the catalogue is the behaviour. It checks too what a row does not show: nothing of a
refused request is stored, the valid events of a mixed request are, no answer is a 5xx, and a
hostile filter value counts exactly the events that carry it.

The server runs with the default limits of ` + "`truthboard serve`" + ` (a body of ` + mib(config.Default().MaxBodyBytes) + ` once decompressed,
10,000 events per request, 30 days of retention, live messages of 4 KiB, ` + strconv.Itoa(liveBurst) + ` live messages in a
burst then ` + strconv.FormatFloat(config.Default().LiveSubscribeRate, 'g', -1, 64) + ` per second, ` + strconv.Itoa(config.Default().AuthFailuresPerMinute) + ` wrong credentials per address and minute) and its clock at
2026-03-10T12:00:00Z.

How inputs are written: ` + "`…`" + ` in an event stands for the members of a valid event that the row
does not show, in this order: ` + "`\"event_id\":\"e1\",\"occurred_at\":\"2026-03-10T11:59:00Z\",\"moment\":\"fmot\",\"channel\":\"web\",\"touchpoint\":\"checkout\"`" + `
(each event has an id of its own); the members shown follow them. ` + "`x×101`" + ` is 101 times the
character x, and ` + "`\\xNN`" + ` a byte that is not printable text (` + "`\\x0A`" + ` a line feed).

The same kinds of input are run through the parsers alone, far more of them, by the fuzz targets
at the end of this page.
`

const badInputOutro = `
## Fuzzing

` + "`make fuzz`" + ` fuzzes each parser for ` + "`FUZZTIME`" + ` (default 5m; ` + "`make fuzz FUZZTIME=30s`" + ` for a short
run). Their seed corpora, hostile inputs like the ones above, run in every ` + "`go test`" + `.

| target | package | what must hold for any input |
|---|---|---|
| ` + "`FuzzDecode`" + ` | ` + "`internal/event`" + ` | no panic, the same answer twice; every event of the body either accepted or reported, never both; accepted events pass ` + "`Validate`" + ` and survive a JSON round trip; invalid JSON exactly when ` + "`encoding/json`" + ` says so |
| ` + "`FuzzParseQuery`" + ` | ` + "`internal/rollup`" + ` | no panic, the same answer twice; an error names a parameter of the query; an accepted query holds only known windows and dimensions and trimmed filter values of 1 to 100 characters of UTF-8 without NUL or comma, at most 50 per filter; it re-encodes and re-parses to itself; the SQL text of every query built from it is the same whatever its filter values (they are bound) |
| ` + "`FuzzParseClientMessage`" + ` | ` + "`internal/live`" + ` | no panic, the same answer twice; an error names the field at fault, or the message as a whole; an accepted subscription holds only allowed values and, written back as a message, reads back as itself |
`

// ---- the events of the catalogue, and how inputs are shown ----

// requiredMembers are the members of a valid event, "…" in the catalogue; event_id is made
// per event.
var requiredMembers = [][2]string{
	{"event_id", ""}, {"occurred_at", `"` + badAt + `"`}, {"moment", `"fmot"`}, {"channel", `"web"`}, {"touchpoint", `"checkout"`},
}

// catalogue builds the inputs of one section and shows them short.
type catalogue struct {
	ids   int
	short map[string]bool // texts of required members, shown as "…"
}

func newCatalogue() *catalogue { return &catalogue{short: map[string]bool{}} }

// ev returns a valid event with a new id followed by members, each raw JSON `"name":value`; a
// required member of a name in members is left out for it.
func (c *catalogue) ev(members ...string) string {
	c.ids++
	var req []string
	for _, m := range requiredMembers {
		if slices.ContainsFunc(members, func(s string) bool { return memberName(s) == m[0] }) {
			continue
		}
		v := m[1]
		if m[0] == "event_id" {
			v = fmt.Sprintf(`"e%d"`, c.ids)
		}
		req = append(req, `"`+m[0]+`":`+v)
	}
	all := strings.Join(req, ",")
	if all != "" {
		c.short[all] = true
	}
	if len(members) > 0 {
		if all != "" {
			all += ","
		}
		all += strings.Join(members, ",")
	}
	return "{" + all + "}"
}

func memberName(m string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(m, `"`), `"`)
	return name
}

// show writes an input for the catalogue: required members as "…", runs of 12 or more of one
// character (but spaces) as x×N, bytes that are not printable text as \xNN.
func (c *catalogue) show(b []byte) string {
	s := string(b)
	parts := make([]string, 0, len(c.short))
	for p := range c.short {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool {
		return len(parts[i]) > len(parts[j]) || len(parts[i]) == len(parts[j]) && parts[i] < parts[j]
	})
	for _, p := range parts {
		s = strings.ReplaceAll(s, p, "…")
	}
	return showText(s)
}

func showText(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			for _, b := range []byte(s[i : i+size]) {
				fmt.Fprintf(&out, `\x%02X`, b)
			}
			i += size
			continue
		}
		n := 1
		for j := i + size; j < len(s) && strings.HasPrefix(s[j:], string(r)); j += size {
			n++
		}
		if n >= 12 && r != ' ' {
			fmt.Fprintf(&out, "%c×%d", r, n)
		} else {
			out.WriteString(strings.Repeat(string(r), n))
		}
		i += n * size
	}
	return out.String()
}

// code writes text as a code span of a table cell.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// ---- POST /v1/events ----

type badIngestCase struct {
	// input is what the catalogue shows for the body; "" shows the body itself.
	input string
	body  []byte
	// headers are pairs of name and value replacing the defaults (Authorization with an ingest
	// key, Content-Type: application/json); a value "" leaves the header out.
	headers []string
	// raw, when set, is the request's head as sent on the connection, for what net/http does
	// not send: the body follows it.
	raw string
	// stored is how many events the request must store.
	stored int
}

func ingestCases(t *testing.T, c *catalogue) []badIngestCase {
	ev := c.ev
	b := func(s string) []byte { return []byte(s) }
	one := func(members ...string) badIngestCase { return badIngestCase{body: b(ev(members...))} }
	ok := func(ic badIngestCase, n int) badIngestCase { ic.stored = n; return ic }
	with := func(ic badIngestCase, headers ...string) badIngestCase { ic.headers = headers; return ic }
	nd := "application/x-ndjson"

	// Bodies built from many events.
	events := func(n int, sep string) []byte {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = ev()
		}
		return b(strings.Join(evs, sep))
	}
	maxEvents, maxBody := config.Default().MaxEvents, config.Default().MaxBodyBytes
	atLimit := events(maxEvents, ",")
	over := events(maxEvents+1, ",")
	overND := events(maxEvents+1, "\n")
	attrs := func(n int) string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf(`"a%02d":"v"`, i+1))
		}
		return `"attributes":{` + strings.Join(kv, ",") + "}"
	}
	unknown := func(n int) []string {
		var m []string
		for i := range n {
			m = append(m, fmt.Sprintf(`"x%03d":%d`, i, i))
		}
		return m
	}
	deep := b(ev(`"attributes":` + strings.Repeat(`{"a":`, 100) + `"x"` + strings.Repeat("}", 100)))
	padded := func(size int) []byte { // one valid event padded with spaces to size bytes
		e := "[" + ev()
		return b(e + strings.Repeat(" ", size-len(e)-1) + "]")
	}
	atMax, overMax := padded(maxBody), padded(maxBody+1)
	bomb := gzipped(t, b("["+ev()+strings.Repeat(" ", 100<<20)+"]"))
	valid := ev()
	zipped := gzipped(t, b(valid))
	corrupt := bytes.Clone(zipped)
	crc := crc32.ChecksumIEEE([]byte(valid)) ^ 1
	corrupt[len(corrupt)-8], corrupt[len(corrupt)-7], corrupt[len(corrupt)-6], corrupt[len(corrupt)-5] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
	utf16 := func(s string) []byte {
		var out []byte
		out = append(out, 0xFF, 0xFE)
		for _, r := range s {
			out = append(out, byte(r), byte(r>>8))
		}
		return out
	}
	cut := ev()
	dup := ev()
	hostileID := ev(`"event_id":"x'); DROP TABLE events; --"`)

	return []badIngestCase{
		// The body as a whole.
		{input: "(empty)", body: nil},
		{body: b("  \n ")},
		{body: b("null")},
		{body: b(`"hello"`)},
		{body: b("42")},
		{body: b("[]")},
		{body: b("{}")},
		{body: b("[null]")},
		{body: b("[[" + ev() + "]]")},
		{body: b("[" + ev() + "," + cut[:40])},
		{body: b(strings.TrimSuffix(ev(), "}") + ",}")},
		{body: b("[" + ev() + ",]")},
		{body: b("[" + ev() + ev() + "]")},
		{body: b(ev() + "\n" + ev())},
		{body: b(`{'event_id':'e1'}`)},
		{body: b("// an event\n" + ev())},
		{body: b("\xEF\xBB\xBF" + ev()), stored: 1},
		{input: "`{…}` in UTF-16 (starts `\\xFF\\xFE{\\x00\"\\x00`)", body: utf16(ev())},
		{body: b(ev() + "\x00")},
		{input: code(`{…,"attributes":{"a":{"a":…"x"…}}}`) + " (100 levels)", body: deep},

		// JSON that is not quite JSON.
		one(`"csat":07`),
		one(`"csat":+5`),
		one(`"csat":0x05`),
		one(`"sentiment":NaN`),
		one(`"sentiment":-Infinity`),
		one(`"touchpoint":"a` + "\t" + `b"`),
		one(`"touchpoint":"a` + "\x00" + `b"`),
		one(`"touchpoint":"\q"`),
		one(`"touchpoint":"\u12"`),

		// Types and values.
		one(`"csat":"5"`),
		one(`"csat":1e400`),
		one(`"csat":-0`),
		ok(one(`"nps":-0`), 1),
		ok(one(`"csat":4.0`), 1),
		one(`"csat":4.5`),
		ok(one(`"nps":1E1`), 1),
		one(`"csat":true`),
		ok(one(`"csat":null`), 1),
		one(`"wait_ms":99999999999999999999`),
		one(`"wait_ms":-1`),
		one(`"sentiment":"NaN"`),
		ok(one(`"sentiment":1e-400`), 1),
		one(`"sentiment":1.0000000001`),
		one(`"event_id":12345`),
		one(`"event_id":""`),
		one(`"event_id":"` + strings.Repeat("x", 101) + `"`),
		one(`"moment":"FMOT"`),
		one(`"channel":"phone"`),
		one(`"stage":"checkout"`, `"outcome":"success"`),
		one(`"moment":null`),
		one(`"colour":"red"`),
		one(`"EVENT_ID":"e1"`),
		one(`"timestamp":"` + badAt + `"`),
		one(`"csat":4`, `"csat":5`),
		one(`"attributes":{"vip":true}`),
		one(`"attributes":{"a":{"b":"c"}}`),
		one(`"attributes":["vip"]`),
		{input: code(`{…,"attributes":{"a01":"v",…,"a26":"v"}}`) + " (26 keys)", body: b(ev(attrs(26)))},
		one(`"attributes":{"note":"` + strings.Repeat("v", 101) + `"}`),
		one(`"attributes":{"":"v"}`),
		one(`"region":"` + strings.Repeat("é", 65) + `"`),
		one(`"touchpoint":"` + strings.Repeat("x", 10<<10) + `"`),
		one(`"product":"caf` + "\xE9" + `"`),
		one(`"product":"` + "\xC0\xAF" + `"`),
		one(`"product":"` + "\xC0\x80" + `"`),
		one(`"product":"` + "\xED\xA0\x80" + `"`),
		one(`"segment":"\ud800"`),
		one(`"caf` + "\xE9" + `":1`),
		ok(one(`"touchpoint":"a\u0000b"`), 1),
		one(`"` + strings.Repeat("k", 10000) + `":1`),
		{input: code(`{…,"x000":0,"x001":1,…,"x299":299}`) + " (300 unknown fields)", body: b(ev(unknown(300)...))},

		// Times.
		one(`"occurred_at":"2026-03-10T12:10:00Z"`),
		ok(one(`"occurred_at":"2026-03-10T12:04:59Z"`), 1),
		one(`"occurred_at":"1970-01-01T00:00:00Z"`),
		one(`"occurred_at":"0001-01-01T00:00:00Z"`),
		one(`"occurred_at":"9999-12-31T23:59:59Z"`),
		one(`"occurred_at":"2026-03-10 11:59:00Z"`),
		one(`"occurred_at":"2026-03-10T11:59:00"`),
		one(`"occurred_at":1773143940`),
		one(`"occurred_at":"2026-03-10T11:59:00+25:00"`),
		one(`"occurred_at":"2026-02-30T11:59:00Z"`),
		one(`"occurred_at":"2026-03-10T11:59:60Z"`),

		// Several events: the valid ones are stored.
		{body: b("[" + ev() + "," + ev(`"csat":9`) + "," + ev(`"colour":"red"`) + "," + ev() + "]"), stored: 2},
		with(badIngestCase{body: b(ev() + "\n" + `{"event_id":` + "\n" + ev() + "\n"), stored: 2}, "Content-Type", nd),
		with(badIngestCase{body: b("[" + ev() + "," + ev() + "]")}, "Content-Type", nd),
		{input: code("[{…},{…}]") + ", the same event twice", body: b("[" + dup + "," + dup + "]"), stored: 1},
		{body: b(hostileID), stored: 1},
		{input: code("[{…},…,{…}]") + " (10,000 events)", body: b("[" + string(atLimit) + "]"), stored: maxEvents},
		{input: code("[{…},…,{…}]") + " (10,001 events)", body: b("[" + string(over) + "]")},
		with(badIngestCase{input: code(`{…}\x0A…\x0A{…}`) + " (10,001 lines)", body: overND}, "Content-Type", nd),

		// Size and encoding.
		{input: code("[{…}␠…␠]") + " padded with spaces to " + mib(maxBody), body: atMax, stored: 1},
		{input: code("[{…}␠…␠]") + " padded with spaces to " + mib(maxBody) + " + 1 byte", body: overMax},
		{input: code("{…}"), raw: "Content-Length: 99999999999", body: b(ev())},
		{input: code("{…}"), raw: "Content-Length: -1", body: b(ev())},
		{input: code("{…}"), raw: "Content-Length: abc", body: b(ev())},
		with(badIngestCase{input: "`[{…}␠…␠]`, 100 MiB of spaces gzipped to " + strconv.Itoa(len(bomb)>>10) + " KiB", body: bomb}, "Content-Encoding", "gzip"),
		with(badIngestCase{body: b(ev())}, "Content-Encoding", "gzip"),
		with(badIngestCase{input: code("{…}") + " gzipped, cut after 20 bytes", body: zipped[:20]}, "Content-Encoding", "gzip"),
		with(badIngestCase{input: code("{…}") + " gzipped, checksum changed", body: corrupt}, "Content-Encoding", "gzip"),
		with(badIngestCase{input: "(empty)"}, "Content-Encoding", "gzip"),
		with(badIngestCase{body: b(ev())}, "Content-Encoding", "br"),
		with(badIngestCase{body: b(ev())}, "Content-Encoding", "gzip, gzip"),
		with(badIngestCase{body: b(ev()), stored: 1}, "Content-Type", "text/plain"),
		with(badIngestCase{body: b(`<event id="e1"/>`)}, "Content-Type", "application/xml"),
		with(badIngestCase{body: b(ev(`"region":"Malm` + "\xF6" + `"`))}, "Content-Type", "application/json; charset=iso-8859-1"),

		// Keys.
		with(badIngestCase{body: b(ev())}, "Authorization", ""),
		with(badIngestCase{body: b(ev())}, "Authorization", "Bearer tbi_wrong"),
		with(badIngestCase{body: b(ev())}, "Authorization", "Basic "+testKey),
		with(badIngestCase{body: b(ev())}, "Authorization", "Bearer "+adminToken),
		with(badIngestCase{body: b(ev()), stored: 1}, "Authorization", "bearer "+testKey),
		with(badIngestCase{body: b(ev())}, "Authorization", "Bearer "+strings.Repeat("k", 10<<10)),
	}
}

// badAnswer is any JSON answer of the API.
type badAnswer struct {
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
	Rejected   int    `json:"rejected"`
	Errors     []ferr `json:"errors"`
	Error      string `json:"error"`
	Param      string `json:"param"`
}

func ingestCatalogue(t *testing.T) string {
	s := startServer(t, serverConfig{web: shippedLimits(web.Options{Now: func() time.Time { return badNow }})})
	c := newCatalogue()
	cases := ingestCases(t, c)
	var out strings.Builder
	out.WriteString("\n## POST /v1/events\n\nWith a valid ingest key and `Content-Type: application/json` unless the row says otherwise. " +
		"*Stored* is how many events of the request ClickHouse holds afterwards.\n\n" +
		"| # | input | status | stored | answer |\n|---|---|---|---|---|\n")
	var before uint64
	for i, ic := range cases {
		status, a, err := sendIngest(s, ic)
		if err != nil {
			t.Errorf("row %d: %v", i+1, err)
			continue
		}
		after := s.count(t)
		stored := int(after - before)
		before = after
		input := ic.input
		if input == "" {
			input = code(c.show(ic.body))
		}
		for j := 0; j+1 < len(ic.headers); j += 2 {
			h := ic.headers[j] + ": " + ic.headers[j+1]
			if ic.headers[j+1] == "" {
				h = "no " + ic.headers[j]
			}
			input = code(showText(h)) + "<br>" + input
		}
		if ic.raw != "" {
			input = code(ic.raw) + "<br>" + input
		}
		switch {
		case status >= 500:
			t.Errorf("row %d (%s): status %d: %+v", i+1, input, status, a)
		case stored != ic.stored:
			t.Errorf("row %d (%s): %d events stored, want %d: status %d %+v", i+1, input, stored, ic.stored, status, a)
		case status == http.StatusAccepted && a.Accepted+a.Duplicates == 0, status != http.StatusAccepted && stored > 0:
			t.Errorf("row %d (%s): status %d, %d stored: %+v", i+1, input, status, stored, a)
		}
		fmt.Fprintf(&out, "| %d | %s | %d | %d | %s |\n", i+1, input, status, stored, ingestAnswerCell(a))
	}
	return out.String()
}

// sendIngest posts one case and reads its JSON answer.
func sendIngest(s *testServer, ic badIngestCase) (int, badAnswer, error) {
	var status int
	var body []byte
	if ic.raw != "" {
		head := "POST /v1/events HTTP/1.1\r\nHost: truthboard\r\nAuthorization: Bearer " + testKey +
			"\r\nContent-Type: application/json\r\nConnection: close\r\n" + ic.raw + "\r\n\r\n"
		resp, b, err := rawHTTP(s.url, append([]byte(head), ic.body...))
		if err != nil {
			return 0, badAnswer{}, err
		}
		status, body = resp.StatusCode, b
	} else {
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/events", bytes.NewReader(ic.body))
		if err != nil {
			return 0, badAnswer{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testKey)
		for i := 0; i+1 < len(ic.headers); i += 2 {
			if ic.headers[i+1] == "" {
				req.Header.Del(ic.headers[i])
			} else {
				req.Header.Set(ic.headers[i], ic.headers[i+1])
			}
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return 0, badAnswer{}, err
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil {
			return 0, badAnswer{}, err
		}
		status = resp.StatusCode
	}
	var a badAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return status, a, fmt.Errorf("status %d, the answer is not JSON: %v: %.300s", status, err, body)
	}
	return status, a, nil
}

// rawHTTP sends a request as bytes and reads the answer.
func rawHTTP(base string, req []byte) (*http.Response, []byte, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(req); err != nil {
		return nil, nil, err
	}
	_ = conn.(*net.TCPConn).CloseWrite() // the body ends here, whatever the head says
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// ingestAnswerCell shows an answer: the error of a request refused as a whole, or the counts
// and the problems of each event (at most 4, and the last).
func ingestAnswerCell(a badAnswer) string {
	if a.Error != "" {
		return code(a.Error)
	}
	cell := fmt.Sprintf("accepted %d, rejected %d", a.Accepted, a.Rejected)
	if a.Duplicates > 0 {
		cell += fmt.Sprintf(", duplicates %d", a.Duplicates)
	}
	for i, e := range a.Errors {
		if i == 4 && len(a.Errors) > 5 {
			cell += fmt.Sprintf("<br>… %d more …", len(a.Errors)-5)
			continue
		}
		if i > 4 && i < len(a.Errors)-1 {
			continue
		}
		where := fmt.Sprintf("[%d]", e.Index)
		if e.Field != "" {
			where += " " + e.Field
		}
		cell += "<br>" + code(showText(where+": "+e.Message))
	}
	return cell
}

// ---- GET /v1/metrics and /v1/consistency, and the live view, on one server ----

// fixture are the events behind the metrics and live rows: some carry the hostile values the
// rows filter on, so a filter that worked as SQL text would count the wrong events.
var fixture = []struct{ region, touchpoint, product string }{
	{"north", "checkout", ""}, {"north", "checkout", ""}, {"south", "checkout", ""},
	{"' OR 1=1 --", "checkout", ""}, {`\`, "checkout", ""}, {"x'); DROP TABLE events; --", "checkout", ""},
	{"", "?", ""}, {"", strings.Repeat("é", 100), ""}, {"", "checkout", "%"},
}

// startBadInputViewer serves metrics and live on a database holding the fixture.
func startBadInputViewer(t *testing.T) *testServer {
	db := storetest.Open(t)
	clock := func() time.Time { return badNow }
	d := config.Default()
	hub := live.NewHub(db, live.Options{Tick: 100 * time.Millisecond, Now: clock, MaxQueries: d.LiveMaxQueries,
		MaxFeeds: d.LiveMaxFeeds, MaxFeedsPerCredential: d.LiveMaxFeedsPerCredential}, slog.New(slog.DiscardHandler))
	s := startServer(t, serverConfig{db: db, web: shippedLimits(web.Options{Hub: hub, Now: clock})})
	t.Cleanup(hub.Close)
	var evs []string
	for i, f := range fixture {
		e := map[string]any{"event_id": fmt.Sprintf("f%d", i), "occurred_at": badAt, "moment": "service",
			"channel": "voice", "touchpoint": f.touchpoint, "csat": 1}
		for k, v := range map[string]string{"region": f.region, "product": f.product} {
			if v != "" {
				e[k] = v
			}
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, string(b))
	}
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	if n := s.count(t); n != uint64(len(fixture)) {
		t.Fatalf("%d fixture events stored, want %d", n, len(fixture))
	}
	return s
}

func fixtureTable() string {
	var out strings.Builder
	out.WriteString("| event | region | touchpoint | product |\n|---|---|---|---|\n")
	for i, f := range fixture {
		fmt.Fprintf(&out, "| f%d | %s | %s | %s |\n", i, code(showText(f.region)), code(showText(f.touchpoint)), code(f.product))
	}
	return out.String()
}

// fixtureCount is how many fixture events carry one of the values in the field.
func fixtureCount(field string, values ...string) int {
	n := 0
	for _, f := range fixture {
		v := map[string]string{"region": f.region, "touchpoint": f.touchpoint, "product": f.product}[field]
		if slices.Contains(values, v) {
			n++
		}
	}
	return n
}

type badMetricsCase struct {
	// path is the request's path and query as sent.
	path string
	// input, when set, is what the catalogue shows instead of path.
	input string
	// token is the bearer token: "" the admin token, "-" none.
	token string
	// events, for a 200, is how many events the answer must count; -1 when it is not checked.
	events int
}

func metricsCases() []badMetricsCase {
	q := url.QueryEscape
	m := func(query string, events int) badMetricsCase {
		return badMetricsCase{path: "/v1/metrics?" + query, events: events}
	}
	bad := func(query string) badMetricsCase { return m(query, -1) }
	all := len(fixture)
	var fifty []string
	for i := range 51 {
		fifty = append(fifty, fmt.Sprintf("r%d", i))
	}
	return []badMetricsCase{
		{path: "/v1/metrics", events: all},
		bad("window=10y"), bad("window=5M"), bad("window=-5m"), bad("window=1m&window=24h"), m("window=", all), bad("window=%00"),
		m("by=moment,moment", all), m("by=region&touchpoint=checkout", fixtureCount("touchpoint", "checkout")), bad("by=product"), bad("by=MOMENT"), bad("by=moment;channel"), m("by=", all),
		bad("compare=yes"), bad("compare=yesterday"), bad("compare=previous&compare=none"), bad("series=1"), bad("recovery=yes"),
		m("format=", all), m("format=json", all), bad("format=xml"), bad("format=CSV"), bad("format=csv&format=json"), bad("format=csv&window=10y"),
		bad("format=csv&series=true&compare=last_week"),
		bad("moment=ZMOT"), bad("channel=web,fax"), m("moment=", all),
		m("region=north", fixtureCount("region", "north")),
		m("region=+north+,north,", fixtureCount("region", "north")),
		m("region=north,south", fixtureCount("region", "north", "south")),
		m("region="+q(`' OR 1=1 --`), fixtureCount("region", `' OR 1=1 --`)),
		m("region="+q(`\' OR 1=1 --`), 0),
		m("region="+q(`north') OR ('1'='1`), 0),
		m("region="+q(`\`), fixtureCount("region", `\`)),
		m("region="+q(`x'); DROP TABLE events; --`), fixtureCount("region", `x'); DROP TABLE events; --`)),
		m("touchpoint="+q("?"), fixtureCount("touchpoint", "?")),
		m("product="+q("%"), fixtureCount("product", "%")),
		m("product=_", 0),
		{path: "/v1/metrics?touchpoint=" + q(strings.Repeat("é", 100)), input: code("/v1/metrics?touchpoint=%C3%A9…%C3%A9") + " (é×100)",
			events: fixtureCount("touchpoint", strings.Repeat("é", 100))},
		{path: "/v1/metrics?touchpoint=" + q(strings.Repeat("é", 101)), input: code("/v1/metrics?touchpoint=%C3%A9…%C3%A9") + " (é×101)", events: -1},
		bad("region=" + strings.Repeat("x", 101)),
		bad("region=" + strings.Repeat("x", 10<<10)),
		{path: "/v1/metrics?region=" + strings.Join(fifty, ","), input: code("/v1/metrics?region=r0,r1,…,r50") + " (51 values)", events: -1},
		bad("region=%FF"), bad("region=%C0%AF"), bad("region=a%00b"),
		bad("Region=north"), bad("regoin=north&colour=red"), bad("=x"), bad("window=%zz"),
		{path: "/v1/metrics", token: "-", events: -1},
		{path: "/v1/metrics", token: testKey, events: -1},
		{path: "/v1/consistency", events: -1},
		{path: "/v1/consistency?by=moment", events: -1},
		{path: "/v1/consistency?compare=previous", events: -1},
		{path: "/v1/consistency?window=10y", events: -1},
		{path: "/v1/consistency?format=xml", events: -1},
		{path: "/v1/consistency?format=csv&compare=last_week", events: -1},
		{path: "/v1/consistency?region=" + q(`' OR 1=1 --`), events: -1},
	}
}

func metricsCatalogue(t *testing.T, s *testServer) string {
	var out strings.Builder
	out.WriteString("\n## GET /v1/metrics and GET /v1/consistency\n\nWith the admin token unless the row says otherwise, " +
		"on a server holding these events (moment `service`, channel `voice`, csat 1, at " + badAt + "):\n\n" + fixtureTable() +
		"\nA filter value is bound as a query argument, never pasted into the SQL text, so a hostile value counts " +
		"exactly the events that carry it. The request is shown as sent, percent-encoded, and decoded below it.\n\n" +
		"| # | request | status | answer |\n|---|---|---|---|\n")
	c := newCatalogue()
	for i, mc := range metricsCases() {
		token := adminToken
		switch mc.token {
		case "-":
			token = ""
		case "":
		default:
			token = mc.token
		}
		status, _, body := apiGet(t, s, mc.path, token)
		input := mc.input
		if input == "" {
			input = showRequest(c, mc.path)
		}
		switch mc.token {
		case "-":
			input = "no Authorization<br>" + input
		case "":
		default:
			input = code("Authorization: Bearer <ingest key>") + "<br>" + input
		}
		cell, err := metricsAnswerCell(status, body, mc.events)
		if err != nil {
			t.Errorf("row %d (%s): %v", i+1, mc.path, err)
		}
		fmt.Fprintf(&out, "| %d | %s | %d | %s |\n", i+1, input, status, cell)
	}
	return out.String()
}

// showRequest shows a path as sent and, when it has percent-encoded parameters, decoded.
func showRequest(c *catalogue, path string) string {
	shown := code(c.show([]byte(path)))
	p, query, _ := strings.Cut(path, "?")
	if dec, err := url.QueryUnescape(query); err == nil && dec != query {
		shown += "<br>" + code(c.show([]byte(p+"?"+dec)))
	}
	return shown
}

// metricsAnswerCell shows an answer: the error and the parameter it names, or what a 200
// counted, which must be events when that is not -1.
func metricsAnswerCell(status int, body []byte, events int) (string, error) {
	if status >= 500 {
		return "", fmt.Errorf("status %d: %s", status, body)
	}
	if status != http.StatusOK {
		var a badAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.Error == "" {
			return "", fmt.Errorf("status %d without a JSON error: %s", status, body)
		}
		cell := code(a.Error)
		if a.Param != "" {
			cell += "<br>param " + code(a.Param)
		}
		return cell, nil
	}
	var res struct {
		Total *struct {
			Events int `json:"events"`
		} `json:"total"`
		Rows    []json.RawMessage `json:"rows"`
		Moments []struct {
			Moment string `json:"moment"`
		} `json:"moments"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return "", err
	}
	if res.Total == nil { // consistency
		var ms []string
		for _, m := range res.Moments {
			ms = append(ms, m.Moment)
		}
		return fmt.Sprintf("moments: %s", code(strings.Join(ms, ", "))), nil
	}
	if events >= 0 && res.Total.Events != events {
		return "", fmt.Errorf("%d events counted, want %d", res.Total.Events, events)
	}
	return fmt.Sprintf("total.events %d, rows %d", res.Total.Events, len(res.Rows)), nil
}

// ---- /v1/live ----

type badLiveCase struct {
	// msg is the message sent after connecting; binary sends it as a binary frame.
	msg    string
	binary bool
	// input, when set, is what the catalogue shows instead of msg.
	input string
	// handshake, when set, is the upgrade request's problem: no upgrade, no token, a wrong
	// token or a foreign origin.
	handshake string
	// events, for a snapshot, is how many events its KPIs must count.
	events int
	// burst, when above 1, sends msg that many times at once; the answer is then the frame
	// that ends the connection.
	burst int
}

func liveCases() []badLiveCase {
	sub := func(rest string) string { return `{"type":"subscribe","view":"executive"` + rest + "}" }
	filter := func(f string) string { return sub(`,"filters":{` + f + `}`) }
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf(`"r%d"`, i)
	}
	all := len(fixture)
	return []badLiveCase{
		{handshake: "no upgrade"}, {handshake: "no token"}, {handshake: "wrong token"}, {handshake: "foreign origin"},
		{msg: ""}, {msg: " "}, {msg: "null"}, {msg: `["subscribe"]`}, {msg: `{"type":"subscribe"`},
		{msg: sub("") + sub("")}, {msg: `{"type":"hello","view":"executive"}`}, {msg: `{"type":"subscribe","view":"wall"}`},
		{msg: `{"type":"subscribe","view":"EXECUTIVE"}`}, {msg: `{"TYPE":"subscribe","view":"executive"}`},
		{msg: sub(`,"view":"tv"`)}, {msg: sub(`,"colour":"red"`)}, {msg: sub(`,"window":"10y"`)}, {msg: sub(`,"window":60`)},
		{msg: filter(`"colour":["red"]`)}, {msg: filter(`"region":"north"`)}, {msg: filter(`"region":[1]`)},
		{msg: sub(`,"filters":["region"]`)}, {msg: filter(`"region":["a"],"region":["b"]`)},
		{msg: filter(`"channel":["web","fax"]`)}, {msg: filter(`"region":["` + strings.Repeat("x", 101) + `"]`)},
		{msg: filter(`"region":[` + strings.Join(many, ",") + `]`), input: code(filter(`"region":["r0","r1",…,"r50"]`)) + " (51 values)"},
		{msg: filter(`"region":["caf` + "\xE9" + `"]`)}, {msg: filter(`"region":["a\u0000b"]`)}, {msg: "\xFF\xFE"},
		{msg: sub(""), events: all},
		{msg: sub(""), binary: true, events: all},
		{msg: filter(`"region":["north"," north ","north,south"]`), events: fixtureCount("region", "north", "south")},
		{msg: filter(`"region":["' OR 1=1 --"]`), events: fixtureCount("region", "' OR 1=1 --")},
		{msg: filter(`"region":["x'); DROP TABLE events; --"]`), events: fixtureCount("region", "x'); DROP TABLE events; --")},
		{msg: filter(`"touchpoint":["?"]`), events: fixtureCount("touchpoint", "?")},
		{msg: `{"type":"subscribe","view":"drilldown","filters":{"region":["\\"]}}`, events: fixtureCount("region", `\`)},
		{msg: filter(`"region":["` + strings.Repeat("x", 8000) + `"]`)},
		{msg: `{"type":"hello"}`, burst: liveBurst + 1, input: code(`{"type":"hello"}`) + " " + strconv.Itoa(liveBurst+1) + " times at once"},
	}
}

// liveBurst is how many messages a live connection may send at once (web.LiveOptions).
const liveBurst = 10

// shippedLimits sets in o the limits that truthboard serve has by default (config.Default, as
// internal/server passes them on), so that the catalogue shows the answers of a server as
// shipped.
func shippedLimits(o web.Options) web.Options {
	d := config.Default()
	o.Limits = event.Limits{MaxBodyBytes: int64(d.MaxBodyBytes), MaxEvents: d.MaxEvents, Retention: d.Retention}
	o.MaxInflightBytes, o.MaxInflightBytesPerKey = int64(d.MaxInflightBytes), int64(d.MaxInflightBytesPerKey)
	o.MinUploadRate, o.AuthFailuresPerMinute, o.ReadMaxQueries = int64(d.MinUploadRate), d.AuthFailuresPerMinute, d.ReadMaxQueries
	o.Live.MaxConnsPerCredential, o.Live.MaxConnsPerAddress = d.LiveMaxConnsPerCredential, d.LiveMaxConnsPerAddress
	o.Live.SubscribeRate, o.Live.SubscribeBurst = d.LiveSubscribeRate, liveBurst
	return o
}

// mib shows a size of whole MiB, e.g. "8 MiB".
func mib(n int) string { return strconv.Itoa(n>>20) + " MiB" }

func liveCatalogue(t *testing.T, s *testServer) string {
	var out strings.Builder
	out.WriteString("\n## /v1/live (WebSocket)\n\nOn the server of the metrics rows, with the admin token as `?token=`. " +
		"Each message is sent as a text frame (unless the row says binary) on a new connection, and the answer is the " +
		"first frame the server sends back: an `error` frame, which leaves the connection open for the next message, " +
		"a `snapshot` (with the number of events its KPIs count), or a close frame. A row that sends its message several " +
		"times at once shows the frame that ends the connection.\n\n" +
		"| # | input | answer |\n|---|---|---|\n")
	c := newCatalogue()
	for i, lc := range liveCases() {
		var input, cell string
		var err error
		if lc.handshake != "" {
			input, cell, err = liveHandshake(s, lc.handshake)
		} else {
			input = lc.input
			switch {
			case input != "":
			case lc.msg == "":
				input = "(empty)"
			default:
				input = code(c.show([]byte(lc.msg)))
			}
			if lc.binary {
				input += " (binary frame)"
			}
			cell, err = liveAnswer(s, lc)
		}
		if err != nil {
			t.Errorf("row %d (%s): %v", i+1, input, err)
		}
		fmt.Fprintf(&out, "| %d | %s | %s |\n", i+1, input, cell)
	}
	return out.String()
}

func liveURL(s *testServer, token string) string {
	u := strings.Replace(s.url, "http://", "ws://", 1) + "/v1/live"
	if token != "" {
		u += "?token=" + token
	}
	return u
}

// liveHandshake tries an upgrade with one problem and shows the HTTP answer.
func liveHandshake(s *testServer, problem string) (input, cell string, err error) {
	var resp *http.Response
	switch problem {
	case "no upgrade":
		input = "`GET /v1/live` without `Upgrade: websocket`"
		resp, err = s.client.Get(s.url + "/v1/live?token=" + adminToken)
	default:
		token, h := adminToken, http.Header{}
		switch problem {
		case "no token":
			token, input = "", "upgrade without a token"
		case "wrong token":
			token, input = testKey, "upgrade with an ingest key as `?token=`"
		case "foreign origin":
			h.Set("Origin", "https://evil.example")
			input = "upgrade with `Origin: https://evil.example`"
		}
		var conn *websocket.Conn
		conn, resp, err = websocket.DefaultDialer.Dial(liveURL(s, token), h)
		if conn != nil {
			conn.Close()
			return input, "", errors.New("the upgrade succeeded")
		}
		if resp != nil {
			err = nil
		}
	}
	if err != nil {
		return input, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a badAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Error == "" {
		return input, "", fmt.Errorf("status %d without a JSON error: %s", resp.StatusCode, body)
	}
	return input, fmt.Sprintf("HTTP %d %s", resp.StatusCode, code(a.Error)), nil
}

// liveAnswer sends one message on a new connection and shows the first frame back.
func liveAnswer(s *testServer, lc badLiveCase) (string, error) {
	conn, _, err := websocket.DefaultDialer.Dial(liveURL(s, adminToken), nil)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	kind := websocket.TextMessage
	if lc.binary {
		kind = websocket.BinaryMessage
	}
	for range max(1, lc.burst) {
		if err := conn.WriteMessage(kind, []byte(lc.msg)); err != nil {
			return "", err
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	for lc.burst > 1 && err == nil { // the answers to the burst's first messages, until the close
		_, b, err = conn.ReadMessage()
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return strings.TrimSpace(fmt.Sprintf("close %d %s", ce.Code, code(ce.Text))), nil
	}
	if err != nil {
		return "", err
	}
	var m struct {
		Type     string `json:"type"`
		Error    string `json:"error"`
		Feed     string `json:"feed"`
		Degraded bool   `json:"degraded"`
		Problem  string `json:"problem"`
		Data     struct {
			KPIs struct {
				Events int `json:"events"`
			} `json:"kpis"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("frame is not JSON: %v: %.300s", err, b)
	}
	switch {
	case m.Type == "error":
		return "error " + code(m.Error), nil
	case m.Type != "snapshot":
		return "", fmt.Errorf("first frame %s, want an error or a snapshot", b)
	case m.Degraded:
		return "", fmt.Errorf("degraded snapshot: %s", m.Problem)
	case m.Data.KPIs.Events != lc.events:
		return "", fmt.Errorf("snapshot counts %d events, want %d", m.Data.KPIs.Events, lc.events)
	}
	return fmt.Sprintf("snapshot of %s, kpis.events %d", code(m.Feed), m.Data.KPIs.Events), nil
}
