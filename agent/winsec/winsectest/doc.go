// Package winsectest is a fake of winsec.Host for tests: account rights,
// token privileges, folder owners and access lists kept in memory, with
// the checks and error codes Windows has (an unknown account, a privilege
// the token lacks, changing a folder the caller may not change), so the
// agent's Windows code paths can be exercised where Wine only has stubs.
package winsectest
