import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The dashboards' stylesheet, script and Chart.js, served by the receiver itself (no CDN: the
 * pages work offline and no third party sees who looks at them). Each file's URL carries a hash
 * of its content, so browsers keep it for a year and a new version is a new URL.
 */

export interface Asset {
	url: string;
	type: string;
	body: Buffer;
}

const CSS = `:root{--ink:#1d1d1f;--muted:#5f6368;--line:#dadce0;--accent:#0b57d0;--bg:#f6f7f9;--card:#fff;--bad:#b3261e}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--ink);background:var(--bg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid #7aa7f7;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:2}
.skip:focus{left:.5rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
header.top{background:#fff;border-bottom:1px solid var(--line);padding:.6rem max(1rem,calc((100% - 72rem) / 2));display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
.brand{display:flex;flex-direction:column;margin-right:auto}
.brand .site{font-weight:650;font-size:1.1rem}
.brand .product{color:var(--muted);font-size:.8rem}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem}
nav a{display:block;padding:.35rem .7rem;border-radius:6px;text-decoration:none;color:var(--ink)}
nav a:hover{background:#eef2fb}
nav a[aria-current=page]{background:#e3ebfb;color:var(--accent);font-weight:600}
form.signout button,button,select,input{font:inherit}
button{padding:.35rem .9rem;border:1px solid var(--line);border-radius:6px;background:#fff;cursor:pointer;color:var(--ink)}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.4rem 0}
h2{font-size:1.05rem;margin:0}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem 1rem;margin:.5rem 0 1rem}
form.filters .field{display:flex;flex-direction:column;gap:.15rem}
form.filters .field-group{display:flex;flex-wrap:wrap;gap:.5rem 1rem}
form.filters label{font-size:.8rem;color:var(--muted)}
select,input{padding:.3rem .4rem;border:1px solid #b9bcc2;border-radius:6px;background:#fff;color:var(--ink)}
.period,.note{color:var(--muted);font-size:.9rem;margin:.25rem 0}
.error{color:var(--bad);background:#fdecea;border:1px solid #f4c7c3;border-radius:6px;padding:.5rem .75rem}
.ok{background:#e6f4ea;border:1px solid #b7dfc2;border-radius:6px;padding:.5rem .75rem}
ul.figures{list-style:none;padding:0;margin:0 0 1rem;display:grid;grid-template-columns:repeat(auto-fill,minmax(10.5rem,1fr));gap:.75rem}
.figure{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.7rem .9rem;display:flex;flex-direction:column}
.figure .label{color:var(--muted);font-size:.85rem}
.figure .value{font-size:1.6rem;font-weight:650;line-height:1.3}
.figure .change{font-size:.8rem;color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr));gap:1rem}
section.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.9rem 1rem;margin-bottom:1rem;min-width:0}
.panel-head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.5rem;align-items:baseline;margin-bottom:.5rem}
.chart{position:relative;height:16rem}
.chart.short{height:11rem}
details{margin-top:.5rem}
summary{cursor:pointer;color:var(--accent)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eceef1;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
th.text,td.text{white-space:normal;overflow-wrap:anywhere}
tbody th{font-weight:normal}
thead th{font-size:.78rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);white-space:normal;vertical-align:bottom;overflow-wrap:normal}
table.dense th,table.dense td{padding:.35rem .3rem}
table.dense thead th{letter-spacing:0;font-size:.72rem}
table.dense tbody th.text{min-width:7rem}
.empty{color:var(--muted);padding:.75rem 0;margin:0}
.signin{max-width:28rem;margin:3rem auto;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1.5rem}
.signin label{display:block;font-weight:600;margin:.75rem 0 .25rem}
.signin input{width:100%;padding:.5rem}
.signin .hint{color:var(--muted);font-size:.85rem}
.signin button{margin-top:1rem}
dl.facts{display:grid;grid-template-columns:minmax(7rem,max-content) 1fr;gap:.2rem 1rem;margin:0 0 .5rem}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
ul.tags{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.35rem}
ul.tags li{background:#eef2fb;border-radius:999px;padding:.1rem .65rem}
h3{font-size:.95rem;margin:.9rem 0 .3rem}
p.pages{margin:.75rem 0 0}
th.text,td.text{min-width:6rem}
tbody th.text{min-width:9rem}
code{background:#f1f3f4;padding:0 .25rem;border-radius:4px;overflow-wrap:anywhere}
@media (max-width:40rem){header.top{padding:.5rem .75rem}main{padding:.75rem}.figure .value{font-size:1.3rem}.chart{height:13rem}th,td{padding:.3rem .3rem}thead th{white-space:normal;letter-spacing:0;font-size:.7rem}}
`;

