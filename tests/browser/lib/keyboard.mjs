// The keyboard alone: Tab, Shift+Tab, arrows, Space, Enter and typing, with a check at every
// stop that the focused element shows GOV.UK's focus style.

// Runs in the page: what has focus, and whether its focus can be seen (an outline, a box
// shadow, GOV.UK's yellow focus background, or for a radio or checkbox the ring drawn on its
// label's ::before).
export function focusedElement() {
  const el = document.activeElement;
  if (!el || el === document.body) return { tag: 'BODY', type: '', id: '', name: '', value: '', label: '', href: '', text: '', checked: false, visible: true };
  const style = getComputedStyle(el);
  let visible = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 && !/rgba\(0, 0, 0, 0\)|transparent/.test(style.outlineColor))
    || style.boxShadow !== 'none'
    || style.backgroundColor === 'rgb(255, 221, 0)';
  if (!visible && (el.type === 'radio' || el.type === 'checkbox')) {
    const label = el.labels?.[0];
    const before = label && getComputedStyle(label, '::before');
    visible = Boolean(before && before.boxShadow !== 'none');
  }
  // An element given focus by script (an error summary, a notification banner) is not a
  // stop of the Tab order; GOV.UK Frontend shows it with an outline, checked the same way.
  return {
    tag: el.tagName,
    type: el.type || '',
    id: el.id || '',
    name: el.getAttribute('name') || '',
    value: typeof el.value === 'string' ? el.value : '',
    label: (el.labels?.[0]?.innerText || '').trim().replace(/\s+/g, ' '),
    href: el.getAttribute('href') || '',
    text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' '),
    checked: Boolean(el.checked),
    visible,
  };
}

// Presses `key` and answers what has focus afterwards. Focus that cannot be seen is added to
// `invisible` (a Set) as a short description.
export async function press(page, key, invisible) {
  await page.keyboard.press(key);
  const info = await page.evaluate(focusedElement);
  if (invisible && !info.visible) invisible.add(`${info.tag}#${info.id} ${info.text.slice(0, 60)} on ${new URL(page.url()).pathname}`);
  return info;
}

// Presses Tab (or `key`, e.g. Shift+Tab) until `match(focused)` holds; throws after `max`.
export async function tabTo(page, what, match, invisible, { max = 80, key = 'Tab' } = {}) {
  for (let i = 0; i < max; i += 1) {
    const info = await press(page, key, invisible);
    if (match(info)) return info;
  }
  throw new Error(`${what}: not reached with ${max} presses of ${key} on ${page.url()}`);
}

// Types `text` into whatever has focus, one key at a time, as a person would.
export async function typeText(page, text) {
  await page.keyboard.type(text, { delay: 5 });
}

// Presses `key` on what has focus and waits for the page it leads to (a link followed or a
// form sent) to load.
export async function pressAndWait(page, key) {
  const navigated = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await page.keyboard.press(key);
  await navigated;
  await page.waitForLoadState('load');
}
