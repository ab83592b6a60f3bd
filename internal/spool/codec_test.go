package spool

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// The decoder never panics and never reads out of bounds, whatever the payload: a damaged
// record must be an error, not a crash of the drainer.
func FuzzDecodeEvents(f *testing.F) {
	u8, f64, u32 := uint8(3), -0.5, uint32(1200)
	full := encodeEvents(nil, []event.Event{{EventID: "e", OccurredAt: time.Unix(1_700_000_000, 5).UTC(), Moment: "fmot",
		Channel: "web", Touchpoint: "t", CSAT: &u8, Sentiment: &f64, WaitMS: &u32, Attributes: map[string]string{"a": "b"}}})
	f.Add(full, 1)
	f.Add(full[:len(full)-3], 1)
	f.Add(encodeEvents(nil, nil), 0)
	f.Add([]byte{payloadVersion, 1, 200, 200, 200, 200, 1}, 1)
	f.Fuzz(func(t *testing.T, payload []byte, count int) {
		if count < 0 || count > 1000 {
			return
		}
		evs, err := decodeEvents(payload, count)
		if err == nil && len(evs) != count {
			t.Fatalf("%d events decoded without error, want %d", len(evs), count)
		}
		if err != nil {
			return
		}
		// What decodes encodes to a payload that decodes to the same events.
		again, err := decodeEvents(encodeEvents(nil, evs), count)
		if err != nil || !reflect.DeepEqual(again, evs) {
			t.Fatalf("re-encoded events differ (%v):\n%+v\n%+v", err, again, evs)
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	c, n, s := uint8(4), uint32(42000), 0.5
	evs := make([]event.Event, 1000)
	for i := range evs {
		evs[i] = event.Event{EventID: "ev-000000-abcdef", OccurredAt: time.Now(), Moment: "service", Channel: "voice", Touchpoint: "billing_call",
			Stage: "service_interaction", Outcome: "resolved", CustomerID: "cust-123456", JourneyID: "journey-abcdef", CSAT: &c, WaitMS: &n, Sentiment: &s,
			Region: "north", Product: "mobile", Segment: "smb", AgentTeam: "tier 1"}
	}
	payload := encodeEvents(nil, evs)
	b.Run("encode", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf = encodeEvents(buf[:0], evs)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	b.Run("decode", func(b *testing.B) {
		for range b.N {
			if _, err := decodeEvents(payload, len(evs)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	// The baseline, in the same run: encoding/json, which the spool used before.
	js, _ := json.Marshal(evs)
	b.Run("encoding-json-encode", func(b *testing.B) {
		for range b.N {
			if _, err := json.Marshal(evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	b.Run("encoding-json-decode", func(b *testing.B) {
		for range b.N {
			var out []event.Event
			if err := json.Unmarshal(js, &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
}
