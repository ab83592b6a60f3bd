package web_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// negativesMsg is a drill-down message with its latest negative moments.
type negativesMsg struct {
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
	Data struct {
		Negatives []struct {
			EventID    string    `json:"event_id"`
			OccurredAt time.Time `json:"occurred_at"`
			Moment     string    `json:"moment"`
			Channel    string    `json:"channel"`
			Touchpoint string    `json:"touchpoint"`
			CSAT       *int      `json:"csat"`
			Region     string    `json:"region"`
			AgentTeam  string    `json:"agent_team"`
			Reasons    []string  `json:"reasons"`
		} `json:"negatives"`
	} `json:"data"`
}

// TestLiveNegativeShowsUpInDrilldown ingests events into a running drill-down feed of one cell
// and a region: the negative moment of that cell and region is in data.negatives within two
// ticks of its 202, with its reason; the positive one and those of other cells or regions are
// not.
func TestLiveNegativeShowsUpInDrilldown(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	c := s.dial(t)
	sub := `{"type":"subscribe","view":"drilldown","window":"5m","filters":{"moment":["service"],"channel":["voice"],"region":["north"]}}`
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	read := func() (negativesMsg, error) {
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return negativesMsg{}, err
		}
		var m negativesMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("message is not JSON: %v: %s", err, b)
		}
		return m, err
	}
	first, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if first.Type != "snapshot" || len(first.Data.Negatives) != 0 {
		t.Fatalf("first message %s with negatives %+v, want a snapshot of an empty window", first.Type, first.Data.Negatives)
	}

	msgs := make(chan negativesMsg, 100)
	go func() {
		defer close(msgs)
		for {
			m, err := read()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	at := time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond)
	ev := func(id, moment, channel, region, scores string) string {
		return fmt.Sprintf(`{"event_id":%q,"occurred_at":%q,"moment":%q,"channel":%q,"touchpoint":"billing_call",`+
			`"region":%q,"agent_team":"tier 1"%s}`, id, at.Format(time.RFC3339Nano), moment, channel, region, scores)
	}
	s.mustPost(t, jsonArray([]string{
		ev("neg", "service", "voice", "north", `,"csat":1,"outcome":"abandoned"`),
		ev("pos", "service", "voice", "north", `,"csat":5,"outcome":"resolved"`),
		ev("other-channel", "service", "chat", "north", `,"csat":1`),
		ev("other-region", "service", "voice", "south", `,"csat":1`),
	})).accepted(t, 4, 0)
	// The seq current when the 202 came back.
	var lastSeq uint64
drain:
	for {
		select {
		case m := <-msgs:
			lastSeq = m.Seq
		default:
			break drain
		}
	}
	for m := range msgs {
		if len(m.Data.Negatives) == 0 {
			if m.Seq > lastSeq+2 {
				t.Fatalf("negative moment not listed by seq %d (acknowledged at seq %d): more than two ticks", m.Seq, lastSeq)
			}
			continue
		}
		var ids []string
		for _, n := range m.Data.Negatives {
			ids = append(ids, n.EventID)
		}
		if !slices.Equal(ids, []string{"neg"}) {
			t.Fatalf("negatives %q, want only the negative moment of the cell and region", ids)
		}
		n := m.Data.Negatives[0]
		if !n.OccurredAt.Equal(at) || n.Moment != "service" || n.Channel != "voice" || n.Touchpoint != "billing_call" ||
			n.CSAT == nil || *n.CSAT != 1 || n.Region != "north" || n.AgentTeam != "tier 1" ||
			!slices.Equal(n.Reasons, []string{"csat 1", "outcome abandoned"}) {
			t.Fatalf("negative moment %+v, want it as ingested at %v with reasons csat 1, outcome abandoned", n, at)
		}
		return
	}
	t.Fatal("connection ended before the negative moment showed up")
}
