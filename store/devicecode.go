package store

import (
	"context"
	"time"
)

// DeviceCode is one request of the OAuth 2.0 device authorization grant (RFC 8628): rillctl
// asked for a token, and waits while its user approves or denies the request in the console.
// It is kept in the store (not in one replica's memory) so that the request approved on one
// replica is redeemed on another. Neither code is stored: ID and UserCode are SHA-256 digests,
// and the token an approval issues is sealed to a key only the device code opens (Sealed).
type DeviceCode struct {
	// ID is the hex SHA-256 of the device code (what rillctl polls with).
	ID string `json:"id"`
	// UserCode is the hex SHA-256 of the user code, normalized (what the user approves).
	UserCode string `json:"user_code"`
	ClientID string `json:"client_id"`
	// Host is the machine rillctl says it runs on, IP the address its request came from:
	// what the approving user is shown, to recognise their own request.
	Host string `json:"host,omitempty"`
	IP   string `json:"ip,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the least time between two polls; a faster poll is told slow_down and the
	// interval grows by 5 s (RFC 8628 section 3.5).
	Interval   time.Duration `json:"interval"`
	LastPollAt time.Time     `json:"last_poll_at,omitzero"`

	State DeviceState `json:"state"`
	// UserID is who approved or denied it.
	UserID string `json:"user_id,omitempty"`
	// SealKey is the X25519 public key derived from the device code; Sealed is the issued
	// token, sealed to it (approved only; cleared when redeemed); TokenID names that token, so
	// a sweep revokes a token approved but never collected.
	SealKey        []byte    `json:"seal_key"`
	Sealed         []byte    `json:"sealed,omitempty"`
	TokenID        string    `json:"token_id,omitempty"`
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`
}

// DeviceState is where a device authorization request stands.
type DeviceState string

// The states of a device authorization request: pending until its user decides; approved
// (a token waits, sealed) or denied; redeemed once the token was handed out.
const (
	DevicePending  DeviceState = "pending"
	DeviceApproved DeviceState = "approved"
	DeviceDenied   DeviceState = "denied"
	DeviceRedeemed DeviceState = "redeemed"
)

// DeviceCodes is the part of Store that keeps device authorization requests.
type DeviceCodes interface {
	// CreateDeviceCode stores a new request; an ID or UserCode already stored is ErrConflict
	// (the caller draws another code).
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// GetDeviceCodeByUserCode finds a request by its UserCode digest (ErrNotFound: none).
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// UpdateDeviceCode applies fn to the stored request in one transaction, serialized with
	// every other update of it (across replicas too), and returns the record written. An error
	// from fn writes nothing and is returned as is. Unknown ID: ErrNotFound.
	UpdateDeviceCode(ctx context.Context, id string, fn func(*DeviceCode) error) (DeviceCode, error)
	// DeleteDeviceCodes deletes the requests that expired before before and returns them
	// (their sealed tokens, if any, were never collected).
	DeleteDeviceCodes(ctx context.Context, before time.Time) ([]DeviceCode, error)
}
