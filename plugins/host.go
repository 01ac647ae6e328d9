package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
)

// Config is one plugin of the daemon's config file.
type Config struct {
	Name     string        `yaml:"name" json:"name"`
	Command  string        `yaml:"command" json:"command"`
	Args     []string      `yaml:"args" json:"args,omitempty"`
	Timeout  time.Duration `yaml:"timeout" json:"timeout"`     // per call; default 50ms
	CacheTTL time.Duration `yaml:"cache_ttl" json:"cache_ttl"` // per principal; default 30s
	OnError  string        `yaml:"on_error" json:"on_error"`   // skip (default) or deny
}

// Defaults of Config.
const (
	DefaultTimeout  = 50 * time.Millisecond
	DefaultCacheTTL = 30 * time.Second
)

func (c *Config) check() error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t/") {
		return fmt.Errorf("plugin name %q: want a word", c.Name)
	}
	if c.Command == "" {
		return fmt.Errorf("plugin %s: command is required", c.Name)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	switch c.OnError {
	case "":
		c.OnError = "skip"
	case "skip", "deny":
	default:
		return fmt.Errorf("plugin %s: on_error %q: want skip or deny", c.Name, c.OnError)
	}
	if c.Timeout < 0 || c.CacheTTL < 0 {
		return fmt.Errorf("plugin %s: timeout and cache_ttl must be positive", c.Name)
	}
	return nil
}

