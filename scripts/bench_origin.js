#!/usr/bin/env node
/*
 * bench_origin.js: a Bestdori-shaped origin for `make bench` (Node's built-in
 * modules only). One process, listeners on 127.0.0.1:
 *   HTTP/1.1 (keep-alive, large backlog) and HTTP/2 cleartext with prior
 *   knowledge (and HTTP/2 over TLS with --tls-cert/--tls-key), the same tree:
 *   /api/characters/all.2.json, /api/costumes/all.5.json,
 *   /api/explorer/<server>/assets/_info.json,
 *   /assets/<server>/live2d/chara/<name>_rip/buildData.asset,
 *   /assets/<server>/<bundle>_rip/<file>,
 *   /assets/<server>/thumb/costume/group<id/50>_rip/<name>.png
 * Every answer waits --latency-ms first (timers, so hundreds of requests wait
 * side by side instead of queueing). With --link-bps N every body goes
 * through one shared link of N bytes a second (the bodies in flight share
 * it evenly), as a real connection to the site would. JSON bodies go
 * gzip-encoded to requests that accept gzip, as the site's do. Content is a pure function of (--seed,
 * path). Unknown paths get the site's HTML page with 200, as the real site.
 *
 * The catalogue is the real asset index of --samples-dir (3,639 bundles) when
 * present, else 3,639 generated names, plus the benchmark's costumes, all
 * under one roster character that has no other costume:
 *   <c>_bench_full   ~90 files: .moc ~300 KB, physics, 3 textures of 1-3 MB,
 *                    70 motions of 2-15 KB (10 from <c>_general), 10 expressions
 *   <c>_bench_small1..3   a texture, a few motions and expressions each
 *   <c>_bench_huge   a 64 MiB texture (sequential reads)
 *
 * Not counted and never delayed:
 *   GET  /__bench          the benchmark costumes: files, URL paths, sizes
 *   GET  /__stats          {"total", "get", "head", "bytes", "in_flight",
 *                           "max_in_flight", "connections", "events": [[t_ms, method, path], ...]}
 *   POST /__stats/reset    zero the counters (events' t_ms count from here)
 *
 * Usage: node bench_origin.js [--latency-ms 40] [--link-bps 0] [--seed 1] [--samples-dir DIR]
 *                             [--port-file FILE] [--h1-port 0] [--h2-port 0]
 *                             [--tls-cert PEM --tls-key PEM]
 * The port file gets {"h1", "h2c", "h2" (TLS, if any), "pid"}.
 */
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const path = require('path');
const zlib = require('zlib');

const SERVERS = ['jp', 'en', 'tw', 'cn', 'kr'];
const MiB = 1024 * 1024;
const NBUNDLES = 3639;
const MAX_EVENTS = 50000;

function parseArgs(argv) {
	const o = {
		latencyMs: 40, linkBps: 0, seed: 1, samplesDir: path.join(__dirname, '..', 'tests', 'data', 'samples'), portFile: null,
		h1Port: 0, h2Port: 0, tlsCert: null, tlsKey: null,
	};
	const keys = {
		'--latency-ms': ['latencyMs', Number], '--link-bps': ['linkBps', Number], '--seed': ['seed', Number],
		'--samples-dir': ['samplesDir', String], '--port-file': ['portFile', String],
		'--h1-port': ['h1Port', Number], '--h2-port': ['h2Port', Number],
		'--tls-cert': ['tlsCert', String], '--tls-key': ['tlsKey', String],
	};
	for (let i = 2; i < argv.length; i++) {
		const k = keys[argv[i]];
		if (!k || i + 1 >= argv.length) {
			process.stderr.write(`bench_origin: unknown or incomplete argument ${argv[i]}\n`);
			process.exit(2);
		}
		o[k[0]] = k[1](argv[++i]);
	}
	return o;
}

const opt = parseArgs(process.argv);

/* ---- deterministic bytes ---- */

