// Package kdc runs a throwaway Kerberos realm on Debian's MIT KDC
// (krb5-kdc, kadmin.local): a database in a folder of its own, krb5kdc on a
// free loopback port, principals and keytabs for users and services, and a
// krb5.conf that MIT's tools, python-gssapi and gokrb5 all read. The
// sandbox and the tests use it as the domain controller of a Windows
// domain.
package kdc
