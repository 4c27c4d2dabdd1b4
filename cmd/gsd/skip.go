package main

import (
	"context"
	"errors"
	"sort"

	"github.com/gsd-deploy/gsd/plan"
	"github.com/gsd-deploy/gsd/providers/transport"
)

// dropUnreachable takes the hosts that could not be reached out of
// results (-skip-unreachable): refused or unroutable connections, hosts
// that did not answer in time, connections that broke. A host that
// answered but refused gsd's credentials or certificate, or whose agent
// failed, is not unreachable: it stays, and fails the plan as before.
func dropUnreachable(results map[string]hostResult) (map[string]hostResult, []plan.SkippedHost) {
	var skipped []plan.SkippedHost
	kept := make(map[string]hostResult, len(results))
	for name, r := range results {
		if unreachable(r.err) {
			skipped = append(skipped, plan.SkippedHost{Host: name, Error: r.err.Error()})
			continue
		}
		kept[name] = r
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Host < skipped[j].Host })
	return kept, skipped
}

func unreachable(err error) bool {
	for _, k := range []error{transport.ErrUnreachable, transport.ErrTimeout, transport.ErrBroken, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