function key(...parts) {
	return crypto.createHash('sha256').update([opt.seed, ...parts].join('\0')).digest();
}

/* n pseudo-random bytes for a path: an AES-CTR keystream under a key from
 * it, 256 KiB of it repeated (incompressible enough; nothing compresses). */
function randomBytes(tag, n) {
	const k = key('bytes', tag);
	const c = crypto.createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32));
	const block = c.update(Buffer.alloc(Math.min(n, 256 * 1024)));
	return n <= block.length ? block : Buffer.alloc(n, block);
}

/* A small PRNG for sizes and text (mulberry32). */
function rng(...parts) {
	let a = key(...parts).readUInt32BE(0);
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function between(r, lo, hi) {
	return lo + Math.floor(r() * (hi - lo + 1));
}

function chunk(tag, data) {
	const len = Buffer.alloc(4);
	len.writeUInt32BE(data.length);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(tag), data])));
	return Buffer.concat([len, Buffer.from(tag), data, crc]);
}

/* zlib.crc32 where Node has it (20.15+), else a table-driven one. */
const crc32 = zlib.crc32 || (() => {
	const t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		t[n] = c >>> 0;
	}
	return (buf) => {
		let c = 0xffffffff;
		for (let i = 0; i < buf.length; i++)
			c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
})();

/* A PNG of exactly size bytes: signature, IHDR, an IDAT of noise, IEND. */
function png(tag, size) {
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(2048, 0);
	ihdr.writeUInt32BE(2048, 4);
	ihdr.set([8, 6, 0, 0, 0], 8);
	const head = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr)]);
	const tail = chunk('IEND', Buffer.alloc(0));
	const n = Math.max(0, size - head.length - tail.length - 12);
	const out = randomBytes(tag, head.length + 8 + n + 4 + tail.length);
	head.copy(out, 0);
	out.writeUInt32BE(n, head.length);
	out.write('IDAT', head.length + 4, 'latin1');
	out.writeUInt32BE(crc32(out.subarray(head.length + 4, head.length + 8 + n)), head.length + 8 + n);
	tail.copy(out, head.length + 12 + n);
	return out;
}

function moc(tag, size) {
	const out = randomBytes(tag, size);
	out.write('moc\x0b', 0, 'latin1');
	return out;
}

/* Live2D motion text of the given size. */
function mtn(tag, size) {
	const r = rng('mtn', tag);
	const lines = ['# Live2D Animator Motion Data', '$fps=30', '', '$fadein=500', '', '$fadeout=500', ''];
	let n = 0, len = lines.join('\n').length;
	while (len < size) {
		const vals = [];
		for (let i = between(r, 20, 60); i > 0; i--)
			vals.push((r() * 60 - 30).toFixed(3));
		const line = `PARAM_${String(n++).padStart(2, '0')}=${vals.join(',')}`;
		lines.push(line);
		len += line.length + 1;
	}
	return Buffer.from(lines.join('\n').slice(0, size - 1) + '\n');
}

function expression(tag) {
	const r = rng('exp', tag);
	const params = ['EYE_L_OPEN', 'EYE_R_OPEN', 'BROW_L_Y', 'BROW_R_Y', 'MOUTH_FORM']
		.slice(0, between(r, 2, 5))
		.map((p) => ({ id: `PARAM_${p}`, val: Math.round((r() * 2 - 1) * 100) / 100, calc: 'add' }));
	return Buffer.from(JSON.stringify({ type: 'Live2D Expression', fade_in: 500, fade_out: 500, params }, null, 2));
}

function physics(tag) {
	const r = rng('physics', tag);
	const hair = [];
	for (let i = 0; i < 40; i++) {
		hair.push({
			label: `hair_${i}`, setup: { length: between(r, 10, 30), regist: 0.5, mass: 0.5 },
			src: [{ id: 'PARAM_ANGLE_X', ptype: 'x', scale: 0.1, weight: 1 }],
			targets: [{ id: `PARAM_HAIR_${i}`, ptype: 'angle', scale: Math.round(r() * 1000) / 1000, weight: 1 }],
		});
	}
	return Buffer.from(JSON.stringify({ type: 'Live2D Physics', physics_hair: hair }, null, 2));
}

