//go:build !unix

package kerberos

// defaultCache: Windows keeps tickets in LSA, out of reach; a cache file
// must be named.
func defaultCache() string { return "" }
