package atomicfile

import "time"

// retryDelays is the bounded backoff for a replace that another process
// blocks for a moment (a reader, a virus scanner, the indexer): about half a
// second in all, short enough that a real failure is reported promptly.
var retryDelays = []time.Duration{
	2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	40 * time.Millisecond, 80 * time.Millisecond, 120 * time.Millisecond, 200 * time.Millisecond,
}

// withRetry runs op until it succeeds, fails with an error transient does
// not accept, or the delays run out; it returns op's last error.
func withRetry(op func() error, transient func(error) bool, sleep func(time.Duration)) error {
	err := op()
	for _, d := range retryDelays {
		if err == nil || !transient(err) {
			return err
		}
		sleep(d)
		err = op()
	}
	return err
}
