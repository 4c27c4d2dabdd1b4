// Package protocol defines the wire format between gsd and gsd-agent.exe:
// JSON lines on the agent's stdin (requests) and stdout (events), so any
// transport that can run a command with streams (WinRM, SSH, a local
// process) can drive it, and both sides import these types.
//
// # Framing
//
// One JSON object per line, at most Hello.MaxLineBytes long (4 MiB by
// default; a longer line is discarded and answered with line_too_long).
// The agent speaks first:
//
//	{"event":"hello","hello":{"agent_version":"0.1.0","protocol_version":1,"max_line_bytes":4194304,"os":"windows","ops":[...]}}
//
// A request names an op and an id chosen by the client; every event that
// answers it repeats the id. Requests are served in order; each ends with
// exactly one "result" or "error" event, possibly after "progress" events:
//
//	{"id":"7","op":"start","args":{"service":"api","timeout_ms":30000}}
//	{"id":"7","event":"progress","op":"start","message":"..."}
//	{"id":"7","event":"result","op":"start","result":{"changed":true,"pid":4242}}
//	{"id":"8","event":"error","op":"write_file","error":{"code":"invalid_name","message":"..."}}
//
// A line that is not a valid request (bad JSON, unknown field, missing id)
// is answered with an error event carrying the id when it can be recovered;
// the session continues. Error codes are the Code* constants; a locked host
// answers "locked" with the holder (user, operator, machine, pid, since).
//
// # Artifacts
//
// Bytes travel in-band. A "stage" request announces SHA-256, size and file
// name; the client then sends "chunk" lines with the same id whose "data"
// is base64 (encoding/json's form of []byte) until size bytes have arrived:
//
//	{"id":"9","op":"stage","args":{"sha256":"<hex>","size":1048576,"name":"api.exe"}}
//	{"id":"9","op":"chunk","data":"TVqQAAMAAAAEAAAA..."}
//
// The chunk size is the client's choice (DefaultChunkSize, 256 KiB, unless
// measured otherwise), bounded by max_line_bytes after base64 expansion.
// The agent hashes and writes chunks as they arrive, so its memory does not
// grow with the artifact; only a complete stream with the right size and
// hash is synced and renamed into the content-addressed store. A stream
// that ends, breaks, or is interrupted by another request stores nothing.
// A refused stage is still answered exactly once, after its chunks were
// read and dropped; if its args cannot be read, the size is taken from them
// if possible, and otherwise the agent answers and ends the session, since
// it can no longer tell where the stream ends. Only a file whose content
// hashes to its name is ever used as an artifact.
//
// # Ops
//
// hello, facts, lock, unlock, stage (+chunk), write_file, delete_file,
// ensure_service, delete_service, set_recovery, switch_release, rollback,
// start, stop, reload (SERVICE_CONTROL_PARAMCHANGE), apply (journaled list
// of the mutating ops, with rollback steps), recover_journal and
// break_lock. Mutating ops take the host lock for the rest of the session;
// facts never does.
//
// # The host lock
//
// lock.json is published complete (written under a temp name, then
// hard-linked into place, which fails if a lock exists), carries a random
// token, and is only removed by the agent whose token it holds. A lock
// whose agent process is gone is taken over by the next agent; one that
// cannot be parsed is reported in facts as lock_error and taken over once
// it is old enough. A lock whose pid was reused by another process looks
// alive: break_lock with the holder's pid and since (from facts or the
// locked error) removes exactly that lock.
package protocol
