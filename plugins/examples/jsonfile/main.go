// Command jsonfile is an example attribute-source plugin: a JSON or YAML file maps a user's
// email (or a service's name) to the attributes to add, e.g.
//
//	{"bob@acme.com": {"department": "sales", "region": "us-west"}}
//
// The file is re-read when it changes. Run it from rill-authd's config:
//
//	plugins:
//	  - name: hr
//	    command: bin/plugins/jsonfile
//	    args: ["--file", "attrs.json"]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rill-authd/rill-authd/plugins"
)

type source struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	data  map[string]map[string]any
}

func (s *source) Attributes(_ context.Context, p plugins.Principal) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(); err != nil {
		return nil, err
	}
	for _, k := range []string{strings.ToLower(p.Email), p.Subject} {
		if a, ok := s.data[k]; ok && k != "" {
			return a, nil
		}
	}
	return map[string]any{}, nil
}

// reload re-reads the file when its size or modification time changed.
func (s *source) reload() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("attributes file: %w", err)
	}
	if s.data != nil && fi.ModTime().Equal(s.mtime) && fi.Size() == s.size {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("attributes file: %w", err)
	}
	var data map[string]map[string]any
	switch strings.ToLower(filepath.Ext(s.path)) {
	case ".yaml", ".yml":
		err = yaml.Unmarshal(b, &data)
	default:
		err = json.Unmarshal(b, &data)
	}
	if err != nil {
		return fmt.Errorf("attributes file %s: %w", s.path, err)
	}
	s.data, s.mtime, s.size = data, fi.ModTime(), fi.Size()
	return nil
}

func main() {
	file := flag.String("file", "", "JSON or YAML file mapping an email or service name to attributes")
	flag.Parse()
	if *file == "" {
		fmt.Fprintln(os.Stderr, "jsonfile: --file is required")
		os.Exit(2)
	}
	plugins.Serve(&source{path: *file})
}
