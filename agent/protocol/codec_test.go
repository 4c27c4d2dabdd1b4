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
		`{"id":"4","op":"facts","data":"aGVsbG8="}`, // chunk lines are gone
		`{"id":"5","op":"facts"}{"id":"6","op":"facts"}`,
		`{"id":"7","op":""}`,
	}, "\n")
	d := NewDecoder(strings.NewReader(input), 0)
	type outcome struct {
		id, op, code string
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
		got = append(got, outcome{id: req.ID, op: req.Op})
	}
	want := []outcome{
		{id: "1", op: "facts"},
		{code: CodeBadRequest},
		{id: "3", code: CodeBadRequest},
		{code: CodeBadRequest},
		{id: "4", code: CodeBadRequest},
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
	long := `{"id":"1","op":"write_file","args":{"content":"` + strings.Repeat("A", 5000) + `"}}`
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

// FuzzDecode feeds arbitrary input to the decoder the way the agent reads
// it: lines, and after every stage line its frames. Nothing may panic,
// every bad line must carry a code, and the decoder must reach the end.
func FuzzDecode(f *testing.F) {
	stage := `{"id":"1","op":"stage","args":{"sha256":"00","size":3,"name":"a.exe"}}` + "\n"
	seeds := []string{
		`{"id":"1","op":"facts"}`,
		stage + "\x00\x00\x00\x03abc\x00\x00\x00\x00" + `{"id":"2","op":"facts"}`,
		stage + "\x00\x00\x00\x03ab",
		stage + "\xff\xff\xff\xff",
		stage + "\x00\x00\x00\x01a\x00\x00\x00\x01b\x00\x00\x00\x00\n\n",
		`{"id":"2","op":"write_file","args":{"service":"api","name":"..\\x","content":""}}`,
		`{"id":"","op":"x"}`,
		`{"id":"1","op":"facts"}{"id":"2"}`,
		"\x00\xff{",
		`{"id":"1","op":"chunk","data":"YWJj"}`,
		`[1,2,3]`,
		"\n\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		d := NewDecoder(bytes.NewReader(input), 512)
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
			if req.Op == OpStage {
				fr := d.Frames()
				n, err := io.Copy(io.Discard, fr)
				switch {
				case err == nil:
					if !fr.Ended() {
						t.Fatal("frames read to EOF without their terminator")
					}
				case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrFrameTooLarge):
					return // the agent ends the stage (and, for a huge frame, the session)
				default:
					t.Fatalf("frames: unexpected error %v", err)
				}
				if n > int64(len(input)) {
					t.Fatalf("frames yielded %d bytes from %d of input", n, len(input))
				}
			}
		}
		t.Fatal("decoder did not reach EOF")
	})
}

func TestFramesRoundTripAndStayInStep(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	for _, size := range []int{1, 7, 4096, DefaultFrameSize, MaxFrame} {
		var buf bytes.Buffer
		EncodeRequest(&buf, Request{ID: "1", Op: OpStage})
		fw := NewFrameWriter(&buf, size)
		// Writes of odd sizes must not change what is framed.
		for off := 0; off < len(payload); off += 999 {
			if _, err := fw.Write(payload[off:min(off+999, len(payload))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		EncodeRequest(&buf, Request{ID: "2", Op: OpFacts})
		d := NewDecoder(&buf, 0)
		if req, err := d.Decode(); err != nil || req.Op != OpStage {
			t.Fatalf("frame size %d: stage line: %+v, %v", size, req, err)
		}
		fr := d.Frames()
		got, err := io.ReadAll(fr)
		if err != nil || !bytes.Equal(got, payload) || !fr.Ended() {
			t.Fatalf("frame size %d: got %d bytes (equal %v), err %v, ended %v", size, len(got), bytes.Equal(got, payload), err, fr.Ended())
		}
		if req, err := d.Decode(); err != nil || req.ID != "2" {
			t.Fatalf("frame size %d: the line after the frames: %+v, %v", size, req, err)
		}
	}
}

func TestFrameReaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  error
	}{
		{"input ends in a header", "\x00\x00", io.ErrUnexpectedEOF},
		{"input ends in a payload", "\x00\x00\x00\x05abc", io.ErrUnexpectedEOF},
		{"no terminator", "\x00\x00\x00\x03abc", io.ErrUnexpectedEOF},
		{"frame over the limit", "\x00\x10\x00\x01", ErrFrameTooLarge},
	} {
		d := NewDecoder(strings.NewReader(tc.input), 0)
		fr := d.Frames()
		_, err := io.ReadAll(fr)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if fr.Ended() {
			t.Errorf("%s: reported ended", tc.name)
		}
	}
	// Drain skips a frame it was not asked to read.
	d := NewDecoder(strings.NewReader("\x00\x00\x00\x03abc\x00\x00\x00\x00{\"id\":\"9\",\"op\":\"facts\"}\n"), 0)
	if err := d.Frames().Drain(); err != nil {
		t.Fatal(err)
	}
	if req, err := d.Decode(); err != nil || req.ID != "9" {
		t.Fatalf("after Drain: %+v, %v", req, err)
	}
}
