// Package eventlogtest is a Windows event log for tests: sources kept as
// the registry keeps them, and logs that answer ReadEventLog as advapi32
// documents, with records laid out as EVENTLOGRECORDs.
package eventlogtest
