// Package failure names the kinds of failure the HTTP layer maps to status
// codes. Every package below the server wraps one of them with %w, so a
// message stays specific while errors.Is still finds its kind. It imports
// nothing of hlsd, so every package may use it.
package failure

import (
	"errors"
	"fmt"
	"time"
)

var (
	NotFound   = errors.New("not found")
	Forbidden  = errors.New("outside the media root")
	BadRequest = errors.New("bad request")
	NotMedia   = errors.New("not playable media")
	// NotAcceptable: a client's filters leave nothing of the file it can play.
	NotAcceptable = errors.New("nothing the client can play")
	Encoder       = errors.New("encoder failed")
	// ShuttingDown answers requests that arrive while the server stops.
	ShuttingDown = errors.New("server is shutting down")
	// Unavailable is a short race lost (a file replaced while it was being
	// opened): the same request a moment later succeeds.
	Unavailable = errors.New("temporarily unavailable")
)

// CapacityError says every encoder slot is busy; RetryAfter is a hint for the client.
type CapacityError struct{ RetryAfter time.Duration }

func (e *CapacityError) Error() string {
	return fmt.Sprintf("all encoders are busy; retry in %s", e.RetryAfter)
}
