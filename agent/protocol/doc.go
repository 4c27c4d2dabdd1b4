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
//	{"event":"hello","hello":{"agent_version":"0.1.0","protocol_version":2,"max_line_bytes":4194304,"os":"windows","ops":[...]}}
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
// Bytes travel in-band, after the request line that announces them. A
// "stage" request names SHA-256, size, file name and encoding; binary
// frames follow at once, each a 4-byte big-endian length and that many
// bytes, and an empty frame ends them:
//
//	{"id":"9","op":"stage","args":{"sha256":"<hex>","size":1048576,"name":"api.exe","encoding":"zstd"}}
//	<00 04 00 00> 262144 bytes <00 01 2c 1f> 76831 bytes <00 00 00 00>
//
// The frames carry one zstd stream of the artifact (encoding "zstd", what
// gsd sends) or its bytes as they are (no encoding). Frames are at most
// MaxFrame bytes; the client picks their size (DefaultFrameSize). Nothing
// is base64-encoded by this protocol: the transports carry binary stdin.
// The agent decompresses, hashes and writes as the frames arrive, so its
// memory does not grow with the artifact; only a complete stream with the
// right size and hash is synced and renamed into the content-addressed
// store, and a stream that inflates past its announced size is cut off
// there. A stream that ends, breaks, or is corrupt stores nothing. Every
// stage is answered exactly once, and its frames are always read to their
// end, refused or not, so the session goes on; only a frame header over
// MaxFrame (the client is not speaking this protocol) ends the session.
// Only a file whose content hashes to its name is ever used as an
// artifact.
//
// # Ops
//
// hello, facts, lock, unlock, stage (+chunk), write_file, delete_file,
// ensure_service, delete_service, set_recovery, switch_release, rollback,
// start, stop, reload (SERVICE_CONTROL_PARAMCHANGE), apply (journaled list
// of the mutating ops, with rollback steps), recover_journal and
// break_lock. Mutating ops take the host lock for the rest of the session;
// the read-only ones never do: facts (which FactsArgs may ask to check
// the group managed service accounts services are to run as), health (probes a service on the host
// until it has passed for healthy_after, and always answers with a
// HealthResult) and logs (a wrapped service's log files: a tail, or what
// followed a cursor; native services answer unsupported).
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
