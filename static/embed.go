// Package static holds the dashboards' pages, scripts, styles and the vendored ECharts, embedded
// into the truthboard binary. internal/web serves them.
//
// vendor/echarts.min.js is not in git: scripts/up.sh, scripts/test.sh and the Dockerfile run
// `npm ci` in this folder and copy node_modules/echarts/dist/echarts.min.js to vendor/ before
// building (see vendor/README.md). Without it the pages say that the chart library is missing.
package static

import "embed"

// Files are the pages (*.html) and the assets under js/, css/ and vendor/.
//
//go:embed *.html js css vendor
var Files embed.FS

// ECharts is the path of the vendored chart library inside Files.
const ECharts = "vendor/echarts.min.js"