/* ---- the catalogue ---- */

function readJson(name) {
	try {
		return JSON.parse(fs.readFileSync(path.join(opt.samplesDir, name), 'utf8'));
	} catch (e) {
		return null;
	}
}

function generatedRoster() {
	const roster = {};
	for (let id = 1; id <= 40; id++)
		roster[id] = {
			characterType: 'unique', characterName: [`キャラ ${id}`, `Chara ${id}`, `角色 ${id}`, `角色 ${id}`, null],
			nickname: [null, null, null, null, null], bandId: Math.ceil(id / 5),
		};
	for (let id = 201; id <= 230; id++)
		roster[id] = {
			characterType: 'common', characterName: [`モブ ${id}`, `Extra ${id}`, null, null, null],
			nickname: [null, null, null, null, null],
		};
	return roster;
}

/* 3,639 names shaped like the real ones: per character a general bundle
 * and costumes (casual, events, dream festival, ...). */
function generatedBundles() {
	const out = {};
	const kinds = ['casual-%d', 'live_event_%d_sr', 'live_event_%d_ssr', 'dream_festival_%d_ur', 'school_%d', 'live_default'];
	let n = 0;
	for (let c = 1; c <= 40 && n < NBUNDLES; c++) {
		out[`${String(c).padStart(3, '0')}_general`] = 20;
		n++;
	}
	for (let i = 0; n < NBUNDLES; i++) {
		const c = 1 + (i % 40);
		const name = `${String(c).padStart(3, '0')}_${kinds[i % kinds.length].replace('%d', String(100 + Math.floor(i / 40)))}`;
		if (!(name in out)) {
			out[name] = 30;
			n++;
		}
	}
	return out;
}

const roster = readJson('api_characters_all.2.json') || generatedRoster();
const realBundles = readJson('live2d__info.json.mirror_haneoka.json');
const bundles = Object.assign({}, realBundles || generatedBundles());
const catalogueSource = realBundles ? 'samples' : 'generated';

const prefixes = new Set(Object.keys(bundles).map((b) => b.slice(0, 4)));
const benchChara = Object.keys(roster).map(Number).sort((a, b) => a - b)
	.find((id) => id < 1000 && !prefixes.has(`${String(id).padStart(3, '0')}_`));
if (benchChara === undefined) {
	process.stderr.write('bench_origin: no roster character without costumes to hold the benchmark\n');
	process.exit(1);
}
const CP = String(benchChara).padStart(3, '0');
const GENERAL = `live2d/chara/${CP}_general`;

const costumeIds = {};
const costumeNames = Object.keys(bundles).filter((b) => !b.endsWith('general'));

/*
 * The benchmark costumes: name -> { base: buildData Base, files: [{rel, bundle, file, kind, size}] }.
 * kind: moc|physics|texture|motion|expression; size fixed here, bytes made on demand.
 */
const bench = {};