/**
 * Draws every canvas that carries a chart (its data in data-chart, the same figures as the table
 * beside it), and shows the From and To dates only for a custom period. Without Chart.js the
 * tables still hold every figure.
 */
const JS = `(function () {
	'use strict';
	var colors = ['#0b57d0', '#c5221f', '#188038', '#8430ce', '#e37400'];
	var reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
	if (typeof Chart !== 'undefined') {
		document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
			var spec = JSON.parse(canvas.getAttribute('data-chart'));
			var valueAxis = { beginAtZero: true, ticks: { precision: 0 } };
			new Chart(canvas, {
				type: spec.type,
				data: {
					labels: spec.labels,
					datasets: spec.datasets.map(function (set, index) {
						return { label: set.label, data: set.data, borderColor: colors[index], backgroundColor: spec.type === 'line' ? colors[index] : colors[index] + 'b3', borderWidth: 2, cubicInterpolationMode: 'monotone', pointRadius: spec.labels.length > 45 ? 0 : 2 };
					})
				},
				options: {
					responsive: true,
					maintainAspectRatio: false,
					animation: reduceMotion ? false : { duration: 400 },
					indexAxis: spec.horizontal ? 'y' : 'x',
					interaction: { mode: 'index', intersect: false },
					plugins: { legend: { display: spec.datasets.length > 1, position: 'bottom' } },
					scales: spec.horizontal ? { x: valueAxis } : { y: valueAxis }
				}
			});
		});
	}
	var period = document.getElementById('range');
	var dates = document.getElementById('custom-dates');
	if (period && dates) {
		var inputs = dates.querySelectorAll('input');
		var show = function () {
			var custom = period.value === 'custom';
			dates.hidden = !custom;
			inputs.forEach(function (input) { input.disabled = !custom; });
		};
		period.addEventListener('change', show);
		show();
	}
})();
`;

const hashed = (name: string, extension: string, body: Buffer) => `/dashboard/assets/${name}.${createHash('sha256').update(body).digest('hex').slice(0, 12)}.${extension}`;

function asset(name: string, extension: string, type: string, body: Buffer): Asset {
	return { url: hashed(name, extension, body), type, body };
}

/** Chart.js's UMD build (it defines the Chart global), from the receiver's own dependencies. */
function chartJs(): Buffer {
	// The package exports no subpath for its builds; its main entry sits beside them in dist/.
	return readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'));
}

export interface DashboardAssets {
	css: Asset;
	js: Asset;
	chart: Asset;
	/** By URL, for the route that serves them. */
	byUrl: Map<string, Asset>;
}

export function dashboardAssets(): DashboardAssets {
	const css = asset('dashboard', 'css', 'text/css; charset=utf-8', Buffer.from(CSS));
	const js = asset('dashboard', 'js', 'text/javascript; charset=utf-8', Buffer.from(JS));
	const chart = asset('chart.umd.min', 'js', 'text/javascript; charset=utf-8', chartJs());
	return { css, js, chart, byUrl: new Map([css, js, chart].map((item) => [item.url, item])) };
}
