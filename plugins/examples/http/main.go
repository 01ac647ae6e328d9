// Command http is an example attribute-source plugin: it POSTs the principal as JSON to an HTTP
// endpoint and adds the JSON object it answers. Run it from rill-authd's config:
//
//	plugins:
//	  - name: crm
//	    command: bin/plugins/http
//	    args: ["--url", "http://crm.internal/rill-attributes", "--timeout", "40ms"]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/rill-authd/rill-authd/plugins"
)

type source struct {
	url    string
	client *http.Client
}

func (s *source) Attributes(ctx context.Context, p plugins.Principal) (map[string]any, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered HTTP %d", s.url, resp.StatusCode)
	}
	var attrs map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&attrs); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", s.url, err)
	}
	return attrs, nil
}

func main() {
	url := flag.String("url", "", "endpoint that answers a principal (JSON, POST) with an attributes object")
	timeout := flag.Duration("timeout", 40*time.Millisecond, "timeout of one request")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "http: --url is required")
		os.Exit(2)
	}
	plugins.Serve(&source{url: *url, client: &http.Client{Timeout: *timeout}})
}
