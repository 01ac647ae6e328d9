package store

import (
	"context"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// Notification is one event waiting in the outbox for one sink. The outbox is durable (it
// survives a restart) and delivered by one replica at a time: a replica claims due rows for a
// lease, and only then delivers them. Delivery is at least once: a replica that stops after
// delivering but before completing leaves the row to be delivered again when its lease ends, so
// the event's own id (in Body) lets a receiver drop a repeat.
type Notification struct {
	// ID is the row's key and its idempotency key: enqueuing an ID that exists (delivered or
	// not) changes nothing, so an event found again (a token expiring, seen by every replica's
	// scan) is sent once.
	ID string `json:"id"`
	// Sink names where it goes (e.g. a webhook's URL); the delivery loop knows how.
	Sink string `json:"sink"`
	// Body is the event as the sink sends it.
	Body []byte `json:"body"`
	// CreatedAt is when it was enqueued.
	CreatedAt time.Time `json:"created_at"`
	// Attempts counts failed deliveries.
	Attempts int `json:"attempts"`
	// NextAt is when it is due (again).
	NextAt time.Time `json:"next_at"`
	// LastError says why the last attempt failed.
	LastError string `json:"last_error,omitempty"`
	// LeaseUntil is when the claim of the replica delivering it ends (zero: unclaimed).
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// DoneAt is when it was delivered or dropped (zero: pending). A done row is kept until
	// PruneNotifications, so its ID still refuses a repeat.
	DoneAt time.Time `json:"done_at,omitzero"`
}

// Outbox is the part of Store that keeps notifications until a sink took them.
type Outbox interface {
	// EnqueueNotifications stores the notifications whose ID is new, in one transaction, and
	// says how many were new.
	EnqueueNotifications(ctx context.Context, ns []Notification) (int, error)
	// DeleteTokenNotify is DeleteToken enqueuing ns (as EnqueueNotifications does) in the
	// same transaction: the notifications are written if and only if the revoke is, so a
	// crash between the two loses neither.
	DeleteTokenNotify(ctx context.Context, id token.ID, ns []Notification) error
	// ClaimNotifications leases up to limit pending notifications due at now (NextAt <= now)
	// and not leased by anyone, until now+lease, oldest due first. Two replicas claiming at once
	// never get the same row.
	ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Notification, error)
	// FinishNotification marks a notification done at now (delivered, or dropped: the caller
	// audits which). Finishing an unknown ID is ErrNotFound.
	FinishNotification(ctx context.Context, id string, now time.Time) error
	// RetryNotification records a failed attempt: Attempts grows by one, the lease ends, and
	// it is due again at next.
	RetryNotification(ctx context.Context, id string, next time.Time, lastErr string) error
	// GetNotification reads one notification.
	GetNotification(ctx context.Context, id string) (Notification, error)
	// ExpiringTokens returns up to limit live tokens (limit <= 0: all) that expire after from
	// and no later than to, soonest first: what an expiry warning tells about. Tokens of an
	// owner being deleted are not live.
	ExpiringTokens(ctx context.Context, from, to time.Time, limit int) ([]Token, error)
	// PruneNotifications deletes notifications done before before, and says how many.
	PruneNotifications(ctx context.Context, before time.Time) (int, error)
}

// NotificationLister is implemented by engines that can list their whole outbox (both do), so
// that Dump carries it: a notification pending when a deployment moves to another engine
// (copy-store) is delivered by the destination, and one already delivered keeps refusing a
// repeat of its ID there.
type NotificationLister interface {
	// ListNotifications returns every notification, pending or done, in no particular order.
	ListNotifications(ctx context.Context) ([]Notification, error)
}
