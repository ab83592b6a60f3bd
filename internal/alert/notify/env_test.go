package notify

import (
	"context"
	"net/http"
	"testing"

	"github.com/truthboard/truthboard/internal/alert/notify/notifytest"
)

// receiver is a real webhook receiver that decodes what it accepts as the webhook payload.
type receiver = notifytest.Receiver[WebhookPayload]

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	return notifytest.NewReceiver[WebhookPayload](t, answer)
}

// closeNow closes a sender without waiting for its queue.
func closeNow(t *testing.T, c interface{ Close(context.Context) error }) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
}