function benchCostume(name, spec) {
	const own = `live2d/chara/${name}`;
	const r = rng('costume', name);
	const stem = name.slice(4);
	const files = [];
	const base = { m_Name: 'buildData', model: null, textures: [], motions: [], expressions: [] };
	const add = (field, kind, bundle, served, listed, rel, size) => {
		files.push({ field, kind, bundle, file: served, rel, size });
		const entry = { bundleName: bundle, fileName: listed };
		if (field === 'model' || field === 'physics')
			base[field] = entry;
		else
			base[field].push(entry);
	};
	add('model', 'moc', own, `${stem}.moc`, `${stem}.moc.bytes`, `${stem}.moc`, spec.moc);
	if (spec.physics)
		add('physics', 'physics', own, `${stem}.physics.json`, `${stem}.physics.json`, `${stem}.physics.json`, 0);
	spec.textures.forEach((size, i) => {
		const f = `texture_${String(i).padStart(2, '0')}.png`;
		add('textures', 'texture', own, f, f, `textures/${f}`, size);
	});
	const cats = ['idle', 'smile', 'angry', 'sad', 'nod', 'kime', 'eeto', 'surprised', 'bye', 'live'];
	for (let i = 0; i < spec.generalMotions; i++) {
		const f = `${cats[i % cats.length]}${String(1 + Math.floor(i / cats.length)).padStart(2, '0')}.mtn`;
		add('motions', 'motion', GENERAL, f, `${f}.bytes`, `motions/${f}`, between(rng('mtnsize', GENERAL, f), 2048, 15 * 1024));
	}
	for (let i = 0; i < spec.ownMotions; i++) {
		const f = `${name.slice(4).replace(/[^a-z]/g, '')}${String(i + 1).padStart(2, '0')}.mtn`;
		add('motions', 'motion', own, f, `${f}.bytes`, `motions/${f}`, between(r, 2048, 15 * 1024));
	}
	for (let i = 0; i < spec.expressions; i++) {
		const f = `${cats[i % cats.length]}${String(1 + Math.floor(i / cats.length)).padStart(2, '0')}.exp.json`;
		add('expressions', 'expression', GENERAL, f, f, `expressions/${f}`, 0);
	}
	bench[name] = { base, files, buildData: Buffer.from(JSON.stringify({ Base: base })) };
	bundles[name] = files.filter((f) => f.bundle === own).length + 1;
	costumeNames.push(name);
}

benchCostume(`${CP}_bench_full`, {
	moc: 300 * 1024, physics: true, textures: [1200 * 1024, 2100 * 1024, 2900 * 1024],
	generalMotions: 10, ownMotions: 60, expressions: 10,
});
for (let i = 1; i <= 3; i++)
	benchCostume(`${CP}_bench_small${i}`, {
		moc: 150 * 1024, physics: true, textures: [1024 * 1024], generalMotions: 6, ownMotions: 4, expressions: 5,
	});
benchCostume(`${CP}_bench_huge`, {
	moc: 100 * 1024, physics: false, textures: [64 * MiB], generalMotions: 2, ownMotions: 0, expressions: 2,
});
bundles[`${CP}_general`] = 30;

costumeNames.forEach((name, i) => {
	costumeIds[name] = i + 1;
});

/* Bytes of a benchmark file (cached: the same buffers answer every request). */
const bodies = new Map();
function body(kind, urlPath, size) {
	let b = bodies.get(urlPath);
	if (b)
		return b;
	switch (kind) {
	case 'moc': b = moc(urlPath, size); break;
	case 'texture': case 'icon': b = png(urlPath, size); break;
	case 'motion': b = mtn(urlPath, size); break;
	case 'expression': b = expression(urlPath); break;
	case 'physics': b = physics(urlPath); break;
	default: b = randomBytes(urlPath, size || 4096);
	}
	bodies.set(urlPath, b);
	return b;
}

/* Served files: URL path under /assets/<server>/ -> [kind, size]. */
const served = new Map();
for (const c of Object.values(bench))
	for (const f of c.files) {
		f.size = body(f.kind, `/${f.bundle}_rip/${f.file}`, f.size).length;
		served.set(`${f.bundle}_rip/${f.file}`, [f.kind, f.size]);
	}

/* Made up front so that no measured request waits for them. */
for (const name of Object.keys(bench)) {
	const icon = `/assets/jp/thumb/costume/group${Math.floor(costumeIds[name] / 50)}_rip/${name}.png`;
	body('icon', icon, between(rng('icon', name), 3000, 9000));
}

