// WCAG 2.2 success criterion 1.4.10 Reflow: content is readable at 320 CSS pixels wide (a
// 1280 px window zoomed to 400%) without scrolling in two directions.

import { setTimeout as sleep } from 'node:timers/promises';

export const REFLOW_WIDTH = 320;

// Runs in the page: how wide the document is against the viewport, and whether <main> and
// its heading are on screen, not clipped and not pushed sideways.
function measure() {
  const doc = document.documentElement;
  const main = document.querySelector('main');
  const box = (el) => {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return {
      left: Math.round(r.left), right: Math.round(r.right), width: Math.round(r.width), height: Math.round(r.height),
      shown: style.visibility !== 'hidden' && style.display !== 'none' && r.width > 0 && r.height > 0,
    };
  };
  // What sticks out past the right edge, for the report when there is horizontal scrolling.
  const wide = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1)
    .slice(0, 5)
    .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''} (right ${Math.round(el.getBoundingClientRect().right)})`);
  return {
    viewport: window.innerWidth,
    scrollWidth: doc.scrollWidth,
    clientWidth: doc.clientWidth,
    main: box(main),
    h1: box(document.querySelector('h1')),
    wide,
  };
}

// Narrows the page's viewport to `width` (default 320), measures, optionally saves a
// screenshot through `shoot(page)`, and puts the viewport back. Answers
// { ok, scrollWidth, clientWidth, main, h1, problems: [...] }.
export async function checkReflow(page, { width = REFLOW_WIDTH, height = 640, shoot } = {}) {
  const before = page.viewportSize();
  await page.setViewportSize({ width, height });
  try {
    // Let the layout settle after the media queries change. With JavaScript disabled
    // Chromium never runs animation-frame callbacks, so wait a moment instead.
    const frames = page.evaluate(() => new Promise((resolve) => { requestAnimationFrame(() => requestAnimationFrame(resolve)); }));
    frames.catch(() => {});
    await Promise.race([frames, sleep(250)]);
    const m = await page.evaluate(measure);
    const problems = [];
    if (m.scrollWidth > m.clientWidth || m.scrollWidth > width) {
      problems.push(`horizontal scrolling at ${width} px: the document is ${m.scrollWidth} px wide (${m.wide.join(', ') || 'nothing named'})`);
    }
    if (!m.main?.shown) problems.push(`<main> is not shown at ${width} px`);
    else if (m.main.left < 0 || m.main.right > m.clientWidth + 1) problems.push(`<main> spans ${m.main.left}..${m.main.right} px at ${width} px`);
    if (!m.h1?.shown) problems.push(`the <h1> is not shown at ${width} px`);
    else if (m.h1.left < 0 || m.h1.right > m.clientWidth + 1) problems.push(`the <h1> spans ${m.h1.left}..${m.h1.right} px at ${width} px`);
    if (shoot) await shoot(page);
    return { ok: problems.length === 0, width, scrollWidth: m.scrollWidth, clientWidth: m.clientWidth, problems };
  } finally {
    if (before) await page.setViewportSize(before);
  }
}
