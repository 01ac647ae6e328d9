package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Header names of a webhook post.
const (
	// TimestampHeader holds the post's time in Unix seconds: a receiver refuses an old one, so
	// a recorded post cannot be replayed later.
	TimestampHeader = "X-Rill-Authd-Timestamp"
	// SignatureHeader holds "sha256=" and the hex HMAC-SHA256, keyed with the webhook secret,
	// of the timestamp, ".", and the body.
	SignatureHeader = "X-Rill-Authd-Signature"
)

// Sign is the SignatureHeader value of body posted at ts with secret.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrRefusedAddress is why a post to a loopback, private, link-local or metadata address
// fails without AllowPrivate.
var ErrRefusedAddress = errors.New("refused: the address is loopback, private, link-local or a cloud metadata service (--webhook-allow-private allows it)")

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// Secret keys the signature; empty refuses to build the webhook.
	Secret []byte
	// AllowPrivate lets it post to loopback, private and link-local addresses (tests, and
	// receivers inside the network).
	AllowPrivate bool
	// Timeout bounds one post [10s].
	Timeout time.Duration
	Now     func() time.Time
	// Control, when set, runs after the address check on every dial (tests watch dials so).
	Control func(network, address string, c syscall.RawConn) error
}

// Webhook posts events to one URL.
type Webhook struct {
	url    string
	o      WebhookOptions
	client *http.Client
}

// NewWebhook checks rawURL (http or https, a host, no user info) and returns its sink.
func NewWebhook(rawURL string, o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("webhook URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("webhook URL %s: want http or https", redactURL(rawURL))
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("webhook URL %s: want a host and no user info", redactURL(rawURL))
	}
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: a secret is required (--webhook-secret-file)")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !o.AllowPrivate && refused(a) {
		return nil, fmt.Errorf("webhook URL %s: %w", redactURL(rawURL), ErrRefusedAddress)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Webhook{url: rawURL, o: o}
	d := &net.Dialer{Timeout: o.Timeout, Control: w.control}
	w.client = &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			// No proxy: the address check must see the receiver's own address.
			Proxy:               nil,
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: o.Timeout,
			MaxIdleConns:        4,
			IdleConnTimeout:     time.Minute,
		},
		// A redirect could lead anywhere; the receiver answers the URL it was given.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// URL is the webhook's URL, its sink name in the outbox.
func (w *Webhook) URL() string { return w.url }

// control runs at every dial after the name is resolved and before the connection is made,
// so the address checked is the one dialed: a name that resolves to a public address when the
// URL is checked and to a private one at the post (DNS rebinding) is refused all the same.
func (w *Webhook) control(network, address string, c syscall.RawConn) error {
	if !w.o.AllowPrivate {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook dial %s: %w", address, err)
		}
		if refused(ap.Addr()) {
			return fmt.Errorf("webhook dial %s: %w", address, ErrRefusedAddress)
		}
	}
	if w.o.Control != nil {
		return w.o.Control(network, address, c)
	}
	return nil
}

// metadata are addresses of cloud metadata and host services that are not in a private or
// link-local range (169.254.169.254 and fd00:ec2::254 are).
var metadata = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),    // carrier-grade NAT, Alibaba's 100.100.100.200
	netip.MustParsePrefix("168.63.129.16/32"), // Azure's host
	netip.MustParsePrefix("192.0.0.0/24"),     // IETF protocol assignments (Oracle's 192.0.0.192)
}

// refused says whether a is an address a webhook must not post to without AllowPrivate.
func refused(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range metadata {
		if p.Contains(a) {
			return true
		}
	}
	// NAT64 and 6to4 carry an IPv4 address inside an IPv6 one.
	if nat64 := netip.MustParsePrefix("64:ff9b::/96"); nat64.Contains(a) {
		b := a.As16()
		return refused(netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixto4 := netip.MustParsePrefix("2002::/16"); sixto4.Contains(a) {
		b := a.As16()
		return refused(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// Post sends body, signed, and succeeds on a 2xx answer.
func (w *Webhook) Post(ctx context.Context, body []byte) error {
	ts := w.o.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post to %s: %w", redactURL(w.url), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rill-authd-webhook")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(w.o.Secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the URL, query and all
		}
		return fmt.Errorf("post to %s: %w", redactURL(w.url), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: HTTP %d", redactURL(w.url), resp.StatusCode)
	}
	return nil
}

// redactURL drops a URL's query and user info, which may hold a secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
