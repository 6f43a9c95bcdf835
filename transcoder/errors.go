package transcoder

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of failure the HTTP layer maps to status codes. They are wrapped with
// %w so the message stays specific while errors.Is still matches.
var (
	ErrNotFound   = errors.New("not found")
	ErrForbidden  = errors.New("outside the media root")
	ErrBadRequest = errors.New("bad request")
	ErrNotMedia   = errors.New("not playable media")
	ErrEncoder    = errors.New("encoder failed")
	// ErrShuttingDown answers requests that arrive while the server stops.
	ErrShuttingDown = errors.New("server is shutting down")
	// ErrUnavailable is a short race lost (a file replaced while it was
	// being opened): the same request a moment later succeeds.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// CapacityError says every encoder slot is busy; RetryAfter is a hint for the client.
type CapacityError struct{ RetryAfter time.Duration }

func (e *CapacityError) Error() string {
	return fmt.Sprintf("all encoders are busy; retry in %s", e.RetryAfter)
}