/* buildData of any other costume: generated, small, plausible. */
function genericBuildData(name) {
	const own = `live2d/chara/${name}`;
	const general = `live2d/chara/${name.slice(0, 3)}_general`;
	return {
		Base: {
			m_Name: 'buildData',
			model: { bundleName: own, fileName: 'model.moc.bytes' },
			physics: { bundleName: own, fileName: 'model.physics.json' },
			textures: [{ bundleName: own, fileName: 'texture_00.png' }],
			motions: ['idle01', 'smile01', 'nod01'].map((m) => ({ bundleName: general, fileName: `${m}.mtn.bytes` })),
			expressions: ['default', 'smile01'].map((e) => ({ bundleName: general, fileName: `${e}.exp.json` })),
		},
	};
}

function genericAsset(rest) {
	if (/\.moc$/.test(rest))
		return ['moc', 200 * 1024];
	if (/\.png$/.test(rest))
		return ['texture', 1024 * 1024];
	if (/\.mtn$/.test(rest))
		return ['motion', between(rng('gsize', rest), 2048, 15 * 1024)];
	if (/\.exp\.json$/.test(rest))
		return ['expression', 0];
	if (/\.physics\.json$/.test(rest))
		return ['physics', 0];
	return null;
}

const documents = new Map();
documents.set('/api/characters/all.2.json', Buffer.from(JSON.stringify(roster)));
{
	const index = {};
	for (const name of costumeNames) {
		const chara = parseInt(name.slice(0, 3), 10);
		if (!/^\d{3}_/.test(name) || !Number.isFinite(chara))
			continue;
		const id = costumeIds[name];
		index[id] = {
			characterId: chara, assetBundleName: name, sdResourceName: `sd${name.slice(0, 3)}${String(id % 1000).padStart(3, '0')}`,
			description: [`衣装 ${id}`, `Costume ${id}`, `服裝 ${id}`, `服装 ${id}`, null],
			publishedAt: ['1600000000000', '1600000000000', '1600000000000', '1600000000000', null],
		};
	}
	documents.set('/api/costumes/all.5.json', Buffer.from(JSON.stringify(index)));
	const groups = {};
	for (const id of Object.values(costumeIds))
		groups[`group${Math.floor(id / 50)}`] = 50;
	const info = {
		characters: { resourceset: 5 }, live2d: { chara: bundles },
		sound: { bgm: { bgm001: 2 } }, thumb: { costume: groups },
	};
	const infoBody = Buffer.from(JSON.stringify(info));
	for (const s of SERVERS)
		documents.set(`/api/explorer/${s}/assets/_info.json`, infoBody);
}

const HTML_PAGE = Buffer.from('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Bestdori! - ' +
	'The Ultimate BanG Dream! GBP Resource Site</title></head><body><div id="app"></div></body></html>\n');

function contentType(p) {
	if (p.endsWith('.json'))
		return 'application/json';
	if (p.endsWith('.png'))
		return 'image/png';
	return 'application/octet-stream';
}

/* [status, content type, body] for a URL path. */
function resolve(urlPath) {
	const doc = documents.get(urlPath);
	if (doc)
		return [200, 'application/json', doc];
	const m = /^\/assets\/([a-z]+)\/(.+)$/.exec(urlPath);
	if (!m || !SERVERS.includes(m[1]) || m[2].endsWith('.bytes'))
		return [200, 'text/html; charset=utf-8', HTML_PAGE];
	const rest = m[2];
	let k = /^live2d\/chara\/([^/]+)_rip\/buildData\.asset$/.exec(rest);
	if (k) {
		const name = k[1];
		if (bench[name])
			return [200, 'application/octet-stream', bench[name].buildData];
		if (name in bundles && !name.endsWith('general'))
			return [200, 'application/octet-stream', Buffer.from(JSON.stringify(genericBuildData(name)))];
		return [200, 'text/html; charset=utf-8', HTML_PAGE];
	}
	k = /^thumb\/costume\/group(\d+)_rip\/([^/]+)\.png$/.exec(rest);
	if (k) {
		const id = costumeIds[k[2]];
		if (id !== undefined && Math.floor(id / 50) === Number(k[1]))
			return [200, 'image/png', body('icon', urlPath, between(rng('icon', k[2]), 3000, 9000))];
		return [200, 'text/html; charset=utf-8', HTML_PAGE];
	}
	const f = served.get(rest) || (/^live2d\/chara\/[^/]+_rip\/[^/]+$/.test(rest) ? genericAsset(rest) : null);
	if (!f)
		return [200, 'text/html; charset=utf-8', HTML_PAGE];
	return [200, contentType(rest), served.has(rest) ? body(f[0], `/${rest}`, f[1]) : body(f[0], urlPath, f[1])];
}

