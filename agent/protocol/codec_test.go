package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDecoderReadsRequestsAndRecoversFromBadLines(t *testing.T) {
	input := strings.Join([]string{
		`{"id":"1","op":"facts"}`,
		`{"id":"2","op":`, // malformed
		``,
		`{"id":"3","op":"stage","bogus":1}`, // unknown field
		`{"id":"` + strings.Repeat("x", 200) + `","op":"facts"}`,
		`{"id":"4","op":"chunk","data":"aGVsbG8="}`,
		`{"id":"5","op":"facts"}{"id":"6","op":"facts"}`,
		`{"id":"7","op":""}`,
	}, "\n")
	d := NewDecoder(strings.NewReader(input), 0)
	type outcome struct {
		id, op, code, data string
	}
	var got []outcome
	for {
		req, err := d.Decode()
		if errors.Is(err, io.EOF) {
			break
		}
		var de *DecodeError
		if errors.As(err, &de) {
			got = append(got, outcome{id: de.ID, code: de.Code})
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, outcome{id: req.ID, op: req.Op, data: string(req.Data)})
	}
	want := []outcome{
		{id: "1", op: "facts"},
		{code: CodeBadRequest},
		{id: "3", code: CodeBadRequest},
		{code: CodeBadRequest},
		{id: "4", op: "chunk", data: "hello"},
		{id: "5", code: CodeBadRequest},
		{id: "7", code: CodeBadRequest},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d outcomes %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDecoderSkipsOversizedLineAndContinues(t *testing.T) {
	long := `{"id":"1","op":"chunk","data":"` + strings.Repeat("A", 5000) + `"}`
	d := NewDecoder(strings.NewReader(long+"\n"+`{"id":"2","op":"facts"}`+"\n"), 1024)
	_, err := d.Decode()
	var de *DecodeError
	if !errors.As(err, &de) || de.Code != CodeLineTooLong || !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("oversized line: got %v, want line_too_long", err)
	}
	req, err := d.Decode()
	if err != nil || req.ID != "2" {
		t.Fatalf("line after oversized one: got %+v, %v", req, err)
	}
	if _, err := d.Decode(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestDecoderOversizedLastLineWithoutNewline(t *testing.T) {
	d := NewDecoder(strings.NewReader(strings.Repeat("x", 3000)), 1000)
	_, err := d.Decode()
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("got %v, want ErrLineTooLong", err)
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"1","op":"facts"}`,
		`{"id":"1","op":"stage","args":{"sha256":"00","size":3,"name":"a.exe"}}` + "\n" + `{"id":"1","op":"chunk","data":"YWJj"}`,
		`{"id":"2","op":"write_file","args":{"service":"api","name":"..\\x","content":""}}`,
		`{"id":"","op":"x"}`,
		`{"id":"1","op":"facts"}{"id":"2"}`,
		"\x00\xff{",
		`{"id":"1","op":"chunk","data":"!!notbase64"}`,
		`{"id":"1","op":"chunk","data":"YWJj"}`,
		`{"id":"a\"b","op":"chunk","data":"YWJj"}`,
		`{"id":"1","op":"chunk","data":"YW\u004aj"}`,
		`{"id":"1","op":"chunk","data":"YWJ"}`,
		`{"id":"1","op":"chunk","data":"YWJj","x":1}`,
		`[1,2,3]`,
		"\n\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		// The chunk fast path must never accept what the strict path
		// refuses, nor decode it differently.
		if fast, ok := parseChunkFast(input); ok {
			slow, err := parseRequestSlow(input)
			if err != nil || slow.ID != fast.ID || slow.Op != fast.Op || !bytes.Equal(slow.Data, fast.Data) || slow.Args != nil {
				t.Fatalf("fast path %+v disagrees with strict path %+v, %v", fast, slow, err)
			}
		}
		d := NewDecoder(strings.NewReader(string(input)), 512)
		for i := 0; i < 1000; i++ {
			req, err := d.Decode()
			if errors.Is(err, io.EOF) {
				return
			}
			var de *DecodeError
			if errors.As(err, &de) {
				if de.Code == "" {
					t.Fatalf("decode error without a code: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("unexpected stream error: %v", err)
			}
			if req.ID == "" || req.Op == "" || len(req.ID) > MaxIDLength {
				t.Fatalf("decoder accepted an invalid request: %+v", req)
			}
		}
		t.Fatal("decoder did not reach EOF")
	})
}

func TestChunkFastPathMatchesEncoder(t *testing.T) {
	for _, data := range [][]byte{{0}, []byte("hello"), bytes.Repeat([]byte{0xff, 0x00, 0x7f}, 1000)} {
		var buf bytes.Buffer
		EncodeRequest(&buf, Request{ID: "stage-7", Op: OpChunk, Data: data})
		line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		req, ok := parseChunkFast(line)
		if !ok || req.ID != "stage-7" || !bytes.Equal(req.Data, data) {
			t.Fatalf("fast path refused or garbled the encoder's own chunk line %q: %+v", line, req)
		}
	}
}
