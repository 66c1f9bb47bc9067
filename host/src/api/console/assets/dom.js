// Building DOM without markup: every string becomes a text node (textContent), so nothing
// taken from an event, a plugin log or a URL can become HTML.

/** h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** The same for SVG elements (charts). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A table: columns are [title, row => cell, {num: true}]. */
export function table(columns, rows, empty = 'Nothing here.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([title, , o]) => h('th', { class: o?.num ? 'num' : null }, title)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map(([, cell, o]) => h('td', { class: o?.num ? 'num' : null }, cell(r)))))));
}

export function badge(text) {
  return h('span', { class: `badge ${String(text).replace(/[^a-z]/g, '')}` }, text);
}

/** Definition list of [term, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function pre(value) {
  return h('pre', {}, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

/** An RFC 3339 time as local date and time, with the exact value as a tooltip. */
export function time(t) {
  if (!t) return '';
  const d = new Date(t);
  return h('time', { datetime: t, title: t }, Number.isNaN(d.getTime()) ? t : d.toLocaleString());
}

let toastTimer;
export function toast(message, bad = false) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = bad ? 'toast bad' : 'toast';
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}
