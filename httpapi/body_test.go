package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// bodyTestApp serves POST /echo, which answers 204 when the request's context still has time left,
// behind the shared middleware, on a loopback listener.
func bodyTestApp(t *testing.T, o Options) string {
	t.Helper()
	s := newServer(Services{}, o)
	app := s.newFiberApp("test")
	app.Post("/echo", func(c *fiber.Ctx) error {
		if err := c.UserContext().Err(); err != nil {
			return err
		}
		return c.SendStatus(204)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestMultipartBodyLimit checks that a multipart body, which fasthttp would read whole before any
// handler (files to disk), is held to the body limit like any other: 413 body_too_large, by its
// Content-Length or, chunked, once it grows past the limit.
func TestMultipartBodyLimit(t *testing.T) {
	base := bodyTestApp(t, Options{BodyLimit: 64 << 10})
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			part, _ := w.CreateFormFile("file", "big.bin")
			_, _ = part.Write(bytes.Repeat([]byte("x"), 2<<20))
			_ = w.Close()
			var body io.Reader = bytes.NewReader(buf.Bytes())
			if chunked {
				body = io.MultiReader(body) // no length known: Transfer-Encoding: chunked
			}
			req, err := http.NewRequest("POST", base+"/echo", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", w.FormDataContentType())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e ErrorBody
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 413 || json.Unmarshal(b, &e) != nil || e.Code != "body_too_large" {
				t.Fatalf("2 MiB multipart body: %d %s, want 413 body_too_large", resp.StatusCode, b)
			}
		})
	}
}

// TestDeadlineStartsAfterBody checks that a slow upload does not use up the request's deadline: the
// handler gets the whole RequestTimeout once the body is in (the upload itself is bounded by
// ReadTimeout).
func TestDeadlineStartsAfterBody(t *testing.T) {
	base := bodyTestApp(t, Options{BodyLimit: 64 << 10, RequestTimeout: 300 * time.Millisecond, ReadTimeout: 10 * time.Second})
	pr, pw := io.Pipe()
	go func() {
		for range 4 {
			_, _ = pw.Write([]byte(`{"a":1}          `))
			time.Sleep(250 * time.Millisecond) // the upload takes about 1 s, over three deadlines
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest("POST", base+"/echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 204 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("slow upload: %d %s, want 204 (the deadline must start after the body)", resp.StatusCode, b)
	}
}
