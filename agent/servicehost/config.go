package servicehost

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gsd-deploy/gsd/agent/atomicfile"
)

// Defaults for settings a wrapper config leaves out.
const (
	DefaultLogMaxBytes    = 10 << 20
	DefaultLogKeep        = 5
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = time.Minute
	DefaultStopTimeout    = 20 * time.Second
)

// Config is wrapper.json: everything the service host needs to run one
// wrapped program. The agent writes it; the service host only reads it.
type Config struct {
	Service string            `json:"service"`
	Program string            `json:"program"`
	Args    []string          `json:"args,omitempty"`
	Dir     string            `json:"dir,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	LogDir  string            `json:"log_dir"`
	// LogMaxBytes is the size at which stdout.log/stderr.log are rotated;
	// LogKeep rotated files are kept per stream.
	LogMaxBytes      int64  `json:"log_max_bytes,omitempty"`
	LogKeep          int    `json:"log_keep,omitempty"`
	BackoffInitialMS int64  `json:"backoff_initial_ms,omitempty"`
	BackoffMaxMS     int64  `json:"backoff_max_ms,omitempty"`
	StopTimeoutMS    int64  `json:"stop_timeout_ms,omitempty"`
	StatusFile       string `json:"status_file,omitempty"`
}

// Load reads a wrapper config and fills defaults.
func Load(path string) (Config, error) {
	// Shared for delete, so that reading it never blocks the agent
	// replacing it (Windows).
	b, err := atomicfile.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if c.Program == "" {
		return Config{}, fmt.Errorf("%s: program is empty", path)
	}
	return c.withDefaults(), nil
}

// Save writes a wrapper config atomically.
func Save(path string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

func (c Config) withDefaults() Config {
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = DefaultLogMaxBytes
	}
	if c.LogKeep <= 0 {
		c.LogKeep = DefaultLogKeep
	}
	if c.BackoffInitialMS <= 0 {
		c.BackoffInitialMS = DefaultBackoffInitial.Milliseconds()
	}
	if c.BackoffMaxMS <= 0 {
		c.BackoffMaxMS = DefaultBackoffMax.Milliseconds()
	}
	if c.BackoffMaxMS < c.BackoffInitialMS {
		c.BackoffMaxMS = c.BackoffInitialMS
	}
	if c.StopTimeoutMS <= 0 {
		c.StopTimeoutMS = DefaultStopTimeout.Milliseconds()
	}
	return c
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
