package eventlog

// ParseRecords is parseRecords, for the external tests.
var ParseRecords = parseRecords