/* ---- the benchmark's description ---- */

function benchInfo() {
	const names = roster[benchChara].characterName;
	const out = {
		catalogue: catalogueSource, bundles: Object.keys(bundles).length, latency_ms: opt.latencyMs,
		character: { id: benchChara, names }, documents: {}, documents_gzip: {}, costumes: {},
	};
	for (const [p, b] of documents)
		if (!p.includes('/explorer/') || p.includes('/jp/'))
			out.documents[p] = b.length, out.documents_gzip[p] = gzipped(p, b).length;
	for (const [name, c] of Object.entries(bench)) {
		const build = `/assets/jp/live2d/chara/${name}_rip/buildData.asset`;
		const icon = `/assets/jp/thumb/costume/group${Math.floor(costumeIds[name] / 50)}_rip/${name}.png`;
		out.costumes[name] = {
			costume_id: costumeIds[name],
			build_data: { path: build, size: resolve(build)[2].length },
			icon: { path: icon, size: resolve(icon)[2].length },
			files: c.files.map((f) => ({ rel: f.rel, field: f.field, path: `/assets/jp/${f.bundle}_rip/${f.file}`, size: f.size })),
		};
	}
	return out;
}

/* ---- serving and counting ---- */

let epoch = process.hrtime.bigint();
const stats = { total: 0, get: 0, head: 0, bytes: 0, in_flight: 0, max_in_flight: 0, connections: 0, events: [] };

function resetStats() {
	epoch = process.hrtime.bigint();
	Object.assign(stats, { total: 0, get: 0, head: 0, bytes: 0, max_in_flight: stats.in_flight, connections: 0, events: [] });
}

function sinceEpochMs() {
	return Number(process.hrtime.bigint() - epoch) / 1e6;
}

function control(req, res, urlPath) {
	let out;
	if (urlPath === '/__bench')
		out = benchInfo();
	else if (urlPath === '/__stats')
		out = stats;
	else if (urlPath === '/__stats/reset' && req.method === 'POST') {
		resetStats();
		out = { ok: true };
	} else {
		res.writeHead(404, { 'content-type': 'application/json' });
		res.end('{"error":"no such control path"}');
		return;
	}
	const b = Buffer.from(JSON.stringify(out));
	res.writeHead(200, { 'content-type': 'application/json', 'content-length': b.length });
	res.end(b);
}

function handle(req, res) {
	const urlPath = decodeURIComponent(req.url.split('?')[0]);
	if (urlPath.startsWith('/__'))
		return control(req, res, urlPath);
	const head = req.method === 'HEAD';
	stats.total++;
	stats[head ? 'head' : 'get']++;
	stats.in_flight++;
	stats.max_in_flight = Math.max(stats.max_in_flight, stats.in_flight);
	if (stats.events.length < MAX_EVENTS)
		stats.events.push([Math.round(sinceEpochMs() * 100) / 100, req.method, urlPath]);
	let finished = false;
	const done = () => {
		if (!finished) {
			finished = true;
			stats.in_flight--;
		}
	};
	res.on('finish', done);
	res.on('close', done);
	setTimeout(() => {
		let [status, type, b] = resolve(urlPath);
		const headers = { 'content-type': type };
		if (/json/.test(type) && /\bgzip\b/.test(req.headers['accept-encoding'] || '')) {
			b = gzipped(urlPath, b);
			headers['content-encoding'] = 'gzip';
		}
		headers['content-length'] = b.length;
		res.writeHead(status, headers);
		if (head) {
			res.end();
		} else {
			stats.bytes += b.length;
			if (opt.linkBps > 0)
				linkSend(res, b);
			else
				res.end(b);
		}
	}, opt.latencyMs);
}

