// Package atomicfile replaces files so that a reader, or the next agent run
// after a crash, sees either the old content or the new, never a mix. Data
// is written to a temp file in the target's directory, synced, and renamed
// over the target; temp files carry a common prefix so a later run can sweep
// the ones a killed agent left behind.
package atomicfile
