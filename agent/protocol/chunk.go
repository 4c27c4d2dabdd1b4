package protocol

import (
	"bytes"
	"encoding/base64"
)

// Artifact bytes dominate the stream, and encoding/json spends most of its
// time scanning and unquoting the long base64 string of a chunk line. Lines
// in the exact shape EncodeRequest writes for chunks are therefore decoded
// directly; anything else, including every malformed line, takes the strict
// general path. FuzzDecode checks that both paths agree.
var (
	chunkHead = []byte(`{"id":"`)
	chunkMid  = []byte(`","op":"chunk","data":"`)
	chunkTail = []byte(`"}`)
)

func parseChunkFast(line []byte) (Request, bool) {
	if len(line) < len(chunkHead)+len(chunkMid)+len(chunkTail) || !bytes.HasPrefix(line, chunkHead) || !bytes.HasSuffix(line, chunkTail) {
		return Request{}, false
	}
	rest := line[len(chunkHead) : len(line)-len(chunkTail)]
	i := bytes.Index(rest, chunkMid)
	if i <= 0 {
		return Request{}, false
	}
	id, data := rest[:i], rest[i+len(chunkMid):]
	if !plainJSONString(id) || !plainJSONString(data) || len(data) == 0 {
		return Request{}, false
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
	n, err := base64.StdEncoding.Decode(buf, data)
	if err != nil {
		return Request{}, false
	}
	req := Request{ID: string(id), Op: OpChunk, Data: buf[:n]}
	if checkID(req.ID) != nil {
		return Request{}, false
	}
	return req, true
}

// plainJSONString reports whether b can be taken verbatim as the content of
// a JSON string: printable ASCII without quotes or escapes.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
