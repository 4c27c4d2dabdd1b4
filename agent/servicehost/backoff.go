package servicehost

import "time"

// Backoff spaces restarts of a crashing program: initial, doubled each
// time, never above max. A run that lasted at least healthyAfter (max, but
// no less than MinHealthyRun) resets it, so a program that crashes once a
// week restarts at once.
type Backoff struct {
	initial, max, healthyAfter time.Duration
	next                       time.Duration
}

// MinHealthyRun is the shortest run that counts as healthy. It keeps a
// short max backoff from making a program that crashes during start-up look
// healthy, which would pin the delay at initial.
const MinHealthyRun = 10 * time.Second

// NewBackoff returns a backoff starting at initial and bounded by max.
func NewBackoff(initial, ceiling time.Duration) *Backoff {
	return &Backoff{initial: initial, max: ceiling, healthyAfter: max(ceiling, MinHealthyRun), next: initial}
}

// After returns how long to wait before restarting a program that ran for
// ran, and advances the schedule.
func (b *Backoff) After(ran time.Duration) time.Duration {
	if ran >= b.healthyAfter {
		b.next = b.initial
	}
	d := b.next
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	return d
}
