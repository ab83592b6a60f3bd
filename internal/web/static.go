package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/static"
)

// staticFile is one embedded page or asset, ready to serve.
type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

// pages are the dashboards' URLs and their embedded files.
var pages = map[string]string{
	"/":          "index.html",
	"/executive": "executive.html",
	"/drilldown": "drilldown.html",
	"/tv":        "tv.html",
	"/admin":     "admin.html",
	"/screens":   "screens.html",
}

// assetDirs are the folders of static.Files served under /assets/.
var assetDirs = []string{"js", "css", "vendor"}

// routeStatic adds the dashboards' pages and assets. The pages carry no data (the data comes
// over /v1/live with the viewer's credentials), so they are served to anyone. Every answer
// is revalidated (no-cache with an ETag): a TV wall that reloads after a deploy gets the new
// scripts, and an unchanged file costs a 304.
func (s *Server) routeStatic() {
	files := map[string]staticFile{}
	add := func(name string) {
		b, err := fs.ReadFile(static.Files, name)
		if err != nil {
			return
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // the system's MIME table may lack or differ on these
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".md":
			ct = "text/plain; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		files[name] = staticFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	for _, name := range pages {
		add(name)
	}
	for _, dir := range assetDirs {
		_ = fs.WalkDir(static.Files, dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				add(p)
			}
			return nil
		})
	}
	if _, ok := files[static.ECharts]; !ok {
		s.log.Warn("the dashboards have no chart library: static/" + static.ECharts +
			" was missing at build time; build with scripts/up.sh or see static/vendor/README.md")
	}

	serve := func(c *fiber.Ctx, f staticFile) error {
		pagePolicy(c)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderETag, f.etag)
		if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, f.contentType)
		return c.Send(f.body)
	}
	for route, name := range pages {
		f, ok := files[name]
		if !ok {
			continue
		}
		s.app.Get(route, func(c *fiber.Ctx) error { return serve(c, f) })
	}
	s.app.Get("/assets/*", func(c *fiber.Ctx) error {
		name := c.Params("*")
		f, ok := files[name]
		if dir, _, _ := strings.Cut(name, "/"); !ok || !slices.Contains(assetDirs, dir) {
			pagePolicy(c)
			return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no such asset: " + c.Path()})
		}
		return serve(c, f)
	})
}
