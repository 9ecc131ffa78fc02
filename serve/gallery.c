/*
 * gallery.c: the page at / (plain HTML, CSS and JS, embedded: no build
 * step, nothing to install). It reads /gallery/... and the tree; the
 * preview loads pixi.js, pixi-live2d-display and the Cubism 2 core from the
 * URLs the server was given (the core is proprietary and never shipped).
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "serve_int.h"

static const char page_head[] =
	"<!doctype html><html><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	"<title>l2dfs gallery</title><style>\n"
	"body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f8;color:#222}\n"
	"header{background:#334;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}\n"
	"header a{color:#fff}main{padding:1em}\n"
	"input{font-size:1em;padding:.3em;min-width:16em}\n"
	".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.8em}\n"
	".card{background:#fff;border:1px solid #ccd;border-radius:6px;padding:.5em;"
	"text-decoration:none;color:inherit;display:block}\n"
	".card:focus,.card:hover{outline:3px solid #66f}\n"
	".card img{width:128px;height:128px;display:block;margin:auto;object-fit:contain}\n"
	".card .n{font-size:.75em;color:#667;word-break:break-all}\n"
	"table{border-collapse:collapse}td{padding:.1em .6em;font-size:.85em}\n"
	".completed{color:#070}.failed{color:#b00}.downloading{color:#a60}\n"
	"#stage{width:400px;height:400px;background:#fff;border:1px solid #ccd}\n"
	".cols{display:flex;gap:1.5em;flex-wrap:wrap}\n"
	"</style></head><body>"
	"<header><a href=\"#/\" accesskey=\"h\">l2dfs</a>"
	"<input id=\"filter\" type=\"search\" placeholder=\"filter (press /)\" "
	"aria-label=\"filter\"></header><main id=\"main\" tabindex=\"-1\"></main>\n"
	"<script>window.L2DFS=";

static const char page_tail[] =
	";</script><script>\n"
	"'use strict';\n"
	"const $=s=>document.querySelector(s),main=$('#main'),filter=$('#filter');\n"
	"const esc=s=>String(s).replace(/[&<>\"']/g,c=>'&#'+c.charCodeAt(0)+';');\n"
	"const enc=encodeURIComponent;\n"
	"async function getJSON(u,o){const r=await fetch(u,o);if(!r.ok)throw new Error(u+': '+r.status);return r.json();}\n"
	"function applyFilter(){const q=filter.value.toLowerCase();"
	"document.querySelectorAll('.card').forEach(c=>{c.hidden=q&&!c.textContent.toLowerCase().includes(q);});}\n"
	"filter.addEventListener('input',applyFilter);\n"
	"document.addEventListener('keydown',e=>{if(e.key==='/'&&document.activeElement!==filter)"
	"{e.preventDefault();filter.focus();}else if(e.key==='Escape'){filter.value='';applyFilter();"
	"if(location.hash.startsWith('#/costume/'))history.back();else location.hash='#/';}});\n"
	"async function characters(){const cs=await getJSON('/gallery/characters');"
	"main.innerHTML='<h1>Characters</h1><div class=grid>'+cs.map(c=>"
	"'<a class=card href=\"#/c/'+c.id+'\">'+esc(c.name)+'<div class=n>'+c.costumes+' costumes</div></a>').join('')+'</div>';}\n"
	"async function costumes(id){const cs=await getJSON('/gallery/characters/'+enc(id));"
	"main.innerHTML='<h1>Costumes</h1><div class=grid>'+cs.map(c=>"
	"'<a class=card href=\"#/costume/'+enc(c.name)+'\"><img loading=lazy alt=\"\" onerror=\"this.hidden=true\" src=\"'+esc(c.icon)+'\">'"
	"+esc(c.description)+'<div class=n>'+esc(c.name)+'</div></a>').join('')+'</div>';}\n"
	"let poll=null;\n"
	"function showState(c){$('#state').innerHTML='<span class='+esc(c.status)+'>'+esc(c.status)+'</span> '"
	"+c.progress+'% ('+c.files_done+'/'+c.files_total+' files)'+(c.error?' — '+esc(c.error):'');"
	"$('#retry').hidden=c.status!=='failed';}\n"
	"async function refresh(name){const c=await getJSON('/gallery/costumes/'+enc(name));showState(c);"
	"$('#files').innerHTML=c.files.map(f=>'<tr><td><a href=\"/costumes/'+enc(name)+'/'+f.path.split('/').map(enc).join('/')+'\">'"
	"+esc(f.path)+'</a></td><td class='+esc(f.status)+'>'+esc(f.missing?'absent':f.status)+'</td><td>'+f.progress+'%</td></tr>').join('');"
	"return c;}\n"
	"function watch(name){clearInterval(poll);poll=setInterval(async()=>{const c=await getJSON('/status/'+enc(name));"
	"showState(c);if(c.status==='completed'||c.status==='failed'){clearInterval(poll);refresh(name);}},1000);}\n"
	"function script(u){return new Promise((ok,no)=>{const s=document.createElement('script');s.src=u;"
	"s.onload=ok;s.onerror=()=>no(new Error('cannot load '+u));document.head.appendChild(s);});}\n"
	"let libs=null;\n"
	"async function preview(name){const L=window.L2DFS;if(!L.core){$('#pv').textContent='No preview: start l2dfs serve with --cubism-core URL.';return;}"
	"libs=libs||script(L.core).then(()=>script(L.pixi)).then(()=>script(L.live2d));await libs;"
	"const app=new PIXI.Application({view:$('#stage'),width:400,height:400,backgroundColor:0xffffff,preserveDrawingBuffer:true});"
	"const m=await PIXI.live2d.Live2DModel.from('/costumes/'+enc(name)+'/model.json',{autoInteract:false});"
	"const s=Math.min(400/m.width,400/m.height)*0.95;m.scale.set(s);m.x=(400-m.width)/2;m.y=(400-m.height)/2;"
	"app.stage.addChild(m);window.l2dfsModel=m;window.l2dfsApp=app;document.body.dataset.preview='ready';}\n"
	"async function costume(name){clearInterval(poll);const c=await refresh0(name);}\n"
	"async function refresh0(name){main.innerHTML='<h1 id=title></h1><p id=desc></p><div class=cols><div>"
	"<canvas id=stage width=400 height=400></canvas><p id=pv></p></div><div><p id=state></p>"
	"<button id=dl>Download</button> <button id=retry hidden>Retry</button>"
	"<table id=files></table></div></div>';const c=await refresh(name);"
	"$('#title').textContent=name;$('#desc').textContent=c.description;"
	"$('#dl').onclick=async()=>{const r=await getJSON('/download/'+enc(name),{method:'POST'});showState(r.state);watch(name);};"
	"$('#retry').onclick=async()=>{const r=await getJSON('/retry/'+enc(name),{method:'POST'});showState(r.state);watch(name);};"
	"$('#dl').focus();preview(name).then(()=>refresh(name)).catch(e=>{$('#pv').textContent=String(e);document.body.dataset.preview='error';});return c;}\n"
	"async function route(){const h=decodeURIComponent(location.hash.slice(1)||'/');filter.value='';"
	"try{if(h.startsWith('/c/'))await costumes(h.slice(3));else if(h.startsWith('/costume/'))await costume(h.slice(9));"
	"else await characters();document.body.dataset.page=h;}catch(e){main.textContent=String(e);}"
	"const f=main.querySelector('a,button');if(f&&!h.startsWith('/costume/'))f.focus();}\n"
	"window.addEventListener('hashchange',route);route();\n"
	"</script></body></html>\n";

#define PIXI_DEFAULT "https://cdn.jsdelivr.net/npm/pixi.js@6.5.10/dist/browser/pixi.min.js"
#define LIVE2D_DEFAULT \
	"https://cdn.jsdelivr.net/npm/pixi-live2d-display@0.4.0/dist/cubism2.min.js"

/* The page's settings as a script literal ("<" escaped: no "</script>"). */
static char *settings_json(const struct serve *s)
{
	cJSON *j = cJSON_CreateObject();
	const struct serve_config *c = &s->cfg;

	if (c->cubism_core_url)
		cJSON_AddStringToObject(j, "core", c->cubism_core_url);
	else
		cJSON_AddNullToObject(j, "core");
	cJSON_AddStringToObject(j, "pixi", c->pixi_url ? c->pixi_url : PIXI_DEFAULT);
	cJSON_AddStringToObject(j, "live2d", c->live2d_url ? c->live2d_url : LIVE2D_DEFAULT);
	char *text = cJSON_PrintUnformatted(j), *out = text ? malloc(strlen(text) * 6 + 1) : NULL;
	cJSON_Delete(j);
	if (out) {
		char *o = out;
		for (const char *p = text; *p; p++)
			o += *p == '<' ? (size_t)sprintf(o, "\\u003c") : (size_t)(*o = *p, 1);
		*o = '\0';
	}
	free(text);
	return out;
}

enum MHD_Result serve_gallery(struct serve_req *r)
{
	if (r->nparts != 0 && !(r->nparts == 1 && strcmp(r->part[0], "index.html") == 0))
		return serve_errno(r, -ENOENT, r->part[0]);
	char *js = settings_json(r->s);
	size_t len = js ? sizeof(page_head) + strlen(js) + sizeof(page_tail) : 0;
	char *page = js ? malloc(len) : NULL;
	if (!page) {
		free(js);
		return MHD_NO;
	}
	len = (size_t)snprintf(page, len, "%s%s%s", page_head, js, page_tail);
	free(js);
	return serve_text(r, page, len, "text/html; charset=utf-8", SERVE_SHORT);
}
