package event

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// now is the server time of every test: fixed, so messages and golden files are stable.
var now = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// validEvent has every field set to a valid value.
func validEvent() Event {
	return Event{
		EventID:    "evt-1",
		OccurredAt: now.Add(-time.Minute),
		Moment:     "fmot",
		Channel:    "web",
		Touchpoint: "checkout",
		Stage:      "purchase",
		Outcome:    "completed",
		CustomerID: "cust-1",
		JourneyID:  "jrn-1",
		CSAT:       ptr[uint8](4),
		NPS:        ptr[uint8](9),
		CES:        ptr[uint8](6),
		Sentiment:  ptr(0.5),
		WaitMS:     ptr[uint32](1200),
		HandleMS:   ptr[uint32](60000),
		Region:     "emea",
		Product:    "broadband",
		Segment:    "consumer",
		AgentTeam:  "tier1",
		Attributes: map[string]string{"plan": "gold"},
	}
}

func attrs(n int, key func(i int) string, value string) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[key(i)] = value
	}
	return m
}

func TestValidate(t *testing.T) {
	x := strings.Repeat
	type tc struct {
		name   string
		mutate func(*Event)
		field  string // "" with msg "" means valid
		msg    string
	}
	cases := []tc{
		{"all fields valid", func(e *Event) {}, "", ""},
		{"only required fields", func(e *Event) {
			*e = Event{EventID: "e", OccurredAt: now, Moment: "zmot", Channel: "app", Touchpoint: "t"}
		}, "", ""},

		{"event_id missing", func(e *Event) { e.EventID = "" }, "event_id", "is required"},
		{"event_id 1 char", func(e *Event) { e.EventID = "x" }, "", ""},
		{"event_id 100 chars", func(e *Event) { e.EventID = x("x", 100) }, "", ""},
		{"event_id 101 chars", func(e *Event) { e.EventID = x("x", 101) }, "event_id", "must be at most 100 characters (got 101)"},
		{"event_id 100 two-byte chars", func(e *Event) { e.EventID = x("é", 100) }, "", ""},
		{"event_id 101 two-byte chars", func(e *Event) { e.EventID = x("é", 101) }, "event_id", "must be at most 100 characters (got 101)"},
		{"event_id invalid UTF-8", func(e *Event) { e.EventID = "a\xffb" }, "event_id", "must be valid UTF-8 text"},

		{"occurred_at missing", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at", "is required"},
		{"occurred_at now", func(e *Event) { e.OccurredAt = now }, "", ""},
		{"occurred_at 5 min ahead", func(e *Event) { e.OccurredAt = now.Add(5 * time.Minute) }, "", ""},
		{"occurred_at past 5 min ahead", func(e *Event) { e.OccurredAt = now.Add(5*time.Minute + time.Millisecond) },
			"occurred_at", "must be at most 5 minutes in the future (got 2026-11-22T09:05:00.001Z, server time 2026-11-22T09:00:00Z)"},
		{"occurred_at 1 h ahead", func(e *Event) { e.OccurredAt = now.Add(time.Hour) },
			"occurred_at", "must be at most 5 minutes in the future (got 2026-11-22T10:00:00Z, server time 2026-11-22T09:00:00Z)"},
		{"occurred_at in another zone", func(e *Event) { e.OccurredAt = now.In(time.FixedZone("", 3600)) }, "", ""},
		{"occurred_at at retention", func(e *Event) { e.OccurredAt = now.Add(-DefaultRetention) }, "", ""},
		{"occurred_at past retention", func(e *Event) { e.OccurredAt = now.Add(-DefaultRetention - time.Second) },
			"occurred_at", "must be at most 30 days in the past (got 2026-10-23T08:59:59Z, server time 2026-11-22T09:00:00Z)"},

		{"moment missing", func(e *Event) { e.Moment = "" }, "moment", "is required"},
		{"moment unknown", func(e *Event) { e.Moment = "ZMOT" }, "moment", `must be one of zmot, fmot, smot, tmot, service (got "ZMOT")`},
		{"channel missing", func(e *Event) { e.Channel = "" }, "channel", "is required"},
		{"channel unknown", func(e *Event) { e.Channel = "fax" }, "channel",
			`must be one of web, app, store, voice, ivr, chat, messaging, email, social, review_site, field_service (got "fax")`},

		{"touchpoint missing", func(e *Event) { e.Touchpoint = "" }, "touchpoint", "is required"},
		{"touchpoint 100 chars", func(e *Event) { e.Touchpoint = x("t", 100) }, "", ""},
		{"touchpoint 101 chars", func(e *Event) { e.Touchpoint = x("t", 101) }, "touchpoint", "must be at most 100 characters (got 101)"},
		{"touchpoint invalid UTF-8", func(e *Event) { e.Touchpoint = "\xc3" }, "touchpoint", "must be valid UTF-8 text"},

		{"stage absent", func(e *Event) { e.Stage = "" }, "", ""},
		{"stage unknown", func(e *Event) { e.Stage = "checkout" }, "stage",
			`must be one of initial_contact, purchase, delivery_installation, service_interaction, post_purchase_follow_up (got "checkout")`},
		{"outcome absent", func(e *Event) { e.Outcome = "" }, "", ""},
		{"outcome unknown", func(e *Event) { e.Outcome = "ok" }, "outcome",
			`must be one of resolved, unresolved, abandoned, transferred, escalated, completed, failed (got "ok")`},

		{"customer_id 256 chars", func(e *Event) { e.CustomerID = x("c", 256) }, "", ""},
		{"customer_id 257 chars", func(e *Event) { e.CustomerID = x("c", 257) }, "customer_id", "must be at most 256 characters (got 257)"},
		{"customer_id invalid UTF-8", func(e *Event) { e.CustomerID = "\x80" }, "customer_id", "must be valid UTF-8 text"},
		{"journey_id 256 chars", func(e *Event) { e.JourneyID = x("j", 256) }, "", ""},
		{"journey_id 257 chars", func(e *Event) { e.JourneyID = x("j", 257) }, "journey_id", "must be at most 256 characters (got 257)"},

		{"csat 1", func(e *Event) { e.CSAT = ptr[uint8](1) }, "", ""},
		{"csat 5", func(e *Event) { e.CSAT = ptr[uint8](5) }, "", ""},
		{"csat 0", func(e *Event) { e.CSAT = ptr[uint8](0) }, "csat", "must be an integer from 1 to 5 (got 0)"},
		{"csat 6", func(e *Event) { e.CSAT = ptr[uint8](6) }, "csat", "must be an integer from 1 to 5 (got 6)"},
		{"nps 0", func(e *Event) { e.NPS = ptr[uint8](0) }, "", ""},
		{"nps 10", func(e *Event) { e.NPS = ptr[uint8](10) }, "", ""},
		{"nps 11", func(e *Event) { e.NPS = ptr[uint8](11) }, "nps", "must be an integer from 0 to 10 (got 11)"},
		{"ces 1", func(e *Event) { e.CES = ptr[uint8](1) }, "", ""},
		{"ces 7", func(e *Event) { e.CES = ptr[uint8](7) }, "", ""},
		{"ces 0", func(e *Event) { e.CES = ptr[uint8](0) }, "ces", "must be an integer from 1 to 7 (got 0)"},
		{"ces 8", func(e *Event) { e.CES = ptr[uint8](8) }, "ces", "must be an integer from 1 to 7 (got 8)"},

		{"sentiment -1", func(e *Event) { e.Sentiment = ptr(-1.0) }, "", ""},
		{"sentiment 1", func(e *Event) { e.Sentiment = ptr(1.0) }, "", ""},
		{"sentiment below -1", func(e *Event) { e.Sentiment = ptr(math.Nextafter(-1, -2)) }, "sentiment", "must be a number from -1 to 1 (got -1.0000000000000002)"},
		{"sentiment above 1", func(e *Event) { e.Sentiment = ptr(1.5) }, "sentiment", "must be a number from -1 to 1 (got 1.5)"},
		{"sentiment NaN", func(e *Event) { e.Sentiment = ptr(math.NaN()) }, "sentiment", "must be a number from -1 to 1 (got NaN)"},
		{"sentiment +Inf", func(e *Event) { e.Sentiment = ptr(math.Inf(1)) }, "sentiment", "must be a number from -1 to 1 (got +Inf)"},

		{"wait_ms 0", func(e *Event) { e.WaitMS = ptr[uint32](0) }, "", ""},
		{"wait_ms 86400000", func(e *Event) { e.WaitMS = ptr[uint32](86_400_000) }, "", ""},
		{"wait_ms 86400001", func(e *Event) { e.WaitMS = ptr[uint32](86_400_001) }, "wait_ms", "must be an integer from 0 to 86400000 (got 86400001)"},
		{"handle_ms 86400000", func(e *Event) { e.HandleMS = ptr[uint32](86_400_000) }, "", ""},
		{"handle_ms 86400001", func(e *Event) { e.HandleMS = ptr[uint32](86_400_001) }, "handle_ms", "must be an integer from 0 to 86400000 (got 86400001)"},
	}
	for _, dim := range []struct {
		name string
		set  func(*Event, string)
	}{
		{"region", func(e *Event, s string) { e.Region = s }},
		{"product", func(e *Event, s string) { e.Product = s }},
		{"segment", func(e *Event, s string) { e.Segment = s }},
		{"agent_team", func(e *Event, s string) { e.AgentTeam = s }},
	} {
		cases = append(cases,
			tc{dim.name + " 64 chars", func(e *Event) { dim.set(e, x("r", 64)) }, "", ""},
			tc{dim.name + " 64 three-byte chars", func(e *Event) { dim.set(e, x("€", 64)) }, "", ""},
			tc{dim.name + " 65 chars", func(e *Event) { dim.set(e, x("r", 65)) }, dim.name, "must be at most 64 characters (got 65)"},
			tc{dim.name + " invalid UTF-8", func(e *Event) { dim.set(e, "\xed\xa0\x80") }, dim.name, "must be valid UTF-8 text"},
		)
	}
	key := func(i int) string { return fmt.Sprintf("k%02d", i) }
	cases = append(cases,
		tc{"attributes 25 keys", func(e *Event) { e.Attributes = attrs(25, key, "v") }, "", ""},
		tc{"attributes 26 keys", func(e *Event) { e.Attributes = attrs(26, key, "v") }, "attributes", "must have at most 25 keys (got 26)"},
		tc{"attribute key 40 chars", func(e *Event) { e.Attributes = map[string]string{x("k", 40): "v"} }, "", ""},
		tc{"attribute key 41 chars", func(e *Event) { e.Attributes = map[string]string{x("k", 41): "v"} }, "attributes",
			`key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"… must be at most 40 characters (got 41)`},
		tc{"attribute key empty", func(e *Event) { e.Attributes = map[string]string{"": "v"} }, "attributes", "must not have an empty key"},
		tc{"attribute key invalid UTF-8", func(e *Event) { e.Attributes = map[string]string{"\xff": "v"} }, "attributes", `keys must be valid UTF-8 text (got "\xff")`},
		tc{"attribute value empty", func(e *Event) { e.Attributes = map[string]string{"k": ""} }, "", ""},
		tc{"attribute value 100 chars", func(e *Event) { e.Attributes = map[string]string{"k": x("v", 100)} }, "", ""},
		tc{"attribute value 101 chars", func(e *Event) { e.Attributes = map[string]string{"color": x("v", 101)} }, "attributes.color", "must be at most 100 characters (got 101)"},
		tc{"attribute value invalid UTF-8", func(e *Event) { e.Attributes = map[string]string{"color": "r\xffd"} }, "attributes.color", "must be valid UTF-8 text"},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := validEvent()
			c.mutate(&e)
			errs := Validate(&e, now, DefaultRetention)
			if c.msg == "" {
				if errs != nil {
					t.Fatalf("Validate = %v, want no problem", errs)
				}
				return
			}
			want := FieldError{Index: 0, Field: c.field, Message: c.msg}
			if len(errs) != 1 || errs[0] != want {
				t.Fatalf("Validate =\n  %#v\nwant\n  %#v", errs, []FieldError{want})
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	e := Event{Moment: "x", CSAT: ptr[uint8](9), Attributes: map[string]string{"b": strings.Repeat("v", 101), "a": strings.Repeat("v", 101)}}
	got := Validate(&e, now, 0)
	want := []FieldError{
		{0, "event_id", "is required"},
		{0, "occurred_at", "is required"},
		{0, "moment", `must be one of zmot, fmot, smot, tmot, service (got "x")`},
		{0, "channel", "is required"},
		{0, "touchpoint", "is required"},
		{0, "csat", "must be an integer from 1 to 5 (got 9)"},
		{0, "attributes.a", "must be at most 100 characters (got 101)"},
		{0, "attributes.b", "must be at most 100 characters (got 101)"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Validate =\n%v\nwant\n%v", got, want)
	}
}

func TestValidateRetention(t *testing.T) {
	e := validEvent()
	e.OccurredAt = now.Add(-2 * time.Hour)
	if errs := Validate(&e, now, 3*time.Hour); errs != nil {
		t.Fatalf("2 h old with 3 h retention: %v", errs)
	}
	errs := Validate(&e, now, time.Hour)
	want := "must be at most 1 hour in the past (got 2026-11-22T07:00:00Z, server time 2026-11-22T09:00:00Z)"
	if len(errs) != 1 || errs[0].Message != want {
		t.Fatalf("2 h old with 1 h retention: %v, want %q", errs, want)
	}
}

func TestFieldErrorError(t *testing.T) {
	for _, c := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{3, "csat", "must be an integer from 1 to 5 (got 7)"}, "event 3: csat: must be an integer from 1 to 5 (got 7)"},
		{FieldError{0, "", "must be a JSON object (got 5)"}, "event 0: must be a JSON object (got 5)"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

func TestWholeNumber(t *testing.T) {
	for _, c := range []struct {
		lit   string
		v     int64
		whole bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"7", 7, true}, {"-7", -7, true},
		{"4.0", 4, true}, {"4.50e1", 45, true}, {"4e0", 4, true}, {"1E+2", 100, true},
		{"100e-2", 1, true}, {"0e99999", 0, true}, {"0.000", 0, true}, {"86400000", 86400000, true},
		{"999999999999999", 999999999999999, true}, {"1000000000000000", 0, false},
		{"4.5", 0, false}, {"0.5", 0, false}, {"1e400", 0, false}, {"1e-400", 0, false},
		{"4.0000000000000001", 0, false}, {"12345678901234567890", 0, false},
		{"1e999999999999999999999", 0, false}, {"-1e-1", 0, false},
	} {
		v, whole := wholeNumber([]byte(c.lit))
		if v != c.v || whole != c.whole {
			t.Errorf("wholeNumber(%s) = %d, %v, want %d, %v", c.lit, v, whole, c.v, c.whole)
		}
	}
}
