// Loads the model.json named by ?model= with pixi-live2d-display (Cubism 2),
// loads every motion and expression it lists, draws one frame on white and
// leaves a report in window.viewerResult (read by run.mjs).
"use strict";

const SIZE = 800;

function now() {
  return performance.now();
}

// Counts pixels of the drawing buffer (RGBA, alpha ignored): not white, and
// black (every channel <= 4), which is what an undecodable texture draws.
function countPixels(gl) {
  const px = new Uint8Array(SIZE * SIZE * 4);
  gl.readPixels(0, 0, SIZE, SIZE, gl.RGBA, gl.UNSIGNED_BYTE, px);
  let nonWhite = 0, black = 0;
  for (let i = 0; i < px.length; i += 4) {
    const r = px[i], g = px[i + 1], b = px[i + 2];
    if (r < 250 || g < 250 || b < 250) nonWhite++;
    if (r <= 4 && g <= 4 && b <= 4) black++;
  }
  return { total: SIZE * SIZE, nonWhite, black };
}

async function loadAll(model, settings) {
  const mm = model.internalModel.motionManager;
  const motions = { listed: 0, loaded: 0, failed: [] };
  for (const [group, defs] of Object.entries(settings.motions || {})) {
    for (let i = 0; i < defs.length; i++) {
      motions.listed++;
      const m = await mm.loadMotion(group, i);
      if (m) motions.loaded++;
      else motions.failed.push(defs[i].file);
    }
  }
  const em = mm.expressionManager;
  const defs = settings.expressions || [];
  const expressions = { listed: defs.length, loaded: 0, failed: [] };
  for (let i = 0; i < defs.length; i++) {
    const e = em ? await em.loadExpression(i) : undefined;
    if (e) expressions.loaded++;
    else expressions.failed.push(defs[i].file);
  }
  return { motions, expressions };
}

async function run() {
  const url = new URL(location.href).searchParams.get("model");
  const r = { model: url, loaded: false, error: null, timings: {} };
  const t0 = now();
  const app = new PIXI.Application({
    width: SIZE, height: SIZE, backgroundColor: 0xffffff, backgroundAlpha: 1,
    antialias: false, preserveDrawingBuffer: true, autoStart: false,
  });
  document.body.appendChild(app.view);
  const gl = app.renderer.gl;
  r.webgl = gl ? gl.getParameter(gl.VERSION) : null;

  // model.json, read once: what is reported is what the loader gets (the
  // settings object with its url resolves the files relative to it).
  const resp = await fetch(url, { cache: "no-store" });
  const text = await resp.text();
  let settings;
  try {
    settings = JSON.parse(text);
  } catch (e) {
    r.error = "model.json (" + text.length + " characters, HTTP " + resp.status + "): " + e +
      "; ends with " + JSON.stringify(text.slice(-60));
    return r;
  }
  r.modelJson = {
    textures: (settings.textures || []).length,
    motions: Object.values(settings.motions || {}).reduce((n, g) => n + g.length, 0),
    expressions: (settings.expressions || []).length,
    physics: settings.physics || null,
  };

  let model;
  try {
    model = await PIXI.live2d.Live2DModel.from(Object.assign({}, settings, { url }), {
      autoInteract: false, autoUpdate: false, motionPreload: "NONE",
    });
    r.loaded = true;
  } catch (e) {
    r.error = String(e && e.stack || e);
  }
  r.timings.loadMs = now() - t0;
  if (!model) return r;

  Object.assign(r, await loadAll(model, settings));
  r.timings.motionsMs = now() - t0;
  r.physicsPresent = model.internalModel.physics !== undefined;
  r.textures = model.textures.length;

  const scale = Math.min(SIZE / model.width, SIZE / model.height) * 0.95;
  model.scale.set(scale);
  model.anchor.set(0.5, 0.5);
  model.position.set(SIZE / 2, SIZE / 2);
  app.stage.addChild(model);
  // A few frames of updates (motions, physics) before the frame that is read.
  for (let i = 0; i < 3; i++) {
    model.update(33);
    app.render();
  }
  r.pixels = countPixels(gl);
  r.timings.renderedMs = now() - t0;
  return r;
}

run().then((r) => { window.viewerResult = r; },
           (e) => { window.viewerResult = { loaded: false, error: "page: " + String(e && e.stack || e) }; });
