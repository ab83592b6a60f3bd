import {withToken} from './live.js';

for (const a of document.querySelectorAll('a[data-view]')) a.href = withToken(a.getAttribute('href'));
