// A small notice board for each council, kept in kv: officers post and remove notices,
// anyone reads them. Notices live under council/{council}/notices/{id:06}.
import { Router, serve, json, empty, HttpError, context, nowRfc3339 } from '../../sdk/index.js';
import * as kv from '../../sdk/kv.js';
import * as events from '../../sdk/events.js';

const WRITERS = ['officer', 'tenant-admin'];

// This council's part of the store: the council of the URL, never one from the request.
const store = () => kv.councilKv(context.council());
const noticeKey = (id) => `notices/${String(id).padStart(6, '0')}`;

function parseId(raw) {
  if (!/^[0-9]{1,9}$/.test(raw)) throw new HttpError(404, `there is no notice ${raw}`);
  return Number(raw);
}

function validate(input) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new HttpError(422, 'the body must be a JSON object with title and body');
  }
  const { title, body } = input;
  if (typeof title !== 'string' || title.trim().length === 0 || [...title].length > 100) {
    throw new HttpError(422, 'title must be 1 to 100 characters');
  }
  if (typeof body !== 'string' || body.trim().length === 0 || [...body].length > 2000) {
    throw new HttpError(422, 'body must be 1 to 2000 characters');
  }
  return { title: title.trim(), body };
}

const router = new Router()
  .get('/notices', () => {
    const s = store();
    const notices = s.listAllKeys('notices/').map((k) => s.getJson(k)).filter((n) => n !== null);
    return json(200, { notices });
  })
  .post('/notices', async (req) => {
    const caller = context.writer(WRITERS); // 401 / 403 before looking at the body
    let input;
    try {
      input = await req.json();
    } catch {
      throw new HttpError(422, 'the body must be a JSON object with title and body');
    }
    const { title, body } = validate(input);
    const s = store();
    const id = s.increment('next-id', 1);
    const notice = { id, title, body, posted_by: caller.id, posted_at: nowRfc3339() };
    s.setJson(noticeKey(id), notice);
    events.emit('notice.posted', { id });
    return json(201, notice, { location: `/notices/${id}` });
  })
  .get('/notices/{id}', (req) => {
    const id = parseId(req.param('id'));
    const notice = store().getJson(noticeKey(id));
    if (notice === null) throw new HttpError(404, `there is no notice ${id}`);
    return json(200, notice);
  })
  .delete('/notices/{id}', (req) => {
    context.writer(WRITERS);
    const id = parseId(req.param('id'));
    if (!store().delete(noticeKey(id))) throw new HttpError(404, `there is no notice ${id}`);
    events.emit('notice.removed', { id });
    return empty(204);
  });

serve(router);
