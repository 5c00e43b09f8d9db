// The spend-per-day bar chart: inline SVG, one bar per day of the month, drawn from the
// per-day rollup of admin-usage?view=summary (exact nanos, so sub-cent days still show).

import { fmtCents, fmtExactCents, svg } from "./dom.js";

const HEIGHT = 200;
const PAD = { top: 14, right: 12, bottom: 28, left: 64 };
const NANOS_PER_CENT = 10_000_000;

function daysIn(month) {
  const [year, m] = month.split("-").map(Number);
  return new Date(Date.UTC(year, m, 0)).getUTCDate();
}

/** A round axis maximum at or above `value` (1, 2, 5 × 10^n cents, n may be negative). */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** "$12.50", "12.5¢" or "0.0005¢": exact enough to tell tiny days apart. */
export function centsLabel(cents) {
  return cents >= 100 ? fmtCents(cents) : `${fmtExactCents(cents)}¢`;
}

/**
 * Build the chart for `month` ("2026-02") from rows {date, sell_nanos, calls} (what the customer was charged),
 * `width` pixels wide (drawn at the container's size, so its text is never scaled).
 */
export function spendChart(month, days, width = 720) {
  const WIDTH = Math.max(280, Math.round(width));
  const count = daysIn(month);
  const byDay = new Map();
  for (const row of days) byDay.set(Number(String(row.date).slice(8, 10)), row);
  const values = [];
  for (let day = 1; day <= count; day += 1) {
    const row = byDay.get(day);
    values.push(row ? Number(row.sell_nanos) / NANOS_PER_CENT : 0);
  }
  const max = niceMax(Math.max(...values));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const slot = innerW / count;
  const barW = Math.max(2, slot * 0.7);
  const y = (v) => PAD.top + innerH - (v / max) * innerH;

  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "presentation",
    "data-days": String(count),
  });
  for (const fraction of [0, 0.5, 1]) {
    const gy = y(max * fraction);
    root.append(
      svg("line", { class: fraction ? "grid" : "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: gy, y2: gy }),
      svg("text", { x: PAD.left - 6, y: gy + 4, "text-anchor": "end" }, centsLabel(max * fraction)),
    );
  }
  values.forEach((value, index) => {
    const day = index + 1;
    const x = PAD.left + index * slot + (slot - barW) / 2;
    if (value > 0) {
      const top = Math.min(y(value), PAD.top + innerH - 1.5); // a tiny spend still shows
      const row = byDay.get(day);
      const calls = row ? `, ${row.calls} call${row.calls === 1 ? "" : "s"}` : "";
      root.append(
        svg(
          "rect",
          { class: "bar", x, y: top, width: barW, height: PAD.top + innerH - top, "data-day": String(day) },
          svg("title", {}, `${month}-${String(day).padStart(2, "0")}: ${centsLabel(value)}${calls}`),
        ),
      );
    }
    const every = WIDTH < 480 ? 10 : 5;
    // The last day is labelled too, unless that would print over the label before it.
    const lastFits = day === count && (count % every) * slot >= 20;
    if (day === 1 || day % every === 0 || lastFits) {
      root.append(svg("text", { x: x + barW / 2, y: HEIGHT - 8, "text-anchor": "middle" }, String(day)));
    }
  });
  if (values.every((v) => v === 0)) {
    root.append(
      svg(
        "text",
        { class: "empty-note", x: PAD.left + innerW / 2, y: PAD.top + innerH / 2, "text-anchor": "middle" },
        "No spend this month yet.",
      ),
    );
  }
  return root;
}

/** Call `draw` again when the window has stopped resizing, so a chart keeps its container's width. */
export function redrawOnResize(draw) {
  let timer = null;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(draw, 150);
  });
}
