// Small DOM helpers and date formatting. Elements are only ever built with
// createElement/textContent: the page's Trusted Types policy forbids turning strings into markup.

export const $ = (id) => document.getElementById(id);

export const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
export const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
export const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function relative(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return '';
  const seconds = (when.getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return seconds <= 0 ? 'just now' : 'in a few seconds';
  if (abs < 3600) return relativeFormat.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relativeFormat.format(Math.round(seconds / 3600), 'hour');
  if (abs < 86400 * 45) return relativeFormat.format(Math.round(seconds / 86400), 'day');
  return dateOnly.format(when);
}

export function timeElement(iso, text) {
  const t = document.createElement('time');
  t.dateTime = iso;
  t.textContent = text || relative(iso);
  t.title = dateTime.format(new Date(iso));
  return t;
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export function metaItem(term, value) {
  const wrap = el('div');
  wrap.append(el('dt', null, term));
  const dd = el('dd');
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value || '—';
  if (!(value instanceof Node) && value) dd.title = value;
  wrap.append(dd);
  return wrap;
}

export const SVG = 'http://www.w3.org/2000/svg'; // the SVG namespace name, not a URL that is fetched
export function icon(kind) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  const shapes = {
    mobile: [['rect', { x: 7, y: 2.5, width: 10, height: 19, rx: 2 }], ['path', { d: 'M11 18h2' }]],
    tablet: [['rect', { x: 4.5, y: 2.5, width: 15, height: 19, rx: 2 }], ['path', { d: 'M11 18h2' }]],
    desktop: [['rect', { x: 3, y: 4, width: 18, height: 12, rx: 1.5 }], ['path', { d: 'M8 20h8M12 16v4' }]],
  };
  for (const [tag, attrs] of shapes[kind] || shapes.desktop) {
    const shape = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v));
    svg.append(shape);
  }
  return svg;
}