// Check checks a plugin list as Start will, without starting anything: the daemon calls it on
// its config file before it opens a store, so a mistake there writes nothing.
func Check(cfgs []Config) error {
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.check(); err != nil { // c is a copy: check's defaults stay here
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("plugin %s is configured twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// Status is a plugin's state, for /readyz and `rillctl admin plugins`.
type Status struct {
	Name      string `json:"name"`
	Command   string `json:"command"`
	Healthy   bool   `json:"healthy"`
	PID       int    `json:"pid,omitempty"`
	Restarts  int64  `json:"restarts"`
	Calls     int64  `json:"calls"`
	Errors    int64  `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

// ErrPlugin wraps a failure of a plugin whose on_error is deny.
var ErrPlugin = errors.New("attribute plugin failed")

// Host runs the configured plugins, restarts them when they die, and merges their attributes.
type Host struct {
	metrics *metrics.Metrics
	log     *slog.Logger
	set     atomic.Pointer[[]*running] // in config order; Replace swaps it
	replace sync.Mutex                 // one Replace (or Close) at a time
	stop    chan struct{}
	wg      sync.WaitGroup
	now     func() time.Time
}

// list is the plugins in service.
func (h *Host) list() []*running {
	if p := h.set.Load(); p != nil {
		return *p
	}
	return nil
}

type running struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics

	mu     sync.Mutex
	client *plugin.Client
	src    Source
	pid    int

	quit      chan struct{} // closed when Replace takes it out of service
	done      chan struct{} // closed when its supervisor has returned
	healthy   atomic.Bool
	restarts  atomic.Int64
	calls     atomic.Int64
	errs      atomic.Int64
	lastErr   atomic.Value // string
	cache     sync.Map     // principal key -> cached
	conflicts sync.Map     // attribute name -> logged
}

type cached struct {
	attrs map[string]any
	until time.Time
}

// Start launches every plugin; a plugin that cannot start is an error (a typo in the config
// should stop the daemon, not leave it half-working).
func Start(cfgs []Config, log *slog.Logger, m *metrics.Metrics) (*Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Host{log: log, metrics: m, stop: make(chan struct{}), now: time.Now}
	if err := h.Replace(cfgs); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Replace puts the plugins of cfgs in service in place of the running ones (a config reload):
// a plugin whose configuration is unchanged keeps its process and its cache; new ones are
// started first, and if one cannot start, or cfgs is invalid, nothing changes. A plugin taken
// out of service is stopped once the calls it may be answering have timed out.
func (h *Host) Replace(cfgs []Config) error {
	h.replace.Lock()
	defer h.replace.Unlock()
	old := map[string]*running{}
	for _, r := range h.list() {
		old[r.key()] = r
	}
	var next, started []*running
	fail := func(err error) error {
		stopAll(started, 0)
		return err
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.check(); err != nil {
			return fail(err)
		}
		if seen[c.Name] {
			return fail(fmt.Errorf("plugin %s is configured twice", c.Name))
		}
		seen[c.Name] = true
		r := &running{cfg: c, log: h.log.With("plugin", c.Name), metrics: h.metrics, quit: make(chan struct{})}
		if o := old[r.key()]; o != nil {
			next = append(next, o)
			delete(old, r.key())
			continue
		}
		if err := r.start(); err != nil {
			return fail(err)
		}
		next, started = append(next, r), append(started, r)
	}
	h.set.Store(&next)
	for _, r := range started {
		r.done = make(chan struct{})
		h.wg.Add(1)
		go h.supervise(r)
	}
	var gone []*running
	grace := time.Duration(0)
	for _, r := range old {
		gone = append(gone, r)
		grace = max(grace, r.cfg.Timeout)
	}
	stopAll(gone, grace)
	return nil
}

// key identifies a plugin's configuration (defaults applied).
func (r *running) key() string { return fmt.Sprintf("%#v", r.cfg) }

// stopAll stops rs after grace: their supervisors, then their processes.
func stopAll(rs []*running, grace time.Duration) {
	if len(rs) == 0 {
		return
	}
	time.Sleep(grace)
	for _, r := range rs {
		close(r.quit)
		if r.done != nil {
			<-r.done // a restart under way ends before the process is killed
		}
		r.mu.Lock()
		if r.client != nil {
			r.client.Kill()
		}
		r.mu.Unlock()
	}
}

// Active reports whether any plugin is in service: one atomic load.
func (h *Host) Active() bool { return h != nil && len(h.list()) > 0 }

func (r *running) start() error {
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugin." + r.cfg.Name, Level: hclog.Warn, Output: logWriter{r.log}})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginName: &grpcPlugin{}},
		Cmd:              exec.Command(r.cfg.Command, r.cfg.Args...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		StartTimeout:     10 * time.Second,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return fmt.Errorf("start plugin %s (%s): %w", r.cfg.Name, r.cfg.Command, err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		client.Kill()
		return fmt.Errorf("start plugin %s: %w", r.cfg.Name, err)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	r.mu.Lock()
	r.client, r.src, r.pid = client, raw.(Source), pid
	r.mu.Unlock()
	r.healthy.Store(true)
	return nil
}

// supervise restarts a plugin whose process died, with backoff.
func (h *Host) supervise(r *running) {
	defer h.wg.Done()
	defer close(r.done)
	backoff := 100 * time.Millisecond
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-r.quit:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		exited := r.client == nil || r.client.Exited()
		r.mu.Unlock()
		if !exited {
			backoff = 100 * time.Millisecond
			continue
		}
		if r.healthy.Swap(false) {
			r.log.Warn("plugin process exited; restarting")
		}
		select {
		case <-h.stop:
			return
		case <-r.quit:
			return
		case <-time.After(backoff):
		}
		if err := r.start(); err != nil {
			r.lastErr.Store(err.Error())
			r.log.Error("plugin restart failed", "err", err, "retry_in", (2 * backoff).String())
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		r.restarts.Add(1)
		r.cache.Range(func(k, _ any) bool { r.cache.Delete(k); return true })
		r.log.Info("plugin restarted", "restarts", r.restarts.Load())
	}
}

// Attributes asks every plugin, in config order, what to add for p, and merges the answers: a
// plugin may add keys but never replace a reserved identity attribute, one the principal already
// has, or one an earlier plugin added. It returns the additions and until when they hold.
func (h *Host) Attributes(ctx context.Context, p Principal) (map[string]any, time.Time, error) {
	if h == nil {
		return nil, time.Time{}, nil
	}
	list := h.list()
	if len(list) == 0 {
		return nil, time.Time{}, nil
	}
	now := h.now()
	key := p.Kind + "\x00" + p.ID + "\x00" + p.Org + "\x00" + p.Project
	added := map[string]any{}
	until := time.Time{}
	for _, r := range list {
		var attrs map[string]any
		exp := now.Add(r.cfg.CacheTTL)
		if c, ok := r.cache.Load(key); ok && now.Before(c.(*cached).until) {
			attrs, exp = c.(*cached).attrs, c.(*cached).until
		} else {
			var err error
			attrs, err = r.call(ctx, p)
			if err != nil {
				if r.cfg.OnError == "deny" {
					return nil, now, fmt.Errorf("%w: %s: %v", ErrPlugin, r.cfg.Name, err)
				}
				exp = now // skip, and ask again next time
				attrs = nil
			} else {
				r.cache.Store(key, &cached{attrs: attrs, until: exp})
			}
		}
		if until.IsZero() || exp.Before(until) {
			until = exp
		}
		for k, v := range attrs {
			_, had := p.Attributes[k]
			_, dup := added[k]
			if policy.IsReserved(k) || had || dup {
				if _, logged := r.conflicts.LoadOrStore(k, true); !logged {
					r.log.Warn("plugin attribute ignored: the name is reserved or already set", "attribute", k)
				}
				continue
			}
			added[k] = v
		}
	}
	return added, until, nil
}

func (r *running) call(ctx context.Context, p Principal) (map[string]any, error) {
	r.calls.Add(1)
	r.mu.Lock()
	src := r.src
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	attrs, err := src.Attributes(ctx, p)
	r.metrics.PluginCall(r.cfg.Name, err, time.Since(start))
	if err != nil {
		r.errs.Add(1)
		r.lastErr.Store(err.Error())
		return nil, err
	}
	return attrs, nil
}

// Invalidate drops cached results (a principal changed).
func (h *Host) Invalidate() {
	if h == nil {
		return
	}
	for _, r := range h.list() {
		r.cache.Range(func(k, _ any) bool { r.cache.Delete(k); return true })
	}
}

// Healthy reports whether every plugin is running.
func (h *Host) Healthy() bool {
	if h == nil {
		return true
	}
	for _, r := range h.list() {
		if !r.healthy.Load() {
			return false
		}
	}
	return true
}

// Status describes every plugin.
func (h *Host) Status() []Status {
	out := []Status{}
	if h == nil {
		return out
	}
	for _, r := range h.list() {
		r.mu.Lock()
		pid := r.pid
		r.mu.Unlock()
		s := Status{Name: r.cfg.Name, Command: r.cfg.Command, Healthy: r.healthy.Load(), PID: pid,
			Restarts: r.restarts.Load(), Calls: r.calls.Load(), Errors: r.errs.Load()}
		if e, ok := r.lastErr.Load().(string); ok {
			s.LastError = e
		}
		out = append(out, s)
	}
	return out
}

// Close stops every plugin process.
func (h *Host) Close() {
	if h == nil {
		return
	}
	h.replace.Lock()
	defer h.replace.Unlock()
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
	for _, r := range h.list() {
		r.mu.Lock()
		if r.client != nil {
			r.client.Kill()
		}
		r.mu.Unlock()
	}
}

// logWriter turns go-plugin's log lines into slog records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(b)))
	return len(b), nil
}
