package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// realisticNDJSON returns n events as a contact centre and a web shop would send them.
func realisticNDJSON(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	touchpoints := []string{"product_page", "checkout", "payment", "delivery_call", "installation", "support_call", "chat_session", "review", "renewal"}
	regions := []string{"emea", "amer", "apac"}
	products := []string{"broadband", "mobile", "tv", "energy"}
	segments := []string{"consumer", "smb", "enterprise"}
	teams := []string{"tier1", "tier2", "retention", "field"}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range n {
		e := Event{
			EventID:    fmt.Sprintf("evt-%08x-%04x-%012x", rng.Uint32(), i, rng.Uint64()>>16),
			OccurredAt: now.Add(-time.Duration(rng.IntN(3600_000)) * time.Millisecond),
			Moment:     pick(Moments),
			Channel:    pick(Channels),
			Touchpoint: pick(touchpoints),
			CustomerID: fmt.Sprintf("cust-%07d", rng.IntN(1_000_000)),
			JourneyID:  fmt.Sprintf("jrn-%09d", rng.IntN(1_000_000_000)),
			Region:     pick(regions),
			Product:    pick(products),
			Segment:    pick(segments),
		}
		if rng.IntN(2) == 0 {
			e.Stage = pick(Stages)
		}
		if rng.IntN(2) == 0 {
			e.Outcome = pick(Outcomes)
		}
		if rng.IntN(10) < 6 {
			e.CSAT = ptr(uint8(1 + rng.IntN(5)))
		}
		if rng.IntN(10) < 3 {
			e.NPS = ptr(uint8(rng.IntN(11)))
		}
		if rng.IntN(10) < 2 {
			e.CES = ptr(uint8(1 + rng.IntN(7)))
		}
		if rng.IntN(2) == 0 {
			e.Sentiment = ptr(float64(rng.IntN(2001)-1000) / 1000)
		}
		if e.Moment == "service" {
			e.WaitMS = ptr(uint32(rng.IntN(600_000)))
			e.HandleMS = ptr(uint32(rng.IntN(1_800_000)))
			e.AgentTeam = pick(teams)
		}
		if k := rng.IntN(4); k > 0 {
			e.Attributes = map[string]string{}
			for j := range k {
				e.Attributes[fmt.Sprintf("attr_%d", j)] = fmt.Sprintf("value-%d", rng.IntN(100))
			}
		}
		if err := enc.Encode(&e); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

func reportEvents(b *testing.B, n int) {
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeNDJSON decodes and validates 1000 events held in memory (DecodeBytes).
func BenchmarkDecodeNDJSON(b *testing.B) {
	const n = 1000
	body := realisticNDJSON(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		batch, err := DecodeBytes(body, "application/x-ndjson", Limits{}, now)
		if err != nil || len(batch.Events) != n {
			b.Fatalf("%d events, %v", len(batch.Events), err)
		}
	}
	reportEvents(b, n)
}

// BenchmarkDecodeNDJSONGzip adds what a gzip request costs: decompression and the copy.
func BenchmarkDecodeNDJSONGzip(b *testing.B) {
	const n = 1000
	body := gz(b, realisticNDJSON(n))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Decompressed(bytes.NewReader(body), "gzip", 0)
		if err != nil {
			b.Fatal(err)
		}
		batch, err := Decode(r, "application/x-ndjson", Limits{}, now)
		if err != nil || len(batch.Events) != n {
			b.Fatalf("%d events, %v", len(batch.Events), err)
		}
	}
	reportEvents(b, n)
}

// BenchmarkStdlibNDJSON is the baseline: encoding/json with DisallowUnknownFields, one line at
// a time, then Validate; it does not catch duplicate keys, field names in another case,
// invalid UTF-8 or more than the first problem of an event.
func BenchmarkStdlibNDJSON(b *testing.B) {
	const n = 1000
	body := realisticNDJSON(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events := make([]Event, 0, n)
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var e Event
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				b.Fatal(err)
			}
			if Validate(&e, now, 0) != nil {
				b.Fatal("invalid")
			}
			events = append(events, e)
		}
		if len(events) != n {
			b.Fatal(len(events))
		}
	}
	reportEvents(b, n)
}

// BenchmarkDecodeVsJSONv2 decodes the same NDJSON body, at several batch sizes, with the
// hand-written reader (DecodeBytes), with the same rules on json/v2's jsontext reader, and with
// json/v2's Unmarshal (unknown members rejected) plus the same rules (jsonv2_test.go); each
// takes every event, as TestJSONv2DecodersAgree checks.
//
// The machine is shared, so the three take turns within every iteration (each going first in
// turn), each turn decoding at least 10,000 events, and what is compared is the process's CPU
// time per event (<decoder>-cpu-ns/event, and the ratios), which time other processes hold
// the cores does not inflate. ns/op is the wall time of one turn of all three.
func BenchmarkDecodeVsJSONv2(b *testing.B) {
	text := new(textDecoder)
	decoders := []struct {
		name   string
		decode func(body []byte) (Batch, error)
	}{
		{"handwritten", func(body []byte) (Batch, error) {
			return DecodeBytes(body, "application/x-ndjson", Limits{}, now)
		}},
		{"jsontext", func(body []byte) (Batch, error) { return text.decode(body, now), nil }},
		{"unmarshal", func(body []byte) (Batch, error) { return unmarshalV2(body, now), nil }},
	}
	for _, n := range []int{1, 100, 1000, 10_000} {
		body := realisticNDJSON(n)
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			reps := max(1, 10_000/n)
			decode := func(k int) {
				for range reps {
					batch, err := decoders[k].decode(body)
					if err != nil || len(batch.Events) != n {
						b.Fatalf("%s: %d events, %v", decoders[k].name, len(batch.Events), err)
					}
				}
			}
			allocs := make([]float64, len(decoders))
			for k := range decoders {
				allocs[k] = testing.AllocsPerRun(1, func() { decode(k) }) / float64(reps*n)
			}
			spent := make([]time.Duration, len(decoders))
			turns := 0
			for b.Loop() {
				for j := range decoders {
					k := (j + turns) % len(decoders)
					start := cpuTime()
					decode(k)
					spent[k] += cpuTime() - start
				}
				turns++
			}
			events := float64(turns * reps * n)
			for k, d := range decoders { // after the loop, which forgets metrics reported before it
				b.ReportMetric(float64(spent[k].Nanoseconds())/events, d.name+"-cpu-ns/event")
				b.ReportMetric(allocs[k], d.name+"-allocs/event")
			}
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "jsontext/handwritten")
			b.ReportMetric(float64(spent[2])/float64(spent[0]), "unmarshal/handwritten")
		})
	}
}
