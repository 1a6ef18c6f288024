// {{name}}: a Guildhall plugin. Counts the visits to each council's page.
import { Router, serve, text, json, context } from '../guildhall/index.js';
import * as kv from '../guildhall/kv.js';

// Keep each council's data under council/{council}/: the council of the URL.
const store = () => kv.councilKv(context.council());

const router = new Router()
  .get('/', () => {
    const visits = store().increment('visits', 1);
    return text(200, `Hello from ${context.council()} (${context.tenant()})! Visits: ${visits}`);
  })
  .get('/visits', () => json(200, { visits: Number(store().getText('visits') ?? 0) }))
  .delete('/visits', () => {
    context.writer(['officer', 'tenant-admin']); // 401 or 403 for anyone else
    store().delete('visits');
    return json(200, { visits: 0 });
  });

serve(router);
