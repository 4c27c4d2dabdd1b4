//go:build unix

package kerberos

import (
	"os"
	"strconv"
)

// defaultCache is MIT's default ticket cache.
func defaultCache() string { return "/tmp/krb5cc_" + strconv.Itoa(os.Getuid()) }
