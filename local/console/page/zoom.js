// Zoom for the graph: it opens fitted to its box, which is never taller than the window, and the
// box scrolls for the rest. "Fit" shows the whole graph; −, + and 100% zoom around that.
import { h } from './dom.js';

// Below this a 13px label is hard to read: the opening fit then fills the width and scrolls down.
const READABLE_SCALE = 0.6;
const STEP = 1.25;
const MIN_SCALE = 0.1;
const MAX_SCALE = 3;

/**
 * Wraps the laid-out SVG (natural size width × height) in a scrolling viewport with zoom controls.
 * Returns { toolbar, viewport }: both go into the page; the first fit happens once they are in it.
 */
export function zoomableGraph(svg, width, height) {
  const viewport = h('div', { class: 'graph-viewport', id: 'graph-viewport' }, svg);
  const label = h('span', { class: 'zoom-level', id: 'zoom-level' }, '');
  let scale = 1;
  let chosen = false; // once the reader zooms, a window resize keeps their zoom

  const apply = (next) => {
    scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, next));
    svg.setAttribute('width', String(Math.round(width * scale)));
    svg.setAttribute('height', String(Math.round(height * scale)));
    label.textContent = `${Math.round(scale * 100)}%`;
    viewport.dataset.scale = String(scale);
  };
  // The room the box may take: its width, and its CSS max-height (the window minus a margin).
  const room = () => {
    const style = getComputedStyle(viewport);
    const padding = Number.parseFloat(style.paddingLeft) + Number.parseFloat(style.paddingRight);
    const maxHeight = Number.parseFloat(style.maxHeight);
    return {
      width: viewport.clientWidth - padding,
      height: (Number.isFinite(maxHeight) ? maxHeight : window.innerHeight) - padding,
    };
  };
  const fitAll = () => {
    const { width: w, height: hgt } = room();
    return Math.min(1, w / width, hgt / height);
  };
  const opening = () => {
    const { width: w } = room();
    return Math.min(1, w / width, Math.max(fitAll(), READABLE_SCALE));
  };
  const button = (text, title, id, onClick) => {
    const choose = () => {
      chosen = true;
      onClick();
    };
    return h('button', { type: 'button', title, id, onclick: choose }, text);
  };

  const toolbar = h(
    'div',
    { class: 'zoom-controls', role: 'group', 'aria-label': 'Zoom' },
    button('Fit', 'show the whole graph', 'zoom-fit', () => apply(fitAll())),
    button('−', 'zoom out', 'zoom-out', () => apply(scale / STEP)),
    button('+', 'zoom in', 'zoom-in', () => apply(scale * STEP)),
    button('100%', 'actual size', 'zoom-reset', () => apply(1)),
    label,
  );
  const start = () => {
    if (!viewport.isConnected) return requestAnimationFrame(start);
    apply(opening());
    window.addEventListener('resize', () => chosen || apply(opening()));
  };
  requestAnimationFrame(start);
  return { toolbar, viewport };
}
