package event

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Decompressed returns the body as sent before Content-Encoding: the body itself for no
// encoding or "identity", a gzip reader for "gzip" (or "x-gzip"). Either way the reader fails
// with a *BodyError wrapping ErrTooLarge once more than maxBytes bytes come out of it
// (DefaultMaxBodyBytes when maxBytes <= 0), so a gzip bomb costs at most maxBytes of work and
// never memory: do not trust Content-Length. Another encoding is an error wrapping
// ErrUnsupportedEncoding that names it (HTTP 415). Data that is not gzip, cut off or corrupt
// is an error at once or from Read, worded for the sender (HTTP 400).
//
// With Fiber, pass the raw body (c.Request().Body()), not c.Body(), which inflates gzip
// itself with no bound.
func Decompressed(body io.Reader, contentEncoding string, maxBytes int64) (io.Reader, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	if identity(contentEncoding) {
		return limitReader(body, maxBytes), nil
	}
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err == io.EOF {
			return nil, errors.New("the body is empty although Content-Encoding says gzip")
		} else if err != nil {
			return nil, gzipError(err)
		}
		return limitReader(gzipReader{zr}, maxBytes), nil
	default:
		return nil, fmt.Errorf("%w %q: send the body uncompressed or with Content-Encoding: gzip", ErrUnsupportedEncoding, contentEncoding)
	}
}

// gzipReader words the errors of a gzip stream for the sender.
type gzipReader struct{ zr *gzip.Reader }

func (g gzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = gzipError(err)
	}
	return n, err
}

func gzipError(err error) error {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the gzip body is cut off (Content-Encoding: gzip): %w", err)
	case errors.Is(err, gzip.ErrHeader):
		return fmt.Errorf("the body is not gzip data although Content-Encoding says gzip: %w", err)
	case errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("the gzip body is corrupt (checksum mismatch): %w", err)
	}
	return fmt.Errorf("read gzip body: %w", err)
}

// limitReader returns a reader of r that fails with tooLarge(max) when r holds more than max
// bytes. Unlike io.LimitReader it tells a body of exactly max bytes from a longer one.
func limitReader(r io.Reader, max int64) io.Reader {
	return &limited{r: r, left: max, max: max}
}

type limited struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// The allowed bytes are used up: the body is too large unless it ends here.
		var one [1]byte
		if n, err := io.ReadFull(l.r, one[:]); n == 0 {
			return 0, err // io.EOF when the body ends here
		}
		return 0, tooLarge(l.max)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// DecodeEncoded decodes a body as received with its Content-Encoding (see Decompressed): an
// uncompressed one in place (DecodeBytes, no copy), a compressed one through Decompressed and
// Decode.
func DecodeEncoded(raw []byte, contentEncoding, contentType string, limits Limits, now time.Time) (Batch, error) {
	if identity(contentEncoding) {
		return DecodeBytes(raw, contentType, limits, now)
	}
	body, err := Decompressed(bytes.NewReader(raw), contentEncoding, limits.MaxBodyBytes)
	if err != nil {
		return Batch{}, err
	}
	return Decode(body, contentType, limits, now)
}

// identity reports whether a Content-Encoding leaves the body as it is: none, or "identity".
func identity(contentEncoding string) bool {
	enc := strings.TrimSpace(contentEncoding)
	return enc == "" || strings.EqualFold(enc, "identity")
}