const gzipCache = new Map();

function gzipped(urlPath, b) {
	if (!gzipCache.has(urlPath))
		gzipCache.set(urlPath, zlib.gzipSync(b));
	return gzipCache.get(urlPath);
}

/* ---- one shared link (--link-bps) ---- */

const LINK_TICK_MS = 5;
const link = { active: [], timer: null, last: 0, budget: 0 };

function linkSend(res, b) {
	link.active.push({ res, b, off: 0 });
	if (!link.timer) {
		link.last = Date.now();
		link.budget = 0;
		link.timer = setInterval(linkTick, LINK_TICK_MS);
	}
}

/* Share what the link carried since the last tick evenly among the bodies
 * in flight. */
function linkTick() {
	const now = Date.now();
	link.budget = Math.min(link.budget + (now - link.last) * opt.linkBps / 1000, opt.linkBps / 10);
	link.last = now;
	while (link.active.length && link.budget >= link.active.length) {
		const share = Math.floor(link.budget / link.active.length);
		for (const t of link.active) {
			const n = Math.min(share, t.b.length - t.off);
			t.res.write(t.b.subarray(t.off, t.off + n));
			t.off += n;
			link.budget -= n;
			if (t.off === t.b.length)
				t.res.end();
		}
		link.active = link.active.filter((t) => t.off < t.b.length && !t.res.destroyed);
	}
	if (!link.active.length) {
		clearInterval(link.timer);
		link.timer = null;
	}
}

const h1 = http.createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 60000 }, handle);
h1.keepAliveTimeout = 120000;
h1.maxRequestsPerSocket = 0;
h1.on('connection', () => stats.connections++);

const h2opts = { maxSessionMemory: 1024, settings: { maxConcurrentStreams: 1000, initialWindowSize: 16 * MiB } };
const h2 = http2.createServer(h2opts, handle);
const h2tls = opt.tlsCert && http2.createSecureServer(Object.assign({
	cert: fs.readFileSync(opt.tlsCert), key: fs.readFileSync(opt.tlsKey), allowHTTP1: false,
}, h2opts), handle);
for (const s of [h2, h2tls].filter(Boolean)) {
	s.on('session', () => stats.connections++);
	s.on('sessionError', () => {});
}

let listening = 0;
function ready() {
	if (++listening < (h2tls ? 3 : 2))
		return;
	const ports = { h1: h1.address().port, h2c: h2.address().port, pid: process.pid };
	if (h2tls)
		ports.h2 = h2tls.address().port;
	if (opt.portFile) {
		fs.writeFileSync(`${opt.portFile}.tmp`, JSON.stringify(ports));
		fs.renameSync(`${opt.portFile}.tmp`, opt.portFile);
	}
	process.stdout.write(`bench_origin: HTTP/1.1 on ${ports.h1}, h2c on ${ports.h2c}, h2 (TLS) on ${ports.h2 || '-'}, ` +
		`${Object.keys(bundles).length} bundles (${catalogueSource}), latency ${opt.latencyMs} ms, ` +
		`link ${opt.linkBps ? opt.linkBps + ' B/s' : 'unlimited'}\n`);
}
h1.listen({ host: '127.0.0.1', port: opt.h1Port, backlog: 4096 }, ready);
h2.listen({ host: '127.0.0.1', port: opt.h2Port, backlog: 4096 }, ready);
if (h2tls)
	h2tls.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, ready);

for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));
