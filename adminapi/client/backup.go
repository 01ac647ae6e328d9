package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// Backup streams a consistent backup of the daemon's store to w (superusers; Badger stores
// only) and returns how many bytes it wrote. A transfer cut part-way is an error: the bytes
// already written to w are then not a usable backup.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	const path = "/v1/admin/backup"
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+path, nil)
	if err != nil {
		return 0, fmt.Errorf("bad API URL %q: %w", c.BaseURL, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	// The client's overall timeout is for small answers; a backup may stream for longer, so
	// only ctx bounds it.
	hc := http.Client{Timeout: 0}
	if c.HTTP != nil {
		hc = *c.HTTP
		hc.Timeout = 0
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach rill-authd at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var body apiv1.Error
		jsonErr := json.Unmarshal(data, &body)
		e := &Error{Status: resp.StatusCode, Code: body.Code, Message: body.Message}
		if jsonErr != nil || e.Message == "" {
			e.Message = fmt.Sprintf("GET %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data)))
		}
		return 0, e
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/octet-stream" {
		return 0, fmt.Errorf("GET %s: the answer is %q, not a backup (application/octet-stream): is %s rill-authd?", path, ct, c.BaseURL)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup broke off after %d bytes: %w", n, err)
	}
	return n, nil
}
