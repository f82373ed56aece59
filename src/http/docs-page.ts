/**
 * A self-contained API page: it fetches /openapi.json in the browser and renders it, with no CDN,
 * so it also works on machines without internet access.
 */
export function renderDocsPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Larder API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase;font-family:monospace}
.get{color:#0a7} .post{color:#06c} .delete{color:#c33} code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;border-radius:4px} details summary{cursor:pointer}
.tag{color:#888;font-size:12px;margin-left:.5rem}
</style></head><body>
<h1>Larder API</h1><p id="desc">Loading <a href="/openapi.json">/openapi.json</a>…</p><div id="ops"></div>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  document.getElementById('desc').textContent=doc.info.description||'';
  const esc=s=>String(s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
  const resolve=s=>s&&s.$ref?doc.components.schemas[s.$ref.split('/').pop()]:s;
  const out=[];
  for(const [path,item] of Object.entries(doc.paths)){
    for(const [method,op] of Object.entries(item)){
      const body=op.requestBody&&op.requestBody.content&&op.requestBody.content['application/json'];
      const resps=Object.entries(op.responses||{}).map(([s,r])=>'<li><b>'+s+'</b> '+esc(r.description||'')+'</li>').join('');
      out.push('<div class="op"><details><summary><span class="m '+method+'">'+method+'</span><code>'+esc(path)+'</code>'+
        '<span class="tag">'+esc((op.tags||[]).join(', '))+'</span> — '+esc(op.summary||'')+'</summary>'+
        (body?'<p>Request body:</p><pre>'+esc(JSON.stringify(resolve(body.schema),null,2))+'</pre>':'')+
        '<p>Responses:</p><ul>'+resps+'</ul></details></div>');
    }
  }
  document.getElementById('ops').innerHTML=out.join('');
});
</script></body></html>`;
}
