// export.js: the "Export CSV" action of the executive and drill-down pages. It asks the
// metrics API for the figures on the page (format=csv, docs/api.md "CSV") with the page's own
// credential (the URL's token as a bearer header, else the session cookie), never a link that
// carries it, and saves the answer under the file name the server gives.

import {FILTERS, authHeaders} from './live.js';

// metricsQuery is the metrics API's query of a live subscription: its window and filters,
// grouped by the dimensions by, compared with the previous period, as CSV (or format).
export function metricsQuery(sub, by, format = 'csv') {
  const q = new URLSearchParams({window: sub.window, by: by.join(','), compare: 'previous', format});
  for (const f of FILTERS) if (sub.filters && sub.filters[f]) q.set(f, sub.filters[f].join(','));
  return '/v1/metrics?' + q;
}

// fileName is the name in a Content-Disposition header, or fallback.
function fileName(disposition, fallback) {
  const m = /filename="([^"]+)"/.exec(disposition || '');
  return m ? m[1] : fallback;
}

// bindExport makes button download the CSV of query() (a path of the metrics API). A refused
// export shows the API's error beside the button; button.dataset.file names the last file.
export function bindExport(button, query) {
  const note = document.createElement('span');
  note.className = 'export-error';
  note.setAttribute('role', 'status');
  button.after(note);
  button.addEventListener('click', async () => {
    button.disabled = true;
    note.textContent = '';
    try {
      const r = await fetch(query(), {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
      if (!r.ok) {
        let msg = `HTTP ${r.status}`;
        try {
          const e = await r.json();
          if (e.error) msg += ': ' + e.error;
        } catch (err) { /* not JSON */ }
        throw new Error(msg);
      }
      const blob = await r.blob();
      const name = fileName(r.headers.get('Content-Disposition'), 'truthboard-metrics.csv');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      button.dataset.file = name;
    } catch (e) {
      note.textContent = 'Export failed: ' + e.message;
    } finally {
      button.disabled = false;
    }
  });
}
